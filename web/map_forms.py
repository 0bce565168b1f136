from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Station


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
