"""Deviation alerts from the children's learned routines: the same code live and in replay.

``RoutineEngine.observe`` takes each child's positions in time order and ``tick`` is called as
time passes (a child who has gone silent somewhere is judged by the clock, not by a fix). Each
judgement asks, in this order:

* ``hour`` — out at an hour the child is at home on all but ``night_share`` of days (if out
  since before those hours began, only ``night_grace_min`` into them);
* ``place`` — staying at a place not usual at this time of this week-part (nor of this day of
  the week in some kept week: the weekly cram school) while the child is
  usually somewhere else (on free days, not within ``neighbourhood_m`` of home: a new friend's
  house on a Saturday is not news; nor within 2 × ``place_radius_m`` of the usual place or of
  one familiar now: its side gate);
* ``late`` — not at the place the child is usually at by now (e.g. not home by the usual time +
  ``late_margin_min``, + ``near_home_late_min`` when last seen near home), and not at home
  either (home is never a cause for alarm);
* ``route`` — walking well off every way the child usually takes from the place it left, for
  ``route_off_s``.

A child has at most one open alert (an *episode*): it is raised once, with a reason in Japanese
and English, and cleared once the child is back where the routine says (home, the usual place,
a familiar place, or the usual way) for ``clear_s``. Nothing is judged before ``min_days`` days
are learned (cold start), nor on a school's announced outing day, except ``hour``. A guardian's
"this is fine" (``feedback``) teaches the model that this place, way or time is fine.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from gateway.services.routine_config import RoutineConfig
from gateway.services.routine_model import DAY_MS, SLOT_MS, SLOTS, ChildModel, Fine

KINDS = ("hour", "place", "late", "route")
FREE_PARTS = ("saturday", "sunday", "break")
OUTING = "outing"  # a school day the school announced as a trip: not judged, but for ``hour``
PartOf = Callable[[str, date], str]  # (child, local day) -> week-part or OUTING
_TRAIL = 8  # fixes kept to tell where a walk heads (100 m back: 2-5 fixes at the agent's pace)
_HEADING_M = 100.0  # a walk's heading: from its fix at least this far back


@dataclass(frozen=True)
class RoutineEvent:
    """An alert raised or cleared. ``key`` is stable for the episode (``once`` in the store)."""

    child: str
    action: str  # "raise" | "clear"
    kind: str  # one of KINDS
    ts_ms: int
    since_ms: int
    key: str
    reason: dict[str, str]  # "ja", "en"


@dataclass
class Episode:
    kind: str
    key: str
    since_ms: int
    part: str
    slot: int
    x: float
    y: float
    place: int  # where the child was (-1: walking)
    expected: int  # where the child usually is (-1: none)
    origin: int
    cells: set[int] = field(default_factory=set)
    ok_since: int | None = None


@dataclass
class Finding:
    kind: str
    since_ms: int
    place: int
    expected: int


@dataclass
class Child:
    model: ChildModel
    day: date | None = None
    part: str = "school"
    day_start_ms: int = 0
    open: Episode | None = None
    raised: dict[str, Episode] = field(default_factory=dict)  # key -> episode (for feedback)
    counts: dict[str, int] = field(default_factory=dict)  # episodes per kind today
    off_since: int | None = None
    off_fixes: int = 0
    due_ms: int | None = None
    # the last fixes (x, y), to tell where a walk heads; immutable, so that a state saved
    # before it existed loads with this default
    trail: tuple[tuple[float, float], ...] = ()


class RoutineEngine:
    def __init__(
        self,
        config: RoutineConfig,
        zone: ZoneInfo,
        part_of: PartOf,
        labels: Callable[[str], dict[int, tuple[str, str]]] | None = None,
    ) -> None:
        self.c = config
        self.zone = zone
        self.part_of = part_of
        self.children: dict[str, Child] = {}
        self._heap: list[tuple[int, str]] = []
        self.counters: dict[str, int] = {}
        self._labels = labels
        self._hours = config.window()

    # -- in -------------------------------------------------------------------------------------
    def observe(
        self, child: str, ts_ms: int, lat: float, lon: float, acc: float | None
    ) -> list[RoutineEvent]:
        """One position of a child (time order per child); the events it causes."""
        if acc is not None and acc > self.c.max_accuracy_m:
            self._count("inaccurate")
            return []
        state = self.children.get(child)
        if state is None:
            state = self.children[child] = Child(ChildModel(self.c, lat, lon))
        model = state.model
        if model.last_ms is not None and ts_ms < model.last_ms:
            self._count("out_of_order")
            return []
        self._roll(child, state, ts_ms)
        x, y = model.xy(lat, lon)
        model.observe(ts_ms, x, y)
        state.trail = (*state.trail[-(_TRAIL - 1) :], (x, y))
        return self._judge(child, state, ts_ms, fix=(x, y))

    def tick(self, now_ms: int) -> list[RoutineEvent]:
        """Judge the children whose next look is due (away from home or from the usual place)."""
        events: list[RoutineEvent] = []
        while self._heap and self._heap[0][0] <= now_ms:
            due, child = heapq.heappop(self._heap)
            state = self.children.get(child)
            if state is None or state.due_ms != due:
                continue
            state.due_ms = None
            self._roll(child, state, now_ms)
            events += self._judge(child, state, now_ms, fix=None)
        return events

    def _roll(self, child: str, state: Child, ts_ms: int) -> None:
        if state.day is not None and state.day_start_ms <= ts_ms < state.day_start_ms + DAY_MS:
            return
        local = datetime.fromtimestamp(ts_ms / 1000, self.zone)
        day = local.date()
        start = datetime.combine(day, datetime.min.time(), self.zone)
        state.day, state.day_start_ms = day, int(start.timestamp() * 1000)
        state.part = self.part_of(child, day)
        learn_part = "school" if state.part == OUTING else state.part
        state.model.start_day(day, learn_part, state.day_start_ms)
        state.counts = {}
        state.raised = {k: e for k, e in state.raised.items() if ts_ms - e.since_ms < DAY_MS}

    # -- judging --------------------------------------------------------------------------------
    def _judge(
        self, child: str, state: Child, now: int, fix: tuple[float, float] | None
    ) -> list[RoutineEvent]:
        model = state.model
        if model.days_seen < self.c.min_days:
            return []
        findings = self._findings(state, now, fix)
        events: list[RoutineEvent] = []
        episode = state.open
        if episode is not None:
            if fix is not None and episode.kind == "route" and findings:
                episode.cells.add(model.cell(*fix))
            if self._back(state, episode, now, fix):
                episode.ok_since = episode.ok_since if episode.ok_since is not None else now
                if now - episode.ok_since >= self.c.clear_s * 1000:
                    state.open = None
                    events.append(self._event(child, state, episode, "clear", now))
            else:
                episode.ok_since = None
        elif findings:
            finding = findings[0]
            n = state.counts.get(finding.kind, 0) + 1
            state.counts[finding.kind] = n
            x, y = fix if fix is not None else model.last_xy
            slot = self._slot(state, now)
            key = f"{state.day}/{finding.kind}/{n}"
            episode = Episode(
                finding.kind,
                key,
                finding.since_ms,
                state.part,
                slot,
                x,
                y,
                finding.place,
                finding.expected,
                model.origin if model.origin is not None else -1,
            )
            if finding.kind == "route":
                episode.cells.add(model.cell(x, y))
            state.open = episode
            state.raised[key] = episode
            self._count(f"raised_{finding.kind}")
            events.append(self._event(child, state, episode, "raise", now))
        self._schedule(child, state, now)
        return events

    def _slot(self, state: Child, now: int) -> int:
        return min(SLOTS - 1, max(0, (now - state.day_start_ms) // SLOT_MS))

    def _where(self, state: Child, now: int) -> tuple[str, int]:
        """Where the child is believed to be: ("place", id) at a known place, ("new", -1) staying
        somewhere not yet a place, ("walk", -1) moving with a fresh fix, ("stale", -1)."""
        model = state.model
        stay = model.stay
        if stay is None or model.last_ms is None:
            return "stale", -1
        pid = stay.place
        if pid is None:
            near = model.place_at(stay.x, stay.y)
            # stopped there, not a walk past it; silent at home's door: home (a walking tracker
            # sends every 50 m, so silence there is the child gone in, or a harmless lost fix)
            silent = now - stay.last_ms > 150_000
            if near is not None and (stay.stopped or stay.quiet or (near == model.home and silent)):
                pid = near
        if pid is not None and now - stay.last_ms <= self.c.max_gap_s * 1000:
            return "place", pid
        if (
            (stay.stopped or (stay.n >= 3 and stay.last_ms - stay.start_ms >= 180_000))
            and now - stay.start_ms >= self.c.stay_min_s * 1000
            and now - stay.last_ms <= 4 * 3600_000
        ):
            return "new", -1
        if now - model.last_ms <= self.c.fresh_s * 1000:
            return "walk", -1
        return "stale", -1

    def _findings(self, state: Child, now: int, fix: tuple[float, float] | None) -> list[Finding]:
        c, model = self.c, state.model
        slot = self._slot(state, now)
        where, pid = self._where(state, now)
        home = model.home
        at_home = where == "place" and pid == home
        x, y = model.last_xy
        found: list[Finding] = []
        if where == "stale" or at_home:
            state.off_since, state.off_fixes = None, 0
            return found
        part = state.part
        # out at an unusual hour
        lo, hi = max(0, slot - 1), min(SLOTS, slot + 2)
        first, last = self._hours
        night = first <= slot < last if first <= last else slot >= first or slot < last
        if night and home is not None and float(model.out_share[lo:hi].max()) <= c.night_share:
            familiar = (
                where == "place"
                and max(model.share_of(p, slot, pid) for p in model.schedules) >= c.rare_share
            )
            left = model.left_ms
            away = now - left >= c.away_s * 1000 and now - (model.last_ms or 0) <= 2 * 3600_000
            opened = state.day_start_ms + first * SLOT_MS - (DAY_MS if slot < first else 0)
            if model.left_home_ms < opened:
                # out since before the hours began: on the way back from the evening's cram
                # school or the grandparents' is not "going out at night" until it lasts
                away = away and now >= opened + c.night_grace_min * 60_000
            if not familiar and away and not self._fine(state, "hour", now):
                found.append(Finding("hour", left, pid, home))
        if part == "outing":
            return found
        schedule = model.schedule_for(part)
        free = part in FREE_PARTS
        enough = schedule.days >= c.min_part_days
        usual = int(schedule.usual[slot])
        share = float(schedule.usual_share[slot])
        expect = (c.free_expect_share if free else c.expect_share) if enough else 2.0
        # staying somewhere not usual now, while usually elsewhere
        stay = model.stay
        recent = stay is not None and now - stay.last_ms <= 4 * 3600_000
        if where in ("place", "new") and share >= expect and usual != pid and recent:
            # unfamiliar: not a place, or one seen around this time of day on none of the
            # week-parts (the park of Saturday afternoons is no news on a Tuesday afternoon)
            rare = where == "new" or not self._familiar(model, slot, pid)
            if rare and stay is not None:
                # a stay beside the place usual now or one familiar now (the school gate, the
                # cram school's other door) is that place, its fixes off the learned centre
                rare = not self._beside_familiar(model, slot, stay.x, stay.y, usual)
            from_home = self._distance_home(model, x, y)
            far = from_home > c.neighbourhood_m
            # when she is usually home, somewhere new round the corner is not news either
            near = usual == home and from_home <= c.near_home_m
            driven = free and model.driven
            if rare and (far or not free) and not near and not driven and stay is not None:
                since = stay.start_ms
                if now - since >= c.stay_min_s * 1000 and not self._fine(state, "place", now):
                    found.append(Finding("place", since, pid, usual))
        # not where the child usually is by now: it did not arrive by its usual time + margin
        if part in c.late_parts and enough and usual >= 0 and pid != usual and share >= expect:
            minute = int((now - state.day_start_ms) // 60_000)
            by = model.usual_arrival(part, usual, minute, c.late_quantile)
            # there today since an hour before the usual time: it arrived (and may have gone out
            # again, as on cram-school evenings: that is for ``place`` to judge, not lateness)
            arrived = (
                by is not None
                and model.last_at.get(usual, 0) >= state.day_start_ms + (by - 60) * 60_000
            )
            # at a place the routine knows at this time (the park some days), or just left it
            # a stop on the way at a place usual around now (the park, some days) is no news for
            # an hour; staying on where the child usually leaves (the club) is
            familiar = (
                where == "place"
                and stay is not None
                and now - stay.start_ms <= 3600_000
                and self._familiar(model, slot, pid)
            )
            origin = model.origin
            if where == "walk" and origin is not None and now - model.left_ms <= 1_200_000:
                familiar = self._familiar(model, slot, origin)
            near = model.place_at(stay.x, stay.y) if stay is not None else None
            if where in ("walk", "new") and near is not None and now - stay.start_ms <= 3600_000:
                # the walk ended at a place familiar now, the fix that would say "stopped"
                # thrown off by a reflection: the park on the way home, not lateness
                familiar = familiar or self._familiar(model, slot, near)
            if self._beside(model, x, y, usual):
                familiar = True  # all but there: the last fix was at its door
            if by is not None and not arrived and not familiar:
                margin = c.late_margin_min
                if self._distance_home(model, x, y) <= c.near_home_m:
                    # last seen in the neighbourhood (the park, a friend's on the way): as for
                    # ``place``, round the corner from home is no news until it lasts
                    margin += c.near_home_late_min
                expected = state.day_start_ms + by * 60_000
                if now >= expected + margin * 60_000 and not self._fine(
                    state, "late", now, place=usual
                ):
                    found.append(Finding("late", expected, pid, usual))
        # off the usual ways
        if where == "walk" and fix is not None and part in c.route_parts and not night:
            origin = model.origin
            off = (
                origin is not None
                and model.trip_counts.get(origin, 0) >= c.min_trips
                and not model.in_corridor(origin, x, y)
                and not model.in_corridor(None, x, y)  # nor on a street walked on such days
                and model.place_at(x, y) is None
            )
            if not off:
                state.off_since, state.off_fixes = None, 0
            elif not self._homeward(state, slot, x, y):
                state.off_since = state.off_since or now
                state.off_fixes += 1
                if (
                    state.off_fixes >= 2
                    and now - state.off_since >= c.route_off_s * 1000
                    and not self._fine(state, "route", now)
                ):
                    found.append(Finding("route", state.off_since, -1, origin or -1))
            # else straight for home or a familiar place near it (the park after school, for
            # once down its own street): not counted, but a clock already running goes on (a
            # detour that turns for home is still told)
        return found

    def _homeward(self, state: Child, slot: int, x: float, y: float) -> bool:
        """Is the walk heading straight for home, or for a place familiar at this time within
        ``near_home_m`` of home — each of the last ``_HEADING_M`` walked bringing it at least
        ``homeward_share`` as much nearer? On a street grid that is a walk along the street that
        leads there: the first walk to the park after school, down the park's street rather than
        the usual one. A detour off at a right angle to the usual way is not."""
        model = state.model
        back = next(
            (p for p in reversed(state.trail[:-1]) if math.dist(p, (x, y)) >= _HEADING_M), None
        )
        if back is None:
            return False
        need = self.c.homeward_share * math.dist(back, (x, y))
        for pid, (px, py, _) in model.places.items():
            if pid == model.origin or self._distance_home(model, px, py) > self.c.near_home_m:
                continue
            if pid != model.home and not self._familiar(model, slot, pid):
                continue
            if math.dist(back, (px, py)) - math.dist((x, y), (px, py)) >= need:
                return True
        return False

    def _familiar(self, model: ChildModel, slot: int, place: int) -> bool:
        """Seen at ``place`` around this time of day (± 1 h) on some share of the days of any
        week-part (the park of Saturday afternoons is no news on a Tuesday afternoon), or on
        this day of the week (the Tuesday cram school)."""
        return any(
            model.share_of(p, slot, place) >= self.c.rare_share for p in model.schedules
        ) or model.weekly(slot, place)

    def _beside_familiar(
        self, model: ChildModel, slot: int, x: float, y: float, usual: int
    ) -> bool:
        """Within 2 × ``place_radius_m`` of the place ``usual`` now or of a place familiar at
        this time: a stay's centre is a mean of fixes that began at the door, a place's a mean of
        many such stays, so the same building can lie just over one radius from its place."""
        if self._beside(model, x, y, usual):
            return True
        return any(  # not only the nearest: that may be this very stay, made a place
            self._beside(model, x, y, pid) and self._familiar(model, slot, pid)
            for pid in model.places
        )

    def _beside(self, model: ChildModel, x: float, y: float, place: int) -> bool:
        """Within 2 × ``place_radius_m`` of ``place`` (at its door, if not inside the radius)."""
        centre = model.places.get(place)
        return centre is not None and math.hypot(x - centre[0], y - centre[1]) <= (
            2 * self.c.place_radius_m
        )

    def _back(
        self, state: Child, episode: Episode, now: int, fix: tuple[float, float] | None
    ) -> bool:
        """Is the child back in the routine (for clearing ``episode``)? At home or where it
        usually is now, for every kind; at a place familiar at this time, after ``place`` or
        ``route``; on the usual way again, after ``route``."""
        model = state.model
        where, pid = self._where(state, now)
        if where == "place":
            if pid == model.home or pid == episode.expected:
                return True
            if episode.kind in ("place", "route"):
                slot = self._slot(state, now)
                part = "school" if state.part == OUTING else state.part
                return model.share_of(part, slot, pid) >= self.c.rare_share
            return False
        if episode.kind == "route" and where == "walk" and fix is not None:
            origin = model.origin
            return origin is not None and model.in_corridor(origin, *fix)
        return False

    def _schedule(self, child: str, state: Child, now: int) -> None:
        """When to look at this child again without a fix: soon while away or while an alert is
        open; when the usual place changes while at it; never while at home."""
        model = state.model
        where, pid = self._where(state, now)
        if model.days_seen < self.c.min_days:
            return
        due: int | None
        if state.open is not None or where in ("walk", "new"):
            due = now + 60_000
        elif where == "place" and pid == model.home:
            due = None
        else:
            slot = self._slot(state, now)
            part = "school" if state.part == OUTING else state.part
            usual = model.schedule_for(part).usual
            later = [s for s in range(slot + 1, SLOTS) if usual[s] != pid]
            due = state.day_start_ms + (later[0] if later else SLOTS) * SLOT_MS + 60_000
            due = min(due, now + 1800_000)
        if due is not None and (state.due_ms is None or due < state.due_ms or state.due_ms <= now):
            state.due_ms = due
            heapq.heappush(self._heap, (due, child))

    # -- feedback -------------------------------------------------------------------------------
    def feedback(self, child: str, key: str, now_ms: int) -> bool:
        """A guardian said "this is fine" about the alert ``key``: this place (on this week-part),
        this way, or this time stops alerting. False if the episode is not known (any more)."""
        state = self.children.get(child)
        episode = state.raised.get(key) if state is not None else None
        if state is None or episode is None:
            return False
        model = state.model
        lo, hi = max(0, episode.slot - 4), min(SLOTS, episode.slot + 5)
        fine = Fine(episode.kind, episode.part, now_ms, episode.x, episode.y, episode.expected)
        if episode.kind in ("hour", "late"):
            fine.slots = (lo, hi)
        if episode.kind == "route":
            fine.origin, fine.cells = episode.origin, frozenset(episode.cells)
            model.corridors.setdefault(episode.origin, set()).update(episode.cells)
        model.fines.append(fine)
        # the episode stays open, so that what goes on (later, or as another kind) is not told
        # again; it clears as usual once the child is back in the routine
        self._count(f"fine_{episode.kind}")
        return True

    def _fine(self, state: Child, kind: str, now: int, place: int = -1) -> bool:
        model = state.model
        slot = self._slot(state, now)
        x, y = model.last_xy
        for fine in model.fines:
            if fine.kind != kind or fine.part != state.part:
                continue
            if kind == "place" and math.hypot(x - fine.x, y - fine.y) > self.c.place_radius_m:
                continue
            if kind in ("hour", "late") and not fine.slots[0] <= slot < fine.slots[1]:
                continue
            if kind == "late" and fine.place != place:
                continue
            fine.last_ms = now  # still in use: kept as long as the positions that use it
            return True
        return False

    # -- words ----------------------------------------------------------------------------------
    def _event(
        self, child: str, state: Child, episode: Episode, action: str, now: int
    ) -> RoutineEvent:
        return RoutineEvent(
            child,
            action,
            episode.kind,
            now,
            episode.since_ms,
            episode.key,
            self._reason(child, state, episode, action, now),
        )

    def _name(self, child: str, model: ChildModel, place: int) -> tuple[str, str]:
        if place >= 0 and place == model.home:
            return "自宅", "home"
        labels = self._labels(child) if self._labels is not None else {}
        if place in labels:
            return labels[place]
        if place >= 0 and place in model.places:
            px, py, _ = model.places[place]
            ja, en = self._direction(model, px, py)
            return f"いつもの場所（{ja}）", f"a usual place ({en})"
        return "いつもの場所", "a usual place"

    def _direction(self, model: ChildModel, x: float, y: float) -> tuple[str, str]:
        if model.home is None or model.home not in model.places:
            return "場所不明", "place unknown"
        hx, hy, _ = model.places[model.home]
        dist = math.hypot(x - hx, y - hy)
        if dist < 200:
            return "自宅の近く", "near home"
        angle = math.degrees(math.atan2(x - hx, y - hy)) % 360
        i = int((angle + 22.5) // 45) % 8
        ja = ("北", "北東", "東", "南東", "南", "南西", "西", "北西")[i]
        en = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")[i]
        return f"自宅から{ja}へ約{dist / 1000:.1f} km", f"about {dist / 1000:.1f} km {en} of home"

    def _distance_home(self, model: ChildModel, x: float, y: float) -> float:
        if model.home is None or model.home not in model.places:
            return math.inf
        hx, hy, _ = model.places[model.home]
        return math.hypot(x - hx, y - hy)

    def _reason(
        self, child: str, state: Child, episode: Episode, action: str, now: int
    ) -> dict[str, str]:
        model = state.model
        clock = datetime.fromtimestamp(now / 1000, self.zone)
        since = datetime.fromtimestamp(episode.since_ms / 1000, self.zone)
        t, s = f"{clock:%H:%M}", f"{since:%H:%M}"
        where_ja, where_en = self._direction(model, episode.x, episode.y)
        usual_ja, usual_en = self._name(child, model, episode.expected)
        if action == "clear":
            where, pid = self._where(state, now)
            back_ja, back_en = self._name(child, model, pid if where == "place" else -1)
            if where != "place":
                back_ja, back_en = "いつもの道", "the usual way"
            return {
                "ja": f"{t} {back_ja}に戻りました（{s} からの通知は解除）。",
                "en": f"{t} back at {back_en} (the notice from {s} is cleared).",
            }
        minutes = max(1, round((now - episode.since_ms) / 60_000))
        if episode.kind == "hour":
            return {
                "ja": f"ふだん外出しない時間（{t}）に外にいます（{where_ja}、{s} から）。",
                "en": f"Out at an hour usually spent at home ({t}; {where_en}, since {s}).",
            }
        if episode.kind == "place":
            return {
                "ja": f"ふだんこの時間は{usual_ja}にいますが、{s} から、ふだん行かない場所"
                f"（{where_ja}）に {minutes} 分以上います。",
                "en": f"Usually at {usual_en} at this time, but since {s} at a place not usual "
                f"now ({where_en}) for over {minutes} min.",
            }
        if episode.kind == "late":
            seen = datetime.fromtimestamp((model.last_ms or now) / 1000, self.zone)
            return {
                "ja": f"ふだんは {s} ごろまでに{usual_ja}にいますが、{t} 現在いません"
                f"（最後の位置 {seen:%H:%M}、{where_ja}）。",
                "en": f"Usually at {usual_en} by about {s}, not there at {t} "
                f"(last seen {seen:%H:%M}, {where_en}).",
            }
        origin_ja, origin_en = self._name(child, model, episode.origin)
        return {
            "ja": f"{origin_ja}からのいつもの道を {s} から外れています（{where_ja}）。",
            "en": f"Off the usual way from {origin_en} since {s} ({where_en}).",
        }

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1


def week_part(day: date, is_school_day: bool, is_holiday: bool) -> str:
    """The week-part of a local day, given the school calendar's answers for it."""
    if is_school_day:
        return "school"
    if day.weekday() == 6 or is_holiday:
        return "sunday"
    if day.weekday() == 5:
        return "saturday"
    return "break"
