"""Reads about jobs and the catalogue that more than one place needs.

The catalogue's offers are rows staff edit (``models.Offer``); these read them as
``catalog.OfferView``: ``offers(kind)`` lists what can be ordered, ``default_offer(kind)`` is
what an order with no model chosen gets, ``offer_for`` resolves a chosen key (a disabled offer's
orders go to its successor) and ``quote`` is the price ``services.submit_job`` reserves.
"""
from __future__ import annotations

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


def all_offers() -> list[catalog.OfferView]:
    """Every offer, disabled ones too, in staff's order (two statements)."""
    rows = Offer.objects.select_related("successor").prefetch_related("prices").order_by("position", "key")
    return [_view(offer) for offer in rows]


def _default_among(views: list[catalog.OfferView], kind: str) -> catalog.OfferView | None:
    taking = [view for view in views if view.enabled and kind in view.kinds]
    return next((view for view in taking if view.is_default), taking[0] if taking else None)


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
    if not model:
        default = _default_among(views, kind)
        if default is None:
            raise ModelUnavailable()
        return default
    by_key = {view.key: view for view in views}
    offer, seen = by_key.get(model), set()
    if offer is None:
        raise ModelUnavailable()
    # A disabled offer's new orders go to its successor (followed while that is disabled too);
    # with none that takes the kind, to the kind's default.
    while not offer.enabled and offer.successor and offer.key not in seen:
        seen.add(offer.key)
        offer = by_key[offer.successor]
    if not offer.enabled or (kind not in offer.kinds and offer.key != model):
        return _resolve(views, kind=kind, model="")
    return offer


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
