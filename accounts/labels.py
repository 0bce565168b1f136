"""How the codes the system stores read to people, in every language of the UI.

One table per vocabulary: alarm kinds (tracking), audit actions and the kinds of object they name
(accounts.audit), and the legal bases of looks at positions (cases.tracing.access). Pages, the
admin, charts and exports that show a code ask here (or through the `labels` template filters);
the API keeps the codes. A code without a label shows as stored, which the zh-hans page walk
(tests/web/test_zh_hans_walk.py) reports. It imports nothing of the project, so every app may use it.
"""

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# Alarm.kind: the decoders' names (tracking.protocols, tracking.ingest.TERMINAL_ALARMS; any other
# name a terminal sends is `other`) and the derived ones (tracking.derived, cases.alerts.duty_room).
ALARM_KINDS: dict[str, Promise] = {
    "sos": _("SOS"),
    "fall": _("fall"),
    "collision": _("collision"),
    "rollover": _("rollover"),
    "power_cut": _("power cut"),
    "power_off": _("power off"),
    "low_battery": _("low battery"),
    "low_power": _("low power"),
    "vibration": _("vibration"),
    "movement": _("movement (terminal in defence mode)"),
    "stolen": _("theft (terminal in defence mode)"),
    "tamper": _("tampering"),
    "cover_removed": _("cover removed"),
    "overspeed": _("overspeed"),
    "geofence_enter": _("entered a geofence"),
    "geofence_exit": _("left a geofence"),
    "gnss_antenna_cut": _("GNSS antenna cut"),
    "offline": _("terminal offline"),
    "displacement": _("armed bike moved"),
    "sighting": _("stolen bike sighted"),
    "stolen_sighting": _("stolen bike sighted"),
    # The rest of the decoders' vocabulary (GT06, JT/T 808), rarely met on an e-bike.
    "acc_on": _("ignition on"),
    "acc_off": _("ignition off"),
    "braking": _("harsh braking"),
    "harsh_acceleration": _("harsh acceleration"),
    "sharp_turn_left": _("sharp left turn"),
    "sharp_turn_right": _("sharp right turn"),
    "camera_fault": _("camera fault"),
    "danger_warning": _("danger warning"),
    "door": _("door"),
    "illegal_door_open": _("door opened without authorisation"),
    "illegal_ignition": _("ignition without authorisation"),
    "driving_overtime_day": _("driving time exceeded for the day"),
    "fatigue_driving": _("fatigue driving"),
    "fatigue_warning": _("fatigue warning"),
    "parking_overtime": _("parked too long"),
    "first_fix": _("first position fix"),
    "fuel_abnormal": _("abnormal fuel level"),
    "geofence": _("geofence"),
    "route": _("route"),
    "route_enter": _("entered a route"),
    "route_exit": _("left a route"),
    "route_deviation": _("off the route"),
    "route_time": _("route time too short or too long"),
    "gnss_antenna_short": _("GNSS antenna short circuit"),
    "gnss_fault": _("GNSS module fault"),
    "gps_blind_area_enter": _("entered an area without GPS"),
    "gps_blind_area_exit": _("left an area without GPS"),
    "ic_card_fault": _("IC card reader fault"),
    "lcd_fault": _("display fault"),
    "tts_fault": _("voice module fault"),
    "vss_fault": _("speed sensor fault"),
    "low_power_protection": _("low-power protection"),
    "power_off_low_battery": _("powered off on low battery"),
    "power_on": _("power on"),
    "overspeed_warning": _("overspeed warning"),
    "sim_changed": _("SIM card changed"),
    "unplugged": _("terminal unplugged"),
    "reserved_bit_15": _("alarm bit 15 (reserved)"),
    "reserved_bit_16": _("alarm bit 16 (reserved)"),
    "reserved_bit_17": _("alarm bit 17 (reserved)"),
    # A name a terminal sent that is not ours (tracking.ingest.alarm_kinds): its text is in the note.
    "other": _("other alarm (see note)"),
    "terminal_conflict": _("terminal conflict: two live sessions or a second registration"),
}

# AuditEntry.action: "<object>.<what was done>".
AUDIT_ACTIONS: dict[str, Promise] = {
    "admin.list": _("admin list opened"),
    "admin.view": _("admin record opened"),
    "admin_role.grant": _("administrator role granted"),
    "admin_role.revoke": _("administrator role revoked"),
    "auth.idle_timeout": _("signed out after inactivity"),
    "auth.lockout": _("sign-in locked out"),
    "auth.login": _("signed in"),
    "auth.login_failed": _("sign-in failed"),
    "auth.logout": _("signed out"),
    "auth.recovery_codes_renewed": _("recovery codes renewed"),
    "auth.second_factor": _("one-time code entered"),
    "auth.second_factor_enrolled": _("authenticator app set up"),
    "auth.token_issued": _("API token issued"),
    "auth.token_revoked": _("API token revoked"),
    "breakglass.request": _("emergency account used"),
    "case.approve": _("case filing approved"),
    "case.close": _("case closed"),
    "case.file": _("case filed"),
    "case.link": _("linked to a case"),
    "case.solve": _("case solved"),
    "case.unlink": _("unlinked from a case"),
    "case.view": _("case opened"),
    "certificate.view": _("certificate printed or opened"),
    "claim.approve": _("claim approved"),
    "claim.eligible": _("claim became eligible"),
    "claim.list": _("claim list opened"),
    "claim.pay": _("claim paid"),
    "claim.recovered": _("bike recovered after payment"),
    "claim.reject": _("claim rejected"),
    "claim.settle": _("claim settled after recovery"),
    "claim.submit": _("claim submitted"),
    "claim.view": _("claim opened"),
    "duty_call.acknowledge": _("duty call acknowledged"),
    "duty_call.close": _("duty call closed"),
    "duty_call.dispatch": _("patrol dispatched to a duty call"),
    "duty_call.owner_confirmed": _("theft confirmed by the owner"),
    "duty_call.owner_dismissed": _("dismissed by the owner"),
    "duty_call.view": _("duty call opened"),
    "duty_queue.view": _("duty room opened"),
    "evidence.export": _("evidence export"),
    "outbox.rerun": _("dead outbox batch re-run"),
    "owner.emergency_contact": _("emergency contact changed"),
    "owner.login_create": _("owner sign-in created"),
    "owner.lookup": _("owner looked up by ID number"),
    "photo.view": _("photo or document opened"),
    "review.stated_reasons": _("looks on a stated reason reviewed"),
    "security.device_reset": _("authenticator reset"),
    "security.lookup_alert": _("unusual lookups alerted"),
    "security.policy_changed": _("security policy changed"),
    "security.unlock": _("lockout lifted"),
    "sightings.view": _("sightings opened"),
    "stats.estimate_set": _("bike estimate entered"),
    "stats.estimates_import": _("bike estimates imported"),
    "stolen.card": _("stolen bike's card opened"),
    "stolen.map": _("stolen-bike map opened"),
    "stolen.near": _("stolen bikes near a place"),
    "terminal.arm": _("bike armed"),
    "terminal.auth_code_reset": _("terminal auth code reset"),
    "terminal.disarm": _("bike disarmed"),
    "terminal.find": _("terminal looked up"),
    "terminal.osmand_key_issue": _("terminal key issued"),
    "terminal.osmand_key_remove": _("terminal key removed"),
    "theft_report.assign": _("theft report assigned"),
    "theft_report.decision_notice": _("filing decision notice printed"),
    "theft_report.take": _("theft report taken"),
    "theft_report.transition": _("theft report status changed"),
    "theft_report.view": _("theft report opened"),
    "trajectory.near": _("bikes near a place (伴随分析)"),
    "trajectory.position": _("where the bike is now"),
    "trajectory.stops": _("stops"),
    "trajectory.view": _("trajectory"),
    "vehicle.search": _("filing records searched"),
    "vehicle.view": _("filing record opened (masked)"),
    "vehicle.view_full": _("filing record opened in full"),
    "webhook.rerun": _("given-up webhook message re-sent"),
}

# AuditEntry.object_type (and the subjects of evidence bundles).
OBJECT_TYPES: dict[str, Promise] = {
    "case": _("case"),
    "duty_call": _("duty-room call"),
    "insurance_claim": _("insurance claim"),
    "outbox_batch": _("ingestion batch (outbox)"),
    "owner": _("owner"),
    "plate_estimate": _("bike estimate"),
    "security_policy": _("security policy"),
    "station": _("police station"),
    "terminal": _("terminal"),
    "theft_report": _("theft report"),
    "user": _("user"),
    "vehicle": _("vehicle"),
    "webhook_delivery": _("webhook delivery"),
}

# The legal basis of a look at positions (cases.tracing.access.Access.basis; AuditEntry.query["basis"]).
OWNER = "owner"
OPEN_REPORT = "open_report"
CASE = "case"
OPEN_REPORTS = "open_reports"
STATED_REASON = "stated_reason"
BASES: dict[str, Promise] = {
    OWNER: _("the bike's owner"),
    OPEN_REPORTS: _("patrol duty: bikes with an open theft report"),
    STATED_REASON: _("stated reason (listed for the leader's review)"),
}


def _label(table: dict[str, Promise], code: object) -> str:
    if code is None or code == "":
        return ""
    label = table.get(str(code))
    return str(label) if label is not None else str(code)


def alarm_label(kind: object) -> str:
    return _label(ALARM_KINDS, kind)


def audit_action_label(action: object) -> str:
    return _label(AUDIT_ACTIONS, action)


def object_type_label(object_type: object) -> str:
    return _label(OBJECT_TYPES, object_type)


def basis_label(basis: object) -> str:
    """A legal basis as a sentence: "owner" -> the bike's owner, "case:<n>" -> duty on case <n>."""
    if basis is None or basis == "":
        return ""
    kind, _sep, number = str(basis).partition(":")
    if kind == OPEN_REPORT and number:
        return gettext("duty on open theft report %(number)s") % {"number": number}
    if kind == CASE and number:
        return gettext("duty on case %(number)s") % {"number": number}
    return _label(BASES, basis)


# The names Django gives the permissions it creates for every model ("Can add user", stored in
# English in auth_permission.name); our own (Meta.permissions) are gettext msgids already.
PERMISSION_ACTIONS: dict[str, Promise] = {
    "add": _("Can add %(model)s"),
    "change": _("Can change %(model)s"),
    "delete": _("Can delete %(model)s"),
    "view": _("Can view %(model)s"),
}


def permission_label(permission: Any) -> str:
    """A permission as the admin lists it ("app | model | name"), in the language of the page."""
    content_type = permission.content_type
    model = content_type.model_class()
    if model is None:
        return str(permission)
    meta = model._meta
    # Models and apps that declare no translated name (a library's, a rollup's) have one in the
    # catalogue under the name Django derives for them ("case step"), asked for here.
    model_name = gettext(str(meta.verbose_name))
    action = permission.codename.partition("_")[0]
    if action in PERMISSION_ACTIONS and permission.codename == f"{action}_{meta.model_name}":
        name = str(PERMISSION_ACTIONS[action]) % {"model": model_name}
    else:
        name = gettext(permission.name)
    return f"{gettext(str(meta.app_config.verbose_name))} | {model_name} | {name}"
