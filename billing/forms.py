import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from .exceptions import InvalidAmount
from .money import parse_amount


class MoneyField(forms.CharField):
    """Roubles as a person types them ("500", "150,50", "1 500 ₽"), cleaned to kopecks."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def clean(self, value):
        text = super().clean(value)
        if text in self.empty_values:
            return None
        try:
            return parse_amount(text)
        except InvalidAmount as exc:
            raise forms.ValidationError(str(exc)) from exc


class AdjustBalanceForm(forms.Form):
    direction = forms.ChoiceField(
        label=_("Direction"), choices=[("add", _("Add to the balance")), ("take", _("Take from the balance"))]
    )
    amount = MoneyField(label=_("Amount, ₽"), help_text=_("For example 500 or 150,50"))
    reason = forms.CharField(label=_("Reason"), max_length=255, widget=forms.Textarea(attrs={"rows": 2}))
    # Generated when the form is shown, so a double-submitted form adjusts once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", f"admin-adjust:{uuid.uuid4()}")
        super().__init__(*args, **kwargs)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give a reason for the correction."))
        return reason

    def signed_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        return amount if self.cleaned_data["direction"] == "add" else -amount
