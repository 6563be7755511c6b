"""The tenant and service path of a request (``Fiware-Service``, ``Fiware-ServicePath``), as a
multi-tenant context broker reads them.

The store publishes one tenant and one service path (``ngsi.service``, ``ngsi.service_path``).
A request for another tenant, or for paths that do not cover the store's, sees nothing: an empty
list, a NotFound for one entity. That is what a broker answers for a tenant it holds no data
for, and it keeps a platform that asks the wrong tenant from mixing cities.
"""

from __future__ import annotations

import re

from fastapi import Request

from gateway.api.ngsi.errors import bad
from gateway.store.config import NgsiConfig

TENANT = re.compile(r"^[A-Za-z0-9_]{1,50}$")
PART = re.compile(r"^[A-Za-z0-9_]{1,50}$")
MAX_PATHS = 10
MAX_DEPTH = 10


def _check_path(path: str, query: bool) -> str:
    if not path.startswith("/"):
        raise bad(f"Fiware-ServicePath: {path!r} must start with /")
    base = path[:-2] if query and path.endswith("/#") else path
    parts = [p for p in base.split("/")[1:] if p]
    if len(parts) > MAX_DEPTH or not all(PART.match(p) for p in parts) or "//" in base:
        raise bad(f"Fiware-ServicePath: {path!r} has parts other than 1-50 of A-Z a-z 0-9 _")
    return path


def visible(request: Request, config: NgsiConfig) -> bool:
    """Whether the store's entities are in the scope this request names (a bad header is a
    BadRequest)."""
    tenant = request.headers.get("fiware-service", "")
    if tenant and not TENANT.match(tenant):
        raise bad("Fiware-Service: 1-50 of A-Z a-z 0-9 _")
    header = request.headers.get("fiware-servicepath", "/#")
    paths = [_check_path(p.strip(), True) for p in header.split(",")]
    if len(paths) > MAX_PATHS:
        raise bad(f"Fiware-ServicePath: at most {MAX_PATHS} paths")
    if tenant.lower() != config.service.lower():
        return False
    mine = config.service_path
    return any(
        mine == p
        or (p.endswith("/#") and (p == "/#" or mine == p[:-2] or mine.startswith(p[:-2] + "/")))
        for p in paths
    )


def update_path(request: Request) -> str:
    """The single service path a subscription is made in (no ``#``, no list)."""
    return _check_path(request.headers.get("fiware-servicepath", "/").strip(), False)
