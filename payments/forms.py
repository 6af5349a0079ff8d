import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.forms import MoneyField
from billing.money import format_amount


class RefundForm(forms.Form):
    amount = MoneyField(
        label=_("Amount, ₽"), help_text=_("The whole payment or a part of it, for example 500 or 150,50"),
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

