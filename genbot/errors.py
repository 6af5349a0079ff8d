"""The one root of every refusal the product raises.

Each app has its own hierarchy under it (``billing.exceptions``, ``jobs.exceptions``,
``payments.exceptions``, the AI providers' errors in ``jobs.providers.base``), each exception
defined once. An interface (the bot, the admin) catches ``GenbotError`` and shows ``str(exc)``:
the customer's message, a lazy translation rendered in the language active where it is shown.
"""
from django.utils.translation import gettext_lazy as _


class GenbotError(Exception):
    """Base for every refusal. ``str(exc)`` is fit to show a person."""

    default_message = _("The operation was refused.")

    def __init__(self, message=None, **params):
        # The message stays lazy and its parameters apart, so it renders in the language active
        # where it is shown, not where it was raised.
        self.message = message if message is not None else self.default_message
        self.params = params
        super().__init__(self.message)

    def __str__(self) -> str:
        text = str(self.message)
        return text % self.params if self.params else text
