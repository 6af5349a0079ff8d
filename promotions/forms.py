from django import forms
from django.utils.translation import gettext_lazy as _

from billing.forms import MoneyField


class PromoCodeForm(forms.Form):
    """Staff create a promo code: the fields of ``services.create_promo_code``, which checks them."""

    code = forms.CharField(label=_("Code"), max_length=32, help_text=_("Letters A-Z, digits, - and _; case does not matter."))
    amount = MoneyField(label=_("Amount, ₽"), required=False, help_text=_("Credited when redeemed; or give a percent."))
    percent = forms.IntegerField(label=_("Percent"), required=False, min_value=0, max_value=100,
                                 help_text=_("Added to the customer's next top-up; or give an amount."))
    max_redemptions = forms.IntegerField(label=_("Redemptions in all"), min_value=1)
    valid_from = forms.DateTimeField(label=_("Valid from"), required=False)
    valid_until = forms.DateTimeField(label=_("Valid until"), required=False)
    new_customers_only = forms.BooleanField(label=_("New customers only"), required=False,
                                            help_text=_("Only for customers who never paid."))

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {**data, "amount": data["amount"] or 0, "percent": data["percent"] or 0}
