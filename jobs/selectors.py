"""Reads about jobs and the catalogue that more than one place needs.

The catalogue's offers are rows staff edit (``models.Offer``); these read them as
``catalog.OfferView``: ``offers(kind)`` lists what can be ordered, ``default_offer(kind)`` is
what an order with no model chosen gets, ``offer_for`` resolves a chosen key (a disabled offer's
orders go to its successor) and ``quote`` is the price ``services.submit_job`` reserves.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from django.db.models import QuerySet

from . import catalog
# VIDEO_MODES only for the bot's handlers, which read both here still; the catalogue owns them.
from .catalog import VIDEO_DURATIONS, VIDEO_MODES  # noqa: F401
from .exceptions import ModelUnavailable
from .models import Job, JobStatus, Offer


def _view(offer: Offer) -> catalog.OfferView:
    return catalog.OfferView(
        key=offer.key, title=offer.title, provider=offer.provider, model_id=offer.model_id,
        kinds=tuple(offer.kinds or ()), aspect_ratios=tuple(offer.aspect_ratios or ()),
        image_sizes=tuple(offer.image_sizes or ()), durations=tuple(int(d) for d in offer.durations or ()),
        modes=tuple(offer.modes or ()), sound=offer.sound, negative_prompt=offer.negative_prompt,
        end_frame=offer.end_frame, max_input_images=offer.max_input_images, is_default=offer.is_default,
        enabled=offer.enabled, successor=offer.successor.key if offer.successor_id else "",
        prices=tuple(
            catalog.PriceLine(
                amount=line.amount, cost=line.cost, kind=line.kind, mode=line.mode, duration=line.duration,
                image_size=line.image_size, sound=line.sound, surcharge=line.surcharge, per_second=line.per_second,
            )
            for line in offer.prices.all()
        ),
    )


_read_once: ContextVar[list[catalog.OfferView] | None] = ContextVar("jobs_catalogue_read_once", default=None)


def all_offers() -> list[catalog.OfferView]:
    """Every offer, disabled ones too, in staff's order (two statements; none inside
    ``one_catalogue_read``, which read them already)."""
    held = _read_once.get()
    if held is not None:
        return held
    rows = Offer.objects.select_related("successor").prefetch_related("prices").order_by("position", "key")
    return [_view(offer) for offer in rows]


@contextmanager
def one_catalogue_read():
    """Read the catalogue once for everything inside: a screen that quotes each of its buttons
    asks ``quote``/``offer_for`` dozens of times, all against the same moment's offers."""
    token = _read_once.set(all_offers())
    try:
        yield
    finally:
        _read_once.reset(token)


def _follow(views: list[catalog.OfferView], offer: catalog.OfferView) -> catalog.OfferView:
    """A disabled offer's successor, followed while that is disabled too (the offer itself when
    it is enabled or has none)."""
    by_key, seen = {view.key: view for view in views}, set()
    while not offer.enabled and offer.successor in by_key and offer.key not in seen:
        seen.add(offer.key)
        offer = by_key[offer.successor]
    return offer


def _default_among(views: list[catalog.OfferView], kind: str) -> catalog.OfferView | None:
    """The kind's default: the enabled offer marked default, else the successor of a disabled
    one, else the first enabled offer taking the kind."""
    marked = [view for view in views if view.is_default and kind in view.kinds]
    candidates = [view for view in marked if view.enabled] + [_follow(views, view) for view in marked]
    candidates += [view for view in views if view.enabled]
    return next((view for view in candidates if view.enabled and kind in view.kinds), None)


def offers(kind: str | None = None) -> list[catalog.OfferView]:
    """The enabled offers (of one kind), in staff's order.

    With a kind, ``is_default`` marks the one an order with no model chosen gets.
    """
    views = all_offers()
    enabled = [view for view in views if view.enabled and (kind is None or kind in view.kinds)]
    if kind is None:
        return enabled
    default = _default_among(views, kind)
    return [replace(view, is_default=default is not None and view.key == default.key) for view in enabled]


def default_offer(kind: str) -> catalog.OfferView:
    """The offer staff marked default for the kind (else the first enabled one taking it)."""
    catalog.kind_spec(kind)
    default = _default_among(all_offers(), kind)
    if default is None:
        raise ModelUnavailable()
    return default


def _resolve(views: list[catalog.OfferView], *, kind: str, model: str) -> catalog.OfferView:
    offer = next((view for view in views if view.key == model), None) if model else _default_among(views, kind)
    if offer is None:
        raise ModelUnavailable()
    if offer.enabled:
        return offer
    # A disabled offer's new orders go to its successor; with none that takes the kind, to the
    # kind's default.
    successor = _follow(views, offer)
    if successor.enabled and kind in successor.kinds:
        return successor
    default = _default_among(views, kind)
    if default is None:
        raise ModelUnavailable()
    return default


def offer_for(*, kind: str, model: str = "") -> catalog.OfferView:
    """The offer an order of this kind for ``model`` (an offer's key; "" = the default) gets now.

    Raises ``ModelUnavailable`` for a key that names no offer or when nothing takes the kind.
    """
    catalog.kind_spec(kind)
    return _resolve(all_offers(), kind=kind, model=model)


@dataclass(frozen=True)
class Quote:
    offer: catalog.OfferView
    options: dict
    price: int
    cost: int


def quote_order(*, kind: str, model: str = "", options: dict | None = None) -> Quote:
    """The offer, checked options, price and provider cost an order gets now (``submit_job``'s)."""
    offer = offer_for(kind=kind, model=model)
    checked = catalog.offer_options(offer, kind=kind, options=options)
    price, cost = catalog.price_of(offer, kind=kind, options=checked)
    return Quote(offer=offer, options=checked, price=price, cost=cost)


def quote(*, kind: str, model: str = "", options: dict | None = None) -> int:
    """What an order will cost, in kopecks: shown before the customer confirms, reserved at submit.

    Raises ``InvalidJobOption`` subclasses (with the customer's message) for an option the
    offer does not take or a model that is not available.
    """
    return quote_order(kind=kind, model=model, options=options).price


def active_jobs(customer) -> QuerySet[Job]:
    return Job.objects.filter(customer_id=customer.pk, status__in=JobStatus.active())


def recent_jobs(customer, limit: int = 10) -> QuerySet[Job]:
    return Job.objects.filter(customer_id=customer.pk).order_by("-id")[:limit]
