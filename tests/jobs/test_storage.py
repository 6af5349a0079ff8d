"""Results go through Django's storage: S3 (django-storages) when JOB_S3_BUCKET is configured."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from billing.selectors import get_balance
from jobs import services
from jobs.models import JobStatus
from jobs.tasks import run_job
from standins.s3 import S3Stub

from .conftest import ROOT

pytestmark = pytest.mark.django_db


def test_setting_a_bucket_switches_the_default_storage_to_s3():
    code = "from django.conf import settings; print(settings.STORAGES['default']['BACKEND'], settings.STORAGES['default']['OPTIONS']['bucket_name'])"
    out = subprocess.run(
        [sys.executable, "-c", f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='genbot.settings'; django.setup(); {code}"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "JOB_S3_BUCKET": "genbot-results", "DEBUG": "true"}, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out == ["storages.backends.s3.S3Storage", "genbot-results"]


def test_a_job_result_is_stored_in_the_s3_bucket(settings, funded_customer, no_enqueue, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with S3Stub() as s3:
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
                "bucket_name": "results", "endpoint_url": s3.url, "access_key": "test", "secret_key": "test",
                "region_name": "us-east-1", "addressing_style": "path", "location": "media", "default_acl": None,
            }},
        }
        job = services.submit_job(customer=funded_customer, kind="image", prompt="to the bucket")
        assert run_job(job.pk) == "completed"
        job.refresh_from_db()
        assert job.status == JobStatus.COMPLETED and get_balance(funded_customer) == 100_000 - 1500
        key = f"/results/media/{job.result_files[0]}"
        assert Image.open(io.BytesIO(s3.objects[key])).format == "PNG"
        assert default_storage.exists(job.result_files[0])
        assert "Signature=" in default_storage.url(job.result_files[0])  # a signed, expiring link
