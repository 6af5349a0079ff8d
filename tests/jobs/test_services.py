"""Submit, cancel, the worker task, recovery and clean-up, driven in the test process."""
from __future__ import annotations

import io
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone, translation
from PIL import Image

from billing.exceptions import CustomerBlocked, InsufficientFunds
from billing.models import Transfer, TransferKind
from billing.selectors import find_drift, get_balance, get_held
from billing.services import set_customer_blocked
from jobs import exceptions, services
from jobs.models import Job, JobStatus, OfferPrice
from jobs.selectors import quote
from jobs.signals import job_finished, job_progress
from jobs.tasks import run_job
from tests.helpers import decompression_bomb_png, make_customer, run_concurrently, set_price

from tests.helpers import wait_until

pytestmark = pytest.mark.django_db


def picture(size=(400, 400), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 50, 50)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def finished_jobs():
    seen: list[tuple[int, str]] = []

    def receiver(sender, job, **kwargs):
        seen.append((job.pk, job.status))

    job_finished.connect(receiver, weak=False)
    yield seen
    job_finished.disconnect(receiver)


def transfers_of(job: Job, kind: str) -> int:
    return Transfer.objects.filter(pending_id=job.reservation_id, kind=kind).count()


# --- submit --------------------------------------------------------------------------------


def test_submit_reserves_the_estimate_and_enqueues_after_commit(funded_customer, no_enqueue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.submit_job(customer=funded_customer, kind="image", prompt="a lighthouse")
        assert no_enqueue == []  # not before commit
    assert no_enqueue == [(job.pk, "image")]
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING and job.provider == "fake"
    assert job.cost_estimate == quote(kind="image") == 1500
    assert (job.offer_key, job.model_id) == ("nano-banana", "gemini-2.5-flash-image")
    assert job.reservation.kind == TransferKind.PENDING and job.reservation.amount == 1500
    assert job.reservation.idempotency_key == f"job:{job.pk}"
    assert get_held(funded_customer) == 1500 and get_balance(funded_customer) == 100_000 - 1500


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"prompt": "   "}, exceptions.EmptyPrompt),
        ({"prompt": "x" * 2501}, exceptions.PromptTooLong),
        ({"kind": "image_edit"}, exceptions.MediaRequired),
        ({"kind": "image_edit", "input_image": b"not a picture"}, exceptions.UnsupportedMedia),
        ({"kind": "image_edit", "input_image": "gif"}, exceptions.UnsupportedMedia),
        ({"kind": "video_image", "input_image": "small"}, exceptions.ImageTooSmall),
        ({"kind": "video_text", "duration": 7}, exceptions.InvalidJobOption),
        ({"kind": "image", "aspect_ratio": "7:3"}, exceptions.InvalidJobOption),
        ({"kind": "sound"}, exceptions.InvalidJobOption),
    ],
)
def test_invalid_requests_are_refused_before_money_moves(funded_customer, no_enqueue, kwargs, error):
    if kwargs.get("input_image") == "gif":
        kwargs["input_image"] = picture(fmt="GIF")
    if kwargs.get("input_image") == "small":
        kwargs["input_image"] = picture(size=(299, 600))
    request = {"customer": funded_customer, "kind": "image", "prompt": "a cat", **kwargs}
    with pytest.raises(error) as caught:
        services.submit_job(**request)
    assert str(caught.value)  # a sentence for the customer
    assert Job.objects.count() == 0 and get_held(funded_customer) == 0


def test_prompt_of_exactly_2500_characters_and_a_300px_picture_are_accepted(funded_customer, no_enqueue):
    services.submit_job(customer=funded_customer, kind="image", prompt="y" * 2500)
    job = services.submit_job(customer=funded_customer, kind="video_image", prompt="go", input_image=picture(size=(300, 300)))
    assert job.input_mime == "image/png" and default_storage.exists(job.input_file.name)
    assert job.options == {"duration": 5, "mode": "std"}


def test_oversized_media_is_refused(funded_customer, no_enqueue, settings):
    settings.JOB_MAX_INPUT_BYTES = 1000
    with pytest.raises(exceptions.MediaTooLarge):
        services.submit_job(customer=funded_customer, kind="image_edit", prompt="x", input_image=picture())


@pytest.mark.parametrize("kind", ["image_edit", "video_image"])
def test_a_decompression_bomb_is_refused_as_too_large_before_money_moves(funded_customer, no_enqueue, kind):
    bomb = decompression_bomb_png()
    assert len(bomb) < 100
    with pytest.raises(exceptions.ImageTooManyPixels) as caught:
        services.submit_job(customer=funded_customer, kind=kind, prompt="x", input_image=bomb)
    with translation.override("en"):
        assert str(caught.value) == "The picture is too large: send one of at most 40 megapixels."
    assert Job.objects.count() == 0 and get_held(funded_customer) == 0 and get_balance(funded_customer) == 100_000


def test_a_picture_over_the_pixel_limit_is_refused_before_decoding(funded_customer, no_enqueue, settings, monkeypatch):
    settings.JOB_MAX_INPUT_PIXELS = 400 * 400 - 1
    big = picture(size=(400, 400))

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the picture was decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    with pytest.raises(exceptions.ImageTooManyPixels):
        services.submit_job(customer=funded_customer, kind="image_edit", prompt="x", input_image=big)
    # Below Pillow's own bomb limit but over ours: refused the same way.
    with pytest.raises(exceptions.ImageTooManyPixels):
        services.submit_job(customer=funded_customer, kind="image_edit", prompt="x",
                            input_image=decompression_bomb_png(8000, 8000))
    assert Job.objects.count() == 0 and get_held(funded_customer) == 0
    settings.JOB_MAX_INPUT_PIXELS = 400 * 400
    monkeypatch.undo()
    assert services.submit_job(customer=funded_customer, kind="image_edit", prompt="x", input_image=big).pk


def test_insufficient_funds_propagates_and_leaves_no_job_and_no_file(no_enqueue, settings):
    poor = make_customer(balance=100)
    with pytest.raises(InsufficientFunds) as caught:
        services.submit_job(customer=poor, kind="image_edit", prompt="x", input_image=picture())
    with translation.override("en"):
        assert "balance" in str(caught.value).lower()
    assert Job.objects.count() == 0 and get_held(poor) == 0
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not [f for f in media.rglob("*") if f.is_file()]


def test_a_job_is_created_only_at_the_price_the_customer_was_quoted(funded_customer, no_enqueue):
    set_price(kind="image", amount=2_500)  # staff changed it after the customer saw ₽15
    with pytest.raises(exceptions.PriceChanged):
        services.submit_job(customer=funded_customer, kind="image", prompt="x", quoted_price=1_500)
    assert Job.objects.count() == 0 and get_held(funded_customer) == 0
    job = services.submit_job(customer=funded_customer, kind="image", prompt="x", quoted_price=2_500)
    assert job.cost_estimate == job.reservation.amount == 2_500


def test_blocked_customer_cannot_submit(funded_customer, no_enqueue):
    set_customer_blocked(customer=funded_customer, blocked=True)
    with pytest.raises(CustomerBlocked):
        services.submit_job(customer=funded_customer, kind="image", prompt="x")


def test_the_cap_of_active_jobs_is_enforced_and_finished_jobs_free_a_slot(funded_customer, no_enqueue):
    jobs = [services.submit_job(customer=funded_customer, kind="image", prompt=f"p{i}") for i in range(3)]
    with pytest.raises(exceptions.TooManyActiveJobs):
        services.submit_job(customer=funded_customer, kind="image", prompt="one too many")
    services.cancel_job(job=jobs[0])
    services.submit_job(customer=funded_customer, kind="image", prompt="now it fits")


def test_the_most_specific_price_line_wins_and_surcharges_add(funded_customer, no_enqueue):
    offer = "kling-v2-5-turbo"
    assert quote(kind="video_text", options={"duration": 10, "mode": "pro"}) == 18_000  # 1,800 a second
    OfferPrice.objects.create(offer_id=_offer_id(offer), kind="video_text", amount=7000)
    OfferPrice.objects.create(offer_id=_offer_id(offer), kind="video_text", mode="pro", amount=9000)
    OfferPrice.objects.create(offer_id=_offer_id(offer), kind="video_text", mode="pro", duration=10, amount=11_000)
    assert quote(kind="video_text", model=offer, options={"duration": 5}) == 7000
    assert quote(kind="video_text", model=offer, options={"mode": "pro"}) == 9000
    # An exact kind beats an exact mode, which beats an exact duration.
    OfferPrice.objects.create(offer_id=_offer_id(offer), kind="video_text", duration=5, amount=6000)
    assert quote(kind="video_text", options={"mode": "pro", "duration": 5}) == 9000
    assert quote(kind="video_text", options={"mode": "std", "duration": 5}) == 6000
    assert quote(kind="video_image", options={"mode": "std", "duration": 5}) == 5000  # other kinds keep theirs
    # A surcharge adds to whichever base line wins, per second when it says so.
    OfferPrice.objects.create(offer_id=_offer_id(offer), surcharge=True, per_second=True, mode="pro", amount=100)
    assert quote(kind="video_text", options={"mode": "pro", "duration": 5}) == 9000 + 500
    job = services.submit_job(customer=funded_customer, kind="video_text", prompt="x", duration=10, mode="pro")
    assert job.cost_estimate == job.reservation.amount == 11_000 + 1000


def _offer_id(key: str) -> int:
    from jobs.models import Offer

    return Offer.objects.get(key=key).pk


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_submits_with_cap_three_accept_exactly_three(no_enqueue):
    customer = make_customer(balance=100_000)
    results = run_concurrently(lambda i: services.submit_job(customer=customer, kind="image", prompt=f"race {i}"), 10)
    accepted = [r for status, r in results if status == "ok"]
    refused = [r for status, r in results if status == "error"]
    assert len(accepted) == 3, results
    assert all(isinstance(e, exceptions.TooManyActiveJobs) for e in refused), refused
    assert Job.objects.filter(customer=customer).count() == 3
    assert get_held(customer) == 3 * 1500
    assert find_drift() == []


# --- the worker task -----------------------------------------------------------------------


def test_a_job_runs_stores_its_result_charges_once_and_announces(funded_customer, no_enqueue, finished_jobs,
                                                               django_capture_on_commit_callbacks):
    job = services.submit_job(customer=funded_customer, kind="image", prompt="a boat")
    with django_capture_on_commit_callbacks(execute=True):
        assert run_job(job.pk) == "completed"
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and job.progress == 100 and job.attempts == 1
    assert job.cost_actual == 1500 and job.started_at and job.completed_at
    assert Image.open(default_storage.open(job.result_files[0])).format == "PNG"
    assert transfers_of(job, TransferKind.POST) == 1
    assert get_balance(funded_customer) == 100_000 - 1500 and get_held(funded_customer) == 0
    assert finished_jobs == [(job.pk, JobStatus.COMPLETED)]
    assert find_drift() == []


def test_the_same_job_delivered_twice_is_charged_once(funded_customer, no_enqueue):
    job = services.submit_job(customer=funded_customer, kind="image", prompt="twice")
    assert run_job(job.pk) == "completed"
    assert run_job(job.pk) == "skipped"
    job.refresh_from_db()
    assert job.attempts == 1 and transfers_of(job, TransferKind.POST) == 1
    assert get_balance(funded_customer) == 100_000 - 1500 and find_drift() == []


@pytest.mark.django_db(transaction=True)
def test_the_same_job_delivered_concurrently_runs_and_charges_once(no_enqueue):
    customer = make_customer(balance=10_000)
    job = services.submit_job(customer=customer, kind="image", prompt="race")
    outcomes = sorted(result for _status, result in run_concurrently(lambda i: run_job(job.pk), 4))
    assert outcomes == ["completed", "skipped", "skipped", "skipped"]
    assert transfers_of(job, TransferKind.POST) == 1 and get_balance(customer) == 10_000 - 1500
    assert find_drift() == []


def test_a_final_provider_error_refunds_and_leaves_a_message_in_the_customers_language(
        no_enqueue, settings, gemini_stub, finished_jobs, django_capture_on_commit_callbacks):
    settings.AI_PROVIDER = "auto"
    funded_customer = make_customer(balance=100_000, language="en")
    gemini_stub.script("prompt_blocked")
    job = services.submit_job(customer=funded_customer, kind="image", prompt="something forbidden")
    assert job.provider == "gemini"
    with django_capture_on_commit_callbacks(execute=True):
        assert run_job(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error_code == "safety"
    assert "safety" in job.error and "returned" in job.error
    assert job.cost_actual is None and transfers_of(job, TransferKind.VOID) == 1
    assert get_balance(funded_customer) == 100_000 and get_held(funded_customer) == 0
    assert len(gemini_stub.requests) == 1
    assert finished_jobs == [(job.pk, JobStatus.FAILED)]
    assert find_drift() == []


def test_retryable_errors_then_success_charge_once(funded_customer, no_enqueue, drive, settings, kling_stub):
    settings.AI_PROVIDER = "real"
    kling_stub.script("rate_limit", "server_error")
    job = services.submit_job(customer=funded_customer, kind="video_text", prompt="surf", duration=5)
    assert drive(job.pk) == "completed"
    job.refresh_from_db()
    assert job.provider == "kling" and job.result_mime == "video/mp4"
    assert len([r for r in kling_stub.requests if r["method"] == "POST"]) == 3
    assert transfers_of(job, TransferKind.POST) == 1
    assert get_balance(funded_customer) == 100_000 - 5000 and find_drift() == []


def test_a_download_that_fails_twice_completes_the_job_with_one_paid_task(funded_customer, no_enqueue, drive, settings,
                                                                         kling_stub):
    settings.AI_PROVIDER = "real"
    kling_stub.script("flaky_download")
    job = services.submit_job(customer=funded_customer, kind="video_text", prompt="surf", duration=5)
    assert drive(job.pk) == "completed"
    assert len([r for r in kling_stub.requests if r["method"] == "POST"]) == 1
    assert transfers_of(job, TransferKind.POST) == 1
    assert get_balance(funded_customer) == 100_000 - 5000 and find_drift() == []


def test_a_refused_result_url_fails_the_job_refunded_with_the_customers_message(no_enqueue, drive, settings, kling_stub):
    settings.AI_PROVIDER = "real"
    customer = make_customer(balance=100_000, language="en")
    kling_stub.script("redirect_link_local")
    job = services.submit_job(customer=customer, kind="video_text", prompt="surf", duration=5)
    assert drive(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error_code == "unsafe_result_url" and "could not be downloaded" in job.error
    assert job.cost_actual is None and transfers_of(job, TransferKind.VOID) == 1
    assert get_balance(customer) == 100_000 and get_held(customer) == 0 and find_drift() == []
    assert len([r for r in kling_stub.requests if r["method"] == "POST"]) == 1


def test_retries_exhausted_refund(funded_customer, no_enqueue, settings):
    settings.FAKE_PROVIDER_FAILURE_RATE = 1.0
    job = services.submit_job(customer=funded_customer, kind="image", prompt="unlucky")
    assert run_job(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error_code == "unavailable" and job.error
    assert get_balance(funded_customer) == 100_000 and get_held(funded_customer) == 0


def test_an_unexpected_crash_refunds_too(funded_customer, no_enqueue, monkeypatch):
    monkeypatch.setattr("jobs.services.workflow.build_request", lambda job: 1 / 0)
    job = services.submit_job(customer=funded_customer, kind="image", prompt="bug")
    assert run_job(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error_code == "internal" and get_balance(funded_customer) == 100_000


# --- cancel --------------------------------------------------------------------------------


def test_cancel_pending_releases_at_once_and_the_task_then_skips(funded_customer, no_enqueue, finished_jobs,
                                                                django_capture_on_commit_callbacks):
    job = services.submit_job(customer=funded_customer, kind="image", prompt="never mind")
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_job(job=job)
    assert get_held(funded_customer) == 0 and get_balance(funded_customer) == 100_000
    assert run_job(job.pk) == "skipped"
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    assert finished_jobs == [(job.pk, JobStatus.CANCELLED)]
    with pytest.raises(exceptions.JobNotCancellable):
        services.cancel_job(job=job)


def test_a_finished_job_cannot_be_cancelled(funded_customer, no_enqueue):
    job = services.submit_job(customer=funded_customer, kind="image", prompt="done")
    run_job(job.pk)
    with pytest.raises(exceptions.JobNotCancellable):
        services.cancel_job(job=job)
    assert transfers_of(Job.objects.get(pk=job.pk), TransferKind.POST) == 1


@pytest.mark.django_db(transaction=True)
def test_cancel_while_processing_refunds_and_the_worker_stops_without_charging(no_enqueue, settings):
    settings.FAKE_PROVIDER_LATENCY = 3.0
    settings.JOB_HEARTBEAT_INTERVAL = 0.05
    customer = make_customer(balance=10_000)
    progress: list[int] = []

    def on_progress(sender, job, progress: int, **kwargs):
        seen_progress.append(progress)

    seen_progress = progress
    job_progress.connect(on_progress, weak=False, dispatch_uid="test-progress")
    job = services.submit_job(customer=customer, kind="image", prompt="slow")
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(run_job(job.pk)))
    started = time.monotonic()
    worker.start()
    try:
        wait_until(lambda: progress, message="progress reported to the job row")
        assert Job.objects.get(pk=job.pk).progress > 0
        services.cancel_job(job=job)
        assert get_held(customer) == 0 and get_balance(customer) == 10_000  # released at once
        worker.join(10)
    finally:
        job_progress.disconnect(dispatch_uid="test-progress")
    assert outcome == ["cancelled"] and time.monotonic() - started < 2.5  # stopped before the 3 s
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.cost_actual is None and job.result_files == []
    assert transfers_of(job, TransferKind.POST) == 0 and transfers_of(job, TransferKind.VOID) == 1
    assert find_drift() == []


# --- recovery and clean-up -----------------------------------------------------------------


def test_reaper_tries_a_job_whose_heartbeat_stopped_again_then_fails_and_refunds_it(
        funded_customer, no_enqueue, settings, finished_jobs, django_capture_on_commit_callbacks):
    settings.JOB_HEARTBEAT_TIMEOUT, settings.JOB_MAX_ATTEMPTS = 60, 2
    stuck = services.submit_job(customer=funded_customer, kind="image", prompt="stuck")
    alive = services.submit_job(customer=funded_customer, kind="image", prompt="alive")
    no_enqueue.clear()
    services.claim_job(job_id=alive.pk)
    for attempt in (1, 2):
        assert services.claim_job(job_id=stuck.pk).attempts == attempt
        Job.objects.filter(pk=stuck.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
        with django_capture_on_commit_callbacks(execute=True):
            report = services.reap_stuck_jobs()
        stuck.refresh_from_db()
        if attempt == 1:  # its worker died mid-call: tried again, the money still held
            assert (report.requeued, report.failed) == (1, 0) and stuck.status == JobStatus.PENDING
            assert no_enqueue == [(stuck.pk, "image")] and get_held(funded_customer) == 3000
    assert (report.requeued, report.failed) == (0, 1)
    assert stuck.status == JobStatus.FAILED and stuck.error_code == "stuck" and stuck.error
    assert Job.objects.get(pk=alive.pk).status == JobStatus.PROCESSING
    assert get_held(funded_customer) == 1500  # only the live job still holds
    assert finished_jobs == [(stuck.pk, JobStatus.FAILED)]
    assert services.reap_stuck_jobs().failed == 0
    assert find_drift() == []


def test_reaper_enqueues_again_a_pending_job_whose_message_was_lost(funded_customer, no_enqueue, settings, monkeypatch):
    from jobs import queueing

    settings.JOB_REQUEUE_AFTER = 60
    lost = services.submit_job(customer=funded_customer, kind="video_text", prompt="lost")
    fresh = services.submit_job(customer=funded_customer, kind="image", prompt="fresh")
    Job.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(seconds=120))
    monkeypatch.setattr(queueing, "has_live_message", lambda job_id, kind: False)
    assert services.reap_stuck_jobs().requeued == 1
    assert no_enqueue == [(lost.pk, "video_text")]
    assert fresh.pk not in [job_id for job_id, _ in no_enqueue]


def test_cleanup_deletes_results_older_than_the_ttl(funded_customer, no_enqueue, settings):
    settings.RESULT_TTL_DAYS = 7
    old = services.submit_job(customer=funded_customer, kind="image_edit", prompt="old", input_image=picture())
    new = services.submit_job(customer=funded_customer, kind="image", prompt="new")
    run_job(old.pk)
    run_job(new.pk)
    old.refresh_from_db()
    new.refresh_from_db()
    Job.objects.filter(pk=old.pk).update(completed_at=timezone.now() - timedelta(days=8))
    assert services.cleanup_results() == 1
    assert not default_storage.exists(old.result_files[0]) and not default_storage.exists(old.input_file.name)
    assert default_storage.exists(new.result_files[0])
    assert Job.objects.get(pk=old.pk).results_deleted_at is not None
    assert services.cleanup_results() == 0


def test_options_can_be_passed_as_a_dict(funded_customer, no_enqueue):
    job = services.submit_job(customer=funded_customer, kind="video_text", prompt="x",
                              options={"duration": 10, "mode": "pro", "aspect_ratio": "9:16"})
    assert job.options == {"aspect_ratio": "9:16", "duration": 10, "mode": "pro"}
    assert job.cost_estimate == 18_000
    run_job(job.pk)
    job.refresh_from_db()
    assert job.result_file == job.result_files[0]


def test_a_russian_customer_gets_the_failure_message_in_russian(no_enqueue, settings):
    from jobs.providers.base import ProviderUnavailable

    settings.FAKE_PROVIDER_FAILURE_RATE = 1.0
    customer = make_customer(balance=10_000, language="ru")
    job = services.submit_job(customer=customer, kind="image", prompt="x")
    with translation.override("en"):  # the worker's own language does not matter
        run_job(job.pk)
    job.refresh_from_db()
    with translation.override("ru"):
        assert job.error == str(ProviderUnavailable.user_message)


def test_a_failing_announcement_receiver_never_undoes_a_completed_job(funded_customer, no_enqueue,
                                                                     django_capture_on_commit_callbacks):
    def broken(sender, job, **kwargs):
        raise RuntimeError("the bot is down")

    job_finished.connect(broken, weak=False, dispatch_uid="test-broken-receiver")
    try:
        job = services.submit_job(customer=funded_customer, kind="image", prompt="announce me")
        with django_capture_on_commit_callbacks(execute=True):
            assert run_job(job.pk) == "completed"
    finally:
        job_finished.disconnect(dispatch_uid="test-broken-receiver")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and default_storage.exists(job.result_files[0])
    assert transfers_of(job, TransferKind.POST) == 1 and find_drift() == []
