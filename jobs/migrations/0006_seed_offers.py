"""The catalogue's first offers, and the staff prices of the old ``Price`` table moved onto them.

Model ids as Google's and Kling's docs name them (December 2026): Gemini's
``gemini-2.5-flash-image`` (Nano Banana, one size, best with up to 3 input pictures; listed for
shutdown in October 2026), ``gemini-3-pro-image-preview`` (Nano Banana Pro) and
``gemini-3.1-flash-image-preview`` (Nano Banana 2), both with ``imageSize`` 1K/2K/4K and up to
14 reference pictures; Kling's ``kling-v2-1`` (from a picture), ``kling-v2-5-turbo`` and
``kling-v2-6`` (with sound, pro mode). After this migration they are staff's data.

The default offers (``nano-banana`` for pictures, ``kling-v2-5-turbo`` for videos) take the
prices of the ``PRICE_*`` settings, so a deployment's prices stay what they were; each staff
``Price`` row's effect is kept exactly: for every order a default offer takes, the price the old
lookup gave (the most specific row, the real provider's before "any") becomes a price line of
that order's kind, mode and duration. Providers' costs are at about 82 ₽ to the dollar.
"""

from django.conf import settings
from django.db import migrations

IMAGE_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
VIDEO_RATIOS = ["16:9", "9:16", "1:1"]
IMAGE_KINDS = ["image", "image_edit"]
VIDEO_KINDS = ["video_text", "video_image"]


def _price(name, default):
    return int(getattr(settings, name, default))


def offers():
    """(offer fields, price lines) of each seeded offer; a line's cost is the provider's."""
    std, pro = _price("PRICE_VIDEO_STD_PER_SECOND", 1000), _price("PRICE_VIDEO_PRO_PER_SECOND", 1800)
    picture = {"aspect_ratios": IMAGE_RATIOS, "kinds": IMAGE_KINDS}
    video = {"aspect_ratios": VIDEO_RATIOS, "durations": [5, 10], "negative_prompt": True}
    return [
        (dict(key="nano-banana", title="Nano Banana", provider="gemini", model_id="gemini-2.5-flash-image",
              max_input_images=3, is_default=True, position=10, **picture), [
            dict(kind="image", amount=_price("PRICE_IMAGE", 1500), cost=320),
            dict(kind="image_edit", amount=_price("PRICE_IMAGE_EDIT", 2000), cost=320),
        ]),
        (dict(key="nano-banana-pro", title="Nano Banana Pro", provider="gemini", model_id="gemini-3-pro-image-preview",
              image_sizes=["1K", "2K", "4K"], max_input_images=14, position=20, **picture), [
            dict(amount=4000, cost=1100),
            dict(surcharge=True, image_size="4K", amount=2500, cost=870),
        ]),
        (dict(key="nano-banana-2", title="Nano Banana 2", provider="gemini", model_id="gemini-3.1-flash-image-preview",
              image_sizes=["1K", "2K", "4K"], max_input_images=14, position=30, **picture), [
            dict(amount=2500, cost=550),
            dict(surcharge=True, image_size="2K", amount=500, cost=280),
            dict(surcharge=True, image_size="4K", amount=1500, cost=690),
        ]),
        (dict(key="kling-v2-5-turbo", title="Kling 2.5 Turbo", provider="kling", model_id="kling-v2-5-turbo",
              kinds=VIDEO_KINDS, modes=["std", "pro"], is_default=True, position=40, **video), [
            dict(per_second=True, amount=std, cost=345),
            dict(per_second=True, mode="pro", amount=pro, cost=575),
        ]),
        (dict(key="kling-v2-1", title="Kling 2.1", provider="kling", model_id="kling-v2-1",
              kinds=["video_image"], modes=["std", "pro"], end_frame=True, position=50, **video), [
            dict(per_second=True, amount=std, cost=460),
            dict(per_second=True, mode="pro", amount=pro, cost=800),
        ]),
        (dict(key="kling-v2-6", title="Kling 2.6", provider="kling", model_id="kling-v2-6",
              kinds=VIDEO_KINDS, modes=["pro"], sound=True, position=60, **video), [
            dict(per_second=True, amount=2200, cost=575),
            dict(per_second=True, surcharge=True, sound="on", amount=800, cost=575),
        ]),
    ]


def seed(Offer, OfferPrice):
    """Create the offers that do not exist yet (by key); returns them by key."""
    created = {}
    for fields, lines in offers():
        offer, new = Offer.objects.get_or_create(key=fields["key"], defaults=fields)
        if new:
            OfferPrice.objects.bulk_create(OfferPrice(offer=offer, **line) for line in lines)
        created[offer.key] = offer
    return created


def _old_price(rows, *, kind, provider, mode="", duration=0):
    """The old lookup (``selectors.estimate_price`` before the catalogue): the most specific row,
    an exact provider, then mode, then duration beating "any"; None without one."""
    matching = [row for row in rows if row.kind == kind and row.provider in (provider, "")
                and row.mode in (mode, "") and row.duration in (duration, 0)]
    if not matching:
        return None
    return max(matching, key=lambda row: (row.provider != "", row.mode != "", row.duration != 0)).amount


def move_staff_prices(Price, OfferPrice, offers_by_key):
    rows = list(Price.objects.all())
    if not rows:
        return
    for key in ("nano-banana", "kling-v2-5-turbo"):
        offer = offers_by_key[key]
        seeded = list(OfferPrice.objects.filter(offer=offer))
        for kind in offer.kinds:
            orders = [("", 0)] if kind in IMAGE_KINDS else [(m, d) for m in offer.modes for d in offer.durations]
            for mode, duration in orders:
                # The real provider's rows first; the fake's (no key set) only where none other matched.
                amount = _old_price(rows, kind=kind, provider=offer.provider, mode=mode, duration=duration)
                if amount is None:
                    amount = _old_price(rows, kind=kind, provider="fake", mode=mode, duration=duration)
                if amount is None:
                    continue
                base = max((line for line in seeded if line.kind in ("", kind) and line.mode in ("", mode)),
                           key=lambda line: (line.kind != "", line.mode != ""))
                cost = base.cost * (duration if base.per_second else 1)
                OfferPrice.objects.update_or_create(
                    offer=offer, surcharge=False, kind=kind, mode=mode, duration=duration, image_size="", sound="",
                    defaults={"amount": amount, "cost": cost, "per_second": False},
                )


def forwards(apps, schema_editor):
    Offer, OfferPrice = apps.get_model("jobs", "Offer"), apps.get_model("jobs", "OfferPrice")
    move_staff_prices(apps.get_model("jobs", "Price"), OfferPrice, seed(Offer, OfferPrice))


def backwards(apps, schema_editor):
    apps.get_model("jobs", "Offer").objects.filter(key__in=[fields["key"] for fields, _lines in offers()]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0005_catalogue_offers'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
