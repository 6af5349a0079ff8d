"""A backup restored into a fresh database reconciles, with every balance equal."""
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from billing import services
from billing.models import Account
from genbot.backups import prune
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def balances_here() -> list[tuple]:
    return sorted(Account.objects.values_list("id", "balance", "held"))


def fresh_target(tmp_path) -> tuple[str, callable]:
    """A new empty database: its URL and a function reading its account figures."""
    db = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        name = f"{db['NAME']}_restore"
        server = f"postgresql://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')

        def read():
            with psycopg.connect(f"{server}/{name}") as c:
                return sorted(c.execute("SELECT id, balance, held FROM billing_account").fetchall())

        return f"{server}/{name}", read
    path = tmp_path / "restored.sqlite3"

    def read():
        c = sqlite3.connect(path)
        try:
            return sorted(c.execute("SELECT id, balance, held FROM billing_account").fetchall())
        finally:
            c.close()

    return f"sqlite:///{path}", read


def test_backup_restores_into_a_fresh_database_and_reconcile_passes(tmp_path):
    for i in range(5):
        c = make_customer(balance=10_000 * (i + 1))
        r = services.reserve_balance(customer=c, amount=3_000, idempotency_key=f"job:{i}")
        if i % 2:
            services.charge_reserved_balance(reservation=r, amount=2_500)
    before = balances_here()

    call_command("backup", "--dir", str(tmp_path), "--keep", "3")
    (backup,) = list(tmp_path.glob("genbot-*"))
    url, read_restored = fresh_target(tmp_path)
    call_command("restore", str(backup), "--into", url, "--yes")

    assert read_restored() == before
    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run([sys.executable, "manage.py", "reconcile"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout


def test_restore_refuses_without_confirmation_or_with_a_wrong_file(tmp_path):
    junk = tmp_path / "genbot-junk.dump"
    junk.write_text("not a backup")
    with pytest.raises(CommandError, match="--yes"):
        call_command("restore", str(junk))
    with pytest.raises(CommandError):
        call_command("restore", str(tmp_path / "missing.dump"), "--yes")


def test_backup_retention_keeps_the_newest(tmp_path):
    for stamp in ("20260101", "20260102", "20260103", "20260104"):
        (tmp_path / f"genbot-{stamp}.dump").write_text("x")
    removed = prune(directory=tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["genbot-20260101.dump", "genbot-20260102.dump"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genbot-20260103.dump", "genbot-20260104.dump"]


def test_a_backup_is_readable_by_its_owner_only(tmp_path):
    import stat

    make_customer(balance=10_000)
    previous = os.umask(0o022)  # the usual umask: files 0644, directories 0755
    try:
        call_command("backup", "--dir", str(tmp_path / "backups"), "--keep", "3")
    finally:
        os.umask(previous)
    (backup,) = list((tmp_path / "backups").glob("genbot-*"))
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700
    assert backup.stat().st_size > 0
    assert not [p for p in (tmp_path / "backups").iterdir() if p != backup]  # no journal left behind
