from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from genbot.errors import GenbotError

from . import selectors, staff
from .exceptions import BillingError
from .forms import AdjustBalanceForm
from .models import Account, BalanceAdjustment, Customer, StaffRequestStatus, Transfer
from .money import format_amount


class ReadOnlyAdminMixin:
    """The ledger is append-only: staff can read it, never add, change or delete a row here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MoneyFieldsMixin:
    """Detail pages show money columns through their rouble displays, never as bare kopecks.

    ``money_displays`` maps a model field to the ``admin.display`` method that formats it with
    ``billing.money.format_amount``; the page lists the display in the field's place.
    """

    money_displays: dict[str, str] = {}

    def get_fields(self, request, obj=None):
        shown = [self.money_displays.get(name, name) for name in super().get_fields(request, obj)]
        return list(dict.fromkeys(shown))  # a display already listed in its field's place once

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *self.money_displays.values()]


def report_pending(model_admin, request, staff_request) -> None:
    """Tell the member their request is above a limit and waits for a superuser."""
    model_admin.message_user(
        request,
        _("%(why)s Request #%(id)s waits for a superuser's approval; nothing moved yet.")
        % {"why": getattr(staff_request, "limit_message", ""), "id": staff_request.pk},
        messages.WARNING,
    )


class TransferInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Transfer
    fk_name = "customer"
    fields = ("created_at", "kind", "money", "source", "description", "pending", "staff_user")
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    max_num = 0
    show_change_link = True
    verbose_name_plural = _("Ledger (newest first)")

    @admin.display(description=_("amount"))
    def money(self, obj):
        return format_amount(obj.amount)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("telegram_id", "username", "first_name", "language", "available", "reserved", "is_blocked", "created_at")
    list_filter = ("is_blocked", "language")
    search_fields = ("telegram_id", "username", "first_name", "last_name")
    readonly_fields = ("telegram_id", "available", "reserved", "adjust_link", "created_at", "updated_at")
    fields = ("telegram_id", "username", "first_name", "last_name", "language", "is_blocked",
              "available", "reserved", "adjust_link", "created_at", "updated_at")
    inlines = [TransferInline]
    actions = ["adjust_balance_action"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("wallet")

    def has_add_permission(self, request):
        # Customers come from Telegram (their id is their identity), never typed in by staff.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("available"))
    def available(self, obj):
        return format_amount(obj.wallet.available) if hasattr(obj, "wallet") else "—"

    @admin.display(description=_("reserved"))
    def reserved(self, obj):
        return format_amount(obj.wallet.held) if hasattr(obj, "wallet") else "—"

    @admin.display(description=_("correction"))
    def adjust_link(self, obj):
        url = reverse("admin:billing_customer_adjust", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Adjust balance"))

    @admin.action(description=_("Adjust the balance of the selected customer"), permissions=["adjust"])
    def adjust_balance_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one customer to adjust."), messages.WARNING)
            return None
        return redirect("admin:billing_customer_adjust", queryset.get().pk)

    def has_adjust_permission(self, request):
        return request.user.has_perm("billing.adjust_balance")

    def get_urls(self):
        return [
            path("<int:pk>/adjust/", self.admin_site.admin_view(self.adjust_view), name="billing_customer_adjust"),
            *super().get_urls(),
        ]

    def adjust_view(self, request, pk):
        if not self.has_adjust_permission(request):
            raise PermissionDenied
        customer = get_object_or_404(Customer, pk=pk)
        form = AdjustBalanceForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                adjustment = staff.staff_adjust_balance(
                    acting_user=request.user, customer=customer, amount=form.signed_amount(),
                    reason=form.cleaned_data["reason"], note=form.cleaned_data["note"],
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                self.log_change(request, customer, f"balance adjustment #{adjustment.pk} ({adjustment.status}): {adjustment.amount} kopecks")
                self._report_adjustment(request, customer, adjustment)
                return redirect("admin:billing_customer_change", customer.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Adjust balance: %(customer)s") % {"customer": customer},
            "customer": customer,
            "available": format_amount(selectors.get_balance(customer)),
            "reserved": format_amount(selectors.get_held(customer)),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/customer/adjust.html", context)

    def _report_adjustment(self, request, customer, adjustment: BalanceAdjustment) -> None:
        if adjustment.is_pending:
            report_pending(self, request, adjustment)
            return
        self.message_user(
            request,
            _("Balance adjusted; available now %(amount)s.") % {"amount": format_amount(selectors.get_balance(customer))},
            messages.SUCCESS,
        )


@admin.register(Transfer)
class TransferAdmin(MoneyFieldsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "kind", "money", "debit_account", "credit_account", "customer", "source", "staff_user")
    list_filter = ("kind", "source")
    search_fields = ("idempotency_key", "customer__telegram_id", "description")
    list_select_related = ("debit_account", "credit_account", "customer", "staff_user")
    money_displays = {"amount": "money"}

    @admin.display(description=_("amount"))
    def money(self, obj):
        return format_amount(obj.amount)


@admin.register(Account)
class AccountAdmin(MoneyFieldsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "code", "customer", "balance_shown", "held_shown")
    money_displays = {"balance": "balance_shown", "held": "held_shown"}
    list_filter = ("kind",)
    list_select_related = ("customer",)

    @admin.display(description=_("balance"))
    def balance_shown(self, obj):
        return format_amount(obj.balance)

    @admin.display(description=_("held"))
    def held_shown(self, obj):
        return format_amount(obj.held)


class StaffRequestAdmin(MoneyFieldsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Staff money requests (adjustments here, refunds in payments): read-only, decided by superusers.

    A superuser other than the requester approves (the service executes it) or rejects a pending
    request with the actions; each decision is logged (LogEntry) and recorded on the row. Each
    request kind's admin defines ``approve(*, acting_user, obj)``: the service of its own app that
    executes the request (billing cannot name payments' service, so the hook has no default).
    """

    list_filter = ("status", "requested_by", "created_at")
    list_select_related = ("requested_by", "decided_by")
    actions = ["approve_selected", "reject_selected"]
    money_displays = {"amount": "money"}
    # The exceptions whose message is shown as the refusal of one request (any app's).
    refusals: tuple[type[Exception], ...] = (GenbotError,)

    def has_decide_permission(self, request):
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return [*(f.name for f in self.model._meta.fields), *super().get_readonly_fields(request, obj)]

    @admin.display(description=_("amount"), ordering="amount")
    def money(self, obj):
        return format_amount(obj.amount)

    @admin.action(description=_("Approve the selected pending requests (executes them)"), permissions=["decide"])
    def approve_selected(self, request, queryset):
        self._decide_each(
            request, queryset, lambda obj: self.approve(acting_user=request.user, obj=obj), "approved",
            _("%(count)s request(s) approved."),
        )

    @admin.action(description=_("Reject the selected pending requests"), permissions=["decide"])
    def reject_selected(self, request, queryset):
        self._decide_each(
            request, queryset, lambda obj: staff.reject_staff_request(acting_user=request.user, request=obj), "rejected",
            _("%(count)s request(s) rejected."),
        )

    def _decide_each(self, request, queryset, decide, audit: str, done_message) -> None:
        done = 0
        for obj in queryset.filter(status=StaffRequestStatus.PENDING):
            try:
                decide(obj)
            except self.refusals as exc:
                self.message_user(request, f"#{obj.pk}: {exc}", messages.WARNING)
                continue
            done += 1
            self.log_change(request, obj, audit)
        if done:
            self.message_user(request, done_message % {"count": done}, messages.SUCCESS)


@admin.register(BalanceAdjustment)
class BalanceAdjustmentAdmin(StaffRequestAdmin):
    list_display = ("id", "created_at", "customer", "money", "status", "requested_by", "decided_by", "customer_reason", "note")
    list_select_related = ("customer", "requested_by", "decided_by")
    search_fields = ("customer__telegram_id", "customer__username", "customer_reason", "note")

    def approve(self, *, acting_user, obj):
        return staff.approve_staff_adjustment(acting_user=acting_user, adjustment=obj)
