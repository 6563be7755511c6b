"""What every request handler needs, built once per process, and who is asking."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from edge.protocol import KINDS
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


# Children's positions are read only through the tracker service, whose every view is audited
# (docs/tracker.md): the store keeps its copy for delivery and loss accounting, and staff see the
# trackers' health here, never where a child is.
AUDITED_KINDS = ("tracker",)


@dataclass(frozen=True)
class Viewer:
    """Who is asking: anyone, or a logged-in member of staff, and so which kinds they may read."""

    staff: str | None
    public_kinds: Sequence[str]

    def device_kinds(self, requested: str | None = None) -> list[str] | None:
        """Kinds whose devices (health, counters, no data) a query may list: None for all."""
        if self.staff is not None:
            return None if requested is None else [requested]
        if requested is None:
            return list(self.public_kinds)
        return [requested] if requested in self.public_kinds else []

    def kinds(self, requested: str | None = None) -> list[str]:
        """Kinds whose readings and events a query may touch."""
        if requested is not None:
            return [requested] if self.may_read(requested) else []
        readable = KINDS if self.staff is not None else self.public_kinds
        return [k for k in readable if k not in AUDITED_KINDS]

    def may_list(self, kind: str) -> bool:
        return self.staff is not None or kind in self.public_kinds

    def may_read(self, kind: str) -> bool:
        return kind not in AUDITED_KINDS and self.may_list(kind)


def context(request: Request) -> Context:
    return request.app.state.context


def viewer(request: Request) -> Viewer:
    ctx: Context = request.app.state.context
    return Viewer(ctx.auth.user(request.cookies.get(COOKIE)), ctx.config.http.public_kinds)


Ctx = Annotated[Context, Depends(context)]
Who = Annotated[Viewer, Depends(viewer)]
