"""`manage.py check --deploy` is clean under the production settings the deploy files document."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    for line in (ROOT / "deploy" / "genbot.env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    env["DATABASE_URL"] = "sqlite:///" + str(ROOT / "var" / "check-deploy.sqlite3")
    return env


def test_check_deploy_is_clean_under_production_settings():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=production_env(), capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_flags_debug_and_a_weak_secret():
    env = production_env() | {"DEBUG": "true", "SECRET_KEY": "short"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert done.returncode != 0
    assert "security.W018" in done.stderr + done.stdout and "security.W009" in done.stderr + done.stdout


def _settings_in_a_fresh_process(**env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")} | env
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"],
        cwd=ROOT, env={**full_env, "DJANGO_SETTINGS_MODULE": "genbot.settings"}, capture_output=True, text=True,
    )


def test_with_debug_off_the_settings_refuse_the_development_secret_key():
    refused = _settings_in_a_fresh_process()
    assert refused.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set (DEBUG is off)" in refused.stderr
    explicit_default = _settings_in_a_fresh_process(SECRET_KEY="django-insecure-genbot-local-development-only")
    assert explicit_default.returncode != 0 and "ImproperlyConfigured" in explicit_default.stderr


def test_a_secret_key_or_debug_on_starts():
    assert _settings_in_a_fresh_process(SECRET_KEY="a-real-key-" + "x" * 40).stdout.strip() == "False"
    assert _settings_in_a_fresh_process(DEBUG="true").stdout.strip() == "True"


def test_the_production_webhook_urls_are_the_paths_the_code_serves():
    from urllib.parse import urlsplit

    from django.urls import resolve

    from telegram_bot.views import telegram_webhook

    env = production_env()
    assert resolve(urlsplit(env["TELEGRAM_WEBHOOK_URL"]).path).func is telegram_webhook
