"""Generation jobs and the catalogue of offers they are priced from.

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
    # The catalogue offer the job was priced for (its key) and the provider's model id then: a
    # job keeps them when staff later disable or change the offer. "" on jobs from before the
    # catalogue (their provider uses its setting's model).
    offer_key = models.CharField(max_length=40, blank=True, default="")
    model_id = models.CharField(max_length=80, blank=True, default="")
    # aspect_ratio ("1:1", "16:9", ...), image_size ("1K" | "2K" | "4K", pictures), duration
    # (seconds, videos), mode ("std" | "pro", videos), sound (bool, videos), negative_prompt.
    options = models.JSONField(default=dict, blank=True)
    # Storage names of every input picture, in order; ``input_file`` is the first of them.
    input_files = models.JSONField(default=list, blank=True)
    # A video's last frame (Kling's ``image_tail``), when the customer sent one.
    end_file = models.FileField(upload_to="jobs/input/%Y/%m/%d/", blank=True, default="")
    end_mime = models.CharField(max_length=32, blank=True, default="")
    # What the provider charges us for it by the offer's cost rule at submit, in kopecks (margins).
    provider_cost = models.BigIntegerField(default=0)
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
            models.CheckConstraint(condition=Q(provider_cost__gte=0), name="job_provider_cost_not_negative"),
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


class OfferProvider(models.TextChoices):
    GEMINI = "gemini", "Gemini"
    KLING = "kling", "Kling"
    FAKE = "fake", "Fake (local)"


class Offer(models.Model):
    """A model customers can order: a provider's model id, the kinds it makes, the options it
    takes and its price rule (``OfferPrice`` rows). Staff edit offers in the admin; the
    defaults are seeded by a migration.

    A disabled offer takes no new orders: they go to its ``successor`` (followed while that is
    disabled too); jobs already submitted keep the offer and model id they were priced for.
    The option lists are what the provider's model accepts; the first of each is the default.
    """

    key = models.SlugField(max_length=40, unique=True, help_text="Stable id the bot and the jobs use.")
    title = models.CharField(max_length=60, help_text="The name customers see.")
    provider = models.CharField(max_length=16, choices=OfferProvider.choices)
    model_id = models.CharField(max_length=80, blank=True, default="",
                                help_text="The provider's model id; empty: the provider's setting.")
    kinds = models.JSONField(default=list, help_text="Kinds of job it makes.")
    aspect_ratios = models.JSONField(default=list, blank=True)
    image_sizes = models.JSONField(default=list, blank=True, help_text="Empty: the model has one size.")
    durations = models.JSONField(default=list, blank=True, help_text="Seconds (videos).")
    modes = models.JSONField(default=list, blank=True, help_text="std / pro (videos).")
    sound = models.BooleanField(default=False, help_text="Can add sound (videos).")
    negative_prompt = models.BooleanField(default=False, help_text="Takes a negative prompt.")
    end_frame = models.BooleanField(default=False, help_text="Takes a last frame (video from a picture).")
    max_input_images = models.PositiveSmallIntegerField(default=1, help_text="Pictures an edit may send at once.")
    enabled = models.BooleanField(default=True)
    successor = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="predecessors",
                                  help_text="Takes the new orders while this offer is disabled.")
    is_default = models.BooleanField(default=False, help_text="The offer of its kinds when the customer chose none.")
    position = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "key"]
        constraints = [
            one_of("provider", OfferProvider, name="offer_provider_valid"),
            models.CheckConstraint(condition=~Q(successor=models.F("id")), name="offer_not_its_own_successor"),
        ]

    def __str__(self) -> str:
        return self.title or self.key


class OfferPrice(models.Model):
    """One line of an offer's price rule; empty matchers ("", 0, null) match any value.

    A job's price is its base, the most specific matching base line (an exact kind first,
    then an exact mode, duration, size, sound), plus every matching surcharge line. A line's
    amount is per job, or per second of video with ``per_second``. ``cost`` is what the
    provider charges for the same, by the same rule (for margins).
    """

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="prices")
    kind = models.CharField(max_length=16, blank=True, default="", choices=JobKind.choices, help_text="Empty: any kind.")
    mode = models.CharField(max_length=8, blank=True, default="", help_text="Empty: any mode.")
    duration = models.PositiveSmallIntegerField(default=0, help_text="Seconds; 0: any duration.")
    image_size = models.CharField(max_length=8, blank=True, default="", help_text="Empty: any size.")
    sound = models.CharField(max_length=3, blank=True, default="", choices=[("on", "with sound"), ("off", "silent")],
                             help_text="Empty: with or without sound.")
    surcharge = models.BooleanField(default=False, help_text="Added to the base rather than being it.")
    per_second = models.BooleanField(default=False, help_text="The amounts are per second of video.")
    amount = models.BigIntegerField(help_text="Kopecks.")
    cost = models.BigIntegerField(default=0, help_text="The provider's cost, kopecks.")

    class Meta:
        ordering = ["offer", "surcharge", "kind", "mode", "duration", "image_size"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "surcharge", "kind", "mode", "duration", "image_size", "sound"],
                                    name="offer_price_unique_match"),
            models.CheckConstraint(condition=Q(amount__gte=0) & Q(cost__gte=0), name="offer_price_not_negative"),
            models.CheckConstraint(condition=Q(sound__in=["", "on", "off"]), name="offer_price_sound_valid"),
        ]

    def __str__(self) -> str:
        when = [self.kind or "*", self.mode or "*", f"{self.duration}s" if self.duration else "*", self.image_size or "*"]
        if self.sound:
            when.append(f"sound {self.sound}")
        unit = "/s" if self.per_second else ""
        return f"{self.offer}: {'+' if self.surcharge else ''}{'/'.join(when)}: {format_amount(self.amount)}{unit}"
