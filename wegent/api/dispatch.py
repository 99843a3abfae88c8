"""The fast door of the resource API: requests matched to a route of the operation table and
answered in front of the framework (its routing, dependency injection, signature parsing and
middleware cost about two thirds of a request). It answers every request whose method and
path are a route of the table; anything else (unknown paths, other methods, ``OPTIONS``)
goes on to the framework, whose route table holds the same routes (``wegent.api.routes``).
"""

from __future__ import annotations

from wegent.api.operations import ResourceApi, Route
from wegent.resources.meta import API_VERSION

GROUP, VERSION = API_VERSION.split("/")

Match = tuple[Route, str | None, str | None]  # the route, the namespace and name in the path


class Dispatcher:
    """Matches ``(method, path)`` to a route: a dict lookup on the path's shape."""

    def __init__(self, api: ResourceApi) -> None:
        self.api = api
        self.answered = 0  # requests this door answered: tests prove it is used
        self._routes: dict[tuple[str, str, str, str], Route] = {}
        for route in api.routes:
            operation = route.operation
            noun = route.kind.plural if route.kind else operation.suffix
            shape = operation.target if operation.target != "namespace" else "collection"
            if operation.target in ("item", "kind") and operation.suffix:
                shape = f"{operation.target}/{operation.suffix}"
            self._routes[(route.family.name, noun, shape, operation.method)] = route

    def match(self, method: str, path: str) -> Match | None:
        parts = path.split("/")
        if len(parts) < 5:
            return None
        if parts[1] == "api" and parts[2] == "v1":
            if parts[3] == "kinds":
                family, namespace, rest = "A", None, parts[4:]
            elif parts[3] == "namespaces" and len(parts) >= 6 and parts[4]:
                family, namespace, rest = "B", parts[4], parts[5:]
            elif len(parts) == 5:  # an action across namespaces: /api/v1/{plural}/{action}
                route = self._routes.get(("B", parts[3], f"kind/{parts[4]}", method))
                return None if route is None else (route, None, None)
            else:
                return None
        elif parts[1] == "apis" and parts[2] == GROUP and parts[3] == VERSION:
            if parts[4] == "namespaces" and len(parts) >= 7 and parts[5]:
                family, namespace, rest = "C", parts[5], parts[6:]
            elif len(parts) == 5:
                family, namespace, rest = "C-all", None, parts[4:]
            else:
                return None
        else:
            return None
        if len(rest) == 1:
            shape, name = "collection", None
        elif len(rest) == 2 and rest[1]:
            shape, name = "item", rest[1]
        elif len(rest) == 3 and rest[1]:
            shape, name = f"item/{rest[2]}", rest[1]
        else:
            return None
        route = self._routes.get((family, rest[0], shape, method))
        return None if route is None else (route, namespace, name)
