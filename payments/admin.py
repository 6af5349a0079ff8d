from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing import selectors as billing_selectors
from billing.admin import MoneyFieldsMixin, ReadOnlyAdminMixin, StaffFormPageMixin, StaffRequestAdmin, money_column, report_pending
from billing.money import format_amount

from . import selectors, staff
from .forms import RefundForm
from .models import REFUNDABLE_STATUSES, Payment, Refund, RefundRequest, RefundStatus


def _customer_link(customer):
    url = reverse("admin:billing_customer_change", args=[customer.pk])
    return format_html('<a href="{}">{}</a>', url, customer)


class ReadOnlyMoneyMixin(ReadOnlyAdminMixin):
    """Payments and refunds change only through the services (webhook, sync, refund form).

    View-only: a save from a stale form would overwrite a status a webhook just changed."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.extra_readonly)

    extra_readonly: tuple = ()


class RefundInline(ReadOnlyMoneyMixin, admin.TabularInline):
    model = Refund
    fields = ("created_at", "money", "status", "provider_refund_id", "staff_user", "reason", "failure_reason")
    extra_readonly = ("money",)
    extra = 0
    max_num = 0
    show_change_link = True

    money = money_column("amount", _("amount"))


@admin.register(Payment)
class PaymentAdmin(StaffFormPageMixin, MoneyFieldsMixin, ReadOnlyMoneyMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "provider", "customer_link", "money", "stars_amount", "status",
                    "refunded", "provider_payment_id")
    list_filter = ("provider", "status", "created_at")
    search_fields = ("provider_payment_id", "customer__telegram_id", "customer__username")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    extra_readonly = ("customer_link", "refund_link")
    money_displays = {"amount": "money", "refunded_amount": "refunded"}
    inlines = [RefundInline]
    actions = ["refund_action"]
    form_page, form_permission = "refund", "payments.refund_payment"
    choose_one_message = _("Choose exactly one payment to refund.")

    @admin.display(description=_("customer"), ordering="customer")
    def customer_link(self, obj):
        return _customer_link(obj.customer)

    money = money_column("amount", _("amount"), ordering="amount")
    refunded = money_column("refunded_amount", _("refunded"), dash_zero=True)

    @admin.display(description=_("refund"))
    def refund_link(self, obj):
        if obj.status not in REFUNDABLE_STATUSES:
            return "—"
        url = reverse("admin:payments_payment_refund", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Refund…"))

    @admin.action(description=_("Refund the selected payment (full or partial)"), permissions=["form_page"])
    def refund_action(self, request, queryset):
        return self.open_form_page(request, queryset)

    def get_form_page_queryset(self):
        return Payment.objects.select_related("customer")

    def form_page_view(self, request, payment):
        refundable = selectors.refundable_amount(payment)
        form = RefundForm(request.POST or None, refundable=refundable)
        done = self.submit_form_page(request, payment, form, lambda: staff.staff_refund_payment(
            acting_user=request.user, payment=payment, amount=form.cleaned_data["amount"],
            reason=form.cleaned_data["reason"], note=form.cleaned_data["note"],
            idempotency_key=form.cleaned_data["idempotency_key"],
        ))
        return done or self.form_page_response(
            request, payment, template="payments/admin/refund.html", form=form,
            title=_("Refund payment #%(id)s") % {"id": payment.pk}, payment=payment,
            paid=format_amount(payment.amount), committed=format_amount(payment.amount - refundable),
            refundable=format_amount(refundable), available=format_amount(billing_selectors.get_balance(payment.customer)),
            cash=format_amount(min(refundable, billing_selectors.cash_refundable(payment.customer))),
        )

    def report_request(self, request, payment, refund_request: RefundRequest) -> None:
        if refund_request.is_pending:
            report_pending(self, request, refund_request)
            return
        refund = refund_request.refund
        amount = format_amount(refund.amount)
        if refund.status == RefundStatus.SUCCEEDED:
            self.message_user(request, _("Refunded %(amount)s.") % {"amount": amount}, messages.SUCCESS)
        elif refund.status == RefundStatus.PENDING:
            self.message_user(
                request,
                _("Refund of %(amount)s requested; the wallet was debited and the provider will confirm it.")
                % {"amount": amount},
                messages.INFO,
            )
        else:
            self.message_user(
                request,
                _("The provider refused the refund (%(reason)s); the money is back on the customer's wallet.")
                % {"reason": refund.failure_reason},
                messages.ERROR,
            )


@admin.register(Refund)
class RefundAdmin(MoneyFieldsMixin, ReadOnlyMoneyMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "payment", "customer_link", "money", "status", "staff_user", "provider_refund_id")
    list_filter = ("status", "payment__provider", "created_at")
    search_fields = ("provider_refund_id", "payment__provider_payment_id", "payment__customer__telegram_id")
    list_select_related = ("payment__customer", "staff_user")
    extra_readonly = ("customer_link",)
    money_displays = {"amount": "money"}

    @admin.display(description=_("customer"))
    def customer_link(self, obj):
        return _customer_link(obj.payment.customer)

    money = money_column("amount", _("amount"), ordering="amount")


@admin.register(RefundRequest)
class RefundRequestAdmin(StaffRequestAdmin):
    subject, reason = "payment", "reason"
    search_fields = ("payment__provider_payment_id", "payment__customer__telegram_id", "reason", "note")
    approve = staticmethod(staff.approve_staff_refund)
