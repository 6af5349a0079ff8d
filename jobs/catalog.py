"""What can be ordered: the kinds of job, their options and the limits on them, in one place.

``JobKind`` (the model's choices) names the kinds; what a kind is lives here: whether it makes a
video, whether it works from the customer's picture, which aspect ratios, durations and modes
it takes and what input it accepts. Submitting (``services.submit``), the providers, the queue
and the bot read them from here. The names a customer sees for kinds and modes are texts
(``telegram_bot/texts.py``).

The offers (which models, with which options, at which prices) are data staff edit
(``models.Offer``, read by ``selectors.offers``); the rules applied to an offer live here:
``offer_options`` (what an order's options become, defaults filled in, or the refusal) and
``price_of`` (its price and the provider's cost, from the offer's price lines).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

from django.conf import settings

from .exceptions import InvalidJobOption, ModelUnavailable, OptionNotOffered, PromptTooLong
from .models import JobKind

# The aspect ratios the real providers take: Gemini's ``imageConfig.aspectRatio`` for pictures,
# Kling's ``aspect_ratio`` for videos (a video from a photo takes the photo's).
IMAGE_ASPECT_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
VIDEO_ASPECT_RATIOS = frozenset({"16:9", "9:16", "1:1"})
# A video's length in seconds and its quality (Kling's ``duration`` and ``mode``); the first of
# each is what a video gets when the customer chose none.
VIDEO_DURATIONS = (5, 10)
VIDEO_MODES = ("std", "pro")
# Picture sizes (Gemini's ``imageConfig.imageSize``; the models that have one size take none).
IMAGE_SIZES = ("1K", "2K", "4K")
# The options a job may carry (``Job.options``).
OPTION_NAMES = ("aspect_ratio", "image_size", "duration", "mode", "sound", "negative_prompt")
# The pictures a customer may send: Pillow's format name -> MIME type.
INPUT_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class KindSpec:
    video: bool
    # The job works from a picture the customer sends (and needs one).
    input_image: bool

    @property
    def aspect_ratios(self) -> frozenset[str]:
        return VIDEO_ASPECT_RATIOS if self.video else IMAGE_ASPECT_RATIOS


KINDS: dict[str, KindSpec] = {
    JobKind.IMAGE: KindSpec(video=False, input_image=False),
    JobKind.IMAGE_EDIT: KindSpec(video=False, input_image=True),
    JobKind.VIDEO_TEXT: KindSpec(video=True, input_image=False),
    JobKind.VIDEO_IMAGE: KindSpec(video=True, input_image=True),
}
VIDEO_KINDS = tuple(kind for kind, spec in KINDS.items() if spec.video)


def kind_spec(kind: str) -> KindSpec:
    """What the kind is; ``InvalidJobOption`` for a kind that does not exist."""
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidJobOption() from None


def is_video(kind: str) -> bool:
    return kind in VIDEO_KINDS


@dataclass(frozen=True)
class InputLimits:
    prompt_chars: int
    image_bytes: int
    image_pixels: int
    image_min_side: int


def input_limits(kind: str) -> InputLimits:
    """What a request of this kind may send (from settings, so a deployment can tune them).

    A video is made from a larger picture than a picture edit needs.
    """
    return InputLimits(
        prompt_chars=settings.JOB_MAX_PROMPT_LENGTH,
        image_bytes=settings.JOB_MAX_INPUT_BYTES,
        image_pixels=settings.JOB_MAX_INPUT_PIXELS,
        image_min_side=settings.JOB_MIN_VIDEO_IMAGE_SIDE if kind_spec(kind).video else 1,
    )


def check_options(*, kind: str, aspect_ratio: str = "", duration: int | None = None, mode: str | None = None) -> dict:
    """The options a job of this kind gets (what ``Job.options`` holds), defaults filled in.

    Raises ``InvalidJobOption`` for an unknown kind, an option the kind does not take or a value
    it does not offer.
    """
    spec = kind_spec(kind)
    options: dict = {}
    if aspect_ratio:
        if aspect_ratio not in spec.aspect_ratios:
            raise InvalidJobOption()
        options["aspect_ratio"] = aspect_ratio
    if spec.video:
        duration = duration or VIDEO_DURATIONS[0]
        mode = mode or VIDEO_MODES[0]
        if duration not in VIDEO_DURATIONS or mode not in VIDEO_MODES:
            raise InvalidJobOption()
        options.update(duration=duration, mode=mode)
    elif duration or mode:
        raise InvalidJobOption()
    return options


# --- offers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceLine:
    """One line of an offer's price rule (``models.OfferPrice``): empty matchers match anything."""

    amount: int
    cost: int = 0
    kind: str = ""
    mode: str = ""
    duration: int = 0
    image_size: str = ""
    sound: str = ""  # "on", "off" or "" (either)
    surcharge: bool = False
    per_second: bool = False

    def matches(self, kind: str, options: dict) -> bool:
        sound = ("on" if options["sound"] else "off") if "sound" in options else ""
        return (
            self.kind in ("", kind) and self.mode in ("", options.get("mode", ""))
            and self.duration in (0, options.get("duration", 0))
            and self.image_size in ("", options.get("image_size", "")) and self.sound in ("", sound)
        )

    @property
    def specificity(self) -> tuple[bool, ...]:
        # The old staff prices' order: an exact kind, then mode, then duration beat "any".
        return bool(self.kind), bool(self.mode), bool(self.duration), bool(self.image_size), bool(self.sound)


@dataclass(frozen=True)
class OfferView:
    """An offer as the bot and the services see it (``selectors.offers``): what it makes and takes."""

    key: str
    title: str
    provider: str
    model_id: str
    kinds: tuple[str, ...]
    aspect_ratios: tuple[str, ...] = ()
    image_sizes: tuple[str, ...] = ()
    durations: tuple[int, ...] = ()
    modes: tuple[str, ...] = ()
    sound: bool = False
    negative_prompt: bool = False
    end_frame: bool = False
    max_input_images: int = 1
    is_default: bool = False
    enabled: bool = True
    successor: str = ""
    prices: tuple[PriceLine, ...] = field(default=(), repr=False)

    def max_inputs(self, kind: str) -> int:
        """How many pictures an order of this kind may send (a video starts from one)."""
        spec = kind_spec(kind)
        if not spec.input_image:
            return 0
        return 1 if spec.video else max(1, self.max_input_images)


def offer_options(offer: OfferView, *, kind: str, options: dict | None = None) -> dict:
    """What ``Job.options`` holds for this order: the chosen options checked against the offer,
    its defaults (the first size, duration and mode it lists) filled in.

    Raises ``OptionNotOffered`` (an ``InvalidJobOption``) naming what the offer does not take,
    ``PromptTooLong`` for a long negative prompt, ``TypeError`` for an option name that exists
    nowhere (a bug in the caller).
    """
    options = {name: value for name, value in (options or {}).items() if value not in (None, "")}
    unknown = set(options) - set(OPTION_NAMES)
    if unknown:
        raise TypeError(f"unknown job options: {sorted(unknown)}")
    spec = kind_spec(kind)

    def refuse(option: str, value="") -> OptionNotOffered:
        return OptionNotOffered(model=offer.title, option=option, value=value)

    if kind not in offer.kinds:
        raise refuse("kind")
    checked: dict = {}
    ratio = options.get("aspect_ratio", "")
    if ratio:
        if ratio not in offer.aspect_ratios:
            raise refuse("aspect_ratio", ratio)
        checked["aspect_ratio"] = ratio
    if spec.video:
        if "image_size" in options:
            raise refuse("image_size", options["image_size"])
        durations = offer.durations or VIDEO_DURATIONS
        modes = offer.modes or VIDEO_MODES
        try:
            duration = int(options.get("duration") or durations[0])
        except (TypeError, ValueError):
            raise refuse("duration", options.get("duration")) from None
        if duration not in durations:
            raise refuse("duration", duration)
        mode = options.get("mode") or modes[0]
        if mode not in modes:
            raise refuse("mode", mode)
        checked.update(duration=duration, mode=mode)
        if options.get("sound") and not offer.sound:
            raise refuse("sound")
        if offer.sound:
            checked["sound"] = bool(options.get("sound"))
    else:
        for name in ("duration", "mode", "sound"):
            if options.get(name):
                raise refuse(name, options[name])
        size = options.get("image_size", "")
        if offer.image_sizes:
            size = size or offer.image_sizes[0]
            if size not in offer.image_sizes:
                raise refuse("image_size", size)
            checked["image_size"] = size
        elif size:
            raise refuse("image_size", size)
    negative = str(options.get("negative_prompt", "")).strip()
    if negative:
        if not offer.negative_prompt:
            raise refuse("negative_prompt")
        limit = input_limits(kind).prompt_chars
        if len(negative) > limit:
            raise PromptTooLong(limit=limit)
        checked["negative_prompt"] = negative
    return checked


def price_of(offer: OfferView, *, kind: str, options: dict) -> tuple[int, int]:
    """(price, the provider's cost) in kopecks of an order with these checked options.

    The most specific matching base line plus every matching surcharge line; a per-second
    line counts once per second of video. ``ModelUnavailable`` when no base line matches (an
    offer staff left unpriced is not sold).
    """
    matching = [line for line in offer.prices if line.matches(kind, options)]
    bases = [line for line in matching if not line.surcharge]
    if not bases:
        raise ModelUnavailable()
    applied = [max(bases, key=lambda line: line.specificity)] + [line for line in matching if line.surcharge]
    seconds = int(options.get("duration") or 1)
    units = [seconds if line.per_second else 1 for line in applied]
    price = sum(line.amount * unit for line, unit in zip(applied, units))
    cost = sum(line.cost * unit for line, unit in zip(applied, units))
    return max(0, price), max(0, cost)


@dataclass(frozen=True)
class PriceRow:
    kind: str
    options: dict
    price: int
    cost: int


def price_table(offer: OfferView) -> list[PriceRow]:
    """Every order the offer takes (kind x size, or kind x duration x mode x sound) and its price.

    Aspect ratios and negative prompts are left out: they do not change a price.
    """
    rows = []
    for kind in offer.kinds:
        if kind not in KINDS:
            continue
        if kind_spec(kind).video:
            sounds = (False, True) if offer.sound else (False,)
            choices = [
                {"duration": duration, "mode": mode, "sound": sound}
                for duration, mode, sound in product(offer.durations or VIDEO_DURATIONS, offer.modes or VIDEO_MODES, sounds)
            ]
        else:
            choices = [{"image_size": size} for size in offer.image_sizes] or [{}]
        for choice in choices:
            try:
                options = offer_options(offer, kind=kind, options=choice)
                price, cost = price_of(offer, kind=kind, options=options)
            except InvalidJobOption:
                continue
            rows.append(PriceRow(kind=kind, options=options, price=price, cost=cost))
    return rows
