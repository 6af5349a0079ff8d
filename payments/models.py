"""Top-ups and their refunds.

``Payment`` states::

    pending -> succeeded -> partially_refunded -> refunded
            \\-> canceled            \\---------------^

``Refund`` states::

    pending -> succeeded          (the provider returned the money; the payment's refunded amount grows)
            \\-> failed            (the provider refused; the wallet gets the debit back)

Every change is a conditional UPDATE (``WHERE status IN (...)``) in ``payments.services``, so
two actors (a webhook and ``sync_payments``, two staff clicks) can never both win.
"""
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from billing.models import Customer, StaffMoneyRequest, Transfer


class Provider(models.TextChoices):
    YOOKASSA = "yookassa", "YooKassa"
    STARS = "stars", "Telegram Stars"


class PaymentStatus(models.TextChoices):
    # A label not given is the name's (Django's default): "Pending", ...
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded"


# Statuses in which the money reached the wallet and some of it may still be refunded.
REFUNDABLE_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)


class Payment(models.Model):
    provider = models.CharField(max_length=16, choices=Provider.choices)
    # YooKassa's payment id, or Telegram's telegram_payment_charge_id once a Stars invoice is
    # paid; empty until the provider names it.
    provider_payment_id = models.CharField(max_length=128, null=True, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    # What the wallet is credited, in kopecks.
    amount = models.BigIntegerField()
    # Stars invoices: the price in Telegram Stars (amount = stars * STARS_RATE_KOPECKS).
    stars_amount = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=24, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    # Sum of succeeded refunds, in kopecks.
    refunded_amount = models.BigIntegerField(default=0)
    confirmation_url = models.URLField(max_length=1000, blank=True, default="")
    # Sent to YooKassa as the Idempotence-Key of Payment.create: a retried create returns the
    # same provider payment.
    idempotence_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The ledger row that credited the wallet.
    credit_transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    metadata = models.JSONField(default=dict, blank=True)
    cancellation_reason = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("refund_payment", "Can refund payments")]
        indexes = [models.Index(fields=["status", "created_at"], name="payment_status_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id"], name="payment_provider_id_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="payment_refunded_within_amount",
            ),
            # The refunded figure and the status tell the same story.
            models.CheckConstraint(
                condition=(Q(status=PaymentStatus.REFUNDED) & Q(refunded_amount=F("amount")))
                | (
                    Q(status=PaymentStatus.PARTIALLY_REFUNDED)
                    & Q(refunded_amount__gt=0)
                    & Q(refunded_amount__lt=F("amount"))
                )
                | (
                    Q(status__in=[PaymentStatus.PENDING, PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED])
                    & Q(refunded_amount=0)
                ),
                name="payment_status_matches_refunded",
            ),
            # Money reached the wallet only for a payment the provider named.
            models.CheckConstraint(
                condition=Q(status__in=[PaymentStatus.PENDING, PaymentStatus.CANCELED])
                | Q(provider_payment_id__isnull=False),
                name="payment_paid_has_provider_id",
            ),
            models.CheckConstraint(
                condition=(Q(provider=Provider.STARS) & Q(stars_amount__gt=0))
                | (Q(provider=Provider.YOOKASSA) & Q(stars_amount__isnull=True)),
                name="payment_stars_amount_for_stars_only",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} #{self.pk} {self.status}"

    @property
    def is_final(self) -> bool:
        """Nothing a provider says can move this payment any more (refunds are separate)."""
        return self.status != PaymentStatus.PENDING

    @property
    def currency(self) -> str:
        return "XTR" if self.provider == Provider.STARS else "RUB"

    @property
    def credit_idempotency_key(self) -> str:
        """The ledger key of this payment's credit: one provider payment, one credit."""
        return self.credit_key(provider=self.provider, provider_payment_id=self.provider_payment_id)

    @staticmethod
    def credit_key(*, provider: str, provider_payment_id: str) -> str:
        return f"{provider}:{provider_payment_id}"


class RefundStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    # Generated when the staff form is rendered: a repeated click finds this row; sent to the
    # provider as the Idempotence-Key, so a retried Refund.create returns the same refund.
    idempotence_key = models.UUIDField(unique=True)
    provider_refund_id = models.CharField(max_length=128, null=True, blank=True, unique=True)
    # The wallet debit taken when the refund was requested, and its reversal if it failed.
    debit_transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reversal_transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True, default="")
    failure_reason = models.CharField(max_length=255, blank=True, default="")
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="refund_status_created")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk} of payment #{self.payment_id} {self.status}"

    @property
    def debit_idempotency_key(self) -> str:
        return f"refund:{self.pk}"

    @property
    def reversal_idempotency_key(self) -> str:
        return f"refund-failed:{self.pk}"


class RefundRequest(StaffMoneyRequest):
    """A staff member's refund of a payment (states: ``billing.models.StaffMoneyRequest``).

    Done: ``refund`` is the Refund it made (whose own states follow the provider); pending: a
    superuser decides; rejected: nothing moved.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refund_requests")
    # Goes on the Refund (staff see it with the payment); the staff-only note is ``note``.
    reason = models.CharField(max_length=255, blank=True, default="")
    refund = models.OneToOneField(Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="request")

    class Meta(StaffMoneyRequest.Meta):
        constraints = [
            *StaffMoneyRequest.Meta.constraints,
            models.CheckConstraint(condition=Q(amount__gt=0), name="refundrequest_amount_positive"),
            StaffMoneyRequest.done_means_executed("refund", name="refundrequest_done_has_refund"),
        ]

    def __str__(self) -> str:
        return f"Refund request #{self.pk} of payment #{self.payment_id} {self.status}"
