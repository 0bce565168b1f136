"""Template filters that show stored codes by their names: `{% load labels %}` then
`{{ alarm.kind|alarm_label }}`, `{{ entry.action|audit_action }}`, `{{ entry.object_type|object_type }}`,
`{{ basis|basis }}`. The tables are in accounts.labels."""

from django import template

from accounts import labels

register = template.Library()

register.filter("alarm_label", labels.alarm_label)
register.filter("audit_action", labels.audit_action_label)
register.filter("object_type", labels.object_type_label)
register.filter("basis", labels.basis_label)
