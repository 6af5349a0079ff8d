"""The support role through the admin: cancel and retry jobs (audited), money within the limit."""
import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from billing import selectors
from genbot.roles import ensure_roles
from jobs import services as jobs
from jobs.exceptions import InvalidJobInput
from jobs.models import Job, JobStatus
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def failed_job(customer) -> Job:
    job = jobs.submit_job(customer=customer, kind="image", prompt="a lighthouse")
    claimed = jobs.claim_job(job_id=job.pk)
    jobs.fail_job(job=claimed, error_code="safety", message="blocked")
    return Job.objects.get(pk=job.pk)


def job_action(client, action, job):
    return client.post(reverse("admin:jobs_job_changelist"), {"action": action, "_selected_action": [job.pk]})


def test_support_cancels_a_job_and_the_reservation_is_released_and_audited(support_client):
    c = make_customer(balance=10_000)
    job = jobs.submit_job(customer=c, kind="image", prompt="a lighthouse")
    assert selectors.get_balance(c) == 10_000 - job.cost_estimate
    assert job_action(support_client, "cancel_selected", job).status_code == 302
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    assert selectors.get_balance(c) == 10_000 and selectors.get_held(c) == 0
    assert LogEntry.objects.filter(object_id=str(job.pk), change_message="cancelled by staff").exists()


def test_support_retries_a_failed_job_as_a_new_job_with_a_new_reservation(support_client):
    c = make_customer(balance=10_000)
    old = failed_job(c)
    assert selectors.get_balance(c) == 10_000  # the failure refunded
    assert job_action(support_client, "retry_selected", old).status_code == 302
    new = Job.objects.get(retry_of=old)
    assert new.status == JobStatus.PENDING and new.prompt == old.prompt
    assert new.reservation is not None and new.reservation.pk != old.reservation.pk
    assert selectors.get_held(c) == new.cost_estimate
    assert Job.objects.get(pk=old.pk).status == JobStatus.FAILED


def test_retry_of_a_job_that_did_not_fail_is_refused_and_changes_nothing(support_client):
    c = make_customer(balance=10_000)
    job = jobs.submit_job(customer=c, kind="image", prompt="a lighthouse")
    page = support_client.post(
        reverse("admin:jobs_job_changelist"), {"action": "retry_selected", "_selected_action": [job.pk]}, follow=True
    )
    assert "Only a failed generation can be retried" in page.content.decode()
    assert Job.objects.count() == 1


def test_view_only_staff_cannot_cancel_or_retry(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(viewer)
    c = make_customer(balance=10_000)
    job = jobs.submit_job(customer=c, kind="image", prompt="a lighthouse")
    job_action(client, "cancel_selected", job)
    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING
    old = failed_job(make_customer(balance=10_000))
    job_action(client, "retry_selected", old)
    assert not Job.objects.filter(retry_of=old).exists()


def test_support_group_has_every_permission_it_is_meant_to():
    group = ensure_roles()
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"cancel_job", "retry_job", "refund_payment", "adjust_balance", "change_customer"} <= codenames
    assert "delete_customer" not in codenames and "change_transfer" not in codenames


def test_retry_refuses_when_the_input_picture_was_already_cleaned_up(support_client, settings, tmp_path):
    import io

    from PIL import Image

    settings.MEDIA_ROOT = str(tmp_path)
    buf = io.BytesIO()
    Image.new("RGB", (512, 512), "red").save(buf, "PNG")
    c = make_customer(balance=10_000)
    job = jobs.submit_job(customer=c, kind="image_edit", prompt="make it blue", input_image=buf.getvalue())
    jobs.fail_job(job=jobs.claim_job(job_id=job.pk), error_code="safety", message="blocked")
    job.refresh_from_db()
    (tmp_path / job.input_file.name).unlink()
    with pytest.raises(InvalidJobInput, match="already deleted"):
        jobs.retry_job(job=job)
    assert not Job.objects.filter(retry_of=job).exists()
