"""Periodic scheduling, the management commands, and the admin."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone as dt_timezone
from io import StringIO

import django_rq
import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing.selectors import get_held
from jobs import periodic, services
from jobs.models import Job, JobStatus, OfferPrice
from jobs.tasks import run_job

pytestmark = pytest.mark.django_db

CALLS: list[str] = []


def tick():
    CALLS.append("tick")


def test_unimportable_entries_are_logged_and_skipped(caplog):
    entries = [
        ("tests.jobs.test_periodic_and_admin.tick", "default", 60),
        ("payments.tasks.no_such_function_yet", "default", 300),
        ("no_such_app.tasks.sync", "default", 300),
        ("tests.jobs.test_periodic_and_admin.tick", "default", "not a cron line"),
    ]
    with caplog.at_level(logging.ERROR, logger="jobs.periodic"):
        tasks = periodic.load_periodic_tasks(entries)
    assert [t.path for t in tasks] == ["tests.jobs.test_periodic_and_admin.tick"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3 and any("no_such_app.tasks.sync" in e for e in errors)


def test_the_project_schedule_has_the_reaper_every_minute_and_daily_cleanup(settings):
    by_path = {path: schedule for path, _queue, schedule in settings.PERIODIC_TASKS}
    assert by_path["jobs.tasks.reap_stuck_jobs_task"] == 60
    assert by_path["payments.tasks.sync_pending_payments"] == 300
    cron = by_path["jobs.tasks.cleanup_results_task"]
    start = datetime(2026, 1, 1, tzinfo=dt_timezone.utc)
    task = periodic.PeriodicTask(path="x", queue="default", schedule=cron, func=tick)
    task.plan_next(start)
    first = task.next_run
    task.plan_next(datetime.fromtimestamp(first, dt_timezone.utc))
    assert task.next_run - first == 86400


def test_rq_cron_scheduler_enqueues_due_tasks_on_their_queue(clean_queues):
    tasks = periodic.load_periodic_tasks([("tests.jobs.test_periodic_and_admin.tick", "default", 60),
                                          ("jobs.tasks.reap_stuck_jobs_task", "default", 60)])
    scheduler = periodic.build_cron_scheduler(tasks)
    assert sorted(job.func_name for job in scheduler.get_jobs()) == sorted(t.path for t in tasks)
    scheduler.enqueue_jobs()
    queued = django_rq.get_queue("default").get_jobs()
    assert sorted(job.func_name for job in queued) == sorted(t.path for t in tasks)


def test_without_redis_due_tasks_run_in_process_on_schedule():
    CALLS.clear()
    tasks = periodic.load_periodic_tasks([("tests.jobs.test_periodic_and_admin.tick", "default", 60)])
    now = timezone.now()
    assert periodic.run_due(tasks, now=now) == ["tests.jobs.test_periodic_and_admin.tick"]
    assert periodic.run_due(tasks, now=now + timedelta(seconds=30)) == []
    assert periodic.run_due(tasks, now=now + timedelta(seconds=61)) == ["tests.jobs.test_periodic_and_admin.tick"]
    assert CALLS == ["tick", "tick"]


def test_reap_and_cleanup_commands_report_what_they_did(funded_customer, no_enqueue, settings):
    settings.JOB_HEARTBEAT_TIMEOUT, settings.JOB_MAX_ATTEMPTS = 10, 1
    job = services.submit_job(customer=funded_customer, kind="image", prompt="x")
    services.claim_job(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=11))
    out = StringIO()
    call_command("reap_stuck_jobs", stdout=out)
    assert "failed and refunded: 1" in out.getvalue() and get_held(funded_customer) == 0
    out = StringIO()
    call_command("cleanup_results", stdout=out)
    assert "deleted the files of 0 jobs" in out.getvalue()


def test_run_periodic_lists_the_importable_tasks(settings):
    settings.PERIODIC_TASKS = [("jobs.tasks.reap_stuck_jobs_task", "default", 60), ("missing.module.fn", "default", 60)]
    out = StringIO()
    call_command("run_periodic", "--list", stdout=out)
    assert out.getvalue().strip() == "jobs.tasks.reap_stuck_jobs_task on default: 60"


# --- admin ---------------------------------------------------------------------------------


def test_admin_lists_filters_previews_and_cancels_through_the_service(admin_client, funded_customer, no_enqueue):
    done = services.submit_job(customer=funded_customer, kind="image", prompt="shown in the admin")
    run_job(done.pk)
    pending = services.submit_job(customer=funded_customer, kind="image", prompt="to cancel")
    changelist = reverse("admin:jobs_job_changelist")
    assert admin_client.get(changelist, {"status__exact": "completed", "kind__exact": "image"}).status_code == 200
    page = admin_client.get(reverse("admin:jobs_job_change", args=[done.pk]))
    assert page.status_code == 200 and b"<img" in page.content
    response = admin_client.post(changelist, {"action": "cancel_selected", "_selected_action": [pending.pk, done.pk]},
                                 follow=True)
    assert response.status_code == 200
    assert Job.objects.get(pk=pending.pk).status == JobStatus.CANCELLED
    assert Job.objects.get(pk=done.pk).status == JobStatus.COMPLETED
    assert get_held(funded_customer) == 0


def test_staff_edit_prices_in_the_admin(admin_client):
    price = OfferPrice.objects.get(offer__key="nano-banana", kind="image_edit")
    changelist = reverse("admin:jobs_offerprice_changelist") + f"?offer__id__exact={price.offer_id}&kind=image_edit"
    response = admin_client.post(changelist, {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(price.pk), "form-0-amount": "25", "form-0-cost": "3,20", "_save": "Save",  # roubles
    })
    assert response.status_code == 302
    price.refresh_from_db()
    assert price.amount == 2500
