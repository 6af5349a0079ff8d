"""Generation jobs and their prices.

A job moves ``pending -> processing -> completed | failed`` and to ``cancelled`` from pending or
processing. Every move is a conditional UPDATE (``WHERE status IN (...)``) in ``services.py``,
so two actors (a worker, a cancel, the reaper) can never both win. The job holds its price as a
billing reservation from submit until it is charged (completed) or released (anything else).
"""
from django.db import models
from django.db.models import Q

from billing.money import format_amount
from genbot.choices import one_of


class JobKind(models.TextChoices):
    IMAGE = "image", "Image from text"
    IMAGE_EDIT = "image_edit", "Image edit"
    VIDEO_TEXT = "video_text", "Video from text"
    VIDEO_IMAGE = "video_image", "Video from image"
    # What each kind is (a video? from a picture?) and the options it takes: ``jobs.catalog``.


class JobStatus(models.TextChoices):
    # Each label is the name's (Django's default): "Pending", ...
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def active(cls) -> tuple[str, ...]:
        return (cls.PENDING, cls.PROCESSING)

    @classmethod
    def finished(cls) -> tuple[str, ...]:
        return (cls.COMPLETED, cls.FAILED, cls.CANCELLED)


class Job(models.Model):
    customer = models.ForeignKey("billing.Customer", on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=16, choices=JobKind.choices)
    # "gemini", "kling" or "fake": chosen at submit, so the price and the worker agree.
    provider = models.CharField(max_length=16)
    prompt = models.TextField()
    input_file = models.FileField(upload_to="jobs/input/%Y/%m/%d/", blank=True, default="")
    input_mime = models.CharField(max_length=32, blank=True, default="")
    # aspect_ratio ("1:1", "16:9", ...), duration (seconds, videos), mode ("std" | "pro", videos).
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    cost_estimate = models.BigIntegerField()
    cost_actual = models.BigIntegerField(null=True, blank=True)
    reservation = models.OneToOneField(
        "billing.Transfer", on_delete=models.PROTECT, null=True, blank=True, related_name="job"
    )
    # Storage names of the result files (usually one).
    result_files = models.JSONField(default=list, blank=True)
    result_mime = models.CharField(max_length=32, blank=True, default="")
    # Per result file, what the worker read from it (jobs.media): {"width", "height", "duration"}
    # of a video, {} when there is nothing to tell or the file could not be read.
    result_info = models.JSONField(default=list, blank=True)
    # A short machine code ("safety", "timeout", ...) and a sentence fit to show the customer.
    error_code = models.CharField(max_length=32, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    # Claims by a worker (a provider call each); a rate-limited call that was put back in line
    # gives its attempt back. ``JOB_MAX_ATTEMPTS`` bounds the retries of a job whose worker died.
    attempts = models.PositiveSmallIntegerField(default=0)
    # The provider's id of the remote task (Kling), recorded as soon as the provider answers the
    # create: a job with one is resumed by polling that task, never by paying for a second one.
    provider_task_id = models.CharField(max_length=64, blank=True, default="")
    # When the job's next scheduled run is due: a try for a provider slot (pending) or a poll of
    # its task (processing). A run scheduled for another moment was superseded and does nothing;
    # the reaper resumes jobs whose run is overdue by a margin (a stalled RQ scheduler).
    next_check_at = models.DateTimeField(null=True, blank=True)
    # While a pending job waits for a provider slot: its place in line (1 = next) and the
    # estimated seconds until it starts; null when it is not waiting for a slot.
    queue_position = models.PositiveIntegerField(null=True, blank=True)
    queue_eta = models.PositiveIntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    results_deleted_at = models.DateTimeField(null=True, blank=True)
    # A staff retry of a failed job is a new job (a new reservation) pointing at the old one.
    retry_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries")

    class Meta:
        ordering = ["-id"]
        permissions = [("cancel_job", "Can cancel jobs"), ("retry_job", "Can retry failed jobs")]
        indexes = [
            models.Index(fields=["customer", "status"], name="job_customer_status"),
            models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat"),
            models.Index(fields=["completed_at"], name="job_completed_at"),
            models.Index(fields=["status", "next_check_at"], name="job_status_next_check"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="job_progress_at_most_100"),
            models.CheckConstraint(condition=Q(cost_estimate__gte=0), name="job_cost_estimate_not_negative"),
            models.CheckConstraint(
                condition=Q(cost_actual__isnull=True) | (Q(cost_actual__gte=0) & Q(cost_actual__lte=models.F("cost_estimate"))),
                name="job_cost_actual_within_estimate",
            ),
            one_of("kind", JobKind, name="job_kind_valid"),
            one_of("status", JobStatus, name="job_status_valid"),
            # A job has a task id once a worker claimed it and the provider created the task.
            models.CheckConstraint(
                condition=Q(provider_task_id="") | ~Q(status=JobStatus.PENDING),
                name="job_task_only_once_claimed",
            ),
            # Only a completed job was charged.
            models.CheckConstraint(
                condition=Q(cost_actual__isnull=True) | Q(status=JobStatus.COMPLETED),
                name="job_charged_only_when_completed",
            ),
        ]

    def __str__(self) -> str:
        return f"job #{self.pk} {self.kind} {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in JobStatus.active()

    @property
    def result_file(self) -> str:
        """The storage name of the (first) result, "" until there is one."""
        return self.result_files[0] if self.result_files else ""


class Price(models.Model):
    """A staff-set price; empty provider/mode and duration 0 match anything.

    The most specific matching row wins; without one the settings' defaults apply.
    """

    kind = models.CharField(max_length=16, choices=JobKind.choices)
    provider = models.CharField(max_length=16, blank=True, default="", help_text="Empty: any provider.")
    mode = models.CharField(max_length=8, blank=True, default="", help_text="Empty: any mode (videos: std/pro).")
    duration = models.PositiveSmallIntegerField(default=0, help_text="Seconds; 0: any duration.")
    amount = models.BigIntegerField(help_text="Kopecks.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "provider", "mode", "duration"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "provider", "mode", "duration"], name="price_unique_match"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="price_amount_not_negative"),
        ]

    def __str__(self) -> str:
        parts = [self.kind, self.provider or "*", self.mode or "*", f"{self.duration}s" if self.duration else "*"]
        return f"{'/'.join(parts)}: {format_amount(self.amount)}"
