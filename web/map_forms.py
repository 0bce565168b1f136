from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from accounts.models import Station
from cases.tracing import access
from cases.tracing import selectors as tracing
from ebike_registry.problems import Problems


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


class MarkerFilterForm(forms.Form):
    """The officer map's filters (page and JSON endpoint alike)."""

    station = forms.ModelChoiceField(
        label=_("Station"), queryset=Station.objects.all(), required=False, empty_label=_("All stations")
    )
    reported_from = forms.DateField(label=_("Reported from"), required=False, widget=DateInput())
    reported_to = forms.DateField(label=_("Reported to"), required=False, widget=DateInput())
    since = forms.DateTimeField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict:
        data = super().clean() or {}
        start, end = data.get("reported_from"), data.get("reported_to")
        if start and end and start > end:
            self.add_error("reported_to", _("The end date is before the start date."))
        return data


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


def _optional(form: forms.Form, name: str) -> Any:
    """A field left empty takes its initial value (the API's default)."""
    value = form.cleaned_data.get(name)
    return form.fields[name].initial if value is None else value


class StopsForm(forms.Form):
    """The trace page's stop filter: the same bounds as the stops API (cases.tracing.selectors)."""

    min_minutes = forms.IntegerField(
        label=_("Minimum stay (minutes)"),
        required=False,
        initial=tracing.DEFAULT_STOP_MINUTES,
        min_value=1,
        max_value=tracing.STOP_MINUTES_MAX,
    )
    radius = forms.IntegerField(
        label=_("Stop radius (m)"),
        required=False,
        initial=tracing.DEFAULT_STOP_RADIUS_M,
        min_value=tracing.RADIUS_MIN_M,
        max_value=tracing.STOP_RADIUS_MAX_M,
    )
    reason = forms.CharField(required=False, max_length=access.MAX_REASON_LENGTH, widget=forms.HiddenInput)
    search = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    @classmethod
    def from_query(cls, query: QueryDict) -> "StopsForm":
        """Bound to the query, the fields not in it at the API's defaults (shown in the fields)."""
        data = query.copy()
        for name in ("min_minutes", "radius"):
            data.setdefault(name, str(cls.base_fields[name].initial))
        return cls(data)

    def clean_min_minutes(self) -> int:
        return _optional(self, "min_minutes")

    def clean_radius(self) -> int:
        return _optional(self, "radius")


class CrimeSceneForm(forms.Form):
    """伴随分析: a point (clicked on the map or typed), a radius and a time window, and the reason."""

    lat = forms.FloatField(label=_("Latitude"), min_value=-90, max_value=90)
    lon = forms.FloatField(label=_("Longitude"), min_value=-180, max_value=180)
    radius = forms.IntegerField(
        label=_("Radius (m)"), initial=200, min_value=tracing.RADIUS_MIN_M, max_value=tracing.RADIUS_MAX_M
    )
    since = forms.DateTimeField(label=_("From"), widget=DateTimeInput(), input_formats=["%Y-%m-%dT%H:%M"])
    until = forms.DateTimeField(label=_("To"), widget=DateTimeInput(), input_formats=["%Y-%m-%dT%H:%M"])
    reason = forms.CharField(
        label=_("Reason (legal basis), e.g. the report or case number"),
        max_length=access.MAX_REASON_LENGTH,
        help_text=_("The reason is recorded with your search in the audit trail."),
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until:  # the API's bounds, reported with the other fields' problems
            problems = Problems()
            tracing.check_period(problems, since, until, max_span=tracing.NEAR_MAX_SPAN)
            for name, messages in problems.by_field.items():
                for message in messages:
                    self.add_error(name, message)
        return data
