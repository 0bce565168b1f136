"""The printable form of an evidence bundle (cases.evidence.services): every page carries the manifest's
SHA-256 and the key fingerprint, so the paper points at the signed JSON bundle it was printed from.

Chinese text uses reportlab's built-in CID font STSong-Light (Adobe-GB1), which PDF readers supply:
no font file ships with the application and none is embedded.
"""

import datetime
import io
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import formats
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from accounts.labels import audit_action_label, object_type_label
from cases.evidence.services import Bundle, load_public_key, public_key_pem
from cases.models import Case, InsuranceClaim, ReportStatus, TheftReport
from vehicles.models import Plate, RegistrationEvent, Vehicle

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

BODY = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, wordWrap="CJK")
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7, leading=9)
TITLE = ParagraphStyle("title", parent=BODY, fontSize=16, leading=22, alignment=TA_CENTER, spaceAfter=6)
HEADING = ParagraphStyle("heading", parent=BODY, fontSize=12, leading=16, spaceBefore=10, spaceAfter=4)
WIDTH = A4[0] - 30 * mm


def _p(value: Any, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape("" if value is None else str(value)), style)


def _kv(rows: list[tuple[str, Any]]) -> Table:
    table = Table([[_p(k), _p(v)] for k, v in rows], colWidths=[40 * mm, WIDTH - 40 * mm])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef2f6")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _list(header: list[str], rows: list[list[Any]], widths: list[float], style: ParagraphStyle = SMALL) -> Table:
    data = [[_p(h, style) for h in header]] + [[_p(c, style) for c in row] for row in rows]
    table = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f6")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _label(choices: Any, value: str | None) -> str:
    """The readable label of a stored code (the bundle keeps the codes)."""
    try:
        return str(choices(value).label)
    except ValueError:
        return value or ""


def _object(value: str) -> str:
    """An audit row's object ("vehicle:7") as read: its kind by name, then its id."""
    kind, _sep, ident = value.partition(":")
    return f"{object_type_label(kind)} {ident}".strip()


def _time(value: str | None) -> str:
    """A time of the bundle (ISO 8601 in the county's time zone, exact to the second) as the pages
    write it (DATETIME_FORMAT, ebike_registry/formats): 2026-11-28 10:15, in the time zone it has."""
    if not value:
        return ""
    if "T" not in value:  # a date
        return formats.date_format(datetime.date.fromisoformat(value), "DATE_FORMAT")
    return formats.date_format(datetime.datetime.fromisoformat(value), "DATETIME_FORMAT")


def render_pdf(bundle: Bundle) -> bytes:
    """The bundle as printed: a cover, then one section per part of the content, in this order."""
    manifest, content = bundle.data["manifest"], bundle.data["content"]
    title = _title(manifest["subject"])
    story: list[Any] = _cover(bundle, title)
    if content.get("case"):
        story += _case_section(content["case"])
    for report in content["reports"]:
        story += _report_section(report)
    for vehicle in content["vehicles"]:
        story += _vehicle_section(vehicle)
    for track in content["trajectories"]:
        story += _trajectory_section(track, limit=settings.EVIDENCE_PDF_POINTS)
    if content.get("sessions"):
        story += _sessions_section(content["sessions"])
    story += _stops_section(content["stops"])
    story += _audit_section(content["audit"])
    story.append(_public_key_section(manifest))
    return _build(story, bundle=bundle, title=title)


def _title(subject: dict[str, Any]) -> str:
    return (
        _("Evidence of case %(n)s (案件证据材料)")
        if subject["type"] == "case"
        else _("Evidence of theft report %(n)s (接警证据材料)")
    ) % {"n": subject["number"]}


def _cover(bundle: Bundle, title: str) -> list[Any]:
    """The title, who exported the bundle and when, its digest and signature, and how to verify it."""
    manifest = bundle.data["manifest"]
    exported = manifest["exported_by"]
    return [
        _p(title, TITLE),
        _kv(
            [
                (
                    _("Exported by"),
                    f"{exported['name'] or exported['username']} ({exported['username']}) {exported['station'] or ''}",
                ),
                (_("Exported at"), _time(manifest["created_at"])),
                (_("Time zone of all times"), "UTC" + manifest["created_at"][-6:]),
                (_("Reason"), manifest["reason"] or "—"),
                (_("Legal basis"), ", ".join(manifest["basis"])),
                (_("Manifest SHA-256"), bundle.digest),
                (_("Signing key (Ed25519)"), manifest["key"]["fingerprint"]),
                (_("Signature"), bundle.data["signature"]["value"]),
                (_("Sections"), len(manifest["sections"])),
            ]
        ),
        _p(
            _(
                "This document is printed from the signed JSON evidence bundle with the manifest digest above. "
                "Verify the bundle with: python manage.py verify_evidence BUNDLE.json --public-key KEY.pem"
            ),
            SMALL,
        ),
    ]


def _case_section(case: dict[str, Any]) -> list[Any]:
    return [
        _p(_("Case"), HEADING),
        _kv(
            [
                (_("Case number"), case["number"]),
                (_("Type"), _label(Case.Kind, case["kind"])),
                (_("Handling station"), case["station"]),
                (_("Filed on"), case["filed_on"]),
                (_("Approved by"), case["approved_by"]),
                (_("Officers"), "、".join(case["officers"])),
                (_("Status"), _label(Case.Status, case["status"])),
                (_("Summary"), case["summary"]),
            ]
        ),
    ]


def _report_section(report: dict[str, Any]) -> list[Any]:
    """A theft report: what was reported, its workflow, and the insurance claims made on it."""
    story: list[Any] = [
        _p(_("Theft report %(n)s") % {"n": report["number"]}, HEADING),
        _kv(
            [
                (
                    _("Received at"),
                    f"{_time(report['received_at'])} · {_label(TheftReport.Channel, report['channel'])}",
                ),
                (_("Station"), report["station"]),
                (_("Receiving officer"), report["receiving_officer"] or "—"),
                (_("Reporting person"), f"{report['reporter_name']} {report['reporter_phone']}"),
                (
                    _("Last seen / found missing"),
                    f"{_time(report['last_seen_at'])} — {_time(report['missing_at'])}",
                ),
                (_("Place"), f"{report['place_address']} {report['place_point'] or ''}"),
                (_("Circumstances"), report["narrative"]),
                (_("Status"), _label(ReportStatus, report["status"])),
            ]
        ),
        Spacer(1, 2 * mm),
        _list(
            [_("Time"), _("From"), _("To"), _("Officer"), _("Note")],
            [
                [_time(t["at"]), _label(ReportStatus, t["from"]), _label(ReportStatus, t["to"]), t["by"], t["note"]]
                for t in report["workflow"]
            ],
            [32, 30, 30, 25, 63],
        ),
    ]
    story.extend(
        _p(
            _("Insurance claim: %(s)s, %(a)s yuan")
            % {"s": _label(InsuranceClaim.Status, claim["status"]), "a": claim["amount"]},
            BODY,
        )
        for claim in report["insurance_claims"]
    )
    return story


def _vehicle_section(vehicle: dict[str, Any]) -> list[Any]:
    """A bike's filing record: the bike, its plates, owner and terminals, then its history."""
    owner = vehicle["owner"]
    plates = ", ".join(f"{p['number']} ({_label(Plate.Status, p['status'])})" for p in vehicle["plates"])
    terminals = ", ".join(
        f"{t['imei']} ({_time(t['installed_at'])} – {_time(t['removed_at'])})" for t in vehicle["terminals"]
    )
    return [
        _p(_("Filing record of frame number %(n)s") % {"n": vehicle["frame_number"]}, HEADING),
        _kv(
            [
                (
                    _("Bike"),
                    f"{vehicle['manufacturer']} {vehicle['brand']} {vehicle['model']} · {vehicle['colour']}",
                ),
                (_("Frame / motor number"), f"{vehicle['frame_number']} / {vehicle['motor_number']}"),
                (_("Plates"), plates or "—"),
                (_("Owner"), f"{owner['name']} {owner['id_number']} {owner['phone']}"),
                (_("Address"), owner["address"]),
                (_("Purchase"), f"{vehicle['purchase_date']} · {vehicle['purchase_price']}"),
                (_("Registered at"), f"{_time(vehicle['registered_at'])} · {vehicle['station']}"),
                (_("Status"), _label(Vehicle.Status, vehicle["status"])),
                (_("Terminals"), terminals or "—"),
            ]
        ),
        Spacer(1, 2 * mm),
        _list(
            [_("Time"), _("Operation"), _("Clerk"), _("Station"), _("Reason")],
            [
                [_time(e["at"]), _label(RegistrationEvent.Kind, e["kind"]), e["clerk"], e["station"], e["reason"]]
                for e in vehicle["history"]
            ],
            [32, 28, 25, 50, 45],
        ),
    ]


def _trajectory_section(track: dict[str, Any], *, limit: int) -> list[Any]:
    """A bike's fixes over the bundle's period: the counts, then the first `limit` points."""
    points = track["points"]
    story: list[Any] = [
        _p(_("Trajectory of vehicle %(v)s") % {"v": track["vehicle"]}, HEADING),
        _p(
            _(
                "%(since)s – %(until)s: %(count)d fixes stored (%(outliers)d flagged as outliers, %(invalid)d "
                "without GPS lock), %(n)d in the bundle."
            )
            % {
                "since": _time(track["since"]),
                "until": _time(track["until"]),
                "count": track["count"],
                "outliers": track["outliers"],
                "invalid": track["invalid"],
                "n": len(points),
            }
        ),
    ]
    if len(points) > limit:
        story.append(_p(_("The first %(n)d points are printed; the JSON bundle holds them all.") % {"n": limit}, SMALL))
    story.append(
        _list(
            ["#", _("Time"), _("Latitude"), _("Longitude"), _("Speed km/h"), _("Note")],
            [
                [
                    i + 1,
                    _time(p["time"]),
                    f"{p['lat']:.6f}",
                    f"{p['lon']:.6f}",
                    "" if p["speed_kmh"] is None else p["speed_kmh"],
                    _("outlier") if p["outlier"] else ("" if p["valid"] else _("no GPS lock")),
                ]
                for i, p in enumerate(points[:limit])
            ],
            [14, 40, 30, 30, 22, 44],
        )
    )
    return story


def _sessions_section(sessions: list[dict[str, Any]]) -> list[Any]:
    """The gateway connections the positions came in on."""
    return [
        _p(_("Where the positions came from: the terminals' gateway connections"), HEADING),
        _list(
            [_("Session"), _("Terminal"), _("Remote address"), _("Via proxy"), _("Logged in"), _("Ended")],
            [
                [
                    s["id"],
                    s["terminal"],
                    f"{s['remote_address']}:{s['remote_port']}",
                    s["via_address"] or "",
                    _time(s["started_at"]),
                    _time(s["ended_at"]),
                ]
                for s in sessions
            ],
            [18, 32, 40, 28, 32, 32],
        ),
    ]


def _stops_section(stops: list[dict[str, Any]]) -> list[Any]:
    return [
        _p(_("Stops"), HEADING),
        _list(
            [_("Vehicle"), _("Arrival"), _("Departure"), _("Minutes"), _("Latitude"), _("Longitude"), _("Fixes")],
            [
                [
                    s["vehicle"],
                    _time(s["arrival"]),
                    _time(s["departure"]),
                    s["dwell_minutes"],
                    f"{s['latitude']:.6f}",
                    f"{s['longitude']:.6f}",
                    s["pings"],
                ]
                for s in stops
            ],
            [16, 34, 34, 18, 28, 28, 22],
        ),
    ]


def _audit_section(audit: list[dict[str, Any]]) -> list[Any]:
    return [
        _p(_("Audit trail: who looked at or changed these records"), HEADING),
        _list(
            [_("Time"), _("User"), _("Action"), _("Object"), _("Reason")],
            [
                [
                    _time(e["at"]),
                    e["user"] or _("system"),
                    audit_action_label(e["action"]),
                    _object(e["object"]),
                    e["reason"],
                ]
                for e in audit
            ],
            [32, 25, 38, 35, 50],
        ),
    ]


def _public_key_section(manifest: dict[str, Any]) -> KeepTogether:
    return KeepTogether(
        [
            _p(_("Public key for verification"), HEADING),
            _p(public_key_pem(load_public_key(manifest["key"]["public_key"].encode())).replace("\n", " "), SMALL),
        ]
    )


def _page_decoration(bundle: Bundle) -> Callable[[Any, Any], None]:
    """Drawn on every page: who exported it and when, faintly across the page (the bundle has full
    identity for officers allowed to see it), and a footer with the digest, key and page number."""
    manifest = bundle.data["manifest"]
    footer = [
        _("Manifest SHA-256 %(d)s") % {"d": bundle.digest},
        _("Signing key %(k)s") % {"k": manifest["key"]["fingerprint"]},
    ]
    watermark = f"{manifest['exported_by']['username']} · {_time(manifest['created_at'])}"

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 11)
        canvas.setFillGray(0.88)
        for row in range(6):
            for column in range(2):
                canvas.saveState()
                canvas.translate(30 * mm + column * 95 * mm, 30 * mm + row * 45 * mm)
                canvas.rotate(24)
                canvas.drawString(0, 0, watermark)
                canvas.restoreState()
        canvas.setFillGray(0)
        canvas.setFont(FONT, 6.5)
        canvas.drawString(15 * mm, 9 * mm, footer[0])
        canvas.drawString(15 * mm, 6 * mm, footer[1])
        canvas.drawRightString(A4[0] - 15 * mm, 9 * mm, _("Page %(n)d") % {"n": doc.page})
        canvas.restoreState()

    return on_page


def _build(story: list[Any], *, bundle: Bundle, title: str) -> bytes:
    """Lay the story out on A4 pages, each decorated, with the document's metadata."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=title,
        author=bundle.data["manifest"]["exported_by"]["username"],
        subject=bundle.digest,
    )
    on_page = _page_decoration(bundle)
    document.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()
