"""How things are named (API.md §1, §3): the patterns every layer checks names against.

The bottom layer: it imports nothing of the project, so authentication, resources and the HTTP
layer all take their name rules from here. Python's ``$`` also matches before a final newline;
``(?!\\n)`` closes that hole while keeping the patterns valid for JSON Schema (ECMA 262) readers
of the OpenAPI document.
"""

from __future__ import annotations

import re

#: An object's name: 1-63 characters, mixed case allowed (existing Wegent names: ``ClaudeCode``).
NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$(?!\n)"
#: A namespace or user name: a DNS label (1-63; users at least 2).
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$(?!\n)"
#: A resourceVersion a write may carry as its precondition (API.md §6): the decimal number this
#: server issued, at most 18 digits so that it always fits the bigint it is compared with.
#: ``""`` means unset, as in Kubernetes.
RESOURCE_VERSION_PATTERN = r"^[0-9]{0,18}$(?!\n)"
MAX_NAME = 63

#: Never a user or a namespace (API.md §3); nor anything starting ``kube-``.
RESERVED_NAMES = frozenset({"default", "public", "system"})
DEFAULT = "default"
PUBLIC = "public"
SYSTEM = "system"
#: Namespaces every authenticated user reads and only global admins write (API.md §3).
SHARED = (PUBLIC, SYSTEM)

_NAME = re.compile(NAME_PATTERN)
_NAMESPACE = re.compile(NAMESPACE_PATTERN)


def is_name(text: str) -> bool:
    """Whether ``text`` can name an object."""
    return len(text) <= MAX_NAME and _NAME.match(text) is not None


def is_namespace(text: str) -> bool:
    """Whether ``text`` is a DNS label that can name a namespace (or ``default``)."""
    return len(text) <= MAX_NAME and _NAMESPACE.match(text) is not None


def is_reserved(name: str) -> bool:
    """Names that are never a user or a namespace (API.md §3)."""
    return name in RESERVED_NAMES or name.startswith("kube-")
