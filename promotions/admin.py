"""Promotions in the admin. Money moves only through the services: staff create codes here (the
form calls ``create_promo_code``) and edit packages; every bonus, redemption, referral and
take-back is read-only. Each page needs its model permission, as everywhere in the admin."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from billing.admin import MoneyFieldsMixin, ReadOnlyAdminMixin, money_column

from . import services
from .exceptions import PromotionError
from .forms import PromoCodeForm
from .models import BonusTakeback, PaymentBonus, PromoCode, PromoRedemption, Referral, TopUpPackage


class ReadOnlyRowsMixin(ReadOnlyAdminMixin):
    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(getattr(self, "money_displays", {}).values())


class ParentViewInline(ReadOnlyRowsMixin, admin.TabularInline):
    """Rows shown on their parent's page to whoever may view the parent (they have no page of their own)."""

    extra = 0
    max_num = 0

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(f"{self.parent_model._meta.app_label}.view_{self.parent_model._meta.model_name}")

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class RedemptionInline(ParentViewInline):
    model = PromoRedemption
    fields = ("created_at", "customer", "money", "percent", "transfer", "applied_payment")
    money = money_column("amount", _("amount"), dash_zero=True)


@admin.register(PromoCode)
class PromoCodeAdmin(MoneyFieldsMixin, admin.ModelAdmin):
    list_display = ("code", "money", "percent", "redemptions_count", "max_redemptions", "valid_from", "valid_until",
                    "new_customers_only", "is_active", "created_at")
    list_filter = ("is_active", "new_customers_only")
    search_fields = ("code",)
    money_displays = {"amount": "money"}
    inlines = [RedemptionInline]
    money = money_column("amount", _("amount"), dash_zero=True)

    def get_readonly_fields(self, request, obj=None):
        # Only switching a code off (or on) is an edit; its terms are what customers redeemed.
        return [*(f.name for f in self.model._meta.fields if f.name != "is_active"), "redemptions_count",
                *super().get_readonly_fields(request, obj)]

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PromoCodeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                promo = services.create_promo_code(**form.service_arguments(), created_by=request.user)
            except PromotionError as exc:
                form.add_error(None, str(exc))
            else:
                self.log_addition(request, promo, "created through create_promo_code")
                self.message_user(request, _("Promo code %(code)s created.") % {"code": promo.code}, messages.SUCCESS)
                return redirect("admin:promotions_promocode_change", promo.pk)
        context = {**self.admin_site.each_context(request), "title": _("Add promo code"), "form": form,
                   "opts": self.model._meta}
        return TemplateResponse(request, "promotions/admin/promo_code_add.html", context)


@admin.register(TopUpPackage)
class TopUpPackageAdmin(MoneyFieldsMixin, admin.ModelAdmin):
    list_display = ("amount_shown", "amount", "bonus_percent", "is_active", "position", "updated_at")
    list_editable = ("bonus_percent", "is_active", "position")
    list_display_links = ("amount_shown",)
    amount_shown = money_column("amount", _("package"), ordering="amount")


@admin.register(Referral)
class ReferralAdmin(ReadOnlyRowsMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "referrer", "referee")
    search_fields = ("referrer__telegram_id", "referrer__username", "referee__telegram_id", "referee__username")
    list_select_related = ("referrer", "referee")


class WrittenOffFilter(admin.SimpleListFilter):
    title = _("written off")
    parameter_name = "written_off"

    def lookups(self, request, model_admin):
        return [("yes", _("Something written off")), ("no", _("Nothing written off"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(written_off__gt=0)
        if self.value() == "no":
            return queryset.filter(written_off=0)
        return queryset


class TakebackInline(ParentViewInline):
    model = BonusTakeback
    fields = ("created_at", "refund", "taken", "written_off", "transfer")


@admin.register(PaymentBonus)
class PaymentBonusAdmin(MoneyFieldsMixin, ReadOnlyRowsMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "kind", "beneficiary", "payment", "money", "taken", "lost")
    list_filter = ("kind", WrittenOffFilter)
    search_fields = ("beneficiary__telegram_id", "beneficiary__username")
    list_select_related = ("beneficiary", "payment")
    money_displays = {"amount": "money", "taken_back": "taken", "written_off": "lost"}
    inlines = [TakebackInline]
    money = money_column("amount", _("amount"))
    taken = money_column("taken_back", _("taken back"), dash_zero=True)
    lost = money_column("written_off", _("written off"), dash_zero=True)


@admin.register(BonusTakeback)
class BonusTakebackAdmin(MoneyFieldsMixin, ReadOnlyRowsMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "bonus", "refund", "taken_shown", "lost")
    list_select_related = ("bonus", "refund")
    money_displays = {"taken": "taken_shown", "written_off": "lost"}
    taken_shown = money_column("taken", _("taken back"), dash_zero=True)
    lost = money_column("written_off", _("written off"), dash_zero=True)
