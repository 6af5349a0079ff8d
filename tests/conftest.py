import importlib
import time

import pytest

from tests.helpers import RUB_5000, make_customer


_DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "live_server"}


@pytest.fixture(autouse=True)
def catalogue_offers(request):
    """The offers the migration seeds, put back when a transactional test flushed them."""
    if request.node.get_closest_marker("django_db") or _DB_FIXTURES & set(request.fixturenames):
        request.getfixturevalue("_django_db_helper")
        from django.apps import apps

        Offer, OfferPrice = apps.get_model("jobs", "Offer"), apps.get_model("jobs", "OfferPrice")
        if not Offer.objects.exists():
            importlib.import_module("jobs.migrations.0006_seed_offers").seed(Offer, OfferPrice)
    yield


@pytest.fixture(autouse=True)
def ledger_reconciles(request):
    """After every test with a database: the cached figures agree with the ledger, and all accounts sum to 0.

    Set up before the test's other fixtures, so it checks after they stopped their workers and
    servers. A test that breaks the ledger on purpose (``manage.py reconcile``'s) says so with
    ``@pytest.mark.ledger_drift``.
    """
    uses_db = request.node.get_closest_marker("django_db") or _DB_FIXTURES & set(request.fixturenames)
    if not uses_db or request.node.get_closest_marker("ledger_drift"):
        yield
        return
    request.getfixturevalue("_django_db_helper")
    yield
    from django.db import Error as DatabaseError

    from billing import selectors

    try:
        drift = selectors.find_drift()
    except DatabaseError:
        # The test closed its own connection (the periodic runner's hygiene does): its
        # transaction, and whatever it wrote, went with it.
        return
    assert drift == [], "the ledger does not reconcile"
    assert selectors.total_of_all_accounts() == 0, "the accounts do not sum to 0"


@pytest.fixture
def customer(db):
    return make_customer()


@pytest.fixture
def funded_customer(db):
    """A customer with 1,000 ₽ available."""
    return make_customer(balance=100_000)


@pytest.fixture
def english(settings):
    """Read messages in English, the source language (ru is tested where the bot speaks it)."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def sandbox(settings):
    """The local Bot API sandbox on a free port, with the bot's settings pointed at it."""
    from standins.telegram import SandboxServer

    server = SandboxServer(port=0).start()
    settings.TELEGRAM_API_URL = server.url
    settings.BOT_TOKEN = ""
    yield server
    server.stop()


# --- staff money (billing/policy.py): both limits at 5,000 ₽, a support member, a superuser ---


@pytest.fixture
def limits(settings):
    settings.SUPPORT_MONEY_LIMIT_KOPECKS = RUB_5000
    settings.SUPPORT_DAILY_LIMIT_KOPECKS = RUB_5000


@pytest.fixture
def support(django_user_model, db):
    """A staff member without superuser rights (their permissions as each test needs)."""
    return django_user_model.objects.create_user("support", password="pw", is_staff=True)


@pytest.fixture
def boss(django_user_model, db):
    return django_user_model.objects.create_superuser("boss", password="pw")


@pytest.fixture
def drive(monkeypatch):
    """Run a job as the workers would, without waiting: its try, then each try and poll it schedules.

    Returns the last outcome; ``drive.scheduled`` holds what is still to run (nothing, normally).
    """
    from jobs import queueing, tasks

    runs: list[tuple[str, int, int | None]] = []
    delays: dict[tuple, float] = {}

    def record(run, job_id, kind, *, delay, due_ms=None):
        runs.append((run, job_id, due_ms))
        delays[(run, job_id, due_ms)] = delay
        return "test"

    monkeypatch.setattr(queueing, "schedule", record)

    def run(job_id: int, *, steps: int = 200) -> str:
        outcome = tasks.run_job(job_id)
        while runs and steps:
            what, scheduled_id, due_ms = scheduled = runs.pop(0)
            time.sleep(min(delays.get(scheduled, 0.0), 0.5))  # a provider stub's task takes real time
            outcome = (tasks.poll_job if what == "poll" else tasks.run_job)(scheduled_id, due_ms)
            steps -= 1
        assert steps, f"job {job_id} was still being polled"
        return outcome

    run.scheduled = runs
    return run


@pytest.fixture(autouse=True)
def no_progress_edit_pause(settings):
    """Progress edits go at once (the pause between them is tested where it is the subject)."""
    settings.BOT_PROGRESS_EDIT_INTERVAL = 0


@pytest.fixture(autouse=True)
def no_leftover_job_keys():
    """Provider slots, finishing claims and edit pauses are keyed by ids that repeat across runs."""
    from jobs import quota

    def clear():
        client = quota.client()
        keys = [key for pattern in ("genbot:quota:*", "genbot:finishing:*", "genbot:progress-edit:*")
                for key in client.scan_iter(pattern, count=500)]
        if keys:
            client.delete(*keys)

    quota.reset_client()
    try:
        clear()
    except Exception:  # noqa: BLE001 - a test without Redis has nothing to clear
        pass
    yield
    quota.reset_client()
