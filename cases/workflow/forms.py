import datetime
from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Township
from cases.models import Case, ReportStatus, TheftReport
from ebike_registry.lengths import stored_length
from vehicles.fields import FRAME_INPUT, ID_INPUT, PHONE_INPUT, PLATE_INPUT


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
    plate = forms.CharField(label=_("Plate number"), max_length=PLATE_INPUT, required=False)
    frame_number = forms.CharField(label=_("Frame number"), max_length=FRAME_INPUT, required=False)
    owner_id_number = forms.CharField(label=_("Owner's ID number"), max_length=ID_INPUT, required=False)
    unregistered_description = forms.CharField(
        label=_("Description of a bike not in the registry"),
        max_length=300,
        required=False,
        help_text=_("Brand, model, colour, frame number if known. Every theft is accepted."),
    )
    reporter_name = forms.CharField(label=_("Reporting person"), max_length=50)
    reporter_phone = forms.CharField(label=_("Reporter's phone"), max_length=PHONE_INPUT)
    reporter_id_number = forms.CharField(label=_("Reporter's ID number"), max_length=ID_INPUT, required=False)
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
    narrative = forms.CharField(
        label=_("Circumstances"),
        max_length=stored_length(TheftReport, "narrative"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["township_code"]).choices = [("", "—")] + [
            (t.code, f"{t.name} ({t.code})") for t in Township.objects.all()
        ]


class TransitionForm(forms.Form):
    """A report's next step; filing it as a case opens a new case or attaches it to an existing one."""

    to_status = forms.ChoiceField(label=_("New status"), choices=ReportStatus.choices)
    note = forms.CharField(label=_("Note"), max_length=500, required=False)
    case_number = forms.CharField(
        label=_("New case number (立案编号)"),
        max_length=32,
        required=False,
        help_text=_("As the bureau's case platform issued it; or choose an existing case below."),
    )
    officer_ids = forms.TypedMultipleChoiceField(
        label=_("Further officers on the new case"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    summary = forms.CharField(label=_("Case summary"), max_length=stored_length(Case, "summary"), required=False)
    # Any case number the officer names is checked by the service (theirs? open? of this type?).
    case_id = forms.IntegerField(label=_("Or attach to the existing case"), required=False, widget=forms.Select)

    def __init__(self, *args: Any, officers: Sequence[Any] = (), cases: Sequence[Case] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["officer_ids"]).choices = [
            (o.pk, o.get_full_name() or o.username) for o in officers
        ]
        self.fields["case_id"].widget.choices = [("", "—")] + [
            (c.pk, f"{c.number} · {c.get_kind_display()}") for c in cases
        ]


class LinkForm(forms.Form):
    """Link a report (by its number) or a bike without a report (by plate or frame number)."""

    report_number = forms.CharField(label=_("Report number"), max_length=24, required=False)
    vehicle = forms.CharField(label=_("or a bike: plate or frame number"), max_length=24, required=False)
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        required=False,
        help_text=_("Needed for a bike without a report: it opens the bike's positions to the case's officers."),
    )


class UnlinkForm(forms.Form):
    link_id = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Reason for unlinking"), max_length=200, required=False)


class SolveForm(forms.Form):
    with_positioning = forms.BooleanField(label=_("Solved with positioning data"), required=False)
    note = forms.CharField(label=_("Note"), max_length=200, required=False)


class CloseForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for closing"),
        max_length=200,
        required=False,
        help_text=_("结案 after solving (for example: transferred for prosecution), or why the case is dropped."),
    )


class CaseListForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("all")), *Case.Status.choices], required=False)


class StolenCheckForm(forms.Form):
    plate = forms.CharField(label=_("Plate number"), max_length=PLATE_INPUT, required=False)
    frame = forms.CharField(label=_("Frame number"), max_length=FRAME_INPUT, required=False)


class ReviewPeriodForm(forms.Form):
    """The period of the stated-reason review: the last seven days unless chosen."""

    since = forms.DateField(label=_("From"), required=False)
    until = forms.DateField(label=_("To (inclusive)"), required=False)

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end of the period is before its start."))
        if until and until > timezone.localdate():
            self.add_error("until", _("The end of the period is in the future."))
        return data

    def days(self) -> tuple[datetime.date, datetime.date]:
        """The first and the last day of the period: the last seven days unless validly chosen."""
        today = timezone.localdate()
        since, until = today - datetime.timedelta(days=6), today
        if self.is_bound and self.is_valid():
            since = self.cleaned_data["since"] or since
            until = self.cleaned_data["until"] or until
        return since, until
