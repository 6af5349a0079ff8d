"""bin/run's demo superuser (a password printed in the README) exists only on the local default database."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def _is_local_default(**env) -> bool:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_PATH")}
    code = "from django.conf import settings; print(settings.DATABASE_IS_LOCAL_DEFAULT)"
    done = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT,
                          env={**base, "DJANGO_SETTINGS_MODULE": "genbot.settings", **env},
                          capture_output=True, text=True, check=True)
    return done.stdout.strip() == "True"


def test_only_the_default_sqlite_file_is_the_local_default_database():
    assert _is_local_default()
    assert _is_local_default(DATABASE_PATH=str(ROOT / "var" / "genbot.sqlite3"))
    assert not _is_local_default(DATABASE_PATH=str(ROOT / "var" / "production-copy.sqlite3"))
    assert not _is_local_default(DATABASE_URL="postgres://genbot@db.internal:5432/genbot")


@pytest.mark.django_db
def test_the_demo_user_is_created_on_the_local_default_database_only(settings, capsys):
    users = get_user_model().objects
    settings.DATABASE_IS_LOCAL_DEFAULT = False
    call_command("create_demo_staff")
    assert not users.filter(username="admin").exists()
    assert "no demo user" in capsys.readouterr().out
    settings.DATABASE_IS_LOCAL_DEFAULT = True
    call_command("create_demo_staff", username="demo", password="demo-password-1")
    call_command("create_demo_staff", username="demo", password="demo-password-1")  # bin/run again
    demo = users.get(username="demo")
    assert demo.is_superuser and demo.check_password("demo-password-1")


def test_bin_run_creates_the_demo_user_through_this_command_only():
    text = (ROOT / "bin" / "run").read_text()
    assert "manage.py create_demo_staff" in text and "create_superuser" not in text
