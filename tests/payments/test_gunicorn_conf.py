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


def test_the_benchmark_runs_the_gunicorn_beside_its_own_interpreter(monkeypatch, tmp_path):
    import sys

    # Another interpreter (another virtualenv): the benchmark follows it, not the project's .venv.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "env" / "bin" / "python3"))
    bench = runpy.run_path(str(ROOT / "bench" / "webhook.py"), run_name="bench_webhook")
    assert bench["GUNICORN"] == tmp_path / "env" / "bin" / "gunicorn"
    assert ".venv/bin" not in (ROOT / "bench" / "webhook.py").read_text().split('"""', 2)[2]
