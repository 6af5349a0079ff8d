import sqlite3

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from billing import selectors, services
from billing.models import Account, Customer, Transfer
from tests.helpers import make_customer, postgres_only

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_reconcile_passes_on_clean_books():
    c = make_customer(balance=5_000)
    r = services.reserve_balance(customer=c, amount=1_000, idempotency_key="j1")
    services.charge_reserved_balance(reservation=r, amount=600)
    services.reserve_balance(customer=c, amount=500, idempotency_key="j2")
    assert "OK" in run("reconcile")


@pytest.mark.ledger_drift
def test_reconcile_reports_drift_injected_by_raw_sql_and_exits_non_zero():
    c = make_customer(balance=5_000)
    wallet = Account.objects.get(customer=c)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_account SET balance = balance + 100 WHERE id = %s", [wallet.pk])
    with pytest.raises(CommandError, match="drifted"):
        run("reconcile")
    drift = selectors.find_drift()
    assert [(d.account_id, d.cached_balance, d.ledger_balance) for d in drift] == [(wallet.pk, 5_100, 5_000)]


@pytest.mark.ledger_drift
def test_reconcile_catches_a_held_figure_that_lost_its_reservation():
    c = make_customer(balance=5_000)
    services.reserve_balance(customer=c, amount=1_000, idempotency_key="j1")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_account SET held = 0 WHERE customer_id = %s", [c.pk])
    with pytest.raises(CommandError):
        run("reconcile")


@postgres_only
def test_postgres_trigger_refuses_update_and_delete_of_ledger_rows():
    c = make_customer(balance=5_000)
    transfer = Transfer.objects.get(customer=c)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Transfer.objects.filter(pk=transfer.pk).update(amount=1)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM billing_transfer WHERE id = %s", [transfer.pk])
    assert Transfer.objects.get(pk=transfer.pk).amount == 5_000


def make_legacy_file(path, rows):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE wallets (user_id INTEGER PRIMARY KEY, balance REAL)")
    db.executemany("INSERT INTO wallets VALUES (?, ?)", rows)
    db.commit()
    db.close()
    return str(path)


def test_import_wallets_opens_balances_once_and_a_second_run_moves_nothing(tmp_path):
    rows = [(1000 + i, round(i * 10.37, 2)) for i in range(1, 601)] + [(5, 0.0), (6, -3.5), (7, 0.1 + 0.2)]
    legacy = make_legacy_file(tmp_path / "old.sqlite", rows)
    expected_total = sum(round(b * 100) for _u, b in rows if b > 0)

    first = run("import_wallets", legacy)
    assert "imported 601" in first and "empty 1" in first and "refused 1" in first
    assert "%" in first  # progress on a large file
    after_first = Transfer.objects.count()
    assert selectors.wallet_totals()["balance"] == expected_total
    assert selectors.get_balance(Customer.objects.get(telegram_id=7)) == 30

    second = run("import_wallets", legacy)
    assert "imported 0" in second and "already imported 601" in second
    assert Transfer.objects.count() == after_first
    assert selectors.wallet_totals()["balance"] == expected_total
    assert "OK" in run("reconcile")


def test_import_wallets_refuses_a_file_that_is_not_the_old_database(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CommandError, match="not an SQLite database"):
        run("import_wallets", str(text))
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE users (id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(CommandError, match="no wallets"):
        run("import_wallets", str(other))
    with pytest.raises(CommandError, match="no such file"):
        run("import_wallets", str(tmp_path / "missing.sqlite"))
    assert Transfer.objects.count() == 0


def test_balance_and_history_commands_show_a_customer_and_refuse_bad_ids():
    c = make_customer(balance=150_050, telegram_id=4242)
    r = services.reserve_balance(customer=c, amount=50, idempotency_key="j", description="picture")
    services.charge_reserved_balance(reservation=r)
    assert "1\u00a0500\u00a0₽" in run("balance", "4242")
    out = run("history", "4242", "--limit", "5")
    assert "picture" in out and "post" in out
    with pytest.raises(CommandError, match="must be a number"):
        run("balance", "abc")
    with pytest.raises(CommandError, match="No customer"):
        run("history", "999")
    with pytest.raises(CommandError, match="--limit"):
        run("history", "4242", "--limit", "0")
