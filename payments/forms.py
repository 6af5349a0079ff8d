from django import forms
from django.utils.translation import gettext_lazy as _

from billing import staff_keys
from billing.forms import MoneyField, StaffActionForm, StaffActionKeyField, internal_note_field
from billing.money import format_amount


class RefundForm(StaffActionForm):
    amount = MoneyField(
        label=_("Amount, ₽"), help_text=_("The whole payment or a part of it, for example 500 or 150,50"),
    )
    reason = forms.CharField(label=_("Reason"), max_length=255, required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))
    note = internal_note_field()
    # A signed token of the key made when the form is shown: submitting it twice refunds once.
    idempotency_key = StaffActionKeyField(namespace=staff_keys.REFUND_NAMESPACE)

    def __init__(self, *args, refundable: int, **kwargs):
        self.refundable = refundable
        initial = kwargs.setdefault("initial", {})
        initial.setdefault("amount", format_amount(refundable).replace("\u00a0₽", "").replace("\u00a0", ""))
        super().__init__(*args, **kwargs)

