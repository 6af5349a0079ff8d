"""Reads of money that more than one place needs."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import BigIntegerField, Case, F, Q, QuerySet, Sum, When

from .models import Account, AccountKind, Customer, SystemAccount, Transfer, TransferKind

POSTED_KINDS = (TransferKind.SINGLE, TransferKind.POST)


# Read on every balance shown (menus, captions, receipts): one indexed row, written as SQL to
# skip the ORM's compile step.
_WALLET_FIGURES_SQL = f"SELECT balance, held FROM {Account._meta.db_table} WHERE customer_id = %s"


def _wallet_figures(customer: Customer) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(_WALLET_FIGURES_SQL, [customer.pk])
        row = cursor.fetchone()
    return (row[0], row[1]) if row is not None else (0, 0)


def get_balance(customer: Customer) -> int:
    """Available kopecks: what the customer can spend now (balance minus held)."""
    balance, held = _wallet_figures(customer)
    return balance - held


def get_held(customer: Customer) -> int:
    """Kopecks held by reservations of jobs not yet finished."""
    return _wallet_figures(customer)[1]


def get_ledger_history(customer: Customer, limit: int = 10, *, single_phase_only: bool = False) -> QuerySet[Transfer]:
    """The customer's newest ledger rows, each with ``signed_amount``: + into the wallet, - out.

    A reservation and its void cancel out for the customer, so each shows its amount as held
    (``signed_amount`` 0 for PENDING and VOID) and only posted money moves the sign.
    ``single_phase_only`` leaves out reservations and their settlements (money in and out only:
    top-ups, refunds, corrections), for a view that shows each reservation's outcome otherwise.
    """
    rows = Transfer.objects.filter(customer_id=customer.pk)
    if single_phase_only:
        rows = rows.filter(kind=TransferKind.SINGLE)
    return (
        rows
        .select_related("credit_account")
        .annotate(
            signed_amount=Case(
                When(kind__in=(TransferKind.PENDING, TransferKind.VOID), then=0),
                When(credit_account__customer_id=customer.pk, then=F("amount")),
                default=-F("amount"),
                output_field=BigIntegerField(),
            )
        )
        .order_by("-id")[:limit]
    )


# The clearing accounts of the payment providers: the only money a refund may send back.
CASH_ACCOUNTS = frozenset({SystemAccount.YOOKASSA.value, SystemAccount.STARS.value})


def cash_refundable(customer: Customer, *, lock: bool = False) -> int:
    """Kopecks of the wallet that came in through payments and may go back to a card or as Stars.

    The ledger of the customer is replayed in order with two buckets:

    - **cash**: credits from a payment clearing account (``yookassa``, ``stars``) — top-ups, and
      a failed refund's reversal (the money it had taken goes back to cash);
    - **bonus**: every other credit. The ``bonus`` account (welcome, promo codes, packages,
      referrals), and also staff corrections (``adjustments``) and opening balances
      (``legacy``): neither came in through a payment of this system, so no payment's refund
      may carry it out. A correction that makes good a payment's money is a refund of that
      payment or a credit of the payment itself, not a positive adjustment; an old system's
      balance the customer wants back is paid out by staff outside the bot.

    Bonus money is spent first: a job's charge (a POST to revenue) and any debit to another
    account (a negative correction, ``adjustments``) take from bonus, then cash; a take-back
    (a debit back to ``bonus``) takes from bonus, then cash; a refund's debit (to a clearing
    account) takes from cash, then bonus. Reservations not yet settled count as charged (bonus
    first), so what they hold cannot be refunded now. The result is capped by the available
    balance and never negative.

    ``lock=True`` locks the wallet row first (``billing.services``' lock order: the wallet
    before anything written under it), for a caller that decides on the figure and debits in
    the same transaction: no other movement of this wallet can come between the two.
    """
    wallets = Account.objects.filter(customer_id=customer.pk, kind=AccountKind.WALLET)
    wallet = (wallets.select_for_update() if lock else wallets).only("id", "balance", "held").first()
    if wallet is None:
        return 0
    codes = dict(Account.objects.filter(kind=AccountKind.SYSTEM).values_list("id", "code"))
    buckets = {"cash": 0, "bonus": 0}

    def take(amount: int, first: str) -> None:
        second = "bonus" if first == "cash" else "cash"
        from_first = min(amount, buckets[first])
        buckets[first] -= from_first
        buckets[second] = max(buckets[second] - (amount - from_first), 0)

    open_holds: dict[int, int] = {}
    rows = (
        Transfer.objects.filter(customer_id=customer.pk)
        .values_list("id", "kind", "debit_account_id", "credit_account_id", "amount", "pending_id")
        .order_by("id")
    )
    for pk, kind, debit_id, credit_id, amount, pending_id in rows:
        if kind == TransferKind.PENDING:
            open_holds[pk] = amount
            continue
        if kind in (TransferKind.POST, TransferKind.VOID):
            open_holds.pop(pending_id, None)
            if kind == TransferKind.POST:
                take(amount, "bonus")
            continue
        if credit_id == wallet.pk:
            buckets["cash" if codes.get(debit_id) in CASH_ACCOUNTS else "bonus"] += amount
        else:
            take(amount, "cash" if codes.get(credit_id) in CASH_ACCOUNTS else "bonus")
    take(sum(open_holds.values()), "bonus")
    return max(min(buckets["cash"], wallet.balance - wallet.held), 0)


@dataclass(frozen=True)
class Drift:
    account_id: int
    label: str
    cached_balance: int
    ledger_balance: int
    cached_held: int
    ledger_held: int


def ledger_figures() -> dict[int, tuple[int, int]]:
    """Every account's (balance, held) recomputed from the ledger alone."""
    balance: dict[int, int] = defaultdict(int)
    held: dict[int, int] = defaultdict(int)
    posted = Transfer.objects.filter(kind__in=POSTED_KINDS)
    for account_id, total in posted.values_list("credit_account").annotate(total=Sum("amount")).order_by():
        balance[account_id] += total
    for account_id, total in posted.values_list("debit_account").annotate(total=Sum("amount")).order_by():
        balance[account_id] -= total
    open_pending = Transfer.objects.filter(kind=TransferKind.PENDING, settlement__isnull=True)
    for account_id, total in open_pending.values_list("debit_account").annotate(total=Sum("amount")).order_by():
        held[account_id] += total
    return {k: (balance[k], held[k]) for k in set(balance) | set(held)}


def find_drift() -> list[Drift]:
    """Accounts whose cached figures disagree with the ledger."""
    figures = ledger_figures()
    drift = []
    for account in Account.objects.select_related("customer").order_by("pk"):
        ledger_balance, ledger_held = figures.pop(account.pk, (0, 0))
        if (account.balance, account.held) != (ledger_balance, ledger_held):
            drift.append(Drift(account.pk, str(account), account.balance, ledger_balance, account.held, ledger_held))
    return drift


def total_of_all_accounts() -> int:
    """Sum of every cached balance: 0 unless something bypassed double entry."""
    return Account.objects.aggregate(total=Sum("balance"))["total"] or 0


def accounts_total_from_ledger() -> int:
    return sum(balance for balance, _held in ledger_figures().values())


def wallet_totals() -> dict[str, int]:
    agg = Account.objects.filter(customer__isnull=False).aggregate(
        total_balance=Sum("balance"), total_held=Sum("held"),
        funded=Sum(Case(When(Q(balance__gt=0), then=1), default=0)),
    )
    agg = {"balance": agg["total_balance"], "held": agg["total_held"], "customers": agg["funded"]}
    return {k: v or 0 for k, v in agg.items()}

