"""How alarm kinds read to people: the table is accounts.labels.ALARM_KINDS (every code a person sees
is named there); this module keeps the names its callers import."""

from accounts.labels import ALARM_KINDS as LABELS
from accounts.labels import alarm_label

__all__ = ["LABELS", "alarm_label"]
