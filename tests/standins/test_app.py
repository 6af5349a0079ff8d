"""``standins`` is an app of its own: ``STANDINS`` installs it and its commands; the product
starts without it (that the product imports none of it is an import contract: .importlinter)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.genbot.test_security import production_env

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = "import django; django.setup(); from django.apps import apps; print(apps.is_installed('standins'))"


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["run_sandbox", "yookassa_stub", "provider_stubs"])
@pytest.mark.parametrize("where", ["offline", "production"])
def test_the_commands_work_with_standins_on_whatever_else_is_set(command, where):
    env = production_env() if where == "production" else dict(os.environ)  # this run's: no tokens
    done = _run("manage.py", command, "--help", env={**env, "STANDINS": "true"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"manage.py {command}" in done.stdout and "-port" in done.stdout


def test_with_standins_off_the_product_starts_without_them():
    env = {**production_env(), "STANDINS": "false", "DEBUG": "true"}
    done = _run("manage.py", "check", env=env)
    assert done.returncode == 0 and "no issues" in done.stdout, done.stdout + done.stderr
    assert _run("-c", INSTALLED, env={**env, "DJANGO_SETTINGS_MODULE": "genbot.settings"}).stdout.strip() == "False"
    unknown = _run("manage.py", "run_sandbox", "--help", env=env)
    assert unknown.returncode != 0 and "Unknown command: 'run_sandbox'" in unknown.stderr


def test_standins_are_on_by_default_and_off_in_the_production_environment():
    env = {k: v for k, v in production_env().items() if k != "STANDINS"} | {"DJANGO_SETTINGS_MODULE": "genbot.settings"}
    assert _run("-c", INSTALLED, env=env | {"DEBUG": "true"}).stdout.strip() == "True"
    production = production_env() | {"DJANGO_SETTINGS_MODULE": "genbot.settings"}
    assert production["STANDINS"] == "false"
    assert _run("-c", INSTALLED, env=production).stdout.strip() == "False"
