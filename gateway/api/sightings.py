"""Harmful-animal sightings as cities publish them (クマ出没情報): species, area, date and time, on
a map and a list; for the public page, ``/api/v1/sightings`` and NGSI ``Alert`` entities.

A camera's exact position would tell anyone where to find (or take) the camera, and its images
may show people, so the public sees neither: each sighting is placed at the centre of the
``http.sightings_grid_m`` square its camera stands in, named by the camera site's ``place``, and
carries no image or camera id. Only detections the camera judged harmful, of the last
``http.sightings_days``, from cameras listed in the sites file are shown. Staff see the full
event on the staff page.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.api.context import Context, Ctx
from gateway.api.models import Time
from gateway.api.params import DAY_MS
from gateway.api.sites import CameraSite
from gateway.store.db import Filter
from gateway.store.intake import iso_ms

METRES_PER_DEGREE = 111_320.0  # of latitude, and of longitude at the equator
MAX_SHOWN = 500
SPECIES = {
    "bear": ("クマ", "bear"),
    "boar": ("イノシシ", "wild boar"),
    "macaque": ("サル", "macaque"),
    "deer": ("シカ", "deer"),
    "serow": ("カモシカ", "serow"),
}
SEVERITY = {"bear": "high", "boar": "medium"}  # SDM Alert severity; the rest "low"

router = APIRouter(prefix="/api/v1", tags=["data"])


@dataclass(frozen=True)
class Sighting:
    key: str  # opaque: names neither the camera nor the event
    species: str  # the model's label, e.g. bear
    ts_ms: int
    place: str
    place_en: str
    lat: float  # the centre of the grid square, not the camera
    lon: float

    def words(self, lang: str) -> str:
        ja, en = SPECIES.get(self.species, (self.species, self.species))
        return ja if lang == "ja" else en


def coarse(lat: float, lon: float, grid_m: float) -> tuple[float, float]:
    """The centre of the grid square a point lies in: squares ``grid_m`` on a side, rows of
    latitude and, within a row, columns of longitude scaled to that row's latitude."""
    dlat = grid_m / METRES_PER_DEGREE
    row = math.floor(lat / dlat)
    centre_lat = (row + 0.5) * dlat
    dlon = grid_m / (METRES_PER_DEGREE * math.cos(math.radians(centre_lat)))
    centre_lon = (math.floor(lon / dlon) + 0.5) * dlon
    return round(centre_lat, 5), round(centre_lon, 5)


def sightings(ctx: Context) -> list[Sighting]:
    """Public sightings, newest first."""
    http = ctx.config.http
    cameras: dict[str, CameraSite] = {c.device: c for c in ctx.cameras}
    if not cameras:
        return []
    now_ms = ctx.now_ms()
    where = Filter(
        kinds=["camera"],
        type="detection",
        channel="event",
        start_ms=now_ms - int(http.sightings_days * DAY_MS),
        end_ms=now_ms + 1,
    )
    out = []
    for row in ctx.store.messages(where, MAX_SHOWN, newest_first=True):
        camera = cameras.get(row.device)
        label = row.data.get("label")
        if camera is None or row.data.get("harmful") is not True or not isinstance(label, str):
            continue
        lat, lon = coarse(camera.lat, camera.lon, http.sightings_grid_m)
        key = hashlib.sha256(f"{row.device}|{row.seq}".encode()).hexdigest()[:16]
        out.append(Sighting(key, label, row.ts_ms, camera.place, camera.place_en, lat, lon))
    return out


class SightingModel(BaseModel):
    species: str = Field(description="what the camera's model saw, e.g. bear")
    species_ja: str
    time: Time
    place: str = Field(description="the area, as residents name it")
    place_en: str
    lat: float = Field(description="centre of the grid square, not the camera's position")
    lon: float
    grid_m: float = Field(description="side of the grid square, metres")


@router.get("/sightings", response_model=list[SightingModel])
def sightings_api(ctx: Ctx) -> list[SightingModel]:
    """Harmful animals the city's cameras saw recently (newest first), placed only to a grid
    square and without images. Open to everyone."""
    grid = ctx.config.http.sightings_grid_m
    return [
        SightingModel(
            species=s.species,
            species_ja=s.words("ja"),
            time=iso_ms(s.ts_ms),
            place=s.place,
            place_en=s.place_en or s.place,
            lat=s.lat,
            lon=s.lon,
            grid_m=grid,
        )
        for s in sightings(ctx)
    ]
