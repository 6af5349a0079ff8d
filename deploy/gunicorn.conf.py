"""gunicorn settings of the web process (admin, payment and Telegram webhooks, health, metrics).

``deploy/systemd/genbot-web.service`` and ``bench/webhook.py`` both start gunicorn with
``-c deploy/gunicorn.conf.py``, so the benchmark measures the server as it is deployed.

Threaded workers (gthread), one process per core: a request spends much of its time waiting, on
the database and, for a YooKassa notification, on YooKassa's API (up to
``payments.yookassa_client.TIMEOUT``). A waiting thread lets the other one in its process run,
so a slow API no longer holds a whole worker, and the threads of a process share what it keeps
in memory (payments' set of payments already final). A process runs Python on one core at a
time, hence one per core. Each thread holds its own database connection (CONN_MAX_AGE).

Environment: WEB_CONCURRENCY (processes, default: the machine's cores), WEB_THREADS (threads per
process, default 2).
"""
import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 2)
threads = int(os.environ.get("WEB_THREADS") or 2)
# A hung request is killed after this; the YooKassa client gives up well before (503, retried).
timeout = 30
# SIGTERM: stop accepting, finish in-flight requests within this, then exit.
graceful_timeout = 30
