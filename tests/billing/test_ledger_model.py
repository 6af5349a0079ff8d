"""Random sequences of operations against a simple model: the ledger never disagrees with it."""
import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from billing import selectors, services
from billing.exceptions import BillingError, InsufficientFunds, ReservationAlreadyPosted, ReservationAlreadyVoided
from billing.staff_keys import ADJUST_NAMESPACE, new_key
from tests.helpers import make_customer

amounts = st.integers(min_value=1, max_value=50_000)


class LedgerMachine(RuleBasedStateMachine):
    """The model: available, held per customer, and which reservations are open/posted/voided."""

    @initialize()
    def setup(self):
        self.customers = [make_customer(), make_customer()]
        self.available = [0, 0]
        self.held = [0, 0]
        self.reservations = []  # [customer index, transfer, state, amount]
        self.n = 0
        self.run_id = uuid.uuid4().hex

    def key(self):
        self.n += 1
        return f"hyp:{self.run_id}:{self.n}"

    @rule(who=st.sampled_from([0, 1]), amount=amounts)
    def credit(self, who, amount):
        services.credit_balance(customer=self.customers[who], amount=amount, idempotency_key=self.key(), source="bonus")
        self.available[who] += amount

    @rule(who=st.sampled_from([0, 1]), amount=amounts)
    def reserve(self, who, amount):
        try:
            r = services.reserve_balance(customer=self.customers[who], amount=amount, idempotency_key=self.key())
        except InsufficientFunds:
            assert amount > self.available[who]
            return
        assert amount <= self.available[who]
        self.available[who] -= amount
        self.held[who] += amount
        self.reservations.append([who, r, "open", amount])

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def charge(self, data):
        entry = data.draw(st.sampled_from(self.reservations))
        who, r, state, amount = entry
        actual = data.draw(st.integers(min_value=0, max_value=amount + 10))
        try:
            services.charge_reserved_balance(reservation=r, amount=actual)
        except ReservationAlreadyVoided:
            assert state == "voided" and actual > 0
            return
        except BillingError:
            # over-charge, or a different amount on an already posted reservation
            assert actual > amount or state != "open"
            return
        if state == "open":
            self.held[who] -= amount
            self.available[who] += amount - actual
            entry[2] = "voided" if actual == 0 else "posted"
            entry[3] = amount if actual == 0 else actual
        else:
            # A repeat: the same charge again, or a charge of 0 (a release) on a released one.
            assert (state, actual) in (("posted", amount), ("voided", 0))

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def refund(self, data):
        entry = data.draw(st.sampled_from(self.reservations))
        who, r, state, amount = entry
        try:
            services.refund_balance(reservation=r)
        except ReservationAlreadyPosted:
            assert state == "posted"
            return
        if state == "open":
            self.held[who] -= amount
            self.available[who] += amount
            entry[2] = "voided"

    @rule(who=st.sampled_from([0, 1]), amount=amounts)
    def adjust_down(self, who, amount):
        try:
            services.adjust_balance(customer=self.customers[who], amount=-amount, idempotency_key=new_key(ADJUST_NAMESPACE), staff_user=None, reason="test")
        except InsufficientFunds:
            assert amount > self.available[who]
            return
        self.available[who] -= amount

    @invariant()
    def matches_model(self):
        for i, c in enumerate(self.customers):
            assert selectors.get_balance(c) == self.available[i]
            assert selectors.get_held(c) == self.held[i]
            assert self.available[i] >= 0
        assert selectors.total_of_all_accounts() == 0


@pytest.mark.django_db
def test_random_operation_sequences_agree_with_a_simple_model():
    LedgerMachine.TestCase.settings = settings(
        max_examples=30, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    state = LedgerMachine.TestCase()
    state.runTest()
    assert selectors.find_drift() == []
