"""Reads the bot shows that span apps: a customer's history (their money and their jobs)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing import selectors as billing_selectors
from jobs import selectors as job_selectors
from jobs.models import Job

HISTORY_PAGE_SIZE = 10
HISTORY_MAX_PAGE = 100  # older than a thousand lines is for support (manage.py history)


@dataclass(frozen=True)
class HistoryEntry:
    created_at: datetime
    transfer: object | None = None  # a top-up, refund or correction (annotated ``signed_amount``)
    job: Job | None = None  # a job, with what it cost: its reservation and settlement are not listed


@dataclass(frozen=True)
class HistoryPage:
    number: int  # 0: the newest
    entries: list[HistoryEntry]
    has_older: bool


def history_page(customer, number: int) -> HistoryPage:
    """Page ``number`` of the customer's history, newest first: one line per money movement that
    is not a job's, one per job. Both lists are read from their newest row up to this page's
    end (plus one, to know whether an older page exists) and merged by time."""
    number = max(0, min(number, HISTORY_MAX_PAGE))
    wanted = (number + 1) * HISTORY_PAGE_SIZE + 1
    entries = [
        HistoryEntry(t.created_at, transfer=t)
        for t in billing_selectors.get_ledger_history(customer, wanted, single_phase_only=True)
    ] + [HistoryEntry(job.created_at, job=job) for job in job_selectors.recent_jobs(customer, wanted)]
    entries.sort(key=lambda entry: entry.created_at, reverse=True)
    start = number * HISTORY_PAGE_SIZE
    has_older = len(entries) > start + HISTORY_PAGE_SIZE and number < HISTORY_MAX_PAGE
    return HistoryPage(number, entries[start : start + HISTORY_PAGE_SIZE], has_older)
