"""Issue 13 point 4: a waiting job's place in line, in the chat and in /jobs, ru and en."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from jobs import quota, services, tasks
from jobs.models import Job, JobStatus
from telegram_bot import outbox, texts
from telegram_bot.models import OutboxMessage, OutboxStatus
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def waiting(position: int, eta: int) -> Job:
    return Job(pk=7, kind="video_text", status=JobStatus.PENDING, progress=0, queue_position=position, queue_eta=eta)


@pytest.mark.parametrize("language, position, eta, expected", [
    ("en", 3, 100, "3rd in line, about 2 min"),
    ("en", 1, 20, "1st in line, less than a minute"),
    ("en", 12, 601, "12th in line, about 11 min"),
    ("ru", 3, 100, "3-й в очереди, примерно 2 мин"),
    ("ru", 1, 20, "1-й в очереди, меньше минуты"),
])
def test_the_place_in_line_reads_well_in_both_languages(language, position, eta, expected):
    with translation.override(language):
        assert texts.queue_place(waiting(position, eta)) == expected
        assert expected in texts.job_progress(waiting(position, eta))
        assert expected in texts.jobs_list([waiting(position, eta)])


def test_a_job_not_waiting_for_a_slot_shows_no_place():
    with translation.override("en"):
        assert texts.queue_place(Job(kind="image", status=JobStatus.PROCESSING, queue_position=None)) == ""
        assert "In the queue" in texts.job_progress(Job(pk=1, kind="image", status=JobStatus.PENDING, progress=0))


def test_a_job_over_the_quota_tells_its_chat_its_place_in_line(settings):
    settings.AI_PROVIDER, settings.NANO_BANANA_API_KEY = "real", "key"  # Gemini's jobs; never called here
    settings.GEMINI_MAX_CONCURRENT = 1
    customer = make_customer(balance=100_000, language="ru")
    busy, ahead, job = (services.submit_job(customer=customer, kind="image", prompt=p) for p in "abc")
    assert quota.acquire("gemini", busy.pk).granted
    assert tasks.run_job(ahead.pk) == "waiting"
    assert tasks.run_job(job.pk) == "waiting"
    message = OutboxMessage.objects.get(topic=f"job:{job.pk}", method="sendMessage")
    assert "2-й в очереди" in message.params["text"]
    assert not OutboxMessage.objects.filter(coalesce_key=f"edit:{message.pk}").exists()
    services.cancel_job(job=ahead)
    quota.release("gemini", ahead.pk)  # what the cancel's on_commit does
    assert tasks.run_job(job.pk) == "waiting"  # moved up: the message is edited
    [edit] = OutboxMessage.objects.filter(coalesce_key=f"edit:{message.pk}")
    assert "1-й в очереди" in edit.params["text"] and Job.objects.get(pk=job.pk).queue_position == 1
    assert tasks.run_job(job.pk) == "waiting"  # the same place: nothing more to say
    assert OutboxMessage.objects.filter(coalesce_key=f"edit:{message.pk}").count() == 1


def test_progress_edits_of_one_chat_are_spaced_and_collapse_into_the_newest(settings):
    settings.BOT_PROGRESS_EDIT_INTERVAL = 3.0
    first = outbox.topic_message(9100, "job:91", "0%")
    now = outbox.enqueue_progress_edit(first, "10%")
    assert now.next_attempt_at is None  # the first edit goes at once
    OutboxMessage.objects.filter(pk=now.pk).update(status=OutboxStatus.SENT, sent_at=timezone.now())
    later = outbox.enqueue_progress_edit(first, "20%")
    assert timezone.now() + timedelta(seconds=2) < later.next_attempt_at <= timezone.now() + timedelta(seconds=3)
    newest = outbox.enqueue_progress_edit(first, "30%")
    assert newest.pk == later.pk and newest.params["text"] == "30%" and newest.next_attempt_at == later.next_attempt_at
