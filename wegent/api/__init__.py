"""HTTP layer: thin controllers and the mapping of errors to ``Status`` bodies."""
