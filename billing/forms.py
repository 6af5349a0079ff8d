from django import forms
from django.utils.translation import gettext_lazy as _

from . import staff_keys
from .exceptions import InvalidAmount, InvalidStaffKey
from .money import format_amount, parse_amount


class MoneyField(forms.CharField):
    """Roubles as a person types them ("500", "150,50", "1 500 ₽"), cleaned to kopecks."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        # A stored amount (kopecks) is shown in roubles, the way it is typed back.
        if isinstance(value, int) and not isinstance(value, bool):
            return format_amount(value)
        return value

    def clean(self, value):
        text = super().clean(value)
        if text in self.empty_values:
            return None
        try:
            return parse_amount(text)
        except InvalidAmount as exc:
            raise forms.ValidationError(str(exc)) from exc


def internal_note_field() -> forms.CharField:
    """A staff money form's note for staff only (the customer never sees it)."""
    return forms.CharField(
        label=_("Internal note"), max_length=255, required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For staff only; the customer never sees it."),
    )


class StaffActionKeyField(forms.CharField):
    """The hidden, server-signed token of a staff action's idempotency key; cleaned to the key.

    A person can copy the token (a double submit adjusts once) but never choose the key: a token
    the server did not sign, or of another action's namespace, is refused.
    """

    widget = forms.HiddenInput

    def __init__(self, *, namespace: str, **kwargs):
        self.namespace = namespace
        kwargs.setdefault("max_length", 300)
        super().__init__(**kwargs)

    def new_token(self) -> str:
        return staff_keys.form_token(self.namespace)

    def clean(self, value):
        token = super().clean(value)
        try:
            return staff_keys.key_from_token(token, self.namespace)
        except InvalidStaffKey as exc:
            raise forms.ValidationError(str(exc)) from exc


class StaffActionForm(forms.Form):
    """A staff money form: a fresh key token when shown, so a double-submitted form acts once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["idempotency_key"]
        self.initial.setdefault("idempotency_key", field.new_token())


class AdjustBalanceForm(StaffActionForm):
    direction = forms.ChoiceField(
        label=_("Direction"), choices=[("add", _("Add to the balance")), ("take", _("Take from the balance"))]
    )
    amount = MoneyField(label=_("Amount, ₽"), help_text=_("For example 500 or 150,50"))
    reason = forms.CharField(
        label=_("Reason for the customer"), max_length=255, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("The customer reads this in their message and their history."),
    )
    note = internal_note_field()
    idempotency_key = StaffActionKeyField(namespace=staff_keys.ADJUST_NAMESPACE)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give a reason for the correction."))
        return reason

    def signed_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        return amount if self.cleaned_data["direction"] == "add" else -amount
