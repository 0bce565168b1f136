"""Terminals: registering them, fitting them to bikes, removing and replacing them."""

import re
import secrets
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from stdnum import imei as stdnum_imei

from accounts.models import User
from tracking.ingest import FLAG_MISSING_SQL
from tracking.models import IngestToken, Terminal, TerminalInstallation
from tracking.pings_http import token_digest
from vehicles.models import Vehicle
from vehicles.services.problems import Problems

JT808_PHONE_RE = re.compile(r"^\d{11,20}$")


def imei_problem(value: str) -> str | None:
    if not re.fullmatch(r"\d{15}", value):
        return _("An IMEI has 15 digits.")
    if not stdnum_imei.is_valid(value):
        return _("The IMEI's last digit (Luhn check) is wrong; re-read the label on the terminal.")
    return None


def terminal_register(
    *,
    imei: str,
    protocol: str,
    phone: str = "",
    sim_iccid: str = "",
    source: str = Terminal.Source.AFTERMARKET,
    heartbeat_interval_s: int = 300,
) -> Terminal:
    """Record a terminal in the registry. JT/T 808 terminals get an auth code for the 0x8100 reply."""
    imei = imei.strip()
    phone = phone.strip()
    problems = Problems()
    problems.add("imei", imei_problem(imei))
    if protocol not in Terminal.Protocol.values:
        problems.add("protocol", _("Protocol must be one of: %(p)s.") % {"p": ", ".join(Terminal.Protocol.values)})
    if protocol == Terminal.Protocol.JT808 and not phone:
        problems.add("phone", _("A JT/T 808 terminal needs its terminal phone number."))
    if phone and not JT808_PHONE_RE.match(phone):
        problems.add("phone", _("The terminal phone has 11 to 20 digits."))
    if source not in Terminal.Source.values:
        problems.add("source", _("Unknown terminal source."))
    if not 10 <= heartbeat_interval_s <= 86400:
        problems.add("heartbeat_interval_s", _("The heartbeat interval must be between 10 s and one day."))
    if not problems.has("imei") and Terminal.objects.filter(imei=imei).exists():
        problems.add("imei", _("This terminal is already registered."))
    if phone and not problems.has("phone") and Terminal.objects.filter(phone=phone).exists():
        problems.add("phone", _("Another terminal uses this terminal phone."))
    problems.raise_if_any()
    try:
        return Terminal.objects.create(
            imei=imei,
            protocol=protocol,
            phone=phone,
            sim_iccid=sim_iccid.strip(),
            source=source,
            heartbeat_interval_s=heartbeat_interval_s,
            auth_code=secrets.token_hex(8) if protocol == Terminal.Protocol.JT808 else "",
        )
    except IntegrityError as exc:  # registered by another counter a moment ago
        raise ValidationError({"imei": _("This terminal is already registered.")}) from exc


def terminal_bind(*, clerk: User, terminal_id: int, vehicle_id: int, owner_consent: bool) -> TerminalInstallation:
    """Fit a terminal to a bike (at registration or later), with the owner's consent to positioning."""
    if clerk.station_id is None:
        raise PermissionDenied(_("Your account is not assigned to a police station."))
    with transaction.atomic():
        terminal = Terminal.objects.select_for_update().get(pk=terminal_id)
        vehicle = Vehicle.objects.select_for_update().get(pk=vehicle_id)
        problems = Problems()
        if not owner_consent:
            problems.add("owner_consent", _("Positioning needs the owner's consent; record it first."))
        if terminal.vehicle_id is not None:
            problems.add("terminal", _("This terminal is fitted to another bike; remove it there first."))
        if not terminal.active:
            problems.add("terminal", _("This terminal is retired."))
        if vehicle.status == Vehicle.Status.DEREGISTERED:
            problems.add("vehicle", _("The bike is deregistered."))
        if Terminal.objects.filter(vehicle=vehicle).exists():
            problems.add("vehicle", _("The bike already has a terminal; replace it instead."))
        problems.raise_if_any()
        now = timezone.now()
        terminal.vehicle = vehicle
        terminal.consent_at = now
        terminal.save(update_fields=["vehicle", "consent_at"])
        last_positions_flag_missing(terminal_ids=[terminal.pk])
        return TerminalInstallation.objects.create(
            terminal=terminal, vehicle=vehicle, installed_at=now, installed_by=clerk, station=clerk.station
        )


SOME_TERMINALS = " AND (t.id = ANY(%(terminals)s) OR t.vehicle_id = ANY(%(vehicles)s))"


def last_positions_flag_missing(*, terminal_ids: Iterable[int] = (), vehicle_ids: Iterable[int] = ()) -> None:
    """Bring `LastPosition.missing_point` (set while the bike is missing) in line with the stolen
    state of the bike each of these terminals (or the terminal of each of these bikes) is fitted to
    now. Call it in the transaction that marks a bike stolen or clears it, and after fitting or
    removing a terminal."""
    with connection.cursor() as cursor:
        cursor.execute(
            FLAG_MISSING_SQL + SOME_TERMINALS, {"terminals": list(terminal_ids), "vehicles": list(vehicle_ids)}
        )


def last_positions_reconcile_missing() -> int:
    """The same over every terminal; returns how many flags were wrong. A terminal's very first
    position stored while its bike is being reported stolen in another transaction can miss the
    flag; the nightly beat task (and bulk loads) put that right."""
    with connection.cursor() as cursor:
        cursor.execute(FLAG_MISSING_SQL)
        return cursor.rowcount


def terminal_unbind(*, clerk: User, terminal_id: int, reason: str) -> TerminalInstallation:
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the terminal is removed.")})
    with transaction.atomic():
        terminal = Terminal.objects.select_for_update().get(pk=terminal_id)
        installation = TerminalInstallation.objects.filter(terminal=terminal, removed_at__isnull=True).first()
        if installation is None or terminal.vehicle_id is None:
            raise ValidationError({"terminal": _("This terminal is not fitted to a bike.")})
        installation.removed_at = timezone.now()
        installation.removed_by = clerk
        installation.removal_reason = reason.strip()
        installation.save(update_fields=["removed_at", "removed_by", "removal_reason"])
        terminal.vehicle = None
        terminal.save(update_fields=["vehicle"])
        last_positions_flag_missing(terminal_ids=[terminal.pk])
        return installation


def terminal_replace(*, clerk: User, vehicle_id: int, new_terminal_id: int, reason: str) -> TerminalInstallation:
    """Swap a bike's terminal for another one in one step (faulty or damaged terminal)."""
    with transaction.atomic():
        current = Terminal.objects.filter(vehicle_id=vehicle_id).first()
        if current is None:
            raise ValidationError({"vehicle": _("The bike has no terminal to replace.")})
        terminal_unbind(clerk=clerk, terminal_id=current.pk, reason=reason)
        return terminal_bind(clerk=clerk, terminal_id=new_terminal_id, vehicle_id=vehicle_id, owner_consent=True)


def ingest_token_create(*, name: str, terminal: Terminal | None = None) -> tuple[IngestToken, str]:
    """A new token for POST /api/v1/pings; the raw token is returned once and never stored."""
    if not name.strip():
        raise ValidationError({"name": _("Name the integration or terminal the token is for.")})
    raw = secrets.token_urlsafe(32)
    token = IngestToken.objects.create(name=name.strip(), token_sha256=token_digest(raw), terminal=terminal)
    return token, raw
