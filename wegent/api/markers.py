"""Short names for handler parameter markers (Litestar wants them explicit)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import PathParameter

from wegent.container import Services
from wegent.names import NAME_PATTERN, NAMESPACE_PATTERN

AnyRequest = Request[Any, Any, Any]
ServicesDep = NamedDependency[Services]
# Path parameters are checked before any SQL sees them: a name that cannot exist is a 400.
ObjectName = Annotated[str, PathParameter(pattern=NAME_PATTERN, min_length=1, max_length=63)]
UserName = Annotated[str, PathParameter(pattern=NAMESPACE_PATTERN, min_length=1, max_length=63)]
