"""The rules jobs guards, one exception class each (those that differ in their message only
through ``_refusal``).

Messages are lazy translations fit to show the customer; services raise them and change nothing.
"""
from django.utils.translation import gettext_lazy as _

from genbot.errors import GenbotError, kind_of


class JobError(GenbotError):
    """Base for every refusal by jobs. ``str(exc)`` is fit to show a person."""

    default_message = _("The request was refused.")


def _refusal(base: type[JobError], name: str, message, *, doc: str = "") -> type[JobError]:
    """A kind of refusal that differs from ``base`` in its message only."""
    return kind_of(base, name, module=__name__, doc=doc, default_message=message)


class InvalidJobInput(JobError, ValueError):
    default_message = _("The request is not valid.")


EmptyPrompt = _refusal(InvalidJobInput, "EmptyPrompt", _("Describe what to generate: the prompt is empty."))
UnsupportedMedia = _refusal(InvalidJobInput, "UnsupportedMedia", _("Send a JPEG, PNG or WebP picture."))
MediaRequired = _refusal(InvalidJobInput, "MediaRequired", _("Send a picture to work from."))
InvalidJobOption = _refusal(InvalidJobInput, "InvalidJobOption", _("That option is not available."))
ModelUnavailable = _refusal(InvalidJobOption, "ModelUnavailable", _("This model is not available. Choose another one."))


class _OptionPhrase:
    """An option of an offer in words ("the size 4K"), rendered when the message is shown."""

    PHRASES = {
        "kind": _("this kind of generation"),
        "aspect_ratio": _("the aspect ratio %(value)s"),
        "image_size": _("the size %(value)s"),
        "duration": _("%(value)s-second videos"),
        "mode": _("the %(value)s mode"),
        "sound": _("sound"),
        "negative_prompt": _("a negative prompt"),
        "end_frame": _("a last frame"),
    }

    def __init__(self, option: str, value):
        self.option, self.value = option, value

    def __str__(self) -> str:
        phrase = str(self.PHRASES.get(self.option, self.option))
        return phrase % {"value": self.value} if "%(value)s" in phrase else phrase


class OptionNotOffered(InvalidJobOption):
    """The chosen model does not take this option or value (``option`` names it, ``value`` is it)."""

    default_message = _("%(model)s does not offer %(option)s. Choose another option.")

    def __init__(self, *, model: str, option: str, value=""):
        self.option, self.value = option, value
        super().__init__(model=model, option=_OptionPhrase(option, value))


class TooManyInputImages(InvalidJobOption):
    default_message = _("%(model)s takes at most %(limit)s pictures at once. Send fewer.")

    def __init__(self, *, model: str, limit: int):
        self.limit = limit
        super().__init__(model=model, limit=limit)


# --- refusals that name a limit ------------------------------------------------------------


class _NamesALimit:
    """A refusal that names a limit. The caller passes the limit by the keyword ``limit_name``,
    the exception keeps it under that name (``exc.limit``), and its message shows ``show(limit)``
    (bytes as megabytes, ...) as ``%(<shown_as>)s``."""

    limit_name = shown_as = "limit"

    @staticmethod
    def show(limit: int) -> int:
        return limit

    def __init__(self, **limit: int):
        value = limit.pop(self.limit_name)
        if limit:
            raise TypeError(f"{type(self).__name__} takes only {self.limit_name}=, not {sorted(limit)}")
        setattr(self, self.limit_name, value)
        super().__init__(**{self.shown_as: self.show(value)})


class PromptTooLong(_NamesALimit, InvalidJobInput):
    default_message = _("The prompt is too long: keep it under %(limit)s characters.")


class MediaTooLarge(_NamesALimit, InvalidJobInput):
    default_message = _("The picture is too large: send one under %(megabytes)s MB.")
    limit_name, shown_as = "limit_bytes", "megabytes"
    show = staticmethod(lambda limit_bytes: max(1, limit_bytes // (1024 * 1024)))


class ImageTooManyPixels(_NamesALimit, InvalidJobInput):
    default_message = _("The picture is too large: send one of at most %(megapixels)s megapixels.")
    limit_name, shown_as = "limit_pixels", "megapixels"
    show = staticmethod(lambda limit_pixels: max(1, limit_pixels // 1_000_000))


class ImageTooSmall(_NamesALimit, InvalidJobInput):
    default_message = _("The picture is too small for a video: each side must be at least %(pixels)s pixels.")
    limit_name, shown_as = "min_side", "pixels"


class TooManyActiveJobs(_NamesALimit, JobError):
    default_message = _("You already have %(limit)s generations running. Wait for one to finish.")


# --- the job's state --------------------------------------------------------------------------


PriceChanged = _refusal(
    JobError, "PriceChanged", _("The price has changed since it was shown to you. Here is the new price."),
    doc="The price is no longer the one the customer was shown and agreed to.",
)
JobNotCancellable = _refusal(JobError, "JobNotCancellable", _("This generation has already finished; it cannot be cancelled."))
JobNotRetryable = _refusal(JobError, "JobNotRetryable", _("Only a failed generation can be retried."))

