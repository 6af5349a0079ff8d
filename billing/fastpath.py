"""The optimistic hot path on PostgreSQL: credit, reserve and settle in one statement each.

Each function either does the whole job and returns the new ledger row, or changes nothing and
returns ``None``; ``billing.services`` then takes its locked path, which is the reference
behaviour (idempotent replays, short balances, a settled reservation, a missing system account).
Correctness never rests on this module: the database's unique keys (``idempotency_key``, one
settlement per ``pending``) and its CHECKs refuse anything it could get wrong.

PostgreSQL only (``enabled()``; ``BILLING_FAST_PATH`` turns it off): each operation is ONE
statement (data-modifying CTEs). Payments and jobs run it inside their own transaction (the
status, the money and what it announces commit together); a caller without a transaction gets
autocommit: one round trip per ledger transaction. On SQLite, where the IMMEDIATE transaction
serialises writers anyway, every write takes the locked path: the SQLite run of the suite tests
the locked path, the PostgreSQL run this one, and ``tests/billing/test_fastpath.py`` finds both
write the same ledger.

Lock order, the locked path's: the wallet row first (each statement locks it before it writes a
key), then the key, then the shared system account last. A statement that wrote the key before
locking the wallet would deadlock with a transaction holding the wallet and writing that key.
"""
from __future__ import annotations

from contextlib import nullcontext

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from .models import Account, SystemAccount, Transfer, TransferKind

ACCOUNT = Account._meta.db_table
TRANSFER = Transfer._meta.db_table
_COLUMNS = "idempotency_key, kind, debit_account_id, credit_account_id, amount, pending_id, customer_id, source, description, created_at"

# Hold the amount only if available (the UPDATE's row lock is the wallet lock), then write the
# reservation; a repeated key fails the INSERT and rolls back the hold with it.
_PG_RESERVE = f"""
WITH held AS (
    UPDATE {ACCOUNT} SET held = held + %(amount)s
    WHERE customer_id = %(customer)s AND balance - held >= %(amount)s
    RETURNING id
)
INSERT INTO {TRANSFER} ({_COLUMNS})
SELECT %(key)s, 'pending', held.id, (SELECT id FROM {ACCOUNT} WHERE code = %(revenue)s), %(amount)s, NULL,
       %(customer)s, 'reserve', %(description)s, now()
FROM held
RETURNING id, debit_account_id, credit_account_id, created_at
"""

# The wallet locked first, then the settlement row (unique per reservation), then the wallet's
# figures, then the system account (``credited`` reads ``debited``). No wallet: no row.
_PG_SETTLE = f"""
WITH wallet AS (
    SELECT id FROM {ACCOUNT} WHERE id = %(wallet)s FOR UPDATE
), settled AS (
    INSERT INTO {TRANSFER} ({_COLUMNS})
    SELECT %(key)s, %(kind)s, wallet.id, %(system)s, %(amount)s, %(pending)s, %(customer)s, %(source)s,
           %(description)s, now()
    FROM wallet
    RETURNING id, created_at
), debited AS (
    UPDATE {ACCOUNT} SET balance = balance - %(posted)s, held = held - %(released)s
    WHERE id = %(wallet)s AND EXISTS (SELECT 1 FROM settled)
    RETURNING id
), credited AS (
    UPDATE {ACCOUNT} SET balance = balance + %(posted)s
    WHERE id = %(system)s AND %(posted)s > 0 AND EXISTS (SELECT 1 FROM debited)
    RETURNING id
)
SELECT settled.id, settled.created_at, (SELECT count(*) FROM debited), (SELECT count(*) FROM credited)
FROM settled
"""


# Money into a wallet from a system account. The wallet locked first (``FOR UPDATE OF wallet``),
# then the row, then the wallet's figures, then the system account (``debited`` reads
# ``credited``): the lock order of the locked path. A key already used (or being used by a
# transaction still open: the INSERT waits for it) writes no row rather than failing, so the
# statement needs no savepoint inside a caller's transaction; no wallet or no system account: no
# row either. ``credited`` returns the wallet's new figures.
_PG_CREDIT = f"""
WITH moved AS (
    INSERT INTO {TRANSFER} ({_COLUMNS})
    SELECT %(key)s, 'single', origin.id, wallet.id, %(amount)s, NULL, %(customer)s, %(source)s, %(description)s, now()
    FROM {ACCOUNT} wallet, {ACCOUNT} origin
    WHERE wallet.customer_id = %(customer)s AND origin.code = %(origin)s
    FOR UPDATE OF wallet
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, debit_account_id, credit_account_id, created_at
), credited AS (
    UPDATE {ACCOUNT} SET balance = balance + %(amount)s
    WHERE id = (SELECT credit_account_id FROM moved)
    RETURNING id, balance, held
), debited AS (
    UPDATE {ACCOUNT} SET balance = balance - %(amount)s
    WHERE id = (SELECT debit_account_id FROM moved) AND EXISTS (SELECT 1 FROM credited)
    RETURNING id
)
SELECT moved.id, moved.debit_account_id, moved.credit_account_id, moved.created_at,
       (SELECT balance - held FROM credited), (SELECT count(*) FROM debited)
FROM moved
"""


def enabled() -> bool:
    """Whether writes try this path first: on PostgreSQL, unless ``BILLING_FAST_PATH`` is off."""
    return connection.vendor == "postgresql" and settings.BILLING_FAST_PATH


def _scope():
    # A lone statement in autocommit is its own transaction; inside a caller's transaction a
    # savepoint keeps a refused statement from poisoning it.
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


def _loaded(transfer: Transfer) -> Transfer:
    transfer._state.adding = False
    transfer._state.db = connection.alias
    return transfer


def try_reserve(*, customer_id: int, amount: int, idempotency_key: str, description: str) -> Transfer | None:
    if not enabled():
        return None
    try:
        with _scope(), connection.cursor() as cursor:
            cursor.execute(_PG_RESERVE, {
                "amount": amount, "customer": customer_id, "key": idempotency_key,
                "revenue": SystemAccount.REVENUE.value, "description": description,
            })
            row = cursor.fetchone()
    except IntegrityError:  # a used key, or no revenue account
        return None
    if row is None:
        return None
    pk, debit_id, credit_id, created_at = row
    return _loaded(Transfer(
        id=pk, idempotency_key=idempotency_key, kind=TransferKind.PENDING, debit_account_id=debit_id,
        credit_account_id=credit_id, amount=amount, pending_id=None, customer_id=customer_id, source="reserve",
        description=description, staff_user_id=None, created_at=created_at,
    ))


def try_credit(
    *, customer_id: int, origin_code: str, amount: int, idempotency_key: str, source: str, description: str
) -> Transfer | None:
    """Credit a wallet from a system account in one statement.

    The transfer returned carries ``available_after``: the wallet's balance minus held right
    after this credit, as the same statement left it.
    """
    if not enabled():
        return None
    # No savepoint, even inside a transaction: a used key is not an error here (ON CONFLICT),
    # and anything else the database refuses fails the caller's transaction as it should.
    with connection.cursor() as cursor:
        cursor.execute(_PG_CREDIT, {
            "key": idempotency_key, "amount": amount, "customer": customer_id, "origin": origin_code,
            "source": source, "description": description,
        })
        row = cursor.fetchone()
    if row is None:
        return None
    pk, debit_id, credit_id, created_at, available_after, _debited = row
    transfer = _loaded(Transfer(
        id=pk, idempotency_key=idempotency_key, kind=TransferKind.SINGLE, debit_account_id=debit_id,
        credit_account_id=credit_id, amount=amount, pending_id=None, customer_id=customer_id, source=source,
        description=description, staff_user_id=None, created_at=created_at,
    ))
    transfer.available_after = available_after
    return transfer


def try_settle(*, reservation: Transfer, kind: str, amount: int) -> Transfer | None:
    """POST ``amount`` of the reservation (releasing all it held), or VOID it (``amount`` = held)."""
    if not enabled():
        return None
    settlement = Transfer.settlement_of(reservation, kind=kind, amount=amount)
    try:
        with _scope(), connection.cursor() as cursor:
            cursor.execute(_PG_SETTLE, {
                "key": settlement.idempotency_key, "kind": kind, "wallet": settlement.debit_account_id,
                "system": settlement.credit_account_id, "amount": amount, "pending": reservation.pk,
                "customer": settlement.customer_id, "source": settlement.source,
                "description": settlement.description, "posted": amount if kind == TransferKind.POST else 0,
                "released": reservation.amount,
            })
            row = cursor.fetchone()
    except IntegrityError:  # settled already (or being settled): the locked path says how
        return None
    if row is None:
        return None
    settlement.id, settlement.created_at, _debited, _credited = row
    return _loaded(settlement)
