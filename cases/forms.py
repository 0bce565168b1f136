from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Township
from cases.models import ReportStatus, TheftReport


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class ReportForm(forms.Form):
    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=[c for c in TheftReport.Channel.choices if c[0] != TheftReport.Channel.ONLINE],
        initial=TheftReport.Channel.WALK_IN,
        widget=forms.RadioSelect,
    )
    plate = forms.CharField(label=_("Plate number"), max_length=16, required=False)
    frame_number = forms.CharField(label=_("Frame number"), max_length=24, required=False)
    owner_id_number = forms.CharField(label=_("Owner's ID number"), max_length=24, required=False)
    unregistered_description = forms.CharField(
        label=_("Description of a bike not in the registry"),
        max_length=300,
        required=False,
        help_text=_("Brand, model, colour, frame number if known. Every theft is accepted."),
    )
    reporter_name = forms.CharField(label=_("Reporting person"), max_length=50)
    reporter_phone = forms.CharField(label=_("Reporter's phone"), max_length=20)
    reporter_id_number = forms.CharField(label=_("Reporter's ID number"), max_length=24, required=False)
    last_seen_at = forms.DateTimeField(label=_("Last seen at"), widget=DateTimeInput())
    missing_at = forms.DateTimeField(label=_("Found missing at"), widget=DateTimeInput())
    place_address = forms.CharField(label=_("Place"), max_length=200, required=False)
    latitude = forms.FloatField(label=_("Latitude"), required=False, min_value=-90, max_value=90)
    longitude = forms.FloatField(label=_("Longitude"), required=False, min_value=-180, max_value=180)
    township_code = forms.ChoiceField(label=_("Township"), required=False)
    locked = forms.NullBooleanField(
        label=_("Was the bike locked?"),
        required=False,
        widget=forms.Select(choices=[("unknown", _("unknown")), ("true", _("yes")), ("false", _("no"))]),
    )
    narrative = forms.CharField(label=_("Circumstances"), widget=forms.Textarea(attrs={"rows": 4}), required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["township_code"].choices = [("", "—")] + [
            (t.code, f"{t.name} ({t.code})") for t in Township.objects.all()
        ]


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(label=_("New status"), choices=ReportStatus.choices)
    note = forms.CharField(label=_("Note"), max_length=500, required=False)


class StolenCheckForm(forms.Form):
    plate = forms.CharField(label=_("Plate number"), max_length=16, required=False)
    frame = forms.CharField(label=_("Frame number"), max_length=24, required=False)


class ReviewPeriodForm(forms.Form):
    """The period of the stated-reason review: the last seven days unless chosen."""

    since = forms.DateField(label=_("From"), required=False)
    until = forms.DateField(label=_("To (inclusive)"), required=False)

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end of the period is before its start."))
        if until and until > timezone.localdate():
            self.add_error("until", _("The end of the period is in the future."))
        return data
