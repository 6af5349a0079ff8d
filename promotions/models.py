"""What a customer can earn or redeem, all of it money moved on the ledger.

Every bonus is a ``billing`` transfer from the ``bonus`` system account under an idempotency
key, so however often or concurrently an event arrives, it credits once:

==========================  ============================================  =====================
bonus                       ledger key                                    recorded here as
==========================  ============================================  =====================
welcome (first /start)      ``welcome:<telegram id>``                     (the transfer only)
promo code, fixed amount    ``promo:<redemption id>``                     ``PromoRedemption``
promo code, percent         ``payment-bonus:promo_percent:<payment id>``  ``PaymentBonus``
top-up package              ``payment-bonus:package:<payment id>``        ``PaymentBonus``
referral, first top-up      ``referral-signup:<referee id>`` (once each)  ``PaymentBonus``
referral, percent           ``payment-bonus:referral_percent:<payment>``  ``PaymentBonus``
take-back on a refund       ``bonus-takeback:<bonus id>:<refund id>``     ``BonusTakeback``
==========================  ============================================  =====================

A bonus that came with a payment is taken back (in proportion) when that payment is refunded,
as far as the beneficiary's available balance allows; the rest is written off and shown to
staff. Bonus money can be spent, never cashed out (``billing.selectors.cash_refundable``).
"""
from django.conf import settings
from django.db import models
from django.db.models import F, Q

from billing.models import Customer, Transfer
from billing.money import format_amount
from genbot.choices import one_of


class PromoCode(models.Model):
    """A code staff hand out: a fixed amount credited at once, or a percent on the next top-up.

    ``code`` is kept upper-case (codes are matched case-insensitively); ``redemptions_count``
    grows by a conditional UPDATE that the CHECK caps at ``max_redemptions``.
    """

    code = models.CharField(max_length=32, unique=True, help_text="Upper-case letters, digits, - and _.")
    amount = models.BigIntegerField(default=0, help_text="Kopecks credited when redeemed (0: a percent code).")
    percent = models.PositiveSmallIntegerField(default=0, help_text="Added to the customer's next top-up (0: an amount code).")
    max_redemptions = models.PositiveIntegerField(help_text="How many customers may redeem it in all.")
    redemptions_count = models.PositiveIntegerField(default=0, editable=False)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    new_customers_only = models.BooleanField(default=False, help_text="Only customers who never paid.")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(amount__gt=0) & Q(percent=0)) | (Q(amount=0) & Q(percent__gt=0) & Q(percent__lte=100)),
                name="promocode_amount_xor_percent",
            ),
            models.CheckConstraint(condition=Q(max_redemptions__gt=0), name="promocode_max_positive"),
            models.CheckConstraint(
                condition=Q(redemptions_count__lte=F("max_redemptions")), name="promocode_within_max"
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_from__lt=F("valid_until")),
                name="promocode_valid_window",
            ),
            models.CheckConstraint(condition=Q(code=models.functions.Upper("code")), name="promocode_upper_case"),
        ]

    def __str__(self) -> str:
        what = format_amount(self.amount) if self.amount else f"+{self.percent} %"
        return f"{self.code} ({what})"


class PromoRedemption(models.Model):
    """One customer's redemption of one code (UNIQUE: at most one each).

    An amount code has its ``transfer`` (credited at once); a percent code waits for the
    customer's next successful top-up and then names it in ``applied_payment`` (its bonus is
    that payment's ``PaymentBonus`` of kind ``promo_percent``).
    """

    promo_code = models.ForeignKey(PromoCode, on_delete=models.PROTECT, related_name="redemptions")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField(default=0)
    percent = models.PositiveSmallIntegerField(default=0)
    transfer = models.OneToOneField(Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    applied_payment = models.OneToOneField(
        "payments.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["promo_code", "customer"], name="promoredemption_once_per_customer"),
            models.CheckConstraint(
                condition=(Q(amount__gt=0) & Q(percent=0) & Q(applied_payment__isnull=True))
                | (Q(amount=0) & Q(percent__gt=0) & Q(transfer__isnull=True)),
                name="promoredemption_amount_xor_percent",
            ),
        ]
        indexes = [models.Index(fields=["customer", "-id"], name="promoredemption_customer")]

    def __str__(self) -> str:
        return f"{self.promo_code_id} by {self.customer_id}"


class Referral(models.Model):
    """``referee`` started the bot through ``referrer``'s link as a new customer: once and for good."""

    referrer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    referee = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(referrer=F("referee")), name="referral_not_self"),
        ]
        indexes = [models.Index(fields=["referrer", "-id"], name="referral_referrer")]

    def __str__(self) -> str:
        return f"{self.referee_id} invited by {self.referrer_id}"


class TopUpPackage(models.Model):
    """A top-up amount shown on the buttons with its bonus: from ``amount`` on, ``bonus_percent`` more.

    A top-up gets the bonus of the largest active package it reaches, as the packages were when
    it was started (the percent is kept in the payment's metadata).
    """

    amount = models.BigIntegerField(unique=True, help_text="Kopecks.")
    bonus_percent = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "amount"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="topuppackage_amount_positive"),
            models.CheckConstraint(condition=Q(bonus_percent__lte=100), name="topuppackage_bonus_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{format_amount(self.amount)} +{self.bonus_percent} %" if self.bonus_percent else format_amount(self.amount)


class BonusKind(models.TextChoices):
    PACKAGE = "package", "Top-up package"
    PROMO_PERCENT = "promo_percent", "Promo code percent"
    REFERRAL_SIGNUP = "referral_signup", "Referral: first top-up"
    REFERRAL_PERCENT = "referral_percent", "Referral: percent of a top-up"


class PaymentBonus(models.Model):
    """A bonus credited because a payment succeeded: one of each kind per payment (UNIQUE).

    ``beneficiary`` is the payer (package, promo percent) or their referrer. When the payment is
    refunded, ``taken_back`` and ``written_off`` grow (``BonusTakeback`` rows say by which
    refund); together they never exceed ``amount``.
    """

    kind = models.CharField(max_length=24, choices=BonusKind.choices)
    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, related_name="+")
    beneficiary = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    transfer = models.OneToOneField(Transfer, on_delete=models.PROTECT, related_name="+")
    taken_back = models.BigIntegerField(default=0)
    written_off = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "kind"], name="paymentbonus_one_kind_per_payment"),
            one_of("kind", BonusKind, name="paymentbonus_kind_valid"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="paymentbonus_amount_positive"),
            models.CheckConstraint(
                condition=Q(taken_back__gte=0) & Q(written_off__gte=0)
                & Q(amount__gte=F("taken_back") + F("written_off")),
                name="paymentbonus_takeback_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["beneficiary", "-id"], name="paymentbonus_beneficiary")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {format_amount(self.amount)} for payment {self.payment_id}"


class BonusTakeback(models.Model):
    """What one refund took back of one bonus: ``taken`` from the wallet, ``written_off`` short of it."""

    bonus = models.ForeignKey(PaymentBonus, on_delete=models.PROTECT, related_name="takebacks")
    refund = models.ForeignKey("payments.Refund", on_delete=models.PROTECT, related_name="+")
    taken = models.BigIntegerField(default=0)
    written_off = models.BigIntegerField(default=0)
    transfer = models.OneToOneField(Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["bonus", "refund"], name="bonustakeback_once_per_refund"),
            models.CheckConstraint(
                condition=Q(taken__gte=0) & Q(written_off__gte=0) & (Q(taken__gt=0) | Q(written_off__gt=0)),
                name="bonustakeback_something",
            ),
            models.CheckConstraint(
                condition=(Q(taken=0) & Q(transfer__isnull=True)) | (Q(taken__gt=0) & Q(transfer__isnull=False)),
                name="bonustakeback_taken_has_transfer",
            ),
        ]

    def __str__(self) -> str:
        return f"take-back of bonus {self.bonus_id} (refund {self.refund_id})"
