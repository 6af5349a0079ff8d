"""billing.fastpath: PostgreSQL only, and it writes exactly the ledger the locked path writes.

The SQLite run of the suite tests the locked path (the fast path is off there), the PostgreSQL
run the fast path; the property test below runs one random sequence of operations through both
on PostgreSQL and compares what they wrote.
"""
import functools
import threading
import time
import uuid

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing import fastpath, selectors, services
from billing.exceptions import BillingError
from billing.models import Account, AccountKind, SystemAccount, Transfer, TransferKind
from billing.staff_keys import ADJUST_NAMESPACE, new_key
from tests.helpers import make_customer, postgres_only

pytestmark = pytest.mark.django_db(transaction=True)

WALLETS = 3
amounts = st.integers(min_value=1, max_value=20_000)
wallets = st.integers(min_value=0, max_value=WALLETS - 1)
# Reservations and earlier operations are named by index, taken modulo how many there are.
indexes = st.integers(min_value=0, max_value=50)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("credit"), wallets, amounts),
        st.tuples(st.just("reserve"), wallets, amounts),
        # The share of the reservation charged, in percent: 0 releases it, 100 charges all of it.
        st.tuples(st.just("charge"), indexes, st.integers(min_value=0, max_value=100)),
        st.tuples(st.just("refund"), indexes),
        st.tuples(st.just("debit"), wallets, amounts),
        st.tuples(st.just("adjust"), wallets, st.integers(min_value=-20_000, max_value=20_000).filter(bool)),
        # The same call again, with the same key: a replay moves nothing.
        st.tuples(st.just("repeat"), indexes),
    ),
    min_size=1,
    max_size=25,
)


# What each wallet operation calls, given (the run, the customer, an amount, a fresh key).
WALLET_CALLS = {
    "credit": lambda run, customer, amount, key: services.credit_balance(
        customer=customer, amount=amount, idempotency_key=key, source="yookassa"),
    "reserve": lambda run, customer, amount, key: run.reserved(services.reserve_balance(
        customer=customer, amount=amount, idempotency_key=key)),
    "debit": lambda run, customer, amount, key: services.debit_balance(
        customer=customer, amount=amount, idempotency_key=key, destination="yookassa"),
    "adjust": lambda run, customer, amount, key: services.adjust_balance(
        customer=customer, amount=amount, idempotency_key=key, staff_user=None, reason="test"),
}


class Run:
    """One pass of a sequence on fresh wallets; records what each call returned or raised."""

    def __init__(self):
        self.customers = [make_customer() for _ in range(WALLETS)]
        self.reservations: list[Transfer] = []
        self.calls: list = []  # the calls made, for "repeat"
        self.outcomes: list = []
        self.names: dict[str, str] = {}  # idempotency key -> a name the same in both runs

    def key(self, i: int, namespace: str = "") -> str:
        key = new_key(namespace) if namespace else f"fast-vs-locked:{uuid.uuid4().hex}"
        self.names[key] = f"op{i}"
        return key

    def do(self, i: int, operation: tuple) -> None:
        name, *args = operation
        call = None
        if name in WALLET_CALLS:
            who, amount = args
            key = self.key(i, ADJUST_NAMESPACE if name == "adjust" else "")
            call = functools.partial(WALLET_CALLS[name], self, self.customers[who], amount, key)
        elif name in ("charge", "refund") and self.reservations:
            reservation = self.reservations[args[0] % len(self.reservations)]
            if name == "charge":
                amount = reservation.amount * args[1] // 100
                call = functools.partial(services.charge_reserved_balance, reservation=reservation, amount=amount)
            else:
                call = functools.partial(services.refund_balance, reservation=reservation)
        elif name == "repeat" and self.calls:
            call = self.calls[args[0] % len(self.calls)]
        if call is None:
            self.outcomes.append("nothing to do")
            return
        self.calls.append(call)
        try:
            self.outcomes.append(("ok", self.row(call())))
        except BillingError as exc:
            self.outcomes.append(("refused", type(exc).__name__))

    def reserved(self, reservation: Transfer) -> Transfer:
        if reservation.pk not in {r.pk for r in self.reservations}:
            self.reservations.append(reservation)
        return reservation

    def account(self, account_id: int) -> str:
        account = Account.objects.get(pk=account_id)
        if account.kind == AccountKind.WALLET:
            return f"wallet{[c.pk for c in self.customers].index(account.customer_id)}"
        return account.code

    def row(self, transfer: Transfer) -> tuple:
        pending = [r.pk for r in self.reservations].index(transfer.pending_id) if transfer.pending_id else None
        key = self.names.get(transfer.idempotency_key) or transfer.idempotency_key.split(":")[0]
        return (key, transfer.kind, self.account(transfer.debit_account_id), self.account(transfer.credit_account_id),
                transfer.amount, pending, transfer.source, transfer.description)

    def ledger(self) -> list[tuple]:
        rows = Transfer.objects.filter(customer__in=self.customers).order_by("id")
        return [self.row(t) for t in rows]

    def wallets(self) -> list[tuple[int, int]]:
        return [tuple(Account.objects.filter(customer=c).values_list("balance", "held").get()) for c in self.customers]


def run_sequence(sequence, *, fast: bool) -> Run:
    with override_settings(BILLING_FAST_PATH=fast):
        assert fastpath.enabled() is fast
        run = Run()
        for i, operation in enumerate(sequence):
            run.do(i, operation)
    return run


@postgres_only
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=operations)
def test_a_random_sequence_writes_the_same_ledger_through_the_fast_and_the_locked_path(sequence):
    fast = run_sequence(sequence, fast=True)
    locked = run_sequence(sequence, fast=False)
    assert fast.outcomes == locked.outcomes
    assert fast.ledger() == locked.ledger()
    assert fast.wallets() == locked.wallets()
    assert selectors.find_drift() == []


def test_the_fast_path_runs_on_postgresql_only(settings):
    assert fastpath.enabled() is (connection.vendor == "postgresql")
    customer = make_customer(balance=1_000)
    services.system_account(SystemAccount.REVENUE)  # a missing one sends the fast path to the locked path
    reservation = fastpath.try_reserve(customer_id=customer.pk, amount=400, idempotency_key="fp:1", description="")
    if connection.vendor != "postgresql":
        # The locked path does everything on SQLite: the suite's SQLite run tests it.
        assert reservation is None
        assert fastpath.try_credit(customer_id=customer.pk, origin_code="bonus", amount=1, idempotency_key="fp:2",
                                   source="bonus", description="") is None
        return
    assert reservation is not None and reservation.kind == TransferKind.PENDING
    post = fastpath.try_settle(reservation=reservation, kind=TransferKind.POST, amount=300)
    assert post is not None and post.pk == Transfer.objects.get(pending=reservation).pk
    assert (selectors.get_balance(customer), selectors.get_held(customer)) == (700, 0)
    settings.BILLING_FAST_PATH = False
    assert fastpath.try_reserve(customer_id=customer.pk, amount=1, idempotency_key="fp:3", description="") is None


def race_with_a_wallet_holder(wallet_id: int, operation) -> dict:
    """B locks the wallet, then calls ``operation``; A calls it in autocommit while B holds the
    wallet. A one-statement write that took its key before the wallet would deadlock with B."""
    wallet_locked, a_started = threading.Event(), threading.Event()
    results = {}

    def holder():
        try:
            with transaction.atomic():
                Account.objects.select_for_update().get(pk=wallet_id)
                wallet_locked.set()
                a_started.wait(10)
                time.sleep(0.5)  # A is now inside its statement
                results["B"] = operation()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results["B"] = exc
        finally:
            connections.close_all()

    def other():
        try:
            wallet_locked.wait(10)
            a_started.set()
            results["A"] = operation()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results["A"] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=holder), threading.Thread(target=other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert isinstance(results["A"], Transfer) and isinstance(results["B"], Transfer), results
    assert results["A"].pk == results["B"].pk
    assert selectors.find_drift() == []
    return results


@postgres_only
def test_a_fast_credit_waits_for_a_transaction_holding_the_wallet_instead_of_deadlocking_with_it():
    customer = make_customer()
    services.system_account("yookassa")
    wallet = Account.objects.get(customer=customer)
    race_with_a_wallet_holder(wallet.pk, lambda: services.credit_balance(
        customer=customer, amount=15_000, idempotency_key="yookassa:lock-order", source="yookassa"))
    assert selectors.get_balance(customer) == 15_000


@postgres_only
def test_a_fast_charge_waits_for_a_transaction_holding_the_wallet_instead_of_deadlocking_with_it():
    customer = make_customer(balance=1_000)
    reservation = services.reserve_balance(customer=customer, amount=1_000, idempotency_key="job:lock-order")
    race_with_a_wallet_holder(reservation.debit_account_id, lambda: services.charge_reserved_balance(reservation=reservation))
    assert (selectors.get_balance(customer), selectors.get_held(customer)) == (0, 0)
