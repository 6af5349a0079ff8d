"""The bot's refusals to staff (under ``genbot.errors.GenbotError``): broadcasts that cannot be
written or cannot change state as asked."""
from django.utils.translation import gettext_lazy as _

from genbot.errors import GenbotError, kind_of


class BroadcastError(GenbotError):
    """Base for every refusal about a broadcast. ``str(exc)`` is fit to show staff."""

    default_message = _("This broadcast cannot be changed so.")


class InvalidBroadcast(BroadcastError):
    """The message or its audience breaks a rule (the message says which)."""

    default_message = _("This broadcast is not valid.")


BroadcastStateConflict = kind_of(
    BroadcastError, "BroadcastStateConflict", module=__name__,
    doc="The broadcast is not in a state that allows this (another member or the loop moved it).",
    default_message=_("The broadcast is %(status)s now: this cannot be done with it."),
)
BroadcastNotPermitted = kind_of(
    BroadcastError, "BroadcastNotPermitted", module=__name__,
    doc="The acting member lacks the permission this needs (writing, sending, cancelling broadcasts).",
    default_message=_("You do not have the permission to do this with broadcasts."),
)
