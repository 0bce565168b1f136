"""seed_demo: realistic demo data for Yutian county at any scale (1,000,000 bikes in minutes).

    python manage.py seed_demo --vehicles 10000 [--seed 7] [--batch 20000]
    python manage.py seed_demo --if-fewer 1000000      # top up to that many vehicles in total

Per vehicle: an owner (new, or an earlier owner's next bike), the bike, its plate from the
registering station's series, the `register` event the counter would have written, the free policy
for ~95%, and for a few a later deregistration, over six years in date order. Rows go in by COPY
with ids from the tables' sequences; plate numbers are drawn under the series row lock as
`plate_issue` does; unique values are keyed bijections of the row ids (demo.values), each checked
with the counter's validators. How it stays fast and correct: docs/architecture.md#demo-data.
"""

import datetime
import heapq
import json
import random
import sys
import time
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.models import RegistrationPoint, Station, Township, User
from accounts.roles import CLERK, roles_sync
from demo import values as demo
from vehicles.fields import VEHICLE
from vehicles.identifiers import (
    credit_code_problem,
    frame_number_problem,
    motor_number_problem,
    phone_problem,
    resident_id_problem,
)
from vehicles.models import (
    InsurancePolicy,
    InsuranceScheme,
    Owner,
    Plate,
    PlateKind,
    PlateSeries,
    RegistrationEvent,
    Vehicle,
)
from vehicles.services.insurance import scheme_default
from vehicles.services.plates import (
    plate_format,
    plate_kind_for,
    temporary_plate_expiry,
    temporary_plate_transition_end,
)
from vehicles.services.registration import DeregisterReason

YEARS_OF_HISTORY = 6
ORGANISATION_SHARE = 0.03  # of new owners
PERSON_BIKES = [(1, 72.0), (2, 21.0), (3, 7.0)]
ORGANISATION_BIKES = [(1, 30.0), (2, 30.0), (3, 20.0), (4, 20.0)]
# Bikes that fail GB 17761-2018 (temporary white plates): many when the programme started, few
# later; 0.3 * (1 - f)**2 over the run averages 10%.
NON_CONFORMING_START = 0.30
DEREGISTER_SHARE = 0.025
EXPIRED_TEMPORARY_DEREGISTERED = 0.4
CONSENT_SHARE = 0.95
COUNTY_SEAT_TOWNSHIP = "130229001"
STANDARD_IN_FORCE = datetime.date(2019, 4, 15)  # GB 17761-2018
DEREGISTER_REASONS = [
    (DeregisterReason.NOT_USED, 45.0),
    (DeregisterReason.DESTROYED, 25.0),
    (DeregisterReason.LOST, 20.0),
    (DeregisterReason.QUALITY_RETURN, 10.0),
]
MAX_CLASH_ATTEMPTS = 20


@dataclass(slots=True, eq=False)
class OwnerPlan:
    kind: str
    township: str
    station_id: int
    male: bool
    area: str
    name: str
    phone: str
    address: str
    agent_name: str
    agent_id_number: str
    created_at: datetime.datetime
    id: int = 0
    id_number: str = ""


@dataclass(slots=True, eq=False)
class VehiclePlan:
    owner: OwnerPlan
    new_owner: bool
    station_id: int
    use_type: str
    conforming: bool
    plate_kind: str
    brand: demo.Brand
    model_name: str
    colour: str
    voltage: str
    production_date: datetime.date
    purchase_date: datetime.date
    price: str
    ccc: str
    registered_at: datetime.datetime
    expires_on: datetime.date | None
    consent: bool
    documents: list[str]
    deregistered_at: datetime.datetime | None = None
    deregister_reason: str = ""
    plate_returned: bool = False
    id: int = 0
    frame_number: str = ""
    motor_number: str = ""
    plate_id: int = 0
    plate_number: str = ""
    series_id: int = 0
    policy_id: int = 0
    policy_number: str = ""


@dataclass
class Totals:
    vehicles: int = 0
    owners: int = 0
    organisations: int = 0
    plates: int = 0
    events: int = 0
    policies: int = 0
    deregistered: int = 0
    plate_kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    follow_on_series: list[str] = field(default_factory=list)
    clashes_resolved: int = 0


class Planner:
    """Decides what the next vehicles look like: pure Python, no database."""

    def __init__(
        self,
        *,
        rng: random.Random,
        total: int,
        today: datetime.date,
        now: datetime.datetime,
        townships: dict[str, str],
        station_of_township: dict[str, int],
        county_seat_station: int,
    ) -> None:
        self.rng = rng
        self.total = total
        self.today = today
        self.now = now
        self.tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        self.first_day = today - relativedelta(years=YEARS_OF_HISTORY)
        self.last_day = today - datetime.timedelta(days=1)
        self.span_days = (self.last_day - self.first_day).days + 1
        self.townships = townships
        self.station_of_township = station_of_township
        self.county_seat_station = county_seat_station
        weights = [(code, float(demo.TOWNSHIP_POPULATION.get(code, 5_000))) for code in townships]
        self.township_table = demo.WeightedTable(weights)
        urban = [(code, w) for code, w in weights if code in demo.URBAN_TOWNSHIPS] or weights
        self.urban_table = demo.WeightedTable(urban)
        self.area_table = demo.WeightedTable(demo.ID_AREA_CODES)
        self.person_bikes = demo.WeightedTable(PERSON_BIKES)
        self.org_bikes = demo.WeightedTable(ORGANISATION_BIKES)
        self.dereg_reasons = demo.WeightedTable(DEREGISTER_REASONS)
        self.transition_end = temporary_plate_transition_end()
        self.position = 0
        self._pending: list[tuple[int, int, OwnerPlan]] = []  # (position, tiebreak, owner)
        self._tiebreak = 0

    # -- times ------------------------------------------------------------------------------------

    def _at(self, day: datetime.date) -> datetime.datetime:
        """A counter's working hours, 08:30-17:30 Beijing time, never in the future."""
        seconds = 8 * 3600 + 1800 + self.rng.randrange(9 * 3600)
        at = datetime.datetime.combine(day, datetime.time(), tzinfo=self.tz) + datetime.timedelta(seconds=seconds)
        return min(at, self.now - datetime.timedelta(minutes=1))

    def _day_of(self, position: int) -> datetime.date:
        offset = int(self.span_days * (position + self.rng.random()) / self.total)
        return self.first_day + datetime.timedelta(days=min(offset, self.span_days - 1))

    # -- owners -----------------------------------------------------------------------------------

    def _new_owner(self, at: datetime.datetime) -> tuple[OwnerPlan, int]:
        rng = self.rng
        organisation = rng.random() < ORGANISATION_SHARE
        township = (self.urban_table if organisation and rng.random() < 0.6 else self.township_table).pick(rng)
        station = self.station_of_township[township]
        if rng.random() < 0.05:
            station = self.county_seat_station  # people register near where they work, too
        township_name = self.townships[township]
        male = rng.random() < 0.56
        if organisation:
            agent_male = rng.random() < 0.7
            agent_birth_year = rng.randint(1965, 2000)
            owner = OwnerPlan(
                kind=Owner.Kind.ORGANISATION.value,
                township=township,
                station_id=station,
                male=male,
                area="130229" if rng.random() < 0.85 else "130200",
                name=demo.organisation_name(rng, township_name=township_name),
                phone=demo.mobile_phone(rng),
                address=demo.address(rng, township_code=township, township_name=township_name),
                agent_name=demo.person_name(rng, male=agent_male, birth_year=agent_birth_year),
                agent_id_number=demo.random_resident_id(
                    rng, male=agent_male, born_from=agent_birth_year, born_to=agent_birth_year
                ),
                created_at=at,
            )
            return owner, self.org_bikes.pick(rng)
        owner = OwnerPlan(
            kind=Owner.Kind.PERSON.value,
            township=township,
            station_id=station,
            male=male,
            area=self.area_table.pick(rng),
            name="",  # needs the birth year, which comes from the owner's id
            phone=demo.mobile_phone(rng),
            address=demo.address(rng, township_code=township, township_name=township_name),
            agent_name="",
            agent_id_number="",
            created_at=at,
        )
        return owner, self.person_bikes.pick(rng)

    def _schedule_more(self, owner: OwnerPlan, bikes: int) -> None:
        remaining = self.total - self.position
        for _ in range(bikes - 1):
            if owner.kind == Owner.Kind.ORGANISATION:  # fleets grow in bursts
                gap = 1 + int(self.rng.random() * min(remaining, max(2, self.total // 40)))
            else:
                gap = 1 + int(self.rng.random() ** 1.5 * remaining)
            if self.position + gap < self.total:
                self._tiebreak += 1
                heapq.heappush(self._pending, (self.position + gap, self._tiebreak, owner))

    # -- vehicles ---------------------------------------------------------------------------------

    def next_batch(self, size: int) -> list[VehiclePlan]:
        return [self._next_vehicle() for _ in range(size)]

    def _next_vehicle(self) -> VehiclePlan:
        rng = self.rng
        fraction = self.position / self.total
        day = self._day_of(self.position)
        registered_at = self._at(day)
        if self._pending and self._pending[0][0] <= self.position:
            owner = heapq.heappop(self._pending)[2]
            new_owner = False
            station = owner.station_id if rng.random() < 0.9 else self.county_seat_station
        else:
            owner, bikes = self._new_owner(registered_at)
            new_owner = True
            station = owner.station_id
            self._schedule_more(owner, bikes)
        self.position += 1

        organisation = owner.kind == Owner.Kind.ORGANISATION
        use_type = (Vehicle.UseType.COMMERCIAL if organisation else Vehicle.UseType.SELF_USE).value
        if organisation:
            conforming = rng.random() >= 0.03
        else:
            conforming = rng.random() >= NON_CONFORMING_START * (1 - fraction) ** 2
        if not conforming and self.transition_end is not None and day > self.transition_end:
            conforming = True  # no temporary plates after the city's transition period
        kind = plate_kind_for(conforming=conforming, use_type=use_type).value

        brand = demo.pick_brand(rng)
        model_name = rng.choice(brand.models)
        # Owners register within 30 days of purchase; some come late.
        delay = rng.randint(0, 30) if rng.random() < 0.88 else rng.randint(31, 200)
        purchase = day - datetime.timedelta(days=delay)
        if conforming:
            production = max(purchase - datetime.timedelta(days=rng.randint(7, 240)), STANDARD_IN_FORCE)
            production = min(production, purchase)
            ccc = demo.ccc_certificate_no(brand, model_name, production.year)
        else:
            production = min(
                purchase - datetime.timedelta(days=rng.randint(30, 900)),
                STANDARD_IN_FORCE - datetime.timedelta(days=1),
            )
            ccc = ""
        if organisation:
            documents = list(demo.DOCUMENTS_ORGANISATION)
            if not conforming:
                documents.remove("ccc_certificate")
        elif not conforming:
            documents = list(demo.DOCUMENTS_TEMPORARY)
        elif rng.random() < 0.9:
            documents = list(demo.DOCUMENTS_CONFORMING)
        else:
            documents = list(demo.DOCUMENTS_NO_INVOICE)
        plan = VehiclePlan(
            owner=owner,
            new_owner=new_owner,
            station_id=station,
            use_type=use_type,
            conforming=conforming,
            plate_kind=kind,
            brand=brand,
            model_name=model_name,
            colour=demo.pick_colour(rng),
            voltage=demo.pick_voltage(rng),
            production_date=production,
            purchase_date=purchase,
            price=demo.price(rng, brand),
            ccc=ccc,
            registered_at=registered_at,
            expires_on=temporary_plate_expiry(day) if kind == PlateKind.WHITE else None,
            consent=rng.random() < (0.98 if organisation else CONSENT_SHARE),
            documents=documents,
        )
        self._maybe_deregister(plan, day)
        return plan

    def _maybe_deregister(self, plan: VehiclePlan, day: datetime.date) -> None:
        rng = self.rng
        if plan.expires_on is not None and plan.expires_on < self.today:
            if rng.random() < EXPIRED_TEMPORARY_DEREGISTERED:
                when = plan.expires_on + datetime.timedelta(days=rng.randint(0, 90))
                self._deregister(plan, min(when, self.last_day), DeregisterReason.TEMPORARY_EXPIRED)
            return
        age_days = (self.last_day - day).days
        if age_days < 120 or rng.random() >= DEREGISTER_SHARE:
            return
        reason = self.dereg_reasons.pick(rng)
        if reason == DeregisterReason.QUALITY_RETURN:
            when = day + datetime.timedelta(days=rng.randint(3, 60))
        else:
            when = day + datetime.timedelta(days=rng.randint(90, age_days))
        self._deregister(plan, min(when, self.last_day), reason)

    def _deregister(self, plan: VehiclePlan, day: datetime.date, reason: str) -> None:
        at = self._at(day)
        plan.deregistered_at = max(at, plan.registered_at + datetime.timedelta(minutes=5))
        plan.deregister_reason = reason
        plan.plate_returned = reason != DeregisterReason.LOST and self.rng.random() < 0.85


class SeriesAllocator:
    """Plate numbers in series order for one batch, under the series rows' locks."""

    def __init__(self, totals: Totals) -> None:
        self.totals = totals
        self.by_key: dict[tuple[int, str], list[PlateSeries]] = defaultdict(list)
        self.touched: dict[int, PlateSeries] = {}

    def lock(self) -> None:
        self.by_key.clear()
        self.touched.clear()
        for series in PlateSeries.objects.select_for_update().order_by("id"):
            self.by_key[(series.station_id, series.kind)].append(series)

    def take(self, station_id: int, kind: str) -> tuple[int, str]:
        candidates = self.by_key[(station_id, kind)]
        for series in candidates:
            if series.active and series.next_number <= series.last_number:
                break
        else:
            series = self._follow_on(station_id, kind, candidates)
        number = series.next_number
        series.next_number = number + 1
        self.touched[series.pk] = series
        return series.pk, plate_format(series.prefix, number)

    def _follow_on(self, station_id: int, kind: str, existing: list[PlateSeries]) -> PlateSeries:
        if not existing:
            raise CommandError(f"Station {station_id} has no {kind} plate series; run the migrations first.")
        last = max(existing, key=lambda s: s.last_number)
        # The next block of numbers, at least a width's worth (玉A00001-玉A99999 -> 玉A100000-…).
        block = max(last.last_number - last.first_number + 1, 10**settings.PLATE_NUMBER_WIDTH - 1)
        series = PlateSeries.objects.create(
            station_id=station_id,
            kind=kind,
            prefix=last.prefix,
            first_number=last.last_number + 1,
            last_number=last.last_number + block,
            next_number=last.last_number + 1,
        )
        existing.append(series)
        self.totals.follow_on_series.append(f"{series.prefix} {series.first_number}-{series.last_number}")
        return series

    def save(self) -> None:
        for series in self.touched.values():
            PlateSeries.objects.filter(pk=series.pk).update(next_number=series.next_number)


def field_column(model: type[models.Model], name: str) -> str:
    """The column of a model's concrete field."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return field.column


def columns(model: type[models.Model], names: Sequence[str]) -> list[str]:
    return [field_column(model, name) for name in names]


def copy_rows(cursor: Any, model: type[models.Model], names: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cols = ", ".join(connection.ops.quote_name(c) for c in columns(model, names))
    table = connection.ops.quote_name(model._meta.db_table)
    with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def next_ids(cursor: Any, model: type[models.Model], count: int) -> list[int]:
    if count == 0:
        return []
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [model._meta.db_table, model._meta.pk.column, count],
    )
    return [row[0] for row in cursor.fetchall()]


def existing_values(cursor: Any, model: type[models.Model], name: str, values: Sequence[str]) -> set[str]:
    if not values:
        return set()
    column = connection.ops.quote_name(field_column(model, name))
    table = connection.ops.quote_name(model._meta.db_table)
    cursor.execute(f"SELECT {column} FROM {table} WHERE {column} = ANY(%s)", [list(values)])  # noqa: S608
    return {row[0] for row in cursor.fetchall()}


def fail(message: str) -> None:
    raise CommandError(f"demo data generator bug: {message}")


class Command(BaseCommand):
    help = "Fill the registry with realistic demo data for Yutian county (COPY in batches; safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        amount = parser.add_mutually_exclusive_group(required=True)
        amount.add_argument("--vehicles", type=int, help="add this many vehicles")
        amount.add_argument(
            "--if-fewer", type=int, dest="if_fewer", metavar="N", help="add vehicles only up to N in total"
        )
        parser.add_argument("--seed", type=int, default=20220501, help="random seed (default: %(default)s)")
        parser.add_argument("--batch", type=int, default=20_000, help="vehicles per COPY batch and transaction")
        parser.add_argument(
            "--no-vacuum", action="store_true", help="only ANALYZE at the end (VACUUM is skipped in a transaction)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        existing = Vehicle.objects.count()
        if options["if_fewer"] is not None:
            count = max(0, options["if_fewer"] - existing)
            if count == 0:
                self.stdout.write(f"seed_demo: {existing} vehicles already (>= {options['if_fewer']}); nothing to add.")
                return
        else:
            count = options["vehicles"]
        if count <= 0:
            raise CommandError("--vehicles must be positive")
        if options["batch"] <= 0:
            raise CommandError("--batch must be positive")
        self.verbosity = options["verbosity"]
        self.seeder_setup(seed=options["seed"], existing=existing, count=count)
        totals = Totals()
        with tqdm(
            total=count, unit="veh", unit_scale=True, desc="seed_demo", disable=self.verbosity == 0, file=sys.stderr
        ) as bar:
            done = 0
            while done < count:
                size = min(options["batch"], count - done)
                plans = self.planner.next_batch(size)
                self.write_batch(plans, totals)
                done += size
                bar.update(size)
        write_seconds = time.perf_counter() - started
        maintenance = self.maintain(vacuum=not options["no_vacuum"])
        seconds = time.perf_counter() - started
        kinds = ", ".join(f"{kind} {totals.plate_kinds[kind]}" for kind in PlateKind.values)
        self.stdout.write(
            f"seed_demo: {totals.vehicles} vehicles, {totals.owners} owners ({totals.organisations} organisations), "
            f"{totals.plates} plates ({kinds}), {totals.events} events, {totals.policies} policies, "
            f"{totals.deregistered} deregistered; {Vehicle.objects.count()} vehicles in total"
        )
        self.stdout.write(
            f"seed_demo: {seconds:.1f} s ({write_seconds:.1f} s writing, {totals.vehicles / write_seconds:,.0f} "
            f"vehicles/s; {maintenance})"
        )
        if totals.follow_on_series:
            self.stdout.write(f"seed_demo: follow-on plate series created: {', '.join(totals.follow_on_series)}")
        if totals.clashes_resolved:
            self.stdout.write(f"seed_demo: {totals.clashes_resolved} clashes with existing rows resolved")

    # -- setup ------------------------------------------------------------------------------------

    def seeder_setup(self, *, seed: int, existing: int, count: int) -> None:
        townships = dict(Township.objects.values_list("code", "name"))
        stations = list(Station.objects.order_by("code"))
        if not stations or not townships:
            raise CommandError("No townships or stations: run `manage.py migrate` first (it loads reference data).")
        station_of_township = {station.township_id: station.pk for station in stations}
        seat = station_of_township.get(COUNTY_SEAT_TOWNSHIP, stations[0].pk)
        for code in townships:
            if code not in station_of_township:
                neighbour = demo.SERVED_BY.get(code)
                station_of_township[code] = station_of_township.get(neighbour, seat) if neighbour else seat
        self.scheme: InsuranceScheme = scheme_default()
        self.clerks = self.demo_clerks(stations)
        now = timezone.now()
        # The same seed gives the same data on the same database state; a later run differs.
        rng = random.Random(f"{seed}:{existing}")
        self.planner = Planner(
            rng=rng,
            total=count,
            today=timezone.localdate(now),
            now=now,
            townships=townships,
            station_of_township=station_of_township,
            county_seat_station=seat,
        )
        self.rng = rng

    def demo_clerks(self, stations: list[Station]) -> dict[int, tuple[int, int | None]]:
        """One demo clerk per station (created once, no usable password): station -> (user, point)."""
        group = Group.objects.filter(name=CLERK).first()
        if group is None:
            roles_sync()
            group = Group.objects.get(name=CLERK)
        points: dict[int, int] = {}
        for point in RegistrationPoint.objects.filter(kind=RegistrationPoint.Kind.STATION).order_by("id"):
            points.setdefault(point.station_id, point.pk)
        clerks: dict[int, tuple[int, int | None]] = {}
        for station in stations:
            user = User.objects.filter(username=f"demo-clerk-{station.code}").first()
            if user is None:
                user = User.objects.create_user(
                    username=f"demo-clerk-{station.code}",
                    password=None,
                    first_name="演示窗口",
                    last_name=station.name.removeprefix("玉田县公安局"),
                    station=station,
                    registration_point_id=points.get(station.pk),
                )
                user.groups.add(group)
            clerks[station.pk] = (user.pk, user.registration_point_id)
        return clerks

    def maintain(self, *, vacuum: bool) -> str:
        """Fresh statistics for the planner; VACUUM also sets the visibility map (index-only scans)
        and merges the trigram index's pending list, so the first searches are not slow."""
        started = time.perf_counter()
        models_ = (Owner, Vehicle, Plate, RegistrationEvent, InsurancePolicy, PlateSeries)
        tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models_)
        command = "VACUUM (ANALYZE)" if vacuum and not connection.in_atomic_block else "ANALYZE"
        with connection.cursor() as cursor:
            cursor.execute(f"{command} {tables}")
        return f"{command} {time.perf_counter() - started:.1f} s"

    # -- one batch --------------------------------------------------------------------------------

    def write_batch(self, plans: list[VehiclePlan], totals: Totals) -> None:
        new_owners = [plan.owner for plan in plans if plan.new_owner]
        deregistered = [plan for plan in plans if plan.deregistered_at is not None]
        insured = [plan for plan in plans if plan.consent]
        with transaction.atomic(), connection.cursor() as cursor:
            owner_ids = next_ids(cursor, Owner, len(new_owners))
            vehicle_ids = next_ids(cursor, Vehicle, len(plans))
            plate_ids = next_ids(cursor, Plate, len(plans))
            event_ids = next_ids(cursor, RegistrationEvent, len(plans) + len(deregistered))
            policy_ids = next_ids(cursor, InsurancePolicy, len(insured))
            for owner, owner_id in zip(new_owners, owner_ids, strict=True):
                owner.id = owner_id
            for plan, vehicle_id, plate_id in zip(plans, vehicle_ids, plate_ids, strict=True):
                plan.id, plan.plate_id = vehicle_id, plate_id
            for plan, policy_id in zip(insured, policy_ids, strict=True):
                plan.policy_id = policy_id

            self.derive_owner_identities(cursor, new_owners, totals)
            self.derive_vehicle_identities(cursor, plans, totals)
            self.derive_policy_numbers(cursor, insured, totals)

            allocator = SeriesAllocator(totals)
            allocator.lock()
            for plan in plans:
                plan.series_id, plan.plate_number = allocator.take(plan.station_id, plan.plate_kind)

            copy_rows(cursor, Owner, OWNER_FIELDS, (owner_row(owner) for owner in new_owners))
            copy_rows(cursor, Vehicle, VEHICLE_FIELDS, (vehicle_row(plan) for plan in plans))
            copy_rows(cursor, Plate, PLATE_FIELDS, (plate_row(plan) for plan in plans))
            copy_rows(cursor, RegistrationEvent, EVENT_FIELDS, self.event_rows(plans, deregistered, event_ids))
            copy_rows(cursor, InsurancePolicy, POLICY_FIELDS, (self.policy_row(plan) for plan in insured))
            allocator.save()

        totals.vehicles += len(plans)
        totals.owners += len(new_owners)
        totals.organisations += sum(1 for owner in new_owners if owner.kind == Owner.Kind.ORGANISATION)
        totals.plates += len(plans)
        totals.events += len(plans) + len(deregistered)
        totals.policies += len(insured)
        totals.deregistered += len(deregistered)
        for plan in plans:
            totals.plate_kinds[plan.plate_kind] += 1

    def resolve_clashes(
        self,
        cursor: Any,
        model: type[models.Model],
        name: str,
        items: list[Any],
        value_of: Callable[[Any, int], str],
        assign: Callable[[Any, str], None],
        totals: Totals,
    ) -> None:
        """Give every item a value unique within the batch and against the table.

        `value_of(item, 0)` is the bijective value; a duplicate inside the batch can only be a
        generator bug and stops the command. A value already in the table (typed in at a counter) is
        replaced by `value_of(item, attempt)` for attempt 1, 2, …
        """
        values = [value_of(item, 0) for item in items]
        seen: set[str] = set()
        for value in values:
            if value in seen:
                fail(f"duplicate {model.__name__}.{name} {value!r} inside one batch")
            seen.add(value)
        clashing = existing_values(cursor, model, name, values)
        for item, value in zip(items, values, strict=True):
            attempt = 0
            while value in clashing:
                attempt += 1
                if attempt > MAX_CLASH_ATTEMPTS:
                    fail(f"no free {model.__name__}.{name} for {item!r} after {MAX_CLASH_ATTEMPTS} attempts")
                candidate = value_of(item, attempt)
                if candidate in seen:
                    continue
                if not existing_values(cursor, model, name, [candidate]):
                    seen.add(candidate)
                    value = candidate
                    totals.clashes_resolved += 1
            assign(item, value)

    def derive_owner_identities(self, cursor: Any, owners: list[OwnerPlan], totals: Totals) -> None:
        def value_of(owner: OwnerPlan, attempt: int) -> str:
            index = owner.id + attempt * 4_999_999
            if owner.kind == Owner.Kind.ORGANISATION:
                return demo.credit_code_for_index(index % 100_000_000, area=owner.area)
            if index >= demo.RESIDENT_SPACE:
                fail(f"owner id {owner.id} is beyond the {demo.RESIDENT_SPACE} demo resident ID numbers")
            return demo.resident_id_for_index(index, area=owner.area, male=owner.male)[0]

        def assign(owner: OwnerPlan, value: str) -> None:
            owner.id_number = value
            if owner.kind == Owner.Kind.PERSON:
                problem = resident_id_problem(value)
                birth_year = int(value[6:10])
                owner.name = demo.person_name(self.rng, male=owner.male, birth_year=birth_year)
            else:
                problem = credit_code_problem(value) or resident_id_problem(owner.agent_id_number)
            problem = problem or phone_problem(owner.phone)
            if problem:
                fail(f"owner {owner.id} {value!r}/{owner.phone!r}: {problem}")

        self.resolve_clashes(cursor, Owner, "id_number", owners, value_of, assign, totals)

    def derive_vehicle_identities(self, cursor: Any, plans: list[VehiclePlan], totals: Totals) -> None:
        def frame_of(plan: VehiclePlan, attempt: int) -> str:
            index = (plan.id + attempt * 7_777_777) % 90_000_000
            return demo.frame_number(plan.brand, plan.production_date.year, demo.frame_serial_for_index(index))

        def assign_frame(plan: VehiclePlan, value: str) -> None:
            plan.frame_number = value
            plan.motor_number = demo.motor_number(
                plan.brand,
                plan.production_date.year,
                plan.voltage,
                demo.motor_serial_for_index(plan.id % 90_000_000),
            )
            problem = frame_number_problem(value) or motor_number_problem(plan.motor_number)
            if problem:
                fail(f"vehicle {plan.id} {value!r}/{plan.motor_number!r}: {problem}")

        self.resolve_clashes(cursor, Vehicle, "frame_number", plans, frame_of, assign_frame, totals)
        motors = [plan.motor_number for plan in plans]
        if len(set(motors)) != len(motors):
            fail("duplicate motor number inside one batch")

    def derive_policy_numbers(self, cursor: Any, plans: list[VehiclePlan], totals: Totals) -> None:
        def value_of(plan: VehiclePlan, attempt: int) -> str:
            index = (plan.policy_id + attempt * 1_000_003) % (1 << 32)
            return demo.policy_number(plan.registered_at.astimezone(self.planner.tz).date(), index)

        def assign(plan: VehiclePlan, value: str) -> None:
            plan.policy_number = value

        self.resolve_clashes(cursor, InsurancePolicy, "number", plans, value_of, assign, totals)

    # -- rows -------------------------------------------------------------------------------------

    def event_rows(
        self, plans: list[VehiclePlan], deregistered: list[VehiclePlan], ids: list[int]
    ) -> Iterable[Sequence[Any]]:
        ids_iter = iter(ids)
        for plan in plans:
            clerk, point = self.clerks[plan.station_id]
            changes: dict[str, list[Any]] = {
                name: [None, value.isoformat() if isinstance(value, datetime.date) else value]
                for name, value in vehicle_record(plan).items()
            }
            changes |= {
                "owner_id": [None, plan.owner.id],
                "status": [None, Vehicle.Status.REGISTERED.value],
                "plate": [None, plan.plate_number],
            }
            yield (
                next(ids_iter),
                RegistrationEvent.Kind.REGISTER.value,
                plan.registered_at,
                json.dumps(changes, ensure_ascii=False),
                "",
                json.dumps(plan.documents),
                clerk,
                plan.owner.id,
                plan.plate_id,
                point,
                plan.station_id,
                plan.id,
            )
        for plan in deregistered:
            clerk, point = self.clerks[plan.station_id]
            changes = {
                "status": [Vehicle.Status.REGISTERED.value, Vehicle.Status.DEREGISTERED.value],
                "plate": [plan.plate_number, None],
            }
            yield (
                next(ids_iter),
                RegistrationEvent.Kind.DEREGISTER.value,
                plan.deregistered_at,
                json.dumps(changes, ensure_ascii=False),
                plan.deregister_reason,
                "[]",
                clerk,
                plan.owner.id,
                None,
                point,
                plan.station_id,
                plan.id,
            )

    def policy_row(self, plan: VehiclePlan) -> Sequence[Any]:
        starts_on = plan.registered_at.astimezone(self.planner.tz).date()
        ends_on = starts_on + relativedelta(months=self.scheme.term_months) - datetime.timedelta(days=1)
        cancelled = plan.deregistered_at is not None
        return (
            plan.policy_id,
            plan.policy_number,
            starts_on,
            ends_on,
            plan.registered_at,
            InsurancePolicy.Status.CANCELLED.value if cancelled else InsurancePolicy.Status.ACTIVE.value,
            plan.deregistered_at,
            self.clerks[plan.station_id][0],
            self.scheme.pk,
            plan.owner.id,
            plan.id,
        )


OWNER_FIELDS = (
    "id",
    "kind",
    "name",
    "id_number",
    "agent_name",
    "agent_id_number",
    "phone",
    "address",
    "township",
    "created_at",
    "updated_at",
)
VEHICLE_FIELDS = (
    "id",
    *VEHICLE.names,
    "owner",
    "status",
    "station",
    "registered_at",
    "updated_at",
)
PLATE_FIELDS = ("id", "number", "series", "kind", "status", "vehicle", "issued_at", "expires_on", "ended_at")
EVENT_FIELDS = (
    "id",
    "kind",
    "at",
    "changes",
    "reason",
    "documents",
    "clerk",
    "owner",
    "plate",
    "registration_point",
    "station",
    "vehicle",
)
POLICY_FIELDS = (
    "id",
    "number",
    "starts_on",
    "ends_on",
    "consent_at",
    "status",
    "ended_at",
    "consent_by",
    "scheme",
    "owner",
    "vehicle",
)


def owner_row(owner: OwnerPlan) -> Sequence[Any]:
    return (
        owner.id,
        owner.kind,
        owner.name,
        owner.id_number,
        owner.agent_name,
        owner.agent_id_number,
        owner.phone,
        owner.address,
        owner.township,
        owner.created_at,
        owner.created_at,
    )


def vehicle_record(plan: VehiclePlan) -> dict[str, Any]:
    """The bike's declared fields (vehicles.fields.VEHICLE) in their order, as a counter would store
    them; one the demo does not fill takes its declared default."""
    seeded = {
        "frame_number": plan.frame_number,
        "motor_number": plan.motor_number,
        "manufacturer": plan.brand.manufacturer,
        "brand": plan.brand.name,
        "model_name": plan.model_name,
        "colour": plan.colour,
        "production_date": plan.production_date,
        "use_type": plan.use_type,
        "purchase_date": plan.purchase_date,
        "purchase_price": plan.price,
        "ccc_certificate_no": plan.ccc,
        "conforming": plan.conforming,
    }
    record: dict[str, Any] = {}
    for declared in VEHICLE:
        if declared.name not in seeded and declared.default is models.NOT_PROVIDED:
            raise KeyError(f"seed_demo gives no value for the vehicle's {declared.name}, which has no default")
        record[declared.name] = seeded.get(declared.name, declared.default)
    return record


def vehicle_row(plan: VehiclePlan) -> Sequence[Any]:
    deregistered = plan.deregistered_at is not None
    return (
        plan.id,
        *vehicle_record(plan).values(),
        plan.owner.id,
        Vehicle.Status.DEREGISTERED.value if deregistered else Vehicle.Status.REGISTERED.value,
        plan.station_id,
        plan.registered_at,
        plan.deregistered_at or plan.registered_at,
    )


def plate_row(plan: VehiclePlan) -> Sequence[Any]:
    if plan.deregistered_at is None:
        status = Plate.Status.ISSUED.value
    else:
        status = Plate.Status.RECOVERED.value if plan.plate_returned else Plate.Status.VOID.value
    return (
        plan.plate_id,
        plan.plate_number,
        plan.series_id,
        plan.plate_kind,
        status,
        plan.id,
        plan.registered_at,
        plan.expires_on,
        plan.deregistered_at,
    )
