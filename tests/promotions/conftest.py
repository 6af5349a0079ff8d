import uuid

import pytest

from payments import services as payments
from promotions import services
from promotions.models import TopUpPackage
from tests.helpers import run_concurrently
from tests.payments.conftest import yookassa_stub  # noqa: F401 - a fixture used here too

# At most this many database connections per concurrency test: PostgreSQL allows 100, and other
# test runs share the server.
POOL = 25


@pytest.fixture(autouse=True)
def _english(english):
    """Promotions' tests read messages in English."""


@pytest.fixture(autouse=True)
def fresh_attempts():
    """Wrong promo code attempts are keyed by customer ids, which repeat across runs."""
    from promotions.services import attempts

    attempts.reset_client()
    try:
        client = attempts._redis()
        keys = list(client.scan_iter("genbot:promo-attempts:*", count=500))
        if keys:
            client.delete(*keys)
    except Exception:  # noqa: BLE001 - a test without Redis has nothing to clear
        pass
    yield
    attempts.reset_client()


@pytest.fixture
def packages(db):
    """The seeded packages (a transactional test flushed the migration's rows): 100, 300, 500 +5 %, 1000 +10 % ₽."""
    TopUpPackage.objects.all().delete()
    for position, (amount, percent) in enumerate([(100_00, 0), (300_00, 0), (500_00, 5), (1000_00, 10)]):
        TopUpPackage.objects.create(amount=amount, bonus_percent=percent, position=position)


def start_stars(customer, amount):
    """A pending Stars top-up started the way the bot starts one (``start_topup``)."""
    return services.start_topup(customer=customer, amount=amount, provider="stars")


def succeed(payment):
    """The provider says the payment went through (Telegram's successful_payment for Stars)."""
    return payments.mark_payment_succeeded(payment=payment, provider_payment_id=f"tg-charge-{payment.pk}")


def pay(customer, amount=500_00):
    return succeed(start_stars(customer, amount))


@pytest.fixture
def yookassa_paid(yookassa_stub):  # noqa: F811
    """pay(customer, amount) through YooKassa (its stub), started as the bot starts a top-up."""
    def pay_yookassa(customer, amount=500_00):
        payment = services.start_topup(customer=customer, amount=amount, provider="yookassa")
        yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
        return payments.sync_yookassa_payment(provider_payment_id=payment.provider_payment_id)

    return pay_yookassa


def refund(payment, amount=None):
    """A refund the provider confirmed: the wallet debit, then the success (no provider call)."""
    amount = payment.amount if amount is None else amount
    requested = payments.request_refund(payment=payment, amount=amount, idempotency_key=uuid.uuid4())
    return payments.complete_refund(refund=requested)


def run_many(fn, n: int, *, threads: int = POOL) -> list[tuple[str, object]]:
    """``fn(i)`` for i in range(n), on ``threads`` real threads released at once (each its own
    connection), every thread running its share back to back; results in the order of i."""
    def share(t):
        out = []
        for i in range(t, n, threads):
            try:
                out.append((i, ("ok", fn(i))))
            except Exception as exc:  # noqa: BLE001 - reported to the test
                out.append((i, ("error", exc)))
        return out

    results = dict(pair for kind, batch in run_concurrently(share, min(threads, n)) for pair in _ok(kind, batch))
    return [results[i] for i in range(n)]


def _ok(kind, batch):
    assert kind == "ok", batch
    return batch


@pytest.fixture
def signals_seen():
    """Record every promotions signal sent: ``seen[name] -> [kwargs, ...]``."""
    from promotions import signals

    seen = {"bonus_credited": [], "bonus_taken_back": [], "referral_attributed": []}
    for name in seen:
        getattr(signals, name).connect(
            lambda sender, _name=name, **kwargs: seen[_name].append(kwargs), weak=False, dispatch_uid=f"test-{name}"
        )
    yield seen
    for name in seen:
        getattr(signals, name).disconnect(dispatch_uid=f"test-{name}")
