"""Reading filing records: search (车辆备案信息查询), full record, history replay.

Searches by staff are audited here, in the same call the API and the pages use, so no caller can
forget it: who searched, when, what they asked, how many records came back, and why.
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.audit import audit_record
from accounts.models import User
from vehicles.identifiers import normalize_code, normalize_id_number, normalize_phone
from vehicles.models import InsurancePolicy, Plate, RegistrationEvent, Vehicle
from vehicles.services import registration as reg

SEARCH_KEYS = (
    "plate",
    "plate_contains",
    "frame_number",
    "motor_number",
    "id_number",
    "phone",
    "owner_name",
    "imei",
)
MIN_PARTIAL_LENGTH = 3  # trigram search needs three characters to use its index
MAX_RESULTS = 50


@dataclass(frozen=True)
class SearchResult:
    vehicles: list[Vehicle]
    truncated: bool


def can_see_full_identity(user: User) -> bool:
    return user.has_perm("vehicles.view_full_identity")


def _base_queryset() -> QuerySet[Vehicle]:
    return Vehicle.objects.select_related("owner", "station").prefetch_related(
        Prefetch("plates", queryset=Plate.objects.filter(status=Plate.Status.ISSUED), to_attr="current_plates")
    )


def vehicle_search(*, user: User, criteria: dict[str, str], reason: str = "", ip: str | None = None) -> SearchResult:
    """Find filing records by any identifier; several criteria narrow the search (AND)."""
    criteria = {key: value.strip() for key, value in criteria.items() if key in SEARCH_KEYS and value and value.strip()}
    if not criteria:
        raise ValidationError({"query": _("Give at least one of: %(keys)s.") % {"keys": ", ".join(SEARCH_KEYS)}})
    qs = _base_queryset()
    if "plate" in criteria:
        # Plates ever issued to the bike count: an officer may hold an old, voided plate. Resolving
        # the ids first keeps the planner from joining before it knows how few rows match.
        ids = list(Plate.objects.filter(number=criteria["plate"].upper()).values_list("vehicle_id", flat=True))
        qs = qs.filter(pk__in=ids)
    if "plate_contains" in criteria:
        fragment = criteria["plate_contains"].upper()
        if len(fragment) < MIN_PARTIAL_LENGTH:
            raise ValidationError(
                {"plate_contains": _("Enter at least %(n)d characters of the plate.") % {"n": MIN_PARTIAL_LENGTH}}
            )
        matching = Plate.objects.filter(number__contains=fragment, status=Plate.Status.ISSUED)
        if len(criteria) == 1:
            # Alone, a 3-digit fragment matches thousands of plates: pick the page on the plate
            # table (newest plates first) and load only those vehicles.
            ids = list(matching.order_by("-issued_at", "-id").values_list("vehicle_id", flat=True)[: MAX_RESULTS + 1])
            qs = qs.filter(pk__in=ids)
        else:
            qs = qs.filter(pk__in=matching.values("vehicle_id"))
    if "frame_number" in criteria:
        qs = qs.filter(frame_number=normalize_code(criteria["frame_number"]))
    if "motor_number" in criteria:
        qs = qs.filter(motor_number=normalize_code(criteria["motor_number"]))
    if "id_number" in criteria:
        qs = qs.filter(owner__id_number=normalize_id_number(criteria["id_number"]))
    if "phone" in criteria:
        qs = qs.filter(owner__phone=normalize_phone(criteria["phone"]))
    if "owner_name" in criteria:
        qs = qs.filter(owner__name=criteria["owner_name"])
    if "imei" in criteria:
        # The terminal fitted now (tracking.Terminal.vehicle, reverse name "terminal"); tracking depends
        # on vehicles, so this goes through the relation rather than an import.
        qs = qs.filter(terminal__imei=criteria["imei"])
    rows = list(qs.order_by("-registered_at", "-id")[: MAX_RESULTS + 1])
    truncated = len(rows) > MAX_RESULTS
    rows = rows[:MAX_RESULTS]
    audit_record(
        user=user,
        action="vehicle.search",
        object_type="vehicle",
        query=criteria,
        result_count=len(rows),
        reason=reason,
        ip=ip,
    )
    return SearchResult(vehicles=rows, truncated=truncated)


def vehicle_detail(*, user: User, vehicle_id: int, reason: str = "", ip: str | None = None) -> Vehicle:
    """A full filing record with history and policies; every view by staff is audited."""
    vehicle = (
        _base_queryset()
        .prefetch_related(
            Prefetch(
                "events", queryset=RegistrationEvent.objects.select_related("clerk", "station").order_by("at", "id")
            ),
            Prefetch("policies", queryset=InsurancePolicy.objects.select_related("scheme").order_by("-starts_on")),
            "photos",
        )
        .get(pk=vehicle_id)
    )
    audit_record(
        user=user,
        action="vehicle.view_full" if can_see_full_identity(user) else "vehicle.view",
        object_type="vehicle",
        object_id=vehicle.pk,
        result_count=1,
        reason=reason,
        ip=ip,
    )
    return vehicle


def plate_numbers(vehicle_ids: Iterable[int]) -> dict[int, str]:
    """The number of the plate in use of each of these bikes that has one, in one query."""
    return dict(
        Plate.objects.filter(vehicle_id__in=list(vehicle_ids), status=Plate.Status.ISSUED).values_list(
            "vehicle_id", "number"
        )
    )


def current_plate(vehicle: Vehicle) -> Plate | None:
    plates = getattr(vehicle, "current_plates", None)
    if plates is None:
        plates = list(vehicle.plates.filter(status=Plate.Status.ISSUED))
    return plates[0] if plates else None


def vehicle_state_from_events(vehicle_id: int) -> dict[str, Any]:
    """Replay the append-only history into the record's state (fields as stored in `changes`)."""
    state: dict[str, Any] = {}
    for changes in (
        RegistrationEvent.objects.filter(vehicle_id=vehicle_id).order_by("at", "id").values_list("changes", flat=True)
    ):
        for field, (_old, new) in changes.items():
            state[field] = new
    return state


@dataclass(frozen=True)
class Operation:
    """A counter operation on a record as the record page offers it: allowed, or refused and why."""

    code: str
    label: str
    url: str
    refused: list[str]

    @property
    def allowed(self) -> bool:
        return not self.refused

    @property
    def why(self) -> str:
        return "; ".join(self.refused)


def vehicle_operations(*, user: User, vehicle: Vehicle) -> list[Operation]:
    """The lifecycle operations for the record page, each with the reasons the bike's state refuses
    it: the same `<write>_state` functions the services' checks call, so the page offers exactly
    what the counter would accept. Nothing for a user who may not do counter work."""
    if not user.has_perm("vehicles.register_vehicle"):
        return []
    kinds = RegistrationEvent.Kind
    rules = (
        (kinds.CHANGE, "vehicles:change", reg.vehicle_change_state),
        (kinds.CORRECTION, "vehicles:correct", reg.vehicle_correct_state),
        (kinds.TRANSFER, "vehicles:transfer", reg.vehicle_transfer_state),
        (kinds.REPLACE_PLATE, "vehicles:replace_plate", reg.plate_replace_state),
        (kinds.DEREGISTER, "vehicles:deregister", reg.vehicle_deregister_state),
    )
    return [
        Operation(code=kind.value, label=str(kind.label), url=reverse(name, args=[vehicle.pk]), refused=state(vehicle))
        for kind, name, state in rules
    ]


# --- SQL the apps above build on --------------------------------------------------------------------
# Whole SELECTs that another app's statement embeds as a subquery (its columns are the interface).
# PostgreSQL pulls such a plain subquery up into the statement around it, so the plan is the one a
# join written out there would get; vehicles' tables are named here only.

# The plate in use of each bike that has one: (vehicle_id, number).
PLATES_IN_USE_SQL = "SELECT vehicle_id, number FROM vehicles_plate WHERE status = 'issued'"
# Each bike's registering station: (id, station_id).
VEHICLE_STATIONS_SQL = "SELECT id, station_id FROM vehicles_vehicle"
# Registration events per county day (%(tz)s), registering station and kind, in [%(since)s, %(until)s):
# (day, station_id, kind, events).
REGISTRATION_DAYS_SQL = """
    SELECT (e.at AT TIME ZONE %(tz)s)::date, v.station_id, e.kind, count(*)
    FROM vehicles_registrationevent e JOIN vehicles_vehicle v ON v.id = e.vehicle_id
    WHERE e.at >= %(since)s AND e.at < %(until)s
    GROUP BY 1, 2, 3
"""
# The same for the days a rollup does not hold yet, [%(live_since)s, %(until)s), of %(station)s
# (NULL: every station); %(all_stations)s and %(kinds)s are every station and every kind.
REGISTRATION_DAYS_LIVE_SQL = """
            SELECT (e.at AT TIME ZONE %(tz)s)::date, v.station_id, e.kind, count(*)
            FROM vehicles_registrationevent e JOIN vehicles_vehicle v ON v.id = e.vehicle_id
            -- station = ANY and kind = ANY let regevent_station_kind_at_idx serve the time range (one
            -- index range per station and kind) instead of a scan of every event.
            WHERE e.station_id = ANY(%(all_stations)s) AND e.kind = ANY(%(kinds)s)
              AND e.at >= %(live_since)s AND e.at < %(until)s
              AND (%(station)s::bigint IS NULL OR v.station_id = %(station)s)
            GROUP BY 1, 2, 3
"""
# Bikes holding an issued plate now, by owner township and registering station: (township_id,
# station_id, plated).
PLATED_COUNTS_SQL = """
            SELECT o.township_id, v.station_id, count(*)
            FROM vehicles_plate p
            JOIN vehicles_vehicle v ON v.id = p.vehicle_id
            JOIN vehicles_owner o ON o.id = v.owner_id
            WHERE p.status = 'issued'
            GROUP BY 1, 2
"""


def registration_events_before(moment: datetime.datetime) -> int:
    """How many registration events happened before `moment` (one count over the events table:
    tens of milliseconds at a million)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM vehicles_registrationevent WHERE at < %s", [moment])
        return cursor.fetchone()[0]
