"""How alarm kinds read to people. Alarm.kind holds the decoders' names (tracking.protocols: GT06
alarm codes and status bits, JT/T 808 alarm bits; tracking.ingest.TERMINAL_ALARMS, any other name a
terminal sends is `other`) and the derived ones; the ones officers and owners meet get a label, any
other shows as stored."""

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

LABELS: dict[str, Promise] = {
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
    # A name a terminal sent that is not ours (tracking.ingest.alarm_kinds): its text is in the note.
    "other": _("other alarm (see note)"),
    "terminal_conflict": _("terminal conflict: two live sessions or a second registration"),
}


def alarm_label(kind: str) -> str:
    label = LABELS.get(kind)
    return str(label) if label is not None else kind
