"""Signed evidence bundles of a theft report or a case, for a court (证据材料).

One JSON document ({"format": "ebike-registry/evidence/1", "manifest", "signature", "content"})
holding, for every bike concerned, its filing record and history, the report and its workflow, the
trajectory points and stops (from cases.tracing.selectors, never re-queried here), the insurance
claims and the audit trail of who looked at or changed any of them. Each section is hashed on its
canonical JSON, so a verifier names exactly what was altered, and the manifest of hashes is signed
with the server's Ed25519 key, whose public half is published. Exporting is audited with the
manifest's digest. Format and verification: docs/architecture.md#evidence.
"""

import base64
import datetime
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import bureau_key
from accounts.audit import audit_record
from accounts.models import AuditEntry, User
from cases.models import MISSING_STATUSES, Case, CaseLink, InsuranceClaim, ReportTransition, TheftReport
from cases.tracing import duties
from cases.tracing import selectors as tracing
from cases.tracing.access import Access, evidence_access
from ebike_registry.canonical import canonical_json
from ebike_registry.problems import Problems
from tracking.models import TerminalInstallation, TerminalSession
from vehicles.identifiers import mask_id_number, mask_phone
from vehicles.models import InsurancePolicy, Plate, RegistrationEvent, Vehicle

FORMAT = "ebike-registry/evidence/1"
CHUNK = 500  # trajectory points per hashed section
SIGNATURE_ALGORITHM = "Ed25519"


# --- canonical JSON and hashing -------------------------------------------------------------------------


canonical = canonical_json  # the manifest's "canonical_json" rule below


def sha256(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def sections(content: dict[str, Any]) -> dict[str, Any]:
    """The hashed parts of the content, by path: scalars and objects whole, lists element by
    element, a trajectory's points in blocks of CHUNK."""
    parts: dict[str, Any] = {}
    for key, value in content.items():
        if key == "trajectories" and isinstance(value, list):
            for i, track in enumerate(value):
                if not isinstance(track, dict):
                    parts[f"{key}[{i}]"] = track
                    continue
                parts[f"{key}[{i}]"] = {k: v for k, v in track.items() if k != "points"}
                points = track.get("points", [])
                if not isinstance(points, list):
                    parts[f"{key}[{i}].points"] = points
                    continue
                for start in range(0, len(points), CHUNK):
                    block = points[start : start + CHUNK]
                    parts[f"{key}[{i}].points[{start}:{start + len(block)}]"] = block
        elif isinstance(value, list):
            for i, item in enumerate(value):
                parts[f"{key}[{i}]"] = item
            parts[f"{key}.count"] = len(value)
        else:
            parts[key] = value
    return parts


# --- the signing key -------------------------------------------------------------------------------------


def _key_path() -> Path:
    return Path(settings.EVIDENCE_SIGNING_KEY_FILE)


def signing_key_ensure() -> tuple[Path, bool]:
    """Create the private key file (0600, directory 0700) unless it exists; (path, created)."""
    path = _key_path()
    return path, bureau_key.key_create(path)


def signing_key() -> Ed25519PrivateKey:
    return bureau_key.key_load(_key_path())


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# SHA-256 of the raw public key, as printed on the PDF and published (the audit chain's heads name
# their key the same way).
fingerprint = bureau_key.fingerprint


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def server_public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


# A PEM public key, a PEM private key (its public half) or 32 raw/base64 bytes.
load_public_key = bureau_key.public_key_load


# --- building the content ----------------------------------------------------------------------------------


def _iso(value: datetime.datetime | datetime.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat()
    return value.isoformat()


@dataclass
class Scope:
    """What one export covers: the reports and, per vehicle, the period of its positions."""

    subject: dict[str, Any]
    reports: list[TheftReport]
    vehicles: list[Vehicle]
    periods: dict[int, tuple[datetime.datetime, datetime.datetime]] = field(default_factory=dict)
    case: Case | None = None


def report_period(report: TheftReport) -> tuple[datetime.datetime, datetime.datetime]:
    """From when the owner last saw the bike until it stopped being missing (or now)."""
    until = timezone.now()
    if report.status not in MISSING_STATUSES:
        found = (
            ReportTransition.objects.filter(report=report)
            .exclude(to_status__in=MISSING_STATUSES)
            .order_by("at", "id")
            .values_list("at", flat=True)
            .first()
        )
        if found is not None:
            until = found
    return report.last_seen_at, max(until, report.last_seen_at + datetime.timedelta(seconds=1))


def _vehicle_record(vehicle: Vehicle, *, full_identity: bool) -> dict[str, Any]:
    owner = vehicle.owner
    return {
        "id": vehicle.pk,
        "frame_number": vehicle.frame_number,
        "motor_number": vehicle.motor_number,
        "manufacturer": vehicle.manufacturer,
        "brand": vehicle.brand,
        "model": vehicle.model_name,
        "colour": vehicle.colour,
        "production_date": _iso(vehicle.production_date),
        "purchase_date": _iso(vehicle.purchase_date),
        "purchase_price": str(vehicle.purchase_price),
        "ccc_certificate_no": vehicle.ccc_certificate_no,
        "conforming": vehicle.conforming,
        "use_type": vehicle.use_type,
        "status": vehicle.status,
        "registered_at": _iso(vehicle.registered_at),
        "station": vehicle.station.name,
        "owner": {
            "kind": owner.kind,
            "name": owner.name,
            "id_number": owner.id_number if full_identity else mask_id_number(owner.id_number),
            "phone": owner.phone if full_identity else mask_phone(owner.phone),
            "address": owner.address,
        },
        "plates": _vehicle_plates(vehicle),
        "policies": _vehicle_policies(vehicle),
        "terminals": _vehicle_terminals(vehicle),
        "history": _vehicle_history(vehicle),
    }


def _vehicle_plates(vehicle: Vehicle) -> list[dict[str, Any]]:
    return [
        {
            "number": p.number,
            "kind": p.kind,
            "status": p.status,
            "issued_at": _iso(p.issued_at),
            "expires_on": _iso(p.expires_on),
            "ended_at": _iso(p.ended_at),
        }
        for p in Plate.objects.filter(vehicle=vehicle).order_by("issued_at", "id")
    ]


def _vehicle_policies(vehicle: Vehicle) -> list[dict[str, Any]]:
    policies = InsurancePolicy.objects.filter(vehicle=vehicle).select_related("scheme").order_by("starts_on", "id")
    return [
        {
            "number": p.number,
            "scheme": p.scheme.name,
            "starts_on": _iso(p.starts_on),
            "ends_on": _iso(p.ends_on),
            "status": p.status,
        }
        for p in policies
    ]


def _vehicle_terminals(vehicle: Vehicle) -> list[dict[str, Any]]:
    installations = (
        TerminalInstallation.objects.filter(vehicle=vehicle).select_related("terminal").order_by("installed_at", "id")
    )
    return [
        {
            "imei": i.terminal.imei,
            "protocol": i.terminal.protocol,
            "installed_at": _iso(i.installed_at),
            "removed_at": _iso(i.removed_at),
        }
        for i in installations
    ]


def _vehicle_history(vehicle: Vehicle) -> list[dict[str, Any]]:
    events = (
        RegistrationEvent.objects.filter(vehicle=vehicle)
        .select_related("clerk", "station", "owner", "plate")
        .order_by("at", "id")
    )
    return [
        {
            "kind": e.kind,
            "at": _iso(e.at),
            "clerk": e.clerk.username,
            "station": e.station.name,
            "plate": e.plate.number if e.plate else None,
            "changes": e.changes,
            "reason": e.reason,
        }
        for e in events
    ]


def _report_record(report: TheftReport, *, full_identity: bool) -> dict[str, Any]:
    transitions = ReportTransition.objects.filter(report=report).select_related("by").order_by("at", "id")
    links = CaseLink.objects.filter(report=report).select_related("case").order_by("linked_at", "id")
    claims = InsuranceClaim.objects.filter(report=report).prefetch_related("steps__by").order_by("id")
    return {
        "id": report.pk,
        "number": report.number,
        "received_at": _iso(report.received_at),
        "channel": report.channel,
        "station": report.station.name,
        "receiving_officer": report.receiving_officer.username if report.receiving_officer else None,
        "vehicle": report.vehicle_id,
        "unregistered_description": report.unregistered_description,
        "reporter_name": report.reporter_name,
        "reporter_phone": report.reporter_phone if full_identity else mask_phone(report.reporter_phone),
        "last_seen_at": _iso(report.last_seen_at),
        "missing_at": _iso(report.missing_at),
        "place_address": report.place_address,
        "place_point": [round(report.place_point.y, 7), round(report.place_point.x, 7)] if report.place_point else None,
        "township": report.township_id,
        "locked": report.locked,
        "narrative": report.narrative,
        "status": report.status,
        "workflow": [
            {
                "at": _iso(t.at),
                "from": t.from_status,
                "to": t.to_status,
                "by": t.by.username if t.by else None,
                "note": t.note,
            }
            for t in transitions
        ],
        "cases": [
            {"case": link.case.number, "linked_at": _iso(link.linked_at), "unlinked_at": _iso(link.unlinked_at)}
            for link in links
        ],
        "insurance_claims": [
            {
                "status": c.status,
                "amount": str(c.amount),
                "eligible_at": _iso(c.eligible_at),
                "paid_at": _iso(c.paid_at),
                "after_recovery": c.after_recovery,
                "steps": [
                    {"action": s.action, "at": _iso(s.at), "by": s.by.username if s.by else None, "note": s.note}
                    for s in c.steps.all()
                ],
            }
            for c in claims
        ],
    }


def _case_record(case: Case) -> dict[str, Any]:
    return {
        "id": case.pk,
        "number": case.number,
        "kind": case.kind,
        "station": case.station.name,
        "filed_on": _iso(case.filed_on),
        "approved_by": case.approved_by.username,  # type: ignore[union-attr]  # only approved cases are exported
        "officers": sorted(case.officers.values_list("username", flat=True)),
        "status": case.status,
        "summary": case.summary,
        "links": [
            {
                "report": link.report.number if link.report else None,
                "vehicle": link.vehicle_id,
                "linked_at": _iso(link.linked_at),
                "linked_by": link.linked_by.username,
                "unlinked_at": _iso(link.unlinked_at),
                "unlink_reason": link.unlink_reason,
            }
            for link in case.links.select_related("report", "linked_by").order_by("linked_at", "id")
        ],
    }


def _chunks(since: datetime.datetime, until: datetime.datetime) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """The period cut into spans tracing accepts (at most TRAJECTORY_MAX_SPAN each)."""
    spans, start = [], since
    while start < until:
        end = min(until, start + tracing.TRAJECTORY_MAX_SPAN)
        spans.append((start, end))
        start = end
    return spans


def _trajectory(vehicle_id: int, since: datetime.datetime, until: datetime.datetime) -> dict[str, Any]:
    """Every stored fix of the period in time order, page by page from cases.tracing.selectors."""
    points: list[dict[str, Any]] = []
    counts = {"count": 0, "outliers": 0, "invalid": 0}
    truncated = False
    for start, end in _chunks(since, until):
        after = None
        while True:
            page = tracing.vehicle_trajectory(
                vehicle_id=vehicle_id,
                since=start,
                until=end,
                point_cap=tracing.POINT_CAP_MAX,
                with_line=False,
                after=after,
            )
            if after is None:
                counts["count"] += page.count
                counts["outliers"] += page.outliers
                counts["invalid"] += page.invalid
            for p in page.points:
                points.append(
                    {
                        "time": _iso(p.time),
                        "lat": round(p.latitude, 7),
                        "lon": round(p.longitude, 7),
                        "speed_kmh": None if p.speed_kmh is None else round(p.speed_kmh, 1),
                        "course": None if p.course is None else round(p.course, 1),
                        "valid": p.valid,
                        "outlier": p.outlier,
                        "session": p.session_id,
                    }
                )
            if len(points) >= settings.EVIDENCE_MAX_POINTS:
                truncated = True
                break
            if not page.truncated:
                break
            after = page.next_after
        if truncated:
            break
    return {
        "vehicle": vehicle_id,
        "since": _iso(since),
        "until": _iso(until),
        **counts,
        "truncated": truncated,
        "points": points[: settings.EVIDENCE_MAX_POINTS],
    }


def _sessions(trajectories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gateway connections the bundle's points came in on: which address sent each position
    (behind the bureau's proxy, the address it reported, and the proxy's own)."""
    ids = {p["session"] for track in trajectories for p in track["points"] if p["session"] is not None}
    return [
        {
            "id": s.pk,
            "terminal": s.terminal.imei,
            "protocol": s.protocol,
            "remote_address": s.remote_address,
            "remote_port": s.remote_port,
            "via_address": s.via_address,
            "node": s.node,
            "started_at": _iso(s.started_at),
            "ended_at": _iso(s.ended_at),
            "end_reason": s.end_reason,
        }
        for s in TerminalSession.objects.filter(pk__in=ids).select_related("terminal").order_by("started_at", "pk")
    ]


def _stops(vehicle_id: int, since: datetime.datetime, until: datetime.datetime) -> list[dict[str, Any]]:
    found = []
    for start, end in _chunks(since, until):
        result = tracing.vehicle_stops(vehicle_id=vehicle_id, since=start, until=end, limit=tracing.STOPS_LIMIT_MAX)
        found.extend(result.stops)
    found.sort(key=lambda s: s.arrival)
    return [
        {
            "vehicle": vehicle_id,
            "latitude": round(s.latitude, 7),
            "longitude": round(s.longitude, 7),
            "arrival": _iso(s.arrival),
            "departure": _iso(s.departure),
            "dwell_minutes": round(s.dwell_seconds / 60, 1),
            "pings": s.pings,
            "spread_m": s.spread_m,
        }
        for s in found
    ]


def _audit_trail(scope: Scope) -> list[dict[str, Any]]:
    """Who looked at or changed the vehicles, reports, case and claims (and searches that
    revealed the vehicles' positions), oldest first."""
    wanted = Q()
    for vehicle in scope.vehicles:
        wanted |= Q(object_type="vehicle", object_id=str(vehicle.pk))
        wanted |= Q(query__vehicles__contains=[vehicle.pk]) | Q(query__nearby_vehicles__contains=[vehicle.pk])
    for report in scope.reports:
        wanted |= Q(object_type="theft_report", object_id=str(report.pk))
    claim_ids = InsuranceClaim.objects.filter(report__in=scope.reports).values_list("pk", flat=True)
    wanted |= Q(object_type="insurance_claim", object_id__in=[str(pk) for pk in claim_ids])
    if scope.case is not None:
        wanted |= Q(object_type="case", object_id=str(scope.case.pk))
    entries = AuditEntry.objects.filter(wanted).select_related("user").order_by("at", "id")
    return [
        {
            "id": e.pk,
            "at": _iso(e.at),
            "user": e.user.username if e.user else None,
            "action": e.action,
            "object": f"{e.object_type}:{e.object_id}" if e.object_type else "",
            "query": e.query,
            "result_count": e.result_count,
            "reason": e.reason,
            "ip": e.ip,
        }
        for e in entries
    ]


# --- export ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    data: dict[str, Any]

    @property
    def manifest(self) -> dict[str, Any]:
        return self.data["manifest"]

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical manifest: one fingerprint of the whole bundle."""
        return sha256(self.manifest)

    def json_bytes(self) -> bytes:
        return json.dumps(self.data, ensure_ascii=False, indent=1).encode()


def _period_problems(since: datetime.datetime | None, until: datetime.datetime | None) -> Problems:
    problems = Problems()
    if since is not None and until is not None and since >= until:
        problems.add("until", _("The end of the period must be after its start."))
    if since is not None and since > timezone.now():
        problems.add("since", _("The start of the period is in the future."))
    return problems


def _authorise(*, user: User, scope: Scope, reason: str, ip: str | None) -> list[Access]:
    """Exporting needs the export right, the duty on the report or case (cases.rules) and, for every
    bike, a duty that covers its period (cases.tracing.access.evidence_access): a stated reason
    alone exports nothing. A refusal is audited, then raised."""
    try:
        if not (user.is_authenticated and user.has_perm("cases.export_evidence")):
            raise PermissionDenied(_("Your role cannot export evidence."))
        if scope.case is not None:
            if not user.has_perm("cases.export_case_evidence", scope.case):
                raise PermissionDenied(_("Only the officers of an approved case export its evidence."))
        elif not all(user.has_perm("cases.export_report_evidence", report) for report in scope.reports):
            raise PermissionDenied(_("Only the receiving and assigned officers of an open report export its evidence."))
        return [evidence_access(user=user, vehicle=v, since=scope.periods[v.pk][0]) for v in scope.vehicles]
    except PermissionDenied as exc:
        audit_record(
            user=user,
            action="evidence.export",
            object_type=scope.subject["type"],
            object_id=scope.subject["id"],
            query={"refused": str(exc)},
            reason=reason,
            ip=ip,
        )
        raise


def _build(*, user: User, scope: Scope, reason: str, fmt: str, ip: str | None, accesses: list[Access]) -> Bundle:
    full_identity = user.has_perm("vehicles.view_full_identity")
    trajectories, stops = [], []
    for vehicle in scope.vehicles:
        since, until = scope.periods[vehicle.pk]
        trajectories.append(_trajectory(vehicle.pk, since, until))
        stops.extend(_stops(vehicle.pk, since, until))
    content: dict[str, Any] = {
        "subject": scope.subject,
        "case": _case_record(scope.case) if scope.case is not None else None,
        "reports": [_report_record(r, full_identity=full_identity) for r in scope.reports],
        "vehicles": [_vehicle_record(v, full_identity=full_identity) for v in scope.vehicles],
        "trajectories": trajectories,
        "stops": stops,
        "sessions": _sessions(trajectories),
        "audit": _audit_trail(scope),
    }
    key = signing_key()
    public = key.public_key()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": _iso(timezone.now()),
        "exported_by": {
            "username": user.username,
            "name": user.get_full_name(),
            "station": user.station.name if user.station is not None else None,
        },
        "subject": scope.subject,
        "reason": reason,
        "basis": sorted({a.basis for a in accesses}),
        "identity": "full" if full_identity else "masked",
        "hash": "sha256",
        "canonical_json": "UTF-8, keys sorted, separators ',' and ':', no whitespace",
        "sections": {path: sha256(value) for path, value in sections(content).items()},
        "key": {
            "algorithm": SIGNATURE_ALGORITHM,
            "public_key": base64.b64encode(public_raw(public)).decode(),
            "fingerprint": fingerprint(public),
        },
    }
    signature = key.sign(canonical(manifest))
    bundle = Bundle(
        {
            "format": FORMAT,
            "manifest": manifest,
            "signature": {"algorithm": SIGNATURE_ALGORITHM, "value": base64.b64encode(signature).decode()},
            "content": content,
        }
    )
    audit_record(
        user=user,
        action="evidence.export",
        object_type=scope.subject["type"],
        object_id=scope.subject["id"],
        query={
            "format": fmt,
            "manifest_sha256": bundle.digest,
            "key": manifest["key"]["fingerprint"],
            "vehicles": [v.pk for v in scope.vehicles],
            "basis": manifest["basis"],
            "periods": {str(k): [_iso(a), _iso(b)] for k, (a, b) in scope.periods.items()},
        },
        result_count=sum(len(t["points"]) for t in trajectories),
        reason=reason,
        ip=ip,
    )
    return bundle


FORMATS = ("json", "pdf")


def _format_problem(problems: Problems, fmt: str) -> None:
    if fmt not in FORMATS:
        problems.add("format", _("The format is json or pdf."))


def report_evidence_export(
    *,
    user: User,
    report_id: int,
    fmt: str = "json",
    reason: str = "",
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    ip: str | None = None,
) -> Bundle:
    """The evidence of one theft report: its bike's record, positions from when it was last seen
    until it was found (or now; `since`/`until` narrow or widen that), stops and audit trail."""
    report = TheftReport.objects.select_related("station", "receiving_officer", "vehicle__owner").get(pk=report_id)
    problems = _period_problems(since, until)
    _format_problem(problems, fmt)
    if report.vehicle is None:
        problems.add("report", _("The report is about a bike not in the registry: there is no record or trajectory."))
    problems.raise_if_any()
    vehicle: Vehicle = report.vehicle  # type: ignore[assignment]  # None was refused above
    default_since, default_until = report_period(report)
    period = (since or default_since, until or default_until)
    if period[0] >= period[1]:
        raise ValidationError({"until": [_("The end of the period must be after its start.")]})
    scope = Scope(
        subject={"type": "theft_report", "id": report.pk, "number": report.number},
        reports=[report],
        vehicles=[vehicle],
        periods={vehicle.pk: period},
    )
    accesses = _authorise(user=user, scope=scope, reason=reason, ip=ip)
    return _build(user=user, scope=scope, reason=reason, fmt=fmt, ip=ip, accesses=accesses)


def case_evidence_export(
    *, user: User, case_id: int, fmt: str = "json", reason: str = "", ip: str | None = None
) -> Bundle:
    """The evidence of a case: every report and bike linked to it (and not unlinked), each bike's
    positions over its report's period (linked bikes without a report: from what the case's duty opens)."""
    case = Case.objects.select_related("station", "approved_by").get(pk=case_id)
    problems = Problems()
    _format_problem(problems, fmt)
    links = list(
        CaseLink.objects.filter(case=case, unlinked_at__isnull=True)
        .select_related("report__station", "report__receiving_officer", "report__vehicle__owner", "vehicle__owner")
        .order_by("linked_at", "id")
    )
    if not links:
        problems.add("case", _("Nothing is linked to this case: link its reports or bikes first."))
    problems.raise_if_any()
    reports = [link.report for link in links if link.report is not None]
    vehicles: dict[int, Vehicle] = {}
    periods: dict[int, tuple[datetime.datetime, datetime.datetime]] = {}
    for report in reports:
        if report.vehicle is not None:
            vehicles[report.vehicle.pk] = report.vehicle
            periods[report.vehicle.pk] = report_period(report)
    opened = duties.case_positions_since(case)  # what the case's duty opens
    for link in links:
        if link.vehicle is not None and link.vehicle.pk not in vehicles:
            vehicles[link.vehicle.pk] = link.vehicle
            periods[link.vehicle.pk] = (opened, timezone.now())
    scope = Scope(
        subject={"type": "case", "id": case.pk, "number": case.number},
        reports=reports,
        vehicles=list(vehicles.values()),
        periods=periods,
        case=case,
    )
    accesses = _authorise(user=user, scope=scope, reason=reason, ip=ip)
    return _build(user=user, scope=scope, reason=reason, fmt=fmt, ip=ip, accesses=accesses)


# --- verification ----------------------------------------------------------------------------------------


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""
    subject: str = ""
    sections: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems


def _describe(path: str, content: dict[str, Any]) -> str:
    """A reader's name for a section: the points block with its times, the report number …"""
    try:
        if path.startswith("trajectories[") and ".points[" in path:
            index = int(path[len("trajectories[") : path.index("]")])
            start, end = (int(n) for n in path[path.rindex("[") + 1 : -1].split(":"))
            track = content["trajectories"][index]
            points = track["points"]
            first, last = points[start]["time"], points[min(end, len(points)) - 1]["time"]
            return _("trajectory points %(a)d–%(b)d of vehicle %(v)s (%(first)s – %(last)s)") % {
                "a": start + 1,
                "b": end,
                "v": track["vehicle"],
                "first": first,
                "last": last,
            }
        if path.startswith("reports[") and "]" in path and "." not in path:
            return _("theft report %(n)s") % {"n": content["reports"][int(path[8:-1])]["number"]}
        if path.startswith("vehicles[") and "." not in path:
            return _("filing record of frame number %(n)s") % {
                "n": content["vehicles"][int(path[9:-1])]["frame_number"]
            }
        if path.startswith("audit[") and "." not in path:
            entry = content["audit"][int(path[6:-1])]
            return _("audit entry %(id)s (%(action)s at %(at)s)") % {
                "id": entry.get("id"),
                "action": entry.get("action"),
                "at": entry.get("at"),
            }
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return path


def bundle_verify(raw: bytes, *, trusted: list[Ed25519PublicKey] | None = None) -> Verification:
    """Check a bundle: its signature over the manifest, the key against the trusted keys (when
    given), and every section's hash; every problem is named."""
    result = Verification()
    try:
        _bundle_check(raw, trusted, result)
    except RecursionError:  # "[[[[…": nested past what reading or hashing it can follow
        result.problems.append(_("The file is nested deeper than any bundle: it was altered or is not a bundle."))
    return result


def _bundle_check(raw: bytes, trusted: list[Ed25519PublicKey] | None, result: Verification) -> None:
    data = _bundle_parts(raw, result)
    if data is None:
        return
    manifest, signature, content = data["manifest"], data["signature"], data["content"]
    subject = manifest.get("subject") or {}
    result.subject = f"{subject.get('type')} {subject.get('number')}" if isinstance(subject, dict) else ""
    _verify_signature(manifest, signature, result)
    _verify_key(trusted, result)
    _verify_sections(manifest, content, result)


def _bundle_parts(raw: bytes, result: Verification) -> dict[str, Any] | None:
    """The bundle's JSON when it is a bundle with a manifest, signature and content; None (with
    the problem in `result`) when it is not."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        result.problems.append(
            _("The file is not UTF-8 text (byte %(pos)d): it was altered or is not a bundle.") % {"pos": exc.start}
        )
        return None
    except json.JSONDecodeError as exc:
        result.problems.append(
            _("The file is not valid JSON at line %(line)d, column %(col)d (%(msg)s): it was altered or truncated.")
            % {"line": exc.lineno, "col": exc.colno, "msg": exc.msg}
        )
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        result.problems.append(_("This is not an evidence bundle of format %(f)s.") % {"f": FORMAT})
        return None
    manifest, signature, content = data.get("manifest"), data.get("signature"), data.get("content")
    if not isinstance(manifest, dict) or not isinstance(signature, dict) or not isinstance(content, dict):
        result.problems.append(_("The bundle lacks its manifest, signature or content."))
        return None
    return data


def _verify_signature(manifest: dict[str, Any], signature: dict[str, Any], result: Verification) -> None:
    """The signature over the manifest, with the key the manifest names."""
    try:
        embedded = Ed25519PublicKey.from_public_bytes(base64.b64decode(manifest["key"]["public_key"], validate=True))
        result.fingerprint = fingerprint(embedded)
        embedded.verify(base64.b64decode(signature["value"], validate=True), canonical(manifest))
    except InvalidSignature:
        result.problems.append(
            _(
                "The signature does not match the manifest: the manifest (section hashes, export details or key) "
                "or the signature was altered."
            )
        )
    except (KeyError, TypeError, ValueError):
        result.problems.append(_("The manifest's key or the signature is missing or malformed."))


def _verify_key(trusted: list[Ed25519PublicKey] | None, result: Verification) -> None:
    """The signing key against the published ones, or a note to compare it by hand."""
    if trusted is not None and result.fingerprint:
        trusted_prints = {fingerprint(k) for k in trusted}
        if result.fingerprint not in trusted_prints:
            result.problems.append(
                _("The bundle was signed with key %(got)s, not with the bureau's key %(want)s.")
                % {"got": result.fingerprint, "want": ", ".join(sorted(trusted_prints))}
            )
    elif trusted is None and result.fingerprint:
        result.notes.append(
            _("Checked with the key inside the bundle only; compare %(fp)s with the bureau's published key.")
            % {"fp": result.fingerprint}
        )


def _verify_sections(manifest: dict[str, Any], content: dict[str, Any], result: Verification) -> None:
    """Every section against its hash in the manifest: removed, altered and added ones named."""
    expected = manifest.get("sections")
    if not isinstance(expected, dict):
        result.problems.append(_("The manifest has no section hashes."))
        return
    actual = {path: sha256(value) for path, value in sections(content).items()}
    result.sections = len(expected)
    for path in expected:
        if path not in actual:
            result.problems.append(_("Removed: %(what)s is missing from the content.") % {"what": path})
        elif actual[path] != expected[path]:
            result.problems.append(
                _("Altered: %(what)s does not match its SHA-256 in the manifest.") % {"what": _describe(path, content)}
            )
    for path in actual:
        if path not in expected:
            result.problems.append(
                _("Added: %(what)s is not in the signed manifest.") % {"what": _describe(path, content)}
            )
