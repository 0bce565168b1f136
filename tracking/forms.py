from django import forms
from django.utils.translation import gettext_lazy as _

from tracking.models import Terminal


class FitTerminalForm(forms.Form):
    imei = forms.CharField(label=_("Terminal IMEI"), max_length=15, help_text=_("15 digits on the terminal's label."))
    protocol = forms.ChoiceField(label=_("Protocol"), choices=Terminal.Protocol.choices, initial=Terminal.Protocol.GT06)
    phone = forms.CharField(
        label=_("JT/T 808 terminal phone"),
        max_length=20,
        required=False,
        help_text=_("JT/T 808 terminals only."),
    )
    sim_iccid = forms.CharField(label=_("SIM ICCID"), max_length=20, required=False)
    source = forms.ChoiceField(label=_("Source"), choices=Terminal.Source.choices, initial=Terminal.Source.AFTERMARKET)
    owner_consent = forms.BooleanField(
        label=_("The owner agrees to the positioning of the bike"),
        required=False,
        help_text=_("Positions are personal data: fit a terminal only with the owner's consent."),
    )


class RemoveTerminalForm(forms.Form):
    reason = forms.CharField(label=_("Reason for removal"), max_length=200)
