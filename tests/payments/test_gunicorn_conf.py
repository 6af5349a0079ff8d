"""deploy/gunicorn.conf.py: how the web process is run (the systemd unit and bench/webhook.py use it)."""
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "gunicorn.conf.py"


def test_threaded_workers_one_process_per_core_by_default(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("WEB_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    conf = runpy.run_path(str(CONF))
    assert conf["worker_class"] == "gthread"
    assert (conf["workers"], conf["threads"]) == (6, 2)
    assert conf["timeout"] == 30


def test_processes_and_threads_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("WEB_THREADS", "4")
    conf = runpy.run_path(str(CONF))
    assert (conf["workers"], conf["threads"]) == (3, 4)


def test_the_systemd_unit_and_the_benchmark_run_this_file():
    assert "-c deploy/gunicorn.conf.py" in (ROOT / "deploy" / "systemd" / "genbot-web.service").read_text()
    assert '"gunicorn.conf.py"' in (ROOT / "bench" / "webhook.py").read_text()
