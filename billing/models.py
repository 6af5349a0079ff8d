"""Customers and money: a double-entry ledger in the TigerBeetle style.

Every movement is a ``Transfer`` that debits one ``Account`` and credits another by a positive
number of kopecks. A balance is credits minus debits, so the balances of all accounts sum to 0.
Spending is two-phase: a PENDING transfer holds money on the debit account; a POST (for at most
the held amount, the rest released) or a VOID is a new row pointing at it. No transfer is ever
updated or deleted; each account caches ``balance`` and ``held``, changed in the same
transaction as the rows that explain them (``manage.py reconcile`` proves they agree).
"""
from django.conf import settings
from django.db import models
from django.db.models import F, Q

from genbot.choices import one_of

from .money import format_amount


class Customer(models.Model):
    class Language(models.TextChoices):
        RU = "ru", "Русский"
        EN = "en", "English"

    telegram_id = models.BigIntegerField(unique=True)
    username = models.CharField(max_length=64, blank=True, default="")
    first_name = models.CharField(max_length=128, blank=True, default="")
    last_name = models.CharField(max_length=128, blank=True, default="")
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.RU)
    # Blocked by staff: the bot refuses them. Not the same as the customer blocking the bot:
    is_blocked = models.BooleanField(default=False)
    # when Telegram last answered 403 for this chat (they blocked the bot); cleared when they write.
    bot_blocked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("adjust_balance", "Can adjust a customer's balance")]

    def __str__(self) -> str:
        name = f"@{self.username}" if self.username else self.first_name or "—"
        return f"{name} ({self.telegram_id})"


class AccountKind(models.TextChoices):
    WALLET = "wallet", "Customer wallet"
    SYSTEM = "system", "System account"


class SystemAccount(models.TextChoices):
    """The system side of every movement; their balances go negative as wallets are funded."""

    YOOKASSA = "yookassa", "YooKassa clearing"
    STARS = "stars", "Telegram Stars clearing"
    REVENUE = "revenue"  # labelled "Revenue", the name's (Django's default)
    ADJUSTMENTS = "adjustments", "Staff adjustments"
    LEGACY = "legacy", "Opening balances (legacy import)"
    BONUS = "bonus", "Bonuses"


class Account(models.Model):
    kind = models.CharField(max_length=16, choices=AccountKind.choices)
    # Set for system accounts only; wallets are found through ``customer``.
    code = models.CharField(max_length=32, unique=True, null=True, blank=True, choices=SystemAccount.choices)
    customer = models.OneToOneField(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="wallet"
    )
    # Posted credits minus posted debits, in kopecks.
    balance = models.BigIntegerField(default=0)
    # The sum of pending transfers debiting this account, in kopecks.
    held = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(held__gte=0), name="account_held_not_negative"),
            # The rule the old system broke: a wallet can never spend money it does not have.
            models.CheckConstraint(
                condition=Q(kind=AccountKind.SYSTEM) | Q(balance__gte=F("held")),
                name="wallet_available_not_negative",
            ),
            models.CheckConstraint(
                condition=(Q(kind=AccountKind.WALLET, customer__isnull=False, code__isnull=True))
                | (Q(kind=AccountKind.SYSTEM, customer__isnull=True, code__isnull=False)),
                name="account_is_wallet_xor_system",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == AccountKind.SYSTEM:
            return f"system:{self.code}"
        return f"wallet:{self.customer_id}"

    @property
    def available(self) -> int:
        return self.balance - self.held


class TransferKind(models.TextChoices):
    SINGLE = "single", "Single-phase"
    PENDING = "pending", "Pending (reservation)"
    POST = "post", "Post pending"
    VOID = "void", "Void pending"


class Transfer(models.Model):
    """One append-only ledger row. Never updated, never deleted."""

    # Unique through ``transfer_idempotency_key_unique`` (Meta), not ``unique=True``: on PostgreSQL
    # that would add a second, pattern-matching index no query uses, paid for by every row.
    idempotency_key = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=TransferKind.choices)
    # No index on the account columns: every transfer row pays for each index it has, reads by
    # account happen only in reconcile (a full scan anyway), and accounts are never deleted.
    debit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="debits", db_index=False)
    credit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credits", db_index=False)
    # For POST: the amount charged; for VOID: the amount released (the pending amount).
    amount = models.BigIntegerField()
    # POST and VOID point at the PENDING transfer they settle; at most one may (unique).
    pending = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="settlement"
    )
    # The wallet's owner, when a wallet is involved: history and the admin read by it, through
    # ``transfer_customer_recent`` (customer first), so the column needs no index of its own.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="transfers", db_index=False
    )
    source = models.CharField(max_length=32, blank=True, default="")
    description = models.CharField(max_length=255, blank=True, default="")
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["customer", "-id"], name="transfer_customer_recent"),
            # A staff member's money of the last 24 hours (billing.policy). Partial: the rows
            # without a staff member (nearly all) pay nothing for it.
            models.Index(
                fields=["staff_user", "created_at"], name="transfer_staff_recent",
                condition=Q(staff_user__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="transfer_idempotency_key_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_amount_positive"),
            models.CheckConstraint(
                condition=~Q(debit_account=F("credit_account")), name="transfer_distinct_accounts"
            ),
            models.CheckConstraint(
                condition=(Q(kind__in=[TransferKind.POST, TransferKind.VOID], pending__isnull=False))
                | (Q(kind__in=[TransferKind.SINGLE, TransferKind.PENDING], pending__isnull=True)),
                name="transfer_settlement_points_at_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {format_amount(self.amount)} {self.debit_account_id}->{self.credit_account_id}"

    @classmethod
    def settlement_of(cls, reservation: "Transfer", *, kind: str, amount: int) -> "Transfer":
        """The (unsaved) POST of ``amount`` or VOID of a reservation: the one settlement row builder.

        Its key is ``<kind>:<reservation id>``; ``pending`` admits one settlement per reservation.
        """
        return cls(
            idempotency_key=f"{kind}:{reservation.pk}", kind=kind,
            debit_account_id=reservation.debit_account_id, credit_account_id=reservation.credit_account_id,
            amount=amount, pending_id=reservation.pk, customer_id=reservation.customer_id,
            source="charge" if kind == TransferKind.POST else "release", description=reservation.description,
            staff_user_id=None,
        )


class StaffRequestStatus(models.TextChoices):
    DONE = "done"  # labelled "Done", the name's (Django's default)
    PENDING = "pending", "Waiting for a superuser"
    REJECTED = "rejected"


class StaffMoneyRequest(models.Model):
    """A staff member's money action (an adjustment here, a refund in payments), with four eyes.

    States::

        (within the limits)  -> done        executed at once; decided_by stays empty
        (above a limit)      -> pending     nothing moved; a superuser decides
                  pending    -> done        a superuser (not the requester) approved: executed
                  pending    -> rejected    a superuser (not the requester) refused

    Each move from pending is a conditional UPDATE (``WHERE status = 'pending'``), so two
    superusers deciding at once cannot both win. ``idempotency_key`` is made by the server
    (``billing.staff``): the same form submitted twice finds this row.
    """

    # Kopecks; adjustments are signed (negative takes money away), refunds positive.
    amount = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=StaffRequestStatus.choices)
    # Staff only: why the money moved, for the people who check it later. Customers never see it.
    note = models.CharField(max_length=255, blank=True, default="")
    idempotency_key = models.CharField(max_length=200, unique=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="%(app_label)s_%(class)s_amount_not_zero"),
            one_of("status", StaffRequestStatus, name="%(app_label)s_%(class)s_status_valid"),
            # A decision names who took it and when; a pending request has neither.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True, decided_at__isnull=True)
                | Q(decided_by__isnull=False, decided_at__isnull=False),
                name="%(app_label)s_%(class)s_decision_complete",
            ),
            models.CheckConstraint(
                condition=~Q(status=StaffRequestStatus.PENDING) | Q(decided_by__isnull=True),
                name="%(app_label)s_%(class)s_pending_undecided",
            ),
            models.CheckConstraint(
                condition=~Q(status=StaffRequestStatus.REJECTED) | Q(decided_by__isnull=False),
                name="%(app_label)s_%(class)s_rejected_decided",
            ),
            # Four eyes: nobody approves or rejects their own request.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="%(app_label)s_%(class)s_four_eyes",
            ),
        ]

    @property
    def is_pending(self) -> bool:
        return self.status == StaffRequestStatus.PENDING

    @staticmethod
    def done_means_executed(field: str, *, name: str) -> models.CheckConstraint:
        """A concrete request's CHECK: done means ``field`` (what it executed) is set; otherwise nothing moved."""
        return models.CheckConstraint(
            condition=Q(status=StaffRequestStatus.DONE, **{f"{field}__isnull": False})
            | (~Q(status=StaffRequestStatus.DONE) & Q(**{f"{field}__isnull": True})),
            name=name,
        )


class BalanceAdjustment(StaffMoneyRequest):
    """A staff correction of a wallet: the ledger row (once done) and why, for staff and customer."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="adjustments")
    # Shown to the customer in their message and their history (it is the ledger row's description).
    customer_reason = models.CharField(max_length=255)
    transfer = models.OneToOneField(Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta(StaffMoneyRequest.Meta):
        constraints = [
            *StaffMoneyRequest.Meta.constraints,
            StaffMoneyRequest.done_means_executed("transfer", name="balanceadjustment_done_has_transfer"),
        ]

    def __str__(self) -> str:
        return f"Adjustment #{self.pk} {format_amount(self.amount)} for {self.customer_id} {self.status}"
