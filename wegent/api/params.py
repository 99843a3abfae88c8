"""Short names for handler parameter markers (Litestar wants them explicit)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from wegent.services import Services

AnyRequest = Request[Any, Any, Any]
ServicesDep = NamedDependency[Services]
