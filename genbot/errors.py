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


def kind_of(base: type[Exception], name: str, *, module: str, doc: str = "", **attributes) -> type:
    """A kind of refusal that differs from ``base`` only in class attributes (its message, its
    code): ``EmptyPrompt = kind_of(InvalidJobInput, "EmptyPrompt", module=__name__,
    default_message=_("..."))``, one declaration instead of a class statement each. The class
    is named, documented and placed in ``module`` as if written there."""
    return type(name, (base,), {"__module__": module, "__qualname__": name, "__doc__": doc or None, **attributes})
