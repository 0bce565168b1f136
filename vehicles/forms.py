"""Forms of the counter pages. They only parse types; every rule lives in the services.

The counter form is three Django forms on one page (prefixes "owner", "vehicle" and none for the
registration extras), so the service's dotted problem keys ("owner.phone", "vehicle.frame_number")
land next to the field they name.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

from django import forms
from django.db import models
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from accounts.audit import REASON_LENGTH
from accounts.models import Township
from vehicles.fields import OWNER, PLATE_INPUT, VEHICLE, RecordField
from vehicles.services.owners import OwnerData
from vehicles.services.registration import (
    DeregisterReason,
    Documents,
    PlateReplaceReason,
    TransferConsent,
    VehicleData,
)

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class TownshipChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Township) -> str:
        return f"{obj.name} ({obj.code})"


_F = TypeVar("_F", bound=type[forms.Form])


def record_form_field(spec: RecordField, **presentation: Any) -> forms.Field:
    """The counter page's field for a declared record field (vehicles.fields): its label, stored
    type, input length and whether required; `presentation` adds help text, widget, choice field."""
    model_field = spec.model_field
    options: dict[str, Any] = {"label": spec.label, "required": spec.required, **presentation}
    if model_field.is_relation:
        field_class = options.pop("field_class", forms.ModelChoiceField)
        return field_class(queryset=model_field.related_model._default_manager.all(), **options)
    if model_field.choices:
        return forms.ChoiceField(choices=model_field.choices, initial=spec.default, **options)
    if isinstance(model_field, models.BooleanField):
        return forms.BooleanField(initial=spec.default, **options)
    if isinstance(model_field, models.DateField):
        return forms.DateField(**options)
    if isinstance(model_field, models.DecimalField):
        return forms.DecimalField(
            max_digits=model_field.max_digits, decimal_places=model_field.decimal_places, **options
        )
    return forms.CharField(max_length=spec.input_length, **options)


def with_record_fields(specs: Iterable[RecordField], **presentation: dict[str, Any]) -> Callable[[_F], _F]:
    """Give a form class a field for each declared record field, in the declared order and before
    the fields its body declares; `presentation[name]` is passed to that field."""

    def decorate(form_class: _F) -> _F:
        fields = {spec.name: record_form_field(spec, **presentation.get(spec.name, {})) for spec in specs}
        form_class.base_fields = {**fields, **form_class.base_fields}
        form_class.declared_fields = {**fields, **form_class.declared_fields}
        return form_class

    return decorate


CODE_INPUT = forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})


@with_record_fields(
    OWNER,
    kind={"widget": forms.RadioSelect},
    id_number={
        "help_text": _("Resident ID card (18 characters) or unified social credit code for an organisation."),
        "widget": CODE_INPUT,
    },
    phone={"widget": forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"})},
    township_code={"field_class": TownshipChoiceField, "empty_label": "—"},
    agent_id_number={
        "help_text": _("Organisations only: the agent's resident ID number and a letter of authority."),
        "widget": CODE_INPUT,
    },
)
class OwnerForm(forms.Form):
    def parsed(self) -> OwnerData:
        """The values that parsed, in the shape the owner services take."""
        data: dict[str, Any] = dict(self.cleaned_data)
        if "township_code" in data:
            township = data["township_code"]
            data["township_code"] = township.code if township is not None else ""
        return data  # type: ignore[return-value]  # the form's fields are OwnerData's keys


@with_record_fields(
    VEHICLE,
    frame_number={
        "help_text": _("15 digits on a standard e-bike; 17 characters on a non-standard bike."),
        "widget": CODE_INPUT,
    },
    motor_number={"widget": forms.TextInput(attrs={"autocomplete": "off"})},
    production_date={"widget": DATE_WIDGET},
    use_type={
        "widget": forms.RadioSelect,
        "help_text": _("Commercial use (delivery, internet businesses) gets a yellow plate."),
    },
    purchase_date={"widget": DATE_WIDGET},
    purchase_price={"widget": forms.TextInput(attrs={"inputmode": "decimal"})},
    conforming={"help_text": _("Untick for a bike that fails the standard: it gets a temporary white plate.")},
)
class VehicleForm(forms.Form):
    def parsed(self) -> VehicleData:
        return dict(self.cleaned_data)  # type: ignore[return-value]  # the form's fields are VehicleData's keys


class RegistrationForm(forms.Form):
    documents = forms.MultipleChoiceField(
        label=_("Documents presented"),
        choices=Documents.CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    insurance_consent = forms.BooleanField(
        label=_("The owner agrees to enrol in the free theft-loss insurance"),
        required=False,
        initial=False,
    )


def error_summary(sections: Iterable[forms.Form]) -> list[dict[str, str]]:
    """Every problem on the page in form order, each linking to its field: the list read to the owner."""
    summary: list[dict[str, str]] = []
    for form in sections:
        summary.extend({"label": "", "anchor": "", "message": str(m)} for m in form.non_field_errors())
        for name, field in form.fields.items():
            anchor = str(form[name].auto_id)
            summary.extend(
                {"label": str(field.label), "anchor": anchor, "message": str(m)} for m in form.errors.get(name, [])
            )
    return summary


class SearchForm(forms.Form):
    plate = forms.CharField(label=_("Plate number"), max_length=PLATE_INPUT, required=False)
    plate_contains = forms.CharField(
        label=_("Part of the plate"), max_length=PLATE_INPUT, required=False, help_text=_("At least 3 characters.")
    )
    frame_number = forms.CharField(
        label=_("Frame number"), max_length=VEHICLE["frame_number"].input_length, required=False
    )
    motor_number = forms.CharField(
        label=_("Motor number"), max_length=VEHICLE["motor_number"].input_length, required=False
    )
    id_number = forms.CharField(
        label=_("Owner's ID number"), max_length=OWNER["id_number"].input_length, required=False
    )
    phone = forms.CharField(label=_("Owner's phone"), max_length=OWNER["phone"].input_length, required=False)
    owner_name = forms.CharField(label=_("Owner's name"), max_length=OWNER["name"].input_length, required=False)
    imei = forms.CharField(label=_("Terminal IMEI"), max_length=15, required=False)
    reason = forms.CharField(
        label=_("Reason for the search"),
        max_length=REASON_LENGTH,
        required=False,
        help_text=_("Recorded in the audit trail with your search."),
    )

    CRITERIA = ("plate", "plate_contains", "frame_number", "motor_number", "id_number", "phone", "owner_name", "imei")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not any((cleaned.get(key) or "").strip() for key in self.CRITERIA):
            raise forms.ValidationError(_("Fill in at least one search field."))
        return cleaned

    def criteria(self) -> dict[str, str]:
        return {key: self.cleaned_data.get(key) or "" for key in self.CRITERIA}


# --- lifecycle counter pages (变更 / 更正 / 转移 / 补换领号牌 / 注销) ---------------------------------------
#
# Each page is sections like the registration counter ("vehicle", "owner" or "new_owner") and a page
# form for the operation's own fields, named as the service names them, so every problem of the
# service's `…_check()` lands at its field. Edits send only the fields the clerk changed.


class VehicleEditForm(VehicleForm):
    """The bike's fields an edit may touch, filled in from the record."""

    def __init__(self, *args: Any, fields: Iterable[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keep = set(fields)
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]

    def changed(self) -> VehicleData:
        """The fields whose value differs from the record's and that parsed."""
        return {name: self.cleaned_data[name] for name in self.changed_data if name in self.cleaned_data}  # type: ignore[return-value]  # VehicleData's keys


class OwnerEditForm(OwnerForm):
    """The owner's contact details. The phone is not filled in (the clerk sees it masked): typed, it
    replaces the one on file."""

    FIELDS = ("name", "phone", "address", "township_code")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name not in self.FIELDS:
                del self.fields[name]
        for field in self.fields.values():
            field.required = False

    def changed(self) -> OwnerData:
        data: Mapping[str, Any] = self.parsed()
        return {name: data[name] for name in self.changed_data if name in data}  # type: ignore[return-value]  # OwnerData's keys


class ChangeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for the change"),
        max_length=200,
        required=False,
        help_text=_("For example: the frame was replaced, the owner has a new phone number."),
    )
    documents = forms.MultipleChoiceField(
        label=_("Documents presented"), choices=Documents.CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )


class CorrectionForm(forms.Form):
    reason = forms.CharField(
        label=_("What was entered wrongly"),
        max_length=200,
        required=False,
        help_text=_("A correction fixes a clerk's error; the old and new values stay in the history."),
    )


class TransferForm(forms.Form):
    previous_owner_consent = forms.ChoiceField(
        label=_("Previous owner's consent"),
        choices=TransferConsent.CHOICES,
        required=False,
        widget=forms.RadioSelect,
    )
    consent_agent_name = forms.CharField(label=_("Agent's name"), max_length=50, required=False)
    consent_agent_id_number = forms.CharField(
        label=_("ID number of the previous owner's agent"),
        max_length=24,
        required=False,
        help_text=_("Only when an agent acts for the previous owner: the agent's resident ID card."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    documents = forms.MultipleChoiceField(
        label=_("Documents presented"), choices=Documents.CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    insurance_consent = forms.BooleanField(
        label=_("The new owner agrees to enrol in the free theft-loss insurance"), required=False, initial=False
    )
    reason = forms.CharField(label=_("Note"), max_length=200, required=False)


class PlateReplaceForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Why is the plate replaced?"),
        choices=PlateReplaceReason.CHOICES,
        required=False,
        widget=forms.RadioSelect,
    )


class DeregisterForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Reason for deregistration"), choices=DeregisterReason.LABELS, required=False, widget=forms.RadioSelect
    )
    plate_returned = forms.TypedChoiceField(
        label=_("Plate handed back"),
        choices=(("yes", _("yes")), ("no", _("no"))),
        coerce=lambda value: value == "yes",
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
        help_text=_("A plate handed back is recovered; a plate not handed back is voided."),
    )


def form_values(form: forms.Form) -> dict[str, Any]:
    """What was typed into a bound form, as initial values: the page redrawn without errors."""
    values: dict[str, Any] = {}
    for name, field in form.fields.items():
        key = form.add_prefix(name)
        if isinstance(field, forms.MultipleChoiceField):
            values[name] = cast(QueryDict, form.data).getlist(key)  # the page's request.POST
        elif key in form.data:
            values[name] = form.data.get(key)
    return values
