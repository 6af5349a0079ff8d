from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing import selectors as billing_selectors
from billing.admin import MoneyFieldsMixin, StaffRequestAdmin, report_pending
from billing.money import format_amount
from genbot.errors import GenbotError

from . import selectors, staff
from .forms import RefundForm
from .models import REFUNDABLE_STATUSES, Payment, Refund, RefundRequest, RefundStatus


def _customer_link(customer):
    url = reverse("admin:billing_customer_change", args=[customer.pk])
    return format_html('<a href="{}">{}</a>', url, customer)


class ReadOnlyMoneyMixin:
    """Payments and refunds change only through the services (webhook, sync, refund form)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # View-only: a save from a stale form would overwrite a status a webhook just changed.
        return False

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

    @admin.display(description=_("amount"))
    def money(self, obj):
        return format_amount(obj.amount)


@admin.register(Payment)
class PaymentAdmin(MoneyFieldsMixin, ReadOnlyMoneyMixin, admin.ModelAdmin):
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

    @admin.display(description=_("customer"), ordering="customer")
    def customer_link(self, obj):
        return _customer_link(obj.customer)

    @admin.display(description=_("amount"), ordering="amount")
    def money(self, obj):
        return format_amount(obj.amount)

    @admin.display(description=_("refunded"))
    def refunded(self, obj):
        return format_amount(obj.refunded_amount) if obj.refunded_amount else "—"

    @admin.display(description=_("refund"))
    def refund_link(self, obj):
        if obj.status not in REFUNDABLE_STATUSES:
            return "—"
        url = reverse("admin:payments_payment_refund", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Refund…"))

    @admin.action(description=_("Refund the selected payment (full or partial)"), permissions=["refund"])
    def refund_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one payment to refund."), messages.WARNING)
            return None
        return redirect("admin:payments_payment_refund", queryset.get().pk)

    def has_refund_permission(self, request):
        return request.user.has_perm("payments.refund_payment")

    def get_urls(self):
        return [
            path("<int:pk>/refund/", self.admin_site.admin_view(self.refund_view), name="payments_payment_refund"),
            *super().get_urls(),
        ]

    def refund_view(self, request, pk):
        if not self.has_refund_permission(request):
            raise PermissionDenied
        payment = get_object_or_404(Payment.objects.select_related("customer"), pk=pk)
        refundable = selectors.refundable_amount(payment)
        form = RefundForm(request.POST or None, refundable=refundable)
        if request.method == "POST" and form.is_valid():
            try:
                refund_request = staff.staff_refund_payment(
                    acting_user=request.user, payment=payment, amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"], note=form.cleaned_data["note"],
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except GenbotError as exc:
                form.add_error(None, str(exc))
            else:
                self.log_change(request, payment, f"refund request #{refund_request.pk} ({refund_request.status}): {refund_request.amount} kopecks")
                self._report(request, refund_request)
                return redirect("admin:payments_payment_change", payment.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund payment #%(id)s") % {"id": payment.pk},
            "payment": payment,
            "paid": format_amount(payment.amount),
            "committed": format_amount(payment.amount - refundable),
            "refundable": format_amount(refundable),
            "available": format_amount(billing_selectors.get_balance(payment.customer)),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "payments/admin/refund.html", context)

    def _report(self, request, refund_request: RefundRequest) -> None:
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

    @admin.display(description=_("amount"), ordering="amount")
    def money(self, obj):
        return format_amount(obj.amount)


@admin.register(RefundRequest)
class RefundRequestAdmin(StaffRequestAdmin):
    list_display = ("id", "created_at", "payment", "money", "status", "requested_by", "decided_by", "reason", "note")
    list_select_related = ("payment", "requested_by", "decided_by")
    search_fields = ("payment__provider_payment_id", "payment__customer__telegram_id", "reason", "note")

    def approve(self, *, acting_user, obj):
        return staff.approve_staff_refund(acting_user=acting_user, request=obj)
