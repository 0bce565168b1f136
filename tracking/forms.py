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
    jt808_device_id = forms.CharField(
        label=_("JT/T 808 terminal ID"),
        max_length=30,
        required=False,
        help_text=_("As on the terminal's label; empty: the IMEI or its last 7 digits."),
    )
    maker = forms.CharField(
        label=_("JT/T 808 maker ID"),
        max_length=11,
        required=False,
        help_text=_("Optional: when given, a register naming another maker is refused."),
    )
    model_code = forms.CharField(
        label=_("JT/T 808 terminal model"),
        max_length=30,
        required=False,
        help_text=_("Optional: when given, a register naming another model is refused."),
    )
    osmand_key = forms.BooleanField(
        label=_("Require a key from this phone (OsmAnd / Traccar Client)"),
        required=False,
        help_text=_("The key is shown once, after fitting: add it to the app's server URL as ?key=…"),
    )
    owner_consent = forms.BooleanField(
        label=_("The owner agrees to the positioning of the bike"),
        required=False,
        help_text=_("Positions are personal data: fit a terminal only with the owner's consent."),
    )
    # Whether these fit together and the bike may take a terminal now: tracking.services.terminal_fit_check.


class RemoveTerminalForm(forms.Form):
    reason = forms.CharField(label=_("Reason for removal"), max_length=200)


class TerminalIdentityForm(forms.Form):
    """Reset a JT/T 808 auth code, or issue or remove an OsmAnd key: always with a stated reason."""

    prefix = "identity"  # beside the removal form's own `reason` on the page

    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        help_text=_("Kept in the audit trail, e.g. the terminal was reset or replaced, or its code was misused."),
    )
