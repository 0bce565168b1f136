"""Terminals: registering them, fitting them to bikes, removing and replacing them, and the secrets
that prove who they are (JT/T 808 auth code reset, OsmAnd key)."""

import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from stdnum import imei as stdnum_imei

from accounts.audit import audit_record
from accounts.models import User
from ebike_registry.problems import Problems
from tracking.gateway.terminals import secret_digest
from tracking.ingest import FLAG_MISSING_SQL
from tracking.models import IngestToken, Terminal, TerminalInstallation
from vehicles.models import Vehicle

JT808_PHONE_RE = re.compile(r"^\d{11,20}$")
# What a JT/T 808 register carries in its terminal ID, maker and model fields (ASCII, no spaces).
JT808_FIELD_RE = re.compile(r"^[0-9A-Za-z._-]+$")
JT808_FIELDS = {"jt808_device_id": 30, "maker": 11, "model_code": 30}
# OsmAnd keys are typed into the phone's server URL: no look-alike characters, ~99 bits.
OSMAND_KEY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
OSMAND_KEY_LENGTH = 20


def imei_problem(value: str) -> str | None:
    if not re.fullmatch(r"\d{15}", value):
        return _("An IMEI has 15 digits.")
    if not stdnum_imei.is_valid(value):
        return _("The IMEI's last digit (Luhn check) is wrong; re-read the label on the terminal.")
    return None


def _new_terminal_problems(
    *,
    imei: str,
    protocol: str,
    phone: str,
    source: str,
    heartbeat_interval_s: int,
    identity: dict[str, str],
) -> Problems:
    """What is wrong with the fields of a terminal about to be registered (stripped values)."""
    problems = Problems()
    for name, value in identity.items():
        if not value:
            continue
        if protocol != Terminal.Protocol.JT808:
            problems.add(name, _("Only JT/T 808 terminals register with a terminal ID, maker and model."))
        elif len(value) > JT808_FIELDS[name] or not JT808_FIELD_RE.match(value):
            problems.add(
                name,
                _("Up to %(n)s letters, digits, dots, hyphens or underscores, as the terminal sends it.")
                % {"n": JT808_FIELDS[name]},
            )
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
    if phone and not problems.has("phone") and Terminal.objects.filter(phone=phone).exists():
        problems.add("phone", _("Another terminal uses this terminal phone."))
    return problems


def terminal_register(
    *,
    imei: str,
    protocol: str,
    phone: str = "",
    sim_iccid: str = "",
    source: str = Terminal.Source.AFTERMARKET,
    heartbeat_interval_s: int = 300,
    jt808_device_id: str = "",
    maker: str = "",
    model_code: str = "",
) -> Terminal:
    """Record a terminal in the registry. A JT/T 808 terminal gets its auth code from the gateway at
    its first register that names this terminal ID (by default the IMEI or its last 7 digits), and
    this maker and model when they are given."""
    imei = imei.strip()
    phone = phone.strip()
    identity = {"jt808_device_id": jt808_device_id.strip(), "maker": maker.strip(), "model_code": model_code.strip()}
    problems = _new_terminal_problems(
        imei=imei,
        protocol=protocol,
        phone=phone,
        source=source,
        heartbeat_interval_s=heartbeat_interval_s,
        identity=identity,
    )
    if not problems.has("imei") and Terminal.objects.filter(imei=imei).exists():
        problems.add("imei", _("This terminal is already registered."))
    problems.raise_if_any()
    try:
        return Terminal.objects.create(
            imei=imei,
            protocol=protocol,
            phone=phone,
            sim_iccid=sim_iccid.strip(),
            source=source,
            heartbeat_interval_s=heartbeat_interval_s,
            **identity,
        )
    except IntegrityError as exc:  # registered by another counter a moment ago
        raise ValidationError({"imei": _("This terminal is already registered.")}) from exc


def terminal_bind(*, clerk: User, terminal_id: int, vehicle_id: int, owner_consent: bool) -> TerminalInstallation:
    """Fit a terminal to a bike (at registration or later), with the owner's consent to positioning.
    The counter page and the APIs go through `terminal_fit`, and `terminal_replace` through its own
    check, which check the bike's state first; this is their last step."""
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
        return TerminalInstallation.objects.create(  # type: ignore[misc]  # clerks have a station (NOT NULL)
            terminal=terminal, vehicle=vehicle, installed_at=now, installed_by=clerk, station=clerk.station
        )


# Why a bike takes no terminal at the counter now, by its state.
FIT_REFUSED_STATES: dict[str, Promise] = {
    Vehicle.Status.STOLEN: _lazy("The bike is reported stolen: record its recovery before fitting a terminal."),
    Vehicle.Status.FROZEN: _lazy("The record is frozen while an insurance claim is open."),
    Vehicle.Status.DEREGISTERED: _lazy("The bike is deregistered."),
}


def terminal_fit_check(
    *,
    vehicle_id: int,
    owner_consent: bool,
    terminal_id: int | None = None,
    imei: str = "",
    protocol: str = Terminal.Protocol.GT06,
    phone: str = "",
    source: str = Terminal.Source.AFTERMARKET,
    heartbeat_interval_s: int = 300,
    jt808_device_id: str = "",
    maker: str = "",
    model_code: str = "",
    osmand_key: bool = False,
) -> Problems:
    """Every reason to refuse fitting a terminal to a bike, collected at once (一次性告知): the
    terminal's own fields when it is new, its state when it is registered already (fitted to another
    bike, retired), the bike's state (stolen, frozen, deregistered, a terminal fitted already) and
    the owner's consent. The counter page and the fitting APIs call it before writing anything.

    The terminal is named by `terminal_id` (registered already: the bind API; its problems under
    "terminal") or by `imei` and the fields to register it with when it is new (the counter page and
    the fit API; its problems under the field they concern)."""
    problems = Problems()
    vehicle = Vehicle.objects.filter(pk=vehicle_id).first()
    if vehicle is None:
        problems.add("vehicle", _("No such bike."))
    else:
        problems.add("vehicle", FIT_REFUSED_STATES.get(vehicle.status))
        if Terminal.objects.filter(vehicle=vehicle).exists():
            problems.add("vehicle", _("The bike already has a terminal; replace it instead."))
    if terminal_id is not None:
        terminal, field = Terminal.objects.filter(pk=terminal_id).first(), "terminal"
        if terminal is None:
            problems.add(field, _("No such terminal."))
    else:
        imei, field = imei.strip(), "imei"
        terminal = Terminal.objects.filter(imei=imei).first() if imei else None
        if terminal is None:
            identity = {"jt808_device_id": jt808_device_id, "maker": maker, "model_code": model_code}
            problems.merge(
                _new_terminal_problems(
                    imei=imei,
                    protocol=protocol,
                    phone=phone.strip(),
                    source=source,
                    heartbeat_interval_s=heartbeat_interval_s,
                    identity={name: value.strip() for name, value in identity.items()},
                ).by_field
            )
        elif protocol and protocol != terminal.protocol:
            problems.add(
                "protocol",
                _("This terminal is registered as a %(protocol)s terminal.")
                % {"protocol": Terminal.Protocol(terminal.protocol).label},
            )
    if terminal is not None:
        if terminal.vehicle_id is not None and terminal.vehicle_id != vehicle_id:
            problems.add(field, _("This terminal is fitted to another bike; remove it there first."))
        if not terminal.active:
            problems.add(field, _("This terminal is retired."))
        protocol = terminal.protocol
    if osmand_key and protocol != Terminal.Protocol.OSMAND:
        problems.add("osmand_key", _("Only OsmAnd terminals (Traccar Client) use a key."))
    if not owner_consent:
        problems.add("owner_consent", _("Positioning needs the owner's consent; record it first."))
    return problems


def terminal_fit(
    *,
    clerk: User,
    vehicle_id: int,
    owner_consent: bool,
    terminal_id: int | None = None,
    imei: str = "",
    protocol: str = Terminal.Protocol.GT06,
    phone: str = "",
    sim_iccid: str = "",
    source: str = Terminal.Source.AFTERMARKET,
    heartbeat_interval_s: int = 300,
    jt808_device_id: str = "",
    maker: str = "",
    model_code: str = "",
    osmand_key: bool = False,
    ip: str | None = None,
) -> tuple[TerminalInstallation, str]:
    """Fit a terminal to a bike at the counter, registering it first when its IMEI is new, and issue
    an OsmAnd key when asked. Refuses with every problem of `terminal_fit_check` at once. Returns the
    installation and the key ("" when none was asked for): shown once, never stored in clear."""
    if clerk.station_id is None:
        raise PermissionDenied(_("Your account is not assigned to a police station."))
    fields: dict[str, Any] = {
        "imei": imei,
        "protocol": protocol,
        "phone": phone,
        "source": source,
        "heartbeat_interval_s": heartbeat_interval_s,
        "jt808_device_id": jt808_device_id,
        "maker": maker,
        "model_code": model_code,
    }
    with transaction.atomic():
        # Locks in terminal_bind's order (terminal, then bike), so the check sees what the write will.
        by_imei = terminal_id is None
        if by_imei:
            terminal_id = Terminal.objects.filter(imei=imei.strip()).values_list("pk", flat=True).first()
        if terminal_id is not None:
            Terminal.objects.select_for_update().get(pk=terminal_id)  # a terminal named in the URL: 404
        list(Vehicle.objects.select_for_update().filter(pk=vehicle_id))
        # A terminal named by its id is taken as it is registered; one named by its IMEI is
        # registered with these fields when the IMEI is new.
        named = fields if by_imei else {"terminal_id": terminal_id, "protocol": ""}
        terminal_fit_check(
            vehicle_id=vehicle_id, owner_consent=owner_consent, osmand_key=osmand_key, **named
        ).raise_if_any()
        if terminal_id is None:
            terminal_id = terminal_register(sim_iccid=sim_iccid, **fields).pk
        installation = terminal_bind(
            clerk=clerk, terminal_id=terminal_id, vehicle_id=vehicle_id, owner_consent=owner_consent
        )
        key = ""
        if osmand_key:
            key = terminal_osmand_key_issue(
                clerk=clerk, terminal_id=terminal_id, reason=_("Issued when the terminal was fitted."), ip=ip
            )
    return installation, key


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
    """Swap a bike's terminal for another one in one step (faulty or damaged terminal). The bike's state
    is checked as for a fit: a stolen or frozen bike's terminal is not swapped at the counter."""
    with transaction.atomic():
        vehicle = Vehicle.objects.select_for_update().filter(pk=vehicle_id).first()
        current = Terminal.objects.filter(vehicle_id=vehicle_id).first()
        if vehicle is None or current is None:
            raise ValidationError({"vehicle": _("The bike has no terminal to replace.")})
        refused = FIT_REFUSED_STATES.get(vehicle.status)
        if refused is not None:
            raise ValidationError({"vehicle": [refused]})
        terminal_unbind(clerk=clerk, terminal_id=current.pk, reason=reason)
        return terminal_bind(clerk=clerk, terminal_id=new_terminal_id, vehicle_id=vehicle_id, owner_consent=True)


def ingest_token_create(*, name: str, terminal: Terminal | None = None) -> tuple[IngestToken, str]:
    """A new token for POST /api/v1/pings; the raw token is returned once and never stored."""
    if not name.strip():
        raise ValidationError({"name": _("Name the integration or terminal the token is for.")})
    raw = secrets.token_urlsafe(32)
    token = IngestToken.objects.create(name=name.strip(), token_sha256=secret_digest(raw), terminal=terminal)
    return token, raw


def _terminal_secrets_change(
    *,
    clerk: User,
    terminal_id: int,
    protocol: str,
    reason: str,
    ip: str | None,
    action: str,
    change: Callable[[Terminal], dict[str, Any]],
) -> Terminal:
    """Change a terminal's secrets in one audited step: the terminal, locked and checked (its
    protocol, a stated reason), is handed to `change`, which sets its fields and returns what the
    audit row says of it."""
    with transaction.atomic():
        problems = Problems()
        if not reason.strip():
            problems.add("reason", _("State the reason: it is kept in the audit trail."))
        terminal = Terminal.objects.select_for_update().get(pk=terminal_id)
        if terminal.protocol != protocol:
            label = Terminal.Protocol(protocol).label
            problems.add("terminal", _("This is not a %(protocol)s terminal.") % {"protocol": label})
        problems.raise_if_any()
        before = {f.attname: getattr(terminal, f.attname) for f in Terminal._meta.concrete_fields}
        query = change(terminal)
        changed = [name for name, value in before.items() if getattr(terminal, name) != value]
        terminal.save(update_fields=changed)
        audit_record(
            user=clerk,
            action=action,
            object_type="terminal",
            object_id=terminal.pk,
            query=query or None,
            reason=reason.strip(),
            ip=ip,
        )
    return terminal


def terminal_auth_code_reset(*, clerk: User, terminal_id: int, reason: str, ip: str | None = None) -> Terminal:
    """Forget a JT/T 808 terminal's auth code: its next register (the terminal's own, after it was
    reset or replaced) gets a new one, and the old code no longer authenticates. Audited."""

    def forget(terminal: Terminal) -> dict[str, Any]:
        had_code = bool(terminal.auth_code_digest)
        terminal.auth_code_digest = ""
        terminal.auth_code_issued_at = None
        return {"had_code": had_code}

    return _terminal_secrets_change(
        clerk=clerk,
        terminal_id=terminal_id,
        protocol=Terminal.Protocol.JT808,
        reason=reason,
        ip=ip,
        action="terminal.auth_code_reset",
        change=forget,
    )


def terminal_osmand_key_issue(*, clerk: User, terminal_id: int, reason: str, ip: str | None = None) -> str:
    """A new key for an OsmAnd terminal (replacing any other): returned once, only its digest kept.
    From then on the gateway takes the terminal's requests only with `?key=<key>`. Audited."""
    key = "".join(secrets.choice(OSMAND_KEY_ALPHABET) for _i in range(OSMAND_KEY_LENGTH))

    def issue(terminal: Terminal) -> dict[str, Any]:
        replaced = bool(terminal.osmand_key_digest)
        terminal.osmand_key_digest = secret_digest(key)
        return {"replaced": replaced}

    _terminal_secrets_change(
        clerk=clerk,
        terminal_id=terminal_id,
        protocol=Terminal.Protocol.OSMAND,
        reason=reason,
        ip=ip,
        action="terminal.osmand_key_issue",
        change=issue,
    )
    return key


def terminal_osmand_key_remove(*, clerk: User, terminal_id: int, reason: str, ip: str | None = None) -> Terminal:
    """Stop requiring a key from an OsmAnd terminal. Audited."""

    def remove(terminal: Terminal) -> dict[str, Any]:
        if not terminal.osmand_key_digest:
            raise ValidationError({"terminal": _("This terminal has no key to remove.")})
        terminal.osmand_key_digest = ""
        return {}

    return _terminal_secrets_change(
        clerk=clerk,
        terminal_id=terminal_id,
        protocol=Terminal.Protocol.OSMAND,
        reason=reason,
        ip=ip,
        action="terminal.osmand_key_remove",
        change=remove,
    )
