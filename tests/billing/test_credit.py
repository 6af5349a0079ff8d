"""credit_balance as payments uses it: inside the caller's transaction, and what it reports."""
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing import selectors, services
from billing.models import Transfer
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def test_a_credit_reports_the_available_balance_right_after_it():
    customer = make_customer(balance=20_000)
    services.reserve_balance(customer=customer, amount=5_000, idempotency_key="job:1")
    transfer = services.credit_balance(customer=customer, amount=10_000, idempotency_key="yookassa:p1", source="yookassa")
    assert transfer.available_after == 25_000 == selectors.get_balance(customer)


def test_a_used_key_inside_a_transaction_replays_and_leaves_the_transaction_usable():
    customer = make_customer()
    with transaction.atomic():
        first = services.credit_balance(customer=customer, amount=10_000, idempotency_key="yookassa:p2", source="yookassa")
        again = services.credit_balance(customer=customer, amount=10_000, idempotency_key="yookassa:p2", source="yookassa")
        assert again.pk == first.pk and again.available_after is None
        # Nothing was refused on the way: the transaction goes on.
        assert Transfer.objects.filter(idempotency_key="yookassa:p2").count() == 1
    assert selectors.get_balance(customer) == 10_000


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_on_postgresql_a_credit_inside_a_transaction_is_one_statement_without_a_savepoint():
    customer = make_customer()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        services.credit_balance(customer=customer, amount=10_000, idempotency_key="yookassa:p3", source="yookassa")
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 1 and "SAVEPOINT" not in statements[0].upper(), statements
