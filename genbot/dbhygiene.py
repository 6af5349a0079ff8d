"""The connection hygiene Django applies around a request, for work done outside one.

Django discards a broken or expired database connection only on ``request_started`` and
``request_finished``. A worker, a periodic loop or any long-lived thread never sees those
signals, so a connection the server dropped (a failover, a restart, ``pg_terminate_backend``)
stays in place and every later query fails with "the connection is closed" until the process
restarts. ``unit_of_work`` brackets one job or task the way a request is bracketed, and goes a
step further on both sides:

- before: the queries log is reset, expired or failed connections are closed, and a connection
  still open is pinged (``is_usable``: one ``SELECT 1``, what ``CONN_HEALTH_CHECKS`` does per
  request), because a connection dropped while idle shows no error until the job's first query;
- after: the same, and after a failed unit every connection is closed outright: the failure may
  have left one mid-protocol (an RQ time-out raised inside a query) without Django knowing.

Only this thread's connections are touched (Django's connections are per thread). Nothing here
raises: hygiene must never be what takes a worker down.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import close_old_connections, connections, reset_queries

logger = logging.getLogger(__name__)


def discard_broken_connections(*, ping: bool = True) -> None:
    """Close this thread's connections that are broken, expired or (``ping``) do not answer."""
    try:
        reset_queries()
        close_old_connections()
        if ping:
            for conn in connections.all(initialized_only=True):
                if conn.connection is not None and not conn.in_atomic_block and not conn.is_usable():
                    logger.warning("database connection %r does not answer: closed, the next query reconnects", conn.alias)
                    conn.close()
    except Exception:  # noqa: BLE001 - see the module docstring
        logger.exception("database connection clean-up failed; closing every connection")
        close_all_connections()


def close_all_connections() -> None:
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - Django drops the connection object even when closing fails
            logger.warning("closing database connection %r failed", conn.alias, exc_info=True)


def before_unit_of_work() -> None:
    discard_broken_connections(ping=True)


def after_unit_of_work(*, failed: bool) -> None:
    if failed:
        close_all_connections()
    else:
        discard_broken_connections(ping=False)


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Bracket one job or periodic task with fresh, working database connections."""
    before_unit_of_work()
    failed = True
    try:
        yield
        failed = False
    finally:
        after_unit_of_work(failed=failed)
