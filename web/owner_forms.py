from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Township
from cases.models import TheftReport
from ebike_registry.lengths import stored_length
from vehicles.fields import PHONE_INPUT


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class OwnerTheftReportForm(forms.Form):
    """An owner's online theft report (channel "online") for one of their registered bikes."""

    vehicle = forms.TypedChoiceField(label=_("Which bike"), coerce=int)
    last_seen_at = forms.DateTimeField(label=_("Last seen at"), widget=DateTimeInput())
    missing_at = forms.DateTimeField(label=_("Found missing at"), widget=DateTimeInput())
    # Required unless the map point is known (the report intake service says so at this field).
    place_address = forms.CharField(
        label=_("Place"),
        max_length=200,
        required=False,
        help_text=_("Street and number, or a landmark, where the bike was parked."),
    )
    # Where the bike was parked, when a confirmed alarm tells it (filled by the page, not typed).
    place_latitude = forms.FloatField(required=False, min_value=-90, max_value=90, widget=forms.HiddenInput)
    place_longitude = forms.FloatField(required=False, min_value=-180, max_value=180, widget=forms.HiddenInput)
    township_code = forms.ChoiceField(label=_("Township"), required=False)
    locked = forms.NullBooleanField(
        label=_("Was the bike locked?"),
        required=False,
        widget=forms.Select(choices=[("unknown", _("unknown")), ("true", _("yes")), ("false", _("no"))]),
    )
    reporter_phone = forms.CharField(
        label=_("Phone to call you back"), max_length=PHONE_INPUT, help_text=_("The station calls this number.")
    )
    narrative = forms.CharField(
        label=_("Circumstances"),
        max_length=stored_length(TheftReport, "narrative"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
    )

    def __init__(self, *args: Any, vehicles: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["vehicle"]).choices = vehicles
        cast(forms.ChoiceField, self.fields["township_code"]).choices = [("", "—")] + [
            (t.code, f"{t.name} ({t.code})") for t in Township.objects.all()
        ]
