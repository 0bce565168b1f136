"""Who may see where a bike has been, and the record of every look.

Trajectories (行踪轨迹) are sensitive personal information (PIPL art. 28): shown only to those with a
duty, with the legal basis of every look recorded. The decisions are the policy's (cases.rules,
asked with user.has_perm); this module names each look's basis: "owner" (from the day they became
the owner), "open_report:<number>" or "case:<number>" (a duty, cases.tracing.duties), or
"stated_reason" (an officer or leader without one, listed for review). Every look, allowed or
refused, writes an AuditEntry; a look opened from a search reads on that search's reason and window
(cases.tracing.origins). The rules in full: docs/architecture.md#tracing.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import REASON_LENGTH, STATED_REASON, audit_record
from accounts.models import AuditEntry, User
from cases.tracing import duties
from cases.tracing import origins as trace_origins
from cases.tracing import selectors as tracing
from vehicles.models import RegistrationEvent, Vehicle

MIN_REASON_LENGTH = 6  # "协查盗窃案件" is six characters
MAX_REASON_LENGTH = REASON_LENGTH  # the audit row's reason column: a longer one would be cut there
# Stops for which other stolen bikes are looked up, longest first (each lookup searches the GiST
# index of every daily partition of the period around the stop: ~0.1-0.4 s where the bike itself
# stayed for days).
NEARBY_STOPS_MAX = 5

OWNER = "owner"


@dataclass(frozen=True)
class Access:
    basis: str  # "owner", "open_report:<number>", "case:<number>", "open_reports" or "stated_reason"
    reason: str = ""


def reason_check(reason: str) -> str:
    reason = reason.strip()
    if reason and len(reason) < MIN_REASON_LENGTH:
        raise ValidationError(
            {
                "reason": _("State the reason in at least %(n)d characters; it is recorded as the legal basis.")
                % {"n": MIN_REASON_LENGTH}
            }
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationError(
            {
                "reason": _("State the reason in at most %(n)d characters; it is recorded as the legal basis.")
                % {"n": MAX_REASON_LENGTH}
            }
        )
    return reason


def ownership_start(vehicle: Vehicle) -> datetime.datetime | None:
    """When the current owner got the bike: their registration or transfer event."""
    return (
        RegistrationEvent.objects.filter(
            vehicle=vehicle,
            owner_id=vehicle.owner_id,
            kind__in=[RegistrationEvent.Kind.REGISTER, RegistrationEvent.Kind.TRANSFER],
        )
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )


def _owner(user: User, vehicle: Vehicle) -> bool:
    return user.is_authenticated and vehicle.owner.user_id == user.pk


def _duty(user: User, vehicle: Vehicle, since: datetime.datetime | None) -> duties.Duty | None:
    """The officer's duty on the bike covering `since` (the owner's case is handled before): the
    same answer as the cases.trace_vehicle rule, read once so that it also names the basis."""
    return duties.vehicle_duty(user, vehicle.pk, since=since) if user.has_perm("cases.hold_duty") else None


def trajectory_access(
    *, user: User, vehicle: Vehicle, since: datetime.datetime | None = None, reason: str = ""
) -> Access:
    """The basis on which `user` may see the vehicle's positions (from `since`), or PermissionDenied."""
    reason = reason_check(reason)
    if _owner(user, vehicle):
        start = ownership_start(vehicle)
        if since is not None and start is not None and since < start:
            raise PermissionDenied(
                _("You can see this bike's positions from %(start)s, when it became yours.")
                % {"start": timezone.localtime(start).strftime("%Y-%m-%d %H:%M")}
            )
        return Access(OWNER, reason)
    duty = _duty(user, vehicle, since)
    if duty is not None:
        return Access(duty.basis, reason)
    if user.has_perm("cases.trace_with_reason"):
        if not reason:
            raise PermissionDenied(
                _(
                    "You have no duty on this bike for this period (its theft report or case is not yours): "
                    "state the reason for looking at its positions (the reason parameter); it is recorded as "
                    "the legal basis and reviewed by your station's leader."
                )
            )
        return Access(STATED_REASON, reason)
    raise PermissionDenied(_("Only the owner and the officers handling a theft report or case see a bike's positions."))


def evidence_access(*, user: User, vehicle: Vehicle, since: datetime.datetime | None = None) -> Access:
    """Exporting evidence needs the duty itself: a stated reason is not enough."""
    duty = _duty(user, vehicle, since)
    if duty is None:
        raise PermissionDenied(
            _("Evidence is exported only by the officers of the bike's theft report or case, for its period.")
        )
    return Access(duty.basis)


def near_access(*, user: User, reason: str) -> Access:
    """伴随分析 reveals any bike near a place, stolen or not: always a stated reason."""
    reason = reason_check(reason)
    if not user.has_perm("cases.search_near_place"):
        raise PermissionDenied(_("Only officers search which bikes were near a place."))
    if not reason:
        raise PermissionDenied(
            _("State the reason for this search (the reason parameter, e.g. the report or case number).")
        )
    return Access(STATED_REASON, reason)


def stolen_near_access(*, user: User, reason: str = "") -> Access:
    reason = reason_check(reason)
    if user.has_perm("cases.view_stolen_positions"):
        return Access("open_reports", reason)
    if user.has_perm("cases.trace_with_reason"):
        if not reason:
            raise PermissionDenied(_("Without a case duty, state the reason for this search (the reason parameter)."))
        return Access(STATED_REASON, reason)
    raise PermissionDenied(_("Only officers see where stolen bikes are."))


# --- audited views: the API and the pages call these ------------------------------------------------


def _iso(value: datetime.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def _audit(
    *,
    user: User,
    action: str,
    vehicle_id: int | None,
    query: dict[str, Any],
    access: Access | None = None,
    refused: str = "",
    count: int | None = None,
    reason: str = "",
    ip: str | None = None,
) -> AuditEntry:
    query = {k: v for k, v in query.items() if v is not None}
    if access is not None:
        query["basis"] = access.basis
    if refused:
        query["refused"] = refused
    return audit_record(
        user=user,
        action=action,
        object_type="vehicle" if vehicle_id is not None else "",
        object_id=vehicle_id if vehicle_id is not None else "",
        query=query,
        result_count=count,
        reason=access.reason if access is not None else reason.strip(),
        ip=ip,
    )


def _checked_access(
    *,
    user: User,
    action: str,
    vehicle: Vehicle | None,
    query: dict[str, Any],
    reason: str,
    ip: str | None,
    check: Callable[[], Access],
) -> Access:
    """Run an access check; a refusal is audited before it is raised."""
    try:
        return check()
    except PermissionDenied as exc:
        _audit(
            user=user,
            action=action,
            vehicle_id=vehicle.pk if vehicle else None,
            query=query,
            refused=str(exc),
            reason=reason,
            ip=ip,
        )
        raise


def _vehicle(vehicle_id: int) -> Vehicle:
    return Vehicle.objects.select_related("owner").get(pk=vehicle_id)


def _search_footing(
    *,
    user: User,
    action: str,
    vehicle: Vehicle,
    search: int,
    since: datetime.datetime | None,
    until: datetime.datetime | None,
    ip: str | None,
) -> tuple[datetime.datetime, datetime.datetime, str]:
    """A look opened from a search (cases.tracing.origins): the period within the search's window and
    the search's reason; a search that gives no footing is refused and audited."""
    try:
        origin = trace_origins.search_origin(user=user, entry_id=search, vehicle_id=vehicle.pk)
    except PermissionDenied as exc:
        _audit(user=user, action=action, vehicle_id=vehicle.pk, query={"search": search}, refused=str(exc), ip=ip)
        raise
    since, until = trace_origins.search_period(origin, since, until)
    return since, until, origin.reason


@dataclass(frozen=True)
class PositionView:
    position: tracing.Position | None
    access: Access


def vehicle_position_view(*, user: User, vehicle_id: int, reason: str = "", ip: str | None = None) -> PositionView:
    vehicle = _vehicle(vehicle_id)
    query: dict[str, Any] = {}
    access = _checked_access(
        user=user,
        action="trajectory.position",
        vehicle=vehicle,
        query=query,
        reason=reason,
        ip=ip,
        check=lambda: trajectory_access(user=user, vehicle=vehicle, reason=reason),
    )
    position = tracing.vehicle_position(vehicle_id=vehicle.pk)
    _audit(
        user=user,
        action="trajectory.position",
        vehicle_id=vehicle.pk,
        query=query,
        access=access,
        count=int(position is not None),
        ip=ip,
    )
    return PositionView(position, access)


def _period(
    user: User, vehicle: Vehicle, since: datetime.datetime | None, until: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    """The period asked for, or the default one; an owner's default starts no earlier than their
    ownership (an explicit earlier start is refused by trajectory_access)."""
    until = until or timezone.now()
    if since is not None:
        return since, until
    since = tracing.default_since(vehicle_id=vehicle.pk, until=until)
    if user.is_authenticated and vehicle.owner.user_id == user.pk:
        start = ownership_start(vehicle)
        if start is not None and since < start < until:
            since = start
    return since, until


@dataclass(frozen=True)
class TrajectoryView:
    trajectory: tracing.Trajectory
    access: Access

    def geojson(self) -> dict[str, Any]:
        return tracing.trajectory_geojson(self.trajectory, basis=self.access.basis)


def vehicle_trajectory_view(
    *,
    user: User,
    vehicle_id: int,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    after: datetime.datetime | None = None,
    point_cap: int = tracing.DEFAULT_POINT_CAP,
    tolerance_m: float = tracing.DEFAULT_TOLERANCE_M,
    with_line: bool = True,
    reason: str = "",
    search: int | None = None,
    ip: str | None = None,
) -> TrajectoryView:
    """With `search` (an audit entry of the user's 伴随 search or rings that found the bike), the
    look is on that search's reason and within its window (cases.tracing.origins)."""
    vehicle = _vehicle(vehicle_id)
    if search is not None:
        since, until, reason = _search_footing(
            user=user, action="trajectory.view", vehicle=vehicle, search=search, since=since, until=until, ip=ip
        )
    since, until = _period(user, vehicle, since, until)
    tracing.trajectory_check(since=since, until=until, point_cap=point_cap, tolerance_m=tolerance_m, after=after)
    query = {
        "since": _iso(since),
        "until": _iso(until),
        "after": _iso(after),
        "limit": point_cap,
        "tolerance": tolerance_m,
        "line": with_line,
        "search": search,
    }
    access = _checked_access(
        user=user,
        action="trajectory.view",
        vehicle=vehicle,
        query=query,
        reason=reason,
        ip=ip,
        check=lambda: trajectory_access(user=user, vehicle=vehicle, since=since, reason=reason),
    )
    trajectory = tracing.vehicle_trajectory(
        vehicle_id=vehicle.pk,
        since=since,
        until=until,
        point_cap=point_cap,
        tolerance_m=tolerance_m,
        after=after,
        with_line=with_line,
    )
    query["returned_points"] = len(trajectory.points)
    _audit(
        user=user,
        action="trajectory.view",
        vehicle_id=vehicle.pk,
        query=query,
        access=access,
        count=trajectory.count,
        ip=ip,
    )
    return TrajectoryView(trajectory, access)


@dataclass(frozen=True)
class StopsView:
    stops: tracing.Stops
    access: Access
    nearby: dict[int, list[tracing.StolenVisit]] = field(default_factory=dict)  # by stop rank
    nearby_radius_m: float | None = None
    nearby_days: int | None = None
    audit_id: int | None = None  # the look's audit row: traces of the bikes it revealed refer to it


def vehicle_stops_view(
    *,
    user: User,
    vehicle_id: int,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    min_minutes: int = tracing.DEFAULT_STOP_MINUTES,
    radius_m: float = tracing.DEFAULT_STOP_RADIUS_M,
    limit: int = tracing.DEFAULT_STOPS_LIMIT,
    nearby_stolen: bool = False,
    nearby_radius_m: float | None = None,
    nearby_days: int = tracing.DEFAULT_NEARBY_DAYS,
    reason: str = "",
    search: int | None = None,
    ip: str | None = None,
) -> StopsView:
    """The bike's stops; with `nearby_stolen`, for each of the first NEARBY_STOPS_MAX stops the
    other missing bikes seen there (officers only: it shows other owners' stolen bikes). `search`:
    as for vehicle_trajectory_view."""
    vehicle = _vehicle(vehicle_id)
    if search is not None:
        since, until, reason = _search_footing(
            user=user, action="trajectory.stops", vehicle=vehicle, search=search, since=since, until=until, ip=ip
        )
    since, until = _period(user, vehicle, since, until)
    tracing.stops_check(since=since, until=until, min_minutes=min_minutes, radius_m=radius_m, limit=limit)
    nearby_radius = nearby_radius_m if nearby_radius_m is not None else radius_m
    if nearby_stolen:
        tracing.nearby_check(radius_m=nearby_radius, days=nearby_days)
    query: dict[str, Any] = {
        "since": _iso(since),
        "until": _iso(until),
        "min_minutes": min_minutes,
        "radius": radius_m,
        "limit": limit,
        "search": search,
    }
    if nearby_stolen:
        query |= {"nearby_stolen": True, "nearby_radius": nearby_radius, "nearby_days": nearby_days}

    def check() -> Access:
        access = trajectory_access(user=user, vehicle=vehicle, since=since, reason=reason)
        if nearby_stolen and not user.has_perm("cases.search_near_place"):
            raise PermissionDenied(_("Only officers see other stolen bikes seen at these stops."))
        return access

    access = _checked_access(
        user=user, action="trajectory.stops", vehicle=vehicle, query=query, reason=reason, ip=ip, check=check
    )
    stops = tracing.vehicle_stops(
        vehicle_id=vehicle.pk, since=since, until=until, min_minutes=min_minutes, radius_m=radius_m, limit=limit
    )
    nearby: dict[int, list[tracing.StolenVisit]] = {}
    if nearby_stolen:
        missing = tracing.missing_reports(exclude_vehicle_id=vehicle.pk)  # once for all the stops
        for stop in stops.stops[:NEARBY_STOPS_MAX]:
            nearby[stop.rank] = tracing.stolen_at_place(
                latitude=stop.latitude,
                longitude=stop.longitude,
                radius_m=nearby_radius,
                days=nearby_days,
                missing=missing,
            )
        # Other owners' bikes whose positions this look revealed.
        query["nearby_vehicles"] = sorted({v.vehicle_id for visits in nearby.values() for v in visits})
        # When each was there: the window a trace opened from these rings shows (cases.tracing.origins).
        seen: dict[int, tuple[datetime.datetime, datetime.datetime]] = {}
        for visit in (v for visits in nearby.values() for v in visits):
            first, last = seen.get(visit.vehicle_id, (visit.first_seen, visit.last_seen))
            seen[visit.vehicle_id] = (min(first, visit.first_seen), max(last, visit.last_seen))
        query["nearby_seen"] = {str(k): [_iso(first), _iso(last)] for k, (first, last) in seen.items()}
    entry = _audit(
        user=user,
        action="trajectory.stops",
        vehicle_id=vehicle.pk,
        query=query,
        access=access,
        count=len(stops.stops),
        ip=ip,
    )
    return StopsView(
        stops,
        access,
        nearby,
        nearby_radius_m=nearby_radius if nearby_stolen else None,
        nearby_days=nearby_days if nearby_stolen else None,
        audit_id=entry.pk,
    )


@dataclass(frozen=True)
class NearView:
    result: tracing.NearResult
    access: Access
    audit_id: int | None = None  # the search's audit row: traces opened from it refer to it


def vehicles_near_view(
    *,
    user: User,
    latitude: float,
    longitude: float,
    radius_m: float,
    since: datetime.datetime,
    until: datetime.datetime,
    reason: str = "",
    ip: str | None = None,
) -> NearView:
    """伴随分析, audited with the vehicles found (each one's positions were revealed)."""
    tracing.near_check(latitude=latitude, longitude=longitude, radius_m=radius_m, since=since, until=until)
    query: dict[str, Any] = {
        "lat": latitude,
        "lon": longitude,
        "radius": radius_m,
        "since": _iso(since),
        "until": _iso(until),
    }
    access = _checked_access(
        user=user,
        action="trajectory.near",
        vehicle=None,
        query=query,
        reason=reason,
        ip=ip,
        check=lambda: near_access(user=user, reason=reason),
    )
    result = tracing.vehicles_near(latitude=latitude, longitude=longitude, radius_m=radius_m, since=since, until=until)
    query["vehicles"] = [v.vehicle_id for v in result.vehicles]
    entry = _audit(
        user=user,
        action="trajectory.near",
        vehicle_id=None,
        query=query,
        access=access,
        count=len(result.vehicles),
        ip=ip,
    )
    return NearView(result, access, audit_id=entry.pk)


@dataclass(frozen=True)
class StolenNearView:
    positions: list[tracing.StolenPosition]
    truncated: bool
    access: Access


def stolen_near_view(
    *,
    user: User,
    latitude: float,
    longitude: float,
    radius_km: float,
    limit: int = tracing.DEFAULT_STOLEN_NEAR_LIMIT,
    reason: str = "",
    ip: str | None = None,
) -> StolenNearView:
    tracing.stolen_near_check(latitude=latitude, longitude=longitude, radius_km=radius_km, limit=limit)
    query: dict[str, Any] = {"lat": latitude, "lon": longitude, "radius_km": radius_km, "limit": limit}
    access = _checked_access(
        user=user,
        action="stolen.near",
        vehicle=None,
        query=query,
        reason=reason,
        ip=ip,
        check=lambda: stolen_near_access(user=user, reason=reason),
    )
    positions, truncated = tracing.stolen_near(latitude=latitude, longitude=longitude, radius_km=radius_km, limit=limit)
    query["vehicles"] = [p.vehicle_id for p in positions]
    _audit(user=user, action="stolen.near", vehicle_id=None, query=query, access=access, count=len(positions), ip=ip)
    return StolenNearView(positions, truncated, access)
