import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.exceptions import InvalidAmount
from billing.money import format_amount, parse_amount


class RefundForm(forms.Form):
    amount = forms.CharField(
        label=_("Amount, ₽"), max_length=32,
        help_text=_("The whole payment or a part of it, for example 500 or 150,50"),
    )
    reason = forms.CharField(label=_("Reason"), max_length=255, required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))
    # Generated when the form is shown: submitting the same form twice refunds once.
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, refundable: int, **kwargs):
        self.refundable = refundable
        initial = kwargs.setdefault("initial", {})
        initial.setdefault("idempotency_key", uuid.uuid4())
        initial.setdefault("amount", format_amount(refundable).replace("\u00a0₽", "").replace("\u00a0", ""))
        super().__init__(*args, **kwargs)

    def clean_amount(self) -> int:
        try:
            return parse_amount(self.cleaned_data["amount"])
        except InvalidAmount as exc:
            raise forms.ValidationError(str(exc)) from exc
