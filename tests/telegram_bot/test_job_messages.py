"""What the customer is told when a job finishes: written by the bot's ``job_finished`` receiver
inside the transaction that finished the job (the transactional outbox)."""
from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from billing.money import format_amount
from billing.selectors import get_balance
from jobs import services
from jobs.models import Job, JobStatus
from standins.providers import KlingStub
from jobs.signals import job_finished
from jobs.tasks import run_job
from telegram_bot import outbox
from telegram_bot.delivery import deliver_row
from telegram_bot.models import OutboxMessage, OutboxStatus
from telegram_bot.sender import BotApi, Sender
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def jobs_stay_in_the_test(settings, tmp_path, monkeypatch):
    settings.AI_PROVIDER = "fake"
    settings.FAKE_PROVIDER_LATENCY = 0
    settings.FAKE_PROVIDER_FAILURE_RATE = 0
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # Nothing is queued: each test runs the worker task itself.
    monkeypatch.setattr("jobs.queueing.enqueue_job", lambda job_id, kind: "test")


def sent_to(chat_id: int) -> list[tuple[str, str]]:
    return [
        (row.method, row.params.get("text") or row.params.get("caption") or "")
        for row in OutboxMessage.objects.filter(chat_id=chat_id).order_by("id")
    ]


def test_a_completed_job_without_a_progress_message_sends_the_picture_with_the_balance():
    customer = make_customer(balance=10_000, language="en")
    job = services.submit_job(customer=customer, kind="image", prompt="a lighthouse")
    assert run_job(job.pk) == "completed"
    [(method, caption)] = sent_to(customer.telegram_id)
    assert method == "sendPhoto"
    assert get_balance(customer) == 8_500
    assert f"#{job.pk}" in caption and format_amount(8_500, "en") in caption


def test_a_completed_job_edits_its_progress_message_to_the_final_state_and_drops_unsent_progress():
    customer = make_customer(balance=10_000, language="en")
    job = services.submit_job(customer=customer, kind="image", prompt="a lighthouse")
    progress = outbox.topic_message(customer.telegram_id, f"job:{job.pk}", "queued")
    outbox.enqueue_progress_edit(progress, "40%")
    assert run_job(job.pk) == "completed"
    rows = list(OutboxMessage.objects.filter(chat_id=customer.telegram_id).order_by("id"))
    assert [row.method for row in rows] == ["sendMessage", "editMessageText", "sendPhoto"]
    final_edit = rows[1]
    assert final_edit.edit_of_id == progress.pk and "is ready" in final_edit.params["text"]
    assert not OutboxMessage.objects.filter(params__text="40%").exists()


def test_a_failed_job_says_so_in_a_message_of_its_own_and_edits_the_progress_message():
    customer = make_customer(balance=10_000, language="en")
    job = services.submit_job(customer=customer, kind="image", prompt="a lighthouse")
    outbox.topic_message(customer.telegram_id, f"job:{job.pk}", "queued")
    services.claim_job(job_id=job.pk)
    services.fail_job(job=Job.objects.get(pk=job.pk), error_code="safety", message="blocked by safety")
    methods = [method for method, _text in sent_to(customer.telegram_id)]
    assert methods == ["sendMessage", "editMessageText", "sendMessage"]
    assert "failed" in sent_to(customer.telegram_id)[-1][1]


def test_a_cancelled_job_without_a_progress_message_is_told_in_a_message():
    customer = make_customer(balance=10_000, language="en")
    job = services.submit_job(customer=customer, kind="image", prompt="a lighthouse")
    services.cancel_job(job=job)
    [(method, text)] = sent_to(customer.telegram_id)
    assert method == "sendMessage" and "cancelled" in text


def test_the_messages_are_written_before_the_commit_not_after_it(django_capture_on_commit_callbacks):
    customer = make_customer(balance=10_000, language="en")
    job = services.submit_job(customer=customer, kind="image", prompt="a lighthouse")
    # Commit callbacks are held back: a message written "after commit" would not exist yet.
    with django_capture_on_commit_callbacks(execute=False):
        assert run_job(job.pk) == "completed"
        assert [method for method, _ in sent_to(customer.telegram_id)] == ["sendPhoto"]
        assert OutboxMessage.objects.get(chat_id=customer.telegram_id).status == OutboxStatus.PENDING


def test_a_receiver_that_fails_after_writing_leaves_no_message_and_the_job_completed():
    customer = make_customer(balance=10_000, language="en")
    job = services.submit_job(customer=customer, kind="image", prompt="a lighthouse")

    def half_done(sender, job, **kwargs):
        outbox.enqueue_text(customer.telegram_id, "half a message")
        raise RuntimeError("broken after writing")

    job_finished.connect(half_done, weak=False, dispatch_uid="test-half-done")
    try:
        assert run_job(job.pk) == "completed"
    finally:
        job_finished.disconnect(dispatch_uid="test-half-done")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    # The savepoint of the receivers was rolled back: neither message half exists.
    assert not OutboxMessage.objects.filter(params__text="half a message").exists()


# --- a video goes with its real size and length -----------------------------------------------


def test_a_video_is_sent_with_the_width_height_and_duration_read_from_the_file(sandbox):
    customer = make_customer(balance=100_000, language="en")
    # The fake makes a real MP4: 360 x 640 for 9:16, as long as asked.
    job = services.submit_job(customer=customer, kind="video_text", prompt="waves", aspect_ratio="9:16", duration=5)
    assert run_job(job.pk) == "completed"
    job.refresh_from_db()
    assert job.result_info == [{"width": 360, "height": 640, "duration": 5}]
    row = OutboxMessage.objects.get(chat_id=customer.telegram_id, method="sendVideo")
    assert (row.params["width"], row.params["height"], row.params["duration"]) == (360, 640, 5)
    deliver_row(row, Sender(BotApi(api_url=sandbox.url, token="1:x")))
    [sent] = sandbox.state.bot_messages(customer.telegram_id)
    assert {key: sent["video"][key] for key in ("width", "height", "duration")} == {"width": 360, "height": 640, "duration": 5}


def test_a_video_that_cannot_be_read_is_sent_without_size_and_length(sandbox, settings, drive):
    customer = make_customer(balance=100_000, language="en")
    # The Kling stub's "video" is bytes no player (nor ffmpeg) can read.
    with KlingStub() as kling_stub:
        settings.AI_PROVIDER, settings.KLING_API_URL = "real", kling_stub.url
        settings.KLING_API_KEY, settings.KLING_POLL_INTERVAL = f"{kling_stub.access_key}:{kling_stub.secret_key}", 0.01
        job = services.submit_job(customer=customer, kind="video_text", prompt="waves", duration=5)
        assert drive(job.pk) == "completed"
    job.refresh_from_db()
    assert job.provider == "kling" and job.result_info == [{}]
    row = OutboxMessage.objects.get(chat_id=customer.telegram_id, method="sendVideo")
    assert not {"width", "height", "duration"} & set(row.params)
    deliver_row(row, Sender(BotApi(api_url=sandbox.url, token="1:x")))
    [sent] = sandbox.state.bot_messages(customer.telegram_id)
    # Delivered; the sizes in the answer are the sandbox's stand-in for Telegram's own reading.
    assert "video" in sent and (sent["video"]["width"], sent["video"]["height"]) == (512, 512)


def test_a_job_completed_before_sizes_were_read_sends_its_video_as_before():
    customer = make_customer(balance=100_000, language="en")
    job = services.submit_job(customer=customer, kind="video_text", prompt="waves", duration=5)
    services.claim_job(job_id=job.pk)
    name = default_storage.save("jobs/results/old.mp4", ContentFile(b"old video"))
    assert services.complete_job(job=Job.objects.get(pk=job.pk), result_files=[name], result_mime="video/mp4")
    row = OutboxMessage.objects.get(chat_id=customer.telegram_id, method="sendVideo")
    assert not {"width", "height", "duration"} & set(row.params)
