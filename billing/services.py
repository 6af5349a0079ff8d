"""Every write to money goes through here.

Rules each function keeps:
- Amounts are ``int`` kopecks, checked by ``billing.money.check_kopecks``.
- Every write takes an idempotency key (unique in the database): the same key with the same
  arguments returns the first transfer and moves nothing; with other arguments it raises
  ``IdempotencyConflict``.
- The wallet row is locked (``select_for_update``; on SQLite the IMMEDIATE transaction is the
  lock) before the key is looked up, so concurrent callers for one wallet queue up and each sees
  what the one before committed. Wallet first, then the key, then the system account: one lock
  order (``billing.fastpath``'s statements keep it too), no deadlocks.
- Cached ``balance``/``held`` change in the same transaction as the ledger rows, through
  ``F()`` expressions; the database CHECK refuses a wallet whose held exceeds its balance.

These functions open ``transaction.atomic()`` without ``durable``: payments and jobs call them
inside their own durable transactions, so a status change and its money commit together.
"""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from genbot.tally import Tally

from .exceptions import (
    ChargeExceedsReservation,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    ReservationAlreadyPosted,
    ReservationAlreadyVoided,
    ReservationError,
)
from . import fastpath
from .models import Account, AccountKind, Customer, SystemAccount, Transfer, TransferKind
from .money import check_kopecks
from .staff_keys import ADJUST_NAMESPACE, check_staff_key

PROFILE_FIELDS = ("username", "first_name", "last_name", "language")


# --- customers ------------------------------------------------------------------------------


def get_or_create_customer(*, telegram_id: int, **profile) -> Customer:
    """Find the customer by Telegram id or create it with its wallet; refresh changed profile."""
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"unknown profile fields: {sorted(unknown)}")
    profile = {k: ("" if v is None else v) for k, v in profile.items()}
    if "language" in profile:
        profile["language"] = _normalise_language(profile["language"])
    customer = Customer.objects.filter(telegram_id=telegram_id).first()
    if customer is None:
        try:
            with transaction.atomic():
                customer = Customer.objects.create(telegram_id=telegram_id, **profile)
                Account.objects.create(kind=AccountKind.WALLET, customer=customer)
            return customer
        except IntegrityError:
            # Two first messages raced; the other one created it.
            customer = Customer.objects.get(telegram_id=telegram_id)
    changed = [k for k, v in profile.items() if v and getattr(customer, k) != v]
    for k in changed:
        setattr(customer, k, profile[k])
    if customer.bot_blocked_at is not None:
        # They are writing to the bot again, so they unblocked it.
        customer.bot_blocked_at = None
        changed.append("bot_blocked_at")
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
    return customer


def _normalise_language(code: str) -> str:
    code = (code or "").lower()
    return Customer.Language.EN if code.startswith("en") else Customer.Language.RU


def mark_bot_blocked(*, customer: Customer) -> None:
    """Telegram answered 403 for this chat: the customer blocked the bot (staff blocking is another thing)."""
    now = timezone.now()
    Customer.objects.filter(pk=customer.pk, bot_blocked_at__isnull=True).update(bot_blocked_at=now)
    customer.bot_blocked_at = customer.bot_blocked_at or now


def set_customer_blocked(*, customer: Customer, blocked: bool) -> Customer:
    Customer.objects.filter(pk=customer.pk).update(is_blocked=blocked)
    customer.is_blocked = blocked
    return customer


# --- helpers --------------------------------------------------------------------------------


def system_account(code: str) -> Account:
    account = Account.objects.filter(code=code).first()
    if account is None:
        account, _created = Account.objects.get_or_create(code=code, defaults={"kind": AccountKind.SYSTEM})
    return account


def _lock_wallet(customer_id: int) -> Account:
    """Lock the customer's wallet row for the rest of the transaction."""
    return Account.objects.select_for_update().get(customer_id=customer_id, kind=AccountKind.WALLET)


def _lock_account(account_id: int) -> Account:
    return Account.objects.select_for_update().get(pk=account_id)


def _replay(key: str, **expected) -> Transfer | None:
    """The transfer already written under ``key``, if any; a mismatch is a conflict.

    Call with the wallet locked, so a concurrent writer of the same key has committed or not
    started.
    """
    existing = Transfer.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    for name, value in expected.items():
        if getattr(existing, name) != value:
            raise IdempotencyConflict()
    return existing


def _write(**fields) -> Transfer:
    try:
        with transaction.atomic():
            return Transfer.objects.create(**fields)
    except IntegrityError as exc:
        # Only a key reused across wallets can get here (same-wallet callers are serialised).
        if Transfer.objects.filter(idempotency_key=fields["idempotency_key"]).exists():
            raise IdempotencyConflict() from exc
        raise


def _from_wallet(
    *, customer_id: int, idempotency_key: str, kind: str, credit_id: int, amount: int,
    short_message=None, **row,
) -> tuple[Transfer, bool]:
    """Lock the wallet, then replay the key or check the available balance and write the row.

    Expects a transaction; returns (the transfer, whether it is new). The caller moves the
    cached figures for a new one.
    """
    wallet = _lock_wallet(customer_id)
    existing = _replay(
        idempotency_key, kind=kind, debit_account_id=wallet.pk, credit_account_id=credit_id, amount=amount
    )
    if existing:
        return existing, False
    if wallet.available < amount:
        raise InsufficientFunds(short_message, available=wallet.available, required=amount)
    transfer = _write(
        idempotency_key=idempotency_key, kind=kind, debit_account_id=wallet.pk, credit_account_id=credit_id,
        amount=amount, customer_id=customer_id, **row,
    )
    return transfer, True


def _move_posted(*, debit_id: int, credit_id: int, amount: int, release_held: int = 0) -> None:
    """Apply a posted movement to the cached figures (expects the wallet locked)."""
    Account.objects.filter(pk=debit_id).update(balance=F("balance") - amount, held=F("held") - release_held)
    # The system side is the hot row shared by every wallet: touch it last, so its row lock is
    # held for as little of the transaction as possible.
    Account.objects.filter(pk=credit_id).update(balance=F("balance") + amount)


def _check_key(idempotency_key: str) -> str:
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("idempotency_key must be 1-200 characters")
    return idempotency_key


SOURCE_ACCOUNTS = {code.value: code.value for code in SystemAccount if code != SystemAccount.REVENUE}


# --- single-phase movements -----------------------------------------------------------------


def credit_balance(
    *, customer: Customer, amount: int, idempotency_key: str, source: str, description: str = ""
) -> Transfer:
    """Add money to a wallet (top-ups, bonuses, opening balances).

    ``source`` names where the money comes from: a system account code (``yookassa``,
    ``stars``, ``legacy``, ``adjustments``, ``bonus``); any other source is booked against
    ``bonus`` and kept on the row.

    The transfer's ``available_after`` is the wallet's available balance right after this
    credit (what a "you now have" message should say), or None when the key was already used
    and nothing moved now.
    """
    check_kopecks(amount)
    _check_key(idempotency_key)
    origin_code = str(SOURCE_ACCOUNTS.get(source, SystemAccount.BONUS))
    description = description[:255]
    credited = fastpath.try_credit(
        customer_id=customer.pk, origin_code=origin_code, amount=amount, idempotency_key=idempotency_key,
        source=source, description=description,
    )
    if credited is not None:
        return credited
    origin = system_account(origin_code)
    return _into_wallet(
        customer_id=customer.pk, origin=origin, amount=amount, idempotency_key=idempotency_key,
        source=source, description=description,
    )


def debit_balance(
    *, customer: Customer, amount: int, idempotency_key: str, destination: str, description: str = "",
    staff_user=None,
) -> Transfer:
    """Take money out of a wallet to a system account (payment refunds); never below zero."""
    check_kopecks(amount)
    _check_key(idempotency_key)
    target = system_account(SOURCE_ACCOUNTS.get(destination, SystemAccount.ADJUSTMENTS))
    return _out_of_wallet(
        customer_id=customer.pk, target=target, amount=amount, idempotency_key=idempotency_key,
        source=destination, description=description[:255], staff_user=staff_user,
    )


def adjust_balance(
    *, customer: Customer, amount: int, idempotency_key: str, staff_user, reason: str
) -> Transfer:
    """A staff correction: positive adds, negative takes away (never below zero). Audited.

    People reach it through ``billing.staff.staff_adjust_balance`` (limits, four eyes); the key
    must be a staff adjustment's (``admin-adjust:<uuid>``), never another writer's.
    """
    reason = check_correction(amount=amount, reason=reason)
    check_staff_key(idempotency_key, ADJUST_NAMESPACE)
    adjustments = system_account(SystemAccount.ADJUSTMENTS)
    row = {"idempotency_key": idempotency_key, "source": SystemAccount.ADJUSTMENTS,
           "description": reason[:255], "staff_user": staff_user}
    if amount > 0:
        return _into_wallet(customer_id=customer.pk, origin=adjustments, amount=amount, **row)
    return _out_of_wallet(
        customer_id=customer.pk, target=adjustments, amount=-amount,
        short_message=_("The correction would take the balance below zero."), **row,
    )


def check_correction(*, amount: int, reason: str) -> str:
    """Refuse a correction of 0 (or not kopecks) or without a reason; the reason, stripped."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
        raise InvalidAmount(_("The correction must be a non-zero whole number of kopecks."))
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount(_("Give a reason for the correction."))
    check_kopecks(abs(amount))
    return reason


def _into_wallet(*, customer_id: int, origin: Account, amount: int, idempotency_key: str, **row) -> Transfer:
    """A single-phase movement system account -> wallet, replayed by its key."""
    with transaction.atomic():
        wallet = _lock_wallet(customer_id)
        existing = _replay(
            idempotency_key, kind=TransferKind.SINGLE, debit_account_id=origin.pk,
            credit_account_id=wallet.pk, amount=amount,
        )
        if existing:
            existing.available_after = None
            return existing
        transfer = _write(
            idempotency_key=idempotency_key, kind=TransferKind.SINGLE, debit_account_id=origin.pk,
            credit_account_id=wallet.pk, amount=amount, customer_id=customer_id, **row,
        )
        Account.objects.filter(pk=wallet.pk).update(balance=F("balance") + amount)
        Account.objects.filter(pk=origin.pk).update(balance=F("balance") - amount)
        # The wallet is locked: nothing moved it since it was read.
        transfer.available_after = wallet.balance + amount - wallet.held
        return transfer


def _out_of_wallet(*, customer_id: int, target: Account, amount: int, **row) -> Transfer:
    """A single-phase movement wallet -> system account, never below zero, replayed by its key."""
    with transaction.atomic():
        transfer, created = _from_wallet(
            customer_id=customer_id, kind=TransferKind.SINGLE, credit_id=target.pk, amount=amount, **row
        )
        if created:
            _move_posted(debit_id=transfer.debit_account_id, credit_id=target.pk, amount=amount)
        return transfer


def take_back(*, customer: Customer, up_to: int, idempotency_key: str, description: str) -> Transfer | None:
    """Move ``min(up_to, available)`` from the wallet back to the ``bonus`` account (a bonus
    taken back when the payment that brought it is refunded); None when nothing is available.

    The wallet is locked before the key is looked up: the same key returns the transfer it
    wrote first (whatever is available now) and moves nothing; a key of another movement raises
    ``IdempotencyConflict``. What could not be taken is the caller's to record (written off).
    """
    check_kopecks(up_to)
    _check_key(idempotency_key)
    bonus = system_account(SystemAccount.BONUS)
    with transaction.atomic():
        wallet = _lock_wallet(customer.pk)
        existing = Transfer.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if (existing.kind, existing.debit_account_id, existing.credit_account_id) != (
                TransferKind.SINGLE, wallet.pk, bonus.pk
            ) or existing.amount > up_to:
                raise IdempotencyConflict()
            return existing
        amount = min(up_to, wallet.available)
        if amount <= 0:
            return None
        transfer = _write(
            idempotency_key=idempotency_key, kind=TransferKind.SINGLE, debit_account_id=wallet.pk,
            credit_account_id=bonus.pk, amount=amount, customer_id=customer.pk, source="takeback",
            description=description[:255],
        )
        _move_posted(debit_id=wallet.pk, credit_id=bonus.pk, amount=amount)
        return transfer


# --- two-phase spending ---------------------------------------------------------------------


def reserve_balance(
    *, customer: Customer, amount: int, idempotency_key: str, description: str = ""
) -> Transfer:
    """Hold ``amount`` on the wallet: a PENDING transfer wallet -> revenue (the reservation).

    Raises ``InsufficientFunds`` when the available balance (balance - held) is short.

    The common case is ``billing.fastpath`` (one statement on PostgreSQL); a repeated key, a
    short balance or a missing system account changes nothing there and takes the locked path,
    which is the reference behaviour.
    """
    check_kopecks(amount)
    _check_key(idempotency_key)
    description = description[:255]
    reservation = fastpath.try_reserve(
        customer_id=customer.pk, amount=amount, idempotency_key=idempotency_key, description=description
    )
    if reservation is not None:
        return reservation
    return _reserve_locked(customer=customer, amount=amount, idempotency_key=idempotency_key, description=description)


def _reserve_locked(*, customer: Customer, amount: int, idempotency_key: str, description: str) -> Transfer:
    revenue = system_account(SystemAccount.REVENUE)
    with transaction.atomic():
        reservation, created = _from_wallet(
            customer_id=customer.pk, idempotency_key=idempotency_key, kind=TransferKind.PENDING,
            credit_id=revenue.pk, amount=amount, source="reserve", description=description[:255],
        )
        if created:
            Account.objects.filter(pk=reservation.debit_account_id).update(held=F("held") + amount)
        return reservation


def _settlement_locked(reservation: Transfer, kind: str) -> Transfer | None:
    """Lock the reservation's wallet; return its settlement of ``kind`` if any (expects a transaction).

    A settlement of the other kind raises: a released reservation cannot be charged, a charged one
    cannot be released.
    """
    _lock_account(reservation.debit_account_id)
    settlement = Transfer.objects.filter(pending_id=reservation.pk).first()
    if settlement is not None and settlement.kind != kind:
        raise ReservationAlreadyVoided() if settlement.kind == TransferKind.VOID else ReservationAlreadyPosted()
    return settlement


def charge_reserved_balance(*, reservation: Transfer, amount: int | None = None) -> Transfer:
    """Post the reservation for ``amount`` (default: all of it) and release the rest.

    Charging twice moves money once (the first POST is returned); charging a released
    reservation raises ``ReservationAlreadyVoided``; ``amount`` above the held amount raises
    ``ChargeExceedsReservation``. A charge of 0 releases the whole reservation (a VOID).

    The common case is ``billing.fastpath``: the unique ``pending`` column admits one settlement
    per reservation, so a second charge or a racing release fails there and takes the locked
    path, which returns the first settlement or says why it cannot.
    """
    amount = reservation.amount if amount is None else amount
    check_kopecks(amount, allow_zero=True)
    if reservation.kind != TransferKind.PENDING:
        raise ReservationError(_("Only a reservation can be charged or released."))
    if amount > reservation.amount:
        raise ChargeExceedsReservation()
    if amount == 0:
        return refund_balance(reservation=reservation)
    post = fastpath.try_settle(reservation=reservation, kind=TransferKind.POST, amount=amount)
    if post is not None:
        return post
    with transaction.atomic():
        settlement = _settlement_locked(reservation, TransferKind.POST)
        if settlement is None:
            # The optimistic insert failed for another reason: write under the lock, and let the
            # database refuse again if it must.
            settlement = _settlement_row(reservation, TransferKind.POST, amount)
            _move_posted(
                debit_id=reservation.debit_account_id, credit_id=reservation.credit_account_id,
                amount=amount, release_held=reservation.amount,
            )
        elif settlement.amount != amount:
            raise IdempotencyConflict(_("This reservation was already charged another amount."))
        return settlement


def _settlement_row(reservation: Transfer, kind: str, amount: int) -> Transfer:
    settlement = Transfer.settlement_of(reservation, kind=kind, amount=amount)
    settlement.save(force_insert=True)
    return settlement


def refund_balance(*, reservation: Transfer) -> Transfer:
    """Void the reservation: the held money is available again. Twice is once; a charged one raises."""
    if reservation.kind != TransferKind.PENDING:
        raise ReservationError(_("Only a reservation can be charged or released."))
    void = fastpath.try_settle(reservation=reservation, kind=TransferKind.VOID, amount=reservation.amount)
    if void is not None:
        return void
    with transaction.atomic():
        settlement = _settlement_locked(reservation, TransferKind.VOID)
        if settlement is None:
            settlement = _settlement_row(reservation, TransferKind.VOID, reservation.amount)
            Account.objects.filter(pk=reservation.debit_account_id).update(held=F("held") - reservation.amount)
        return settlement


# --- legacy import --------------------------------------------------------------------------


class ImportCounts(Tally):
    counts = ("imported", "already_imported", "skipped_empty", "refused", "imported_kopecks")

    def __init__(self, **given: int):
        super().__init__(**given)
        self.refused_rows: list[str] = []


def import_opening_balances(*, rows: list[tuple[int, int]], counts: ImportCounts) -> ImportCounts:
    """Open wallets from the old system's ``wallets`` rows ``(user_id, kopecks)``, one batch.

    Each credit's key is ``legacy:<user_id>``, so a second run over the same file moves nothing.
    One transaction per batch: on SQLite each commit is a sync, so batching is what makes a large
    file take seconds rather than minutes.
    """
    keys = {f"legacy:{user_id}" for user_id, _amount in rows}
    done = set(Transfer.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", flat=True))
    with transaction.atomic(durable=True):
        for user_id, kopecks in rows:
            key = f"legacy:{user_id}"
            if kopecks < 0:
                counts.refused += 1
                counts.refused_rows.append(f"user {user_id}: negative balance {kopecks} kopecks")
                continue
            if kopecks == 0:
                counts.skipped_empty += 1
                continue
            if key in done:
                counts.already_imported += 1
                continue
            customer = get_or_create_customer(telegram_id=user_id)
            credit_balance(
                customer=customer, amount=kopecks, idempotency_key=key, source=SystemAccount.LEGACY,
                description="Opening balance from the old system",
            )
            counts.imported += 1
            counts.imported_kopecks += kopecks
    return counts
