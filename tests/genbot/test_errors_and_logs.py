"""Sentry when SENTRY_DSN is set (no personal data), and logs with a request id in a rotated file.

Both run a fresh Python process: settings read the environment once, at start-up."""
import gzip
import os
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAILING_REQUEST = """
import django, sentry_sdk
django.setup()
from django.test import Client, override_settings
from django.urls import path

def boom(request):
    raise RuntimeError("boom from a view")

urlpatterns = [path("boom", boom)]
with override_settings(ROOT_URLCONF=__name__):
    Client(raise_request_exception=False).get(
        "/boom", HTTP_COOKIE="sessionid=topsecretcookie", REMOTE_ADDR="203.0.113.9",
        HTTP_X_REQUEST_ID="req-42")
sentry_sdk.flush(timeout=5)
"""


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "genbot.settings", **env}
    full_env.pop("DATABASE_URL", None)
    full_env["DATABASE_PATH"] = str(ROOT / "var" / "subprocess-test.sqlite3")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60)


class Collector(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        elif encoding == "br":
            import brotli  # only if sentry chose brotli

            raw = brotli.decompress(raw)
        Collector.bodies.append(raw)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_sentry_receives_view_errors_without_personal_data():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Collector.bodies = []
    try:
        dsn = f"http://publickey@127.0.0.1:{server.server_port}/1"
        done = run_python(FAILING_REQUEST, SENTRY_DSN=dsn, SENTRY_ENVIRONMENT="test")
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
    sent = b"\n".join(Collector.bodies).decode("utf-8", "replace")
    assert "boom from a view" in sent
    assert '"environment":"test"' in sent.replace(" ", "")
    assert "topsecretcookie" not in sent and "203.0.113.9" not in sent


def test_logs_go_to_a_rotated_file_with_the_request_id(tmp_path):
    log_file = tmp_path / "genbot.log"
    code = FAILING_REQUEST.replace("import django, sentry_sdk", "import django, sentry_sdk  # noqa")
    done = run_python(code, LOG_FILE=str(log_file), LOG_FILE_MAX_BYTES="100000")
    assert done.returncode == 0, done.stderr
    text = log_file.read_text()
    assert "request_id=req-42" in text and "boom from a view" in text
    assert "request_id=req-42" in done.stderr  # stdout/stderr too


def test_without_a_dsn_nothing_is_sent():
    done = run_python("import django, sentry_sdk\ndjango.setup()\nprint(sentry_sdk.get_client().is_active())")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
