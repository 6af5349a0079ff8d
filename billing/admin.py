from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from genbot.errors import GenbotError

from . import selectors, staff
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


def money_column(field: str, description, *, ordering: str | None = None, dash_zero: bool = False):
    """An admin column (or read-only field) showing the kopecks in ``field`` in roubles through
    ``billing.money.format_amount``: "—" for None, and for 0 with ``dash_zero``."""

    @admin.display(description=description, ordering=ordering)
    def column(self, obj):
        value = getattr(obj, field)
        return "—" if value is None or (dash_zero and not value) else format_amount(value)

    return column


class StaffFormPageMixin:
    """A staff money form on a page of its own per row (a customer's adjustment, a payment's
    refund): the URL ``<pk>/<form_page>/``, named ``<app>_<model>_<form_page>``; the permission
    that opens it (``form_permission``, which an action checks as ``permissions=["form_page"]``);
    ``open_form_page``, an action's body that opens it for exactly one selected row; and
    ``form_page_response``, the page (``templates/admin/staff_form_page.html`` and its child).
    The subclass writes ``form_page_view(request, obj)``: parse the form, call one service."""

    form_page: str
    form_permission: str
    choose_one_message = ""

    def has_form_page_permission(self, request) -> bool:
        return request.user.has_perm(self.form_permission)

    def form_page_url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{self.form_page}"

    def get_urls(self):
        page = path(f"<int:pk>/{self.form_page}/", self.admin_site.admin_view(self._form_page), name=self.form_page_url_name())
        return [page, *super().get_urls()]

    def get_form_page_queryset(self):
        return self.model._default_manager.all()

    def _form_page(self, request, pk):
        if not self.has_form_page_permission(request):
            raise PermissionDenied
        return self.form_page_view(request, get_object_or_404(self.get_form_page_queryset(), pk=pk))

    def open_form_page(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, self.choose_one_message, messages.WARNING)
            return None
        return redirect(f"admin:{self.form_page_url_name()}", queryset.get().pk)

    def submit_form_page(self, request, obj, form, submit):
        """For a valid POSTed form, run ``submit()`` (the one service call, which makes a staff
        request): a refusal goes on the form; a made request is logged on ``obj``, reported
        (``report_request(request, obj, made)``) and the change page of ``obj`` follows. None:
        show the page (again)."""
        if request.method != "POST" or not form.is_valid():
            return None
        try:
            made = submit()
        except GenbotError as exc:
            form.add_error(None, str(exc))
            return None
        self.log_change(request, obj, f"{made._meta.verbose_name} #{made.pk} ({made.status}): {made.amount} kopecks")
        self.report_request(request, obj, made)
        return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", obj.pk)

    def form_page_response(self, request, obj, *, template: str, title, form, **context) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request), "title": title, "object": obj, "form": form,
            "opts": self.model._meta, **context,
        }
        return TemplateResponse(request, template, context)


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
    money = money_column("amount", _("amount"))


@admin.register(Customer)
class CustomerAdmin(StaffFormPageMixin, admin.ModelAdmin):
    list_display = ("telegram_id", "username", "first_name", "language", "available", "reserved", "is_blocked", "created_at")
    list_filter = ("is_blocked", "language")
    search_fields = ("telegram_id", "username", "first_name", "last_name")
    readonly_fields = ("telegram_id", "available", "reserved", "adjust_link", "created_at", "updated_at")
    fields = ("telegram_id", "username", "first_name", "last_name", "language", "is_blocked",
              "available", "reserved", "adjust_link", "created_at", "updated_at")
    inlines = [TransferInline]
    actions = ["adjust_balance_action"]
    form_page, form_permission = "adjust", "billing.adjust_balance"
    choose_one_message = _("Choose exactly one customer to adjust.")

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

    @admin.action(description=_("Adjust the balance of the selected customer"), permissions=["form_page"])
    def adjust_balance_action(self, request, queryset):
        return self.open_form_page(request, queryset)

    def form_page_view(self, request, customer):
        form = AdjustBalanceForm(request.POST or None)
        done = self.submit_form_page(request, customer, form, lambda: staff.staff_adjust_balance(
            acting_user=request.user, customer=customer, amount=form.signed_amount(),
            reason=form.cleaned_data["reason"], note=form.cleaned_data["note"],
            idempotency_key=form.cleaned_data["idempotency_key"],
        ))
        return done or self.form_page_response(
            request, customer, template="admin/billing/customer/adjust.html", form=form,
            title=_("Adjust balance: %(customer)s") % {"customer": customer}, customer=customer,
            available=format_amount(selectors.get_balance(customer)), reserved=format_amount(selectors.get_held(customer)),
        )

    def report_request(self, request, customer, adjustment: BalanceAdjustment) -> None:
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
    money = money_column("amount", _("amount"))


@admin.register(Account)
class AccountAdmin(MoneyFieldsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "code", "customer", "balance_shown", "held_shown")
    money_displays = {"balance": "balance_shown", "held": "held_shown"}
    list_filter = ("kind",)
    list_select_related = ("customer",)

    balance_shown = money_column("balance", _("balance"))
    held_shown = money_column("held", _("held"))


class StaffRequestAdmin(MoneyFieldsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Staff money requests (adjustments here, refunds in payments): read-only, decided by superusers.

    A superuser other than the requester approves (the service executes it) or rejects a pending
    request with the actions; each decision is logged (LogEntry) and recorded on the row. Each
    request kind's admin sets ``approve`` to the service of its own app that executes the request,
    called as every decision service is, ``(*, acting_user, request)`` (billing cannot name
    payments' service, so the hook has no default).
    """

    list_filter = ("status", "requested_by", "created_at")
    actions = ["approve_selected", "reject_selected"]
    # What each request is about ("customer", "payment") and its reason field, both in the list.
    subject = reason = ""
    money_displays = {"amount": "money"}
    # The exceptions whose message is shown as the refusal of one request (any app's).
    refusals: tuple[type[Exception], ...] = (GenbotError,)

    def has_decide_permission(self, request):
        return request.user.is_superuser

    def get_list_display(self, request):
        return ("id", "created_at", self.subject, "money", "status", "requested_by", "decided_by", self.reason, "note")

    def get_list_select_related(self, request):
        return (self.subject, "requested_by", "decided_by")

    def get_readonly_fields(self, request, obj=None):
        return [*(f.name for f in self.model._meta.fields), *super().get_readonly_fields(request, obj)]

    money = money_column("amount", _("amount"), ordering="amount")

    @admin.action(description=_("Approve the selected pending requests (executes them)"), permissions=["decide"])
    def approve_selected(self, request, queryset):
        self._decide_each(
            request, queryset, lambda obj: self.approve(acting_user=request.user, request=obj), "approved",
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
    subject, reason = "customer", "customer_reason"
    search_fields = ("customer__telegram_id", "customer__username", "customer_reason", "note")
    approve = staticmethod(staff.approve_staff_adjustment)
