"""What every request handler needs, built once per process, and who is asking."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from edge.runtime.clock import Clock
from gateway.api.auth import COOKIE, StaffAuth
from gateway.api.sites import CameraSite, Site
from gateway.services.transit import Transit
from gateway.store.config import StoreConfig
from gateway.store.db import Store
from gateway.store.images import ImageFiles
from gateway.store.intake import to_ms


@dataclass
class Context:
    config: StoreConfig
    store: Store
    sites: list[Site]
    clock: Clock
    images: ImageFiles
    auth: StaffAuth
    # ingest workers in this process report here (for /healthz)
    ingest_stats: list[Callable[[], dict[str, Any]]] = field(default_factory=list)
    cameras: list[CameraSite] = field(default_factory=list)
    transit: Transit | None = None  # the city's buses, when the config has a transit section

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    @property
    def site_by_device(self) -> dict[str, Site]:
        return {site.device: site for site in self.sites}


@dataclass(frozen=True)
class Viewer:
    """Who is asking: anyone, or a logged-in member of staff, and so which kinds they may read."""

    staff: str | None
    public_kinds: Sequence[str]

    def kinds(self, requested: str | None = None) -> list[str] | None:
        """Kinds a query may touch: None (all) for staff, else the public ones."""
        if self.staff is not None:
            return None if requested is None else [requested]
        if requested is None:
            return list(self.public_kinds)
        return [requested] if requested in self.public_kinds else []

    def may_read(self, kind: str) -> bool:
        return self.staff is not None or kind in self.public_kinds


def context(request: Request) -> Context:
    return request.app.state.context


def viewer(request: Request) -> Viewer:
    ctx: Context = request.app.state.context
    return Viewer(ctx.auth.user(request.cookies.get(COOKIE)), ctx.config.http.public_kinds)


Ctx = Annotated[Context, Depends(context)]
Who = Annotated[Viewer, Depends(viewer)]
