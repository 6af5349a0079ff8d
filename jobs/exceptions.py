"""The rules jobs guards, one exception class each.

Messages are lazy translations fit to show the customer; services raise them and change nothing.
"""
from django.utils.translation import gettext_lazy as _

from genbot.errors import GenbotError


class JobError(GenbotError):
    """Base for every refusal by jobs. ``str(exc)`` is fit to show a person."""

    default_message = _("The request was refused.")


class InvalidJobInput(JobError, ValueError):
    default_message = _("The request is not valid.")


class EmptyPrompt(InvalidJobInput):
    default_message = _("Describe what to generate: the prompt is empty.")


class PromptTooLong(InvalidJobInput):
    default_message = _("The prompt is too long: keep it under %(limit)s characters.")

    def __init__(self, *, limit: int):
        self.limit = limit
        super().__init__(limit=limit)


class UnsupportedMedia(InvalidJobInput):
    default_message = _("Send a JPEG, PNG or WebP picture.")


class MediaTooLarge(InvalidJobInput):
    default_message = _("The picture is too large: send one under %(megabytes)s MB.")

    def __init__(self, *, limit_bytes: int):
        self.limit_bytes = limit_bytes
        super().__init__(megabytes=max(1, limit_bytes // (1024 * 1024)))


class ImageTooManyPixels(InvalidJobInput):
    default_message = _("The picture is too large: send one of at most %(megapixels)s megapixels.")

    def __init__(self, *, limit_pixels: int):
        self.limit_pixels = limit_pixels
        super().__init__(megapixels=max(1, limit_pixels // 1_000_000))


class ImageTooSmall(InvalidJobInput):
    default_message = _("The picture is too small for a video: each side must be at least %(pixels)s pixels.")

    def __init__(self, *, min_side: int):
        self.min_side = min_side
        super().__init__(pixels=min_side)


class MediaRequired(InvalidJobInput):
    default_message = _("Send a picture to work from.")


class InvalidJobOption(InvalidJobInput):
    default_message = _("That option is not available.")


class TooManyActiveJobs(JobError):
    default_message = _("You already have %(limit)s generations running. Wait for one to finish.")

    def __init__(self, *, limit: int):
        self.limit = limit
        super().__init__(limit=limit)


class PriceChanged(JobError):
    """The price is no longer the one the customer was shown and agreed to."""

    default_message = _("The price has changed since it was shown to you. Here is the new price.")


class JobNotCancellable(JobError):
    default_message = _("This generation has already finished; it cannot be cancelled.")


class JobNotRetryable(JobError):
    default_message = _("Only a failed generation can be retried.")

