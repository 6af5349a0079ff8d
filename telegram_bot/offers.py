"""The catalogue as the chat shows it: which models a customer may pick for pictures and videos,
which options each takes, what each choice costs, and a remembered choice fitted to today's offers.

The catalogue itself is the jobs app's (``jobs.selectors.offers``, ``quote``, ``default_offer``);
prices come only from ``quote``, the price ``submit_job`` reserves, so a button never shows a
price other than the quote's. Settings are remembered per group of kinds (``SettingsGroup``): a
picture and a photo edit share theirs, as a video from a description and one from a photo do.
"""
from __future__ import annotations

from jobs import catalog
from jobs import selectors as job_selectors
from jobs.exceptions import ModelUnavailable
from jobs.models import JobKind
from telegram_bot.models import SettingsGroup

GROUP_KINDS = {
    SettingsGroup.PICTURE: (JobKind.IMAGE, JobKind.IMAGE_EDIT),
    SettingsGroup.VIDEO: (JobKind.VIDEO_TEXT, JobKind.VIDEO_IMAGE),
}
# The kind whose price the settings buttons show (an edit or a video from a photo is quoted
# at its own price when ordered).
PRICED_KIND = {SettingsGroup.PICTURE: JobKind.IMAGE, SettingsGroup.VIDEO: JobKind.VIDEO_TEXT}
# Per group, the options a customer chooses, in the order the settings screen shows them, and
# the offer's attribute that lists the values it takes (sound: a flag, off or on).
GROUP_OPTIONS = {
    SettingsGroup.PICTURE: (("aspect_ratio", "aspect_ratios"), ("image_size", "image_sizes")),
    SettingsGroup.VIDEO: (("duration", "durations"), ("mode", "modes"), ("aspect_ratio", "aspect_ratios"),
                          ("sound", "sound")),
}


def group_of(kind: str) -> str:
    return next(group for group, kinds in GROUP_KINDS.items() if kind in kinds)


def offers_for(group: str) -> list:
    """The enabled offers a customer can pick for the group's priced kind, in the catalogue's order."""
    return list(job_selectors.offers(kind=PRICED_KIND[group]))


def offer_for(kind: str, model: str = ""):
    """The offer an order of ``kind`` for ``model`` gets (a disabled one's successor; the kind's
    default when the key names nothing any more or its offer does not make the kind)."""
    try:
        return job_selectors.offer_for(kind=kind, model=model)
    except ModelUnavailable:
        if not model:
            raise
        return job_selectors.offer_for(kind=kind)


def values(offer, name: str) -> list:
    """The values of option ``name`` the offer takes ([] when it takes none)."""
    attribute = dict(option for options in GROUP_OPTIONS.values() for option in options)[name]
    taken = getattr(offer, attribute, None)
    if name == "sound":
        return [False, True] if taken else []
    return list(taken or [])


def fit(kind: str, model: str, options: dict) -> tuple[str, dict]:
    """(offer key, options) for an order of ``kind`` from remembered settings: the offer that
    serves it (the remembered one, or the default when that one is gone or does not make the
    kind), and only the options it takes, with the values it takes."""
    offer = offer_for(kind, model)
    if kind not in offer.kinds:
        offer = offer_for(kind)
    fitted = {}
    for name, value in (options or {}).items():
        if name in dict(GROUP_OPTIONS[group_of(kind)]) and value in values(offer, name):
            fitted[name] = value
    # The offer's defaults filled in (its first size, duration, mode), as the job will hold them.
    return offer.key, catalog.offer_options(offer, kind=kind, options=fitted)


def price(kind: str, model: str, options: dict) -> int:
    """Kopecks: what ``submit_job`` would reserve for this order now."""
    return job_selectors.quote(kind=kind, model=model, options=options)


def title(kind: str, model: str) -> str:
    return offer_for(kind, model).title


def max_inputs(kind: str, model: str) -> int:
    return max(1, int(getattr(offer_for(kind, model), "max_input_images", 1) or 1))


def wire_value(value) -> str:
    """An option's value as a button carries it: sound as "on"/"off", numbers as digits."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def parse_value(offer, name: str, text: str):
    """The option value a button's ``text`` stands for, if the offer takes it; None if not."""
    for value in values(offer, name):
        if wire_value(value) == text:
            return value
    return None


def job_model(job) -> str:
    """The offer key a job was priced for ("" for a job from before the catalogue: the default)."""
    return job.offer_key


def job_title(job) -> str:
    """The name of the model that made the job, as the customer saw it when ordering."""
    return title(job.kind, job_model(job))
