"""Authentication and authorization: passwords, tokens, users, namespaces and access policy."""
