"""The catalogue's offers: what they take, what they cost, and where a disabled one's orders go."""
from __future__ import annotations

import importlib
import io

import pytest
from django.core.files.storage import default_storage
from django.utils import translation
from PIL import Image

from billing.selectors import get_held
from jobs import catalog, selectors, services
from jobs.exceptions import InvalidJobInput, ModelUnavailable, OptionNotOffered, TooManyInputImages
from jobs.models import Job, Offer, OfferPrice
from jobs.services.workflow import build_request

pytestmark = pytest.mark.django_db


def picture(size=(400, 400), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 90, 160)).save(buffer, format=fmt)
    return buffer.getvalue()


def _orders():
    """Every offer x kind x priced option the seeded catalogue sells, with a picture where one is needed."""
    for offer in selectors.offers():
        for row in catalog.price_table(offer):
            yield offer, row


def test_the_seeded_offers_are_listed_with_their_options():
    keys = [offer.key for offer in selectors.offers()]
    assert keys == ["nano-banana", "nano-banana-pro", "nano-banana-2", "kling-v2-5-turbo", "kling-v2-1", "kling-v2-6"]
    pro = next(offer for offer in selectors.offers("image") if offer.key == "nano-banana-pro")
    assert (pro.provider, pro.model_id, pro.image_sizes, pro.max_input_images) == (
        "gemini", "gemini-3-pro-image-preview", ("1K", "2K", "4K"), 14)
    assert "16:9" in pro.aspect_ratios and not pro.is_default
    assert [offer.key for offer in selectors.offers("image") if offer.is_default] == ["nano-banana"]
    assert [offer.key for offer in selectors.offers("video_text")] == ["kling-v2-5-turbo", "kling-v2-6"]
    assert selectors.default_offer("video_image").key == "kling-v2-5-turbo"
    sound = next(offer for offer in selectors.offers("video_text") if offer.sound)
    assert (sound.key, sound.model_id, sound.modes) == ("kling-v2-6", "kling-v2-6", ("pro",))


def test_the_quote_is_the_reserved_price_for_every_offer_and_option(funded_customer, no_enqueue):
    seen = 0
    for offer, row in _orders():
        quoted = selectors.quote(kind=row.kind, model=offer.key, options=row.options)
        assert quoted == row.price > 0, (offer.key, row)
        spec = catalog.kind_spec(row.kind)
        job = services.submit_job(
            customer=funded_customer, kind=row.kind, prompt="a lighthouse", model=offer.key, options=row.options,
            input_images=[picture()] if spec.input_image else (), quoted_price=quoted,
        )
        assert job.cost_estimate == job.reservation.amount == quoted, (offer.key, row)
        assert (job.offer_key, job.model_id, job.options) == (offer.key, offer.model_id, row.options)
        assert job.provider_cost == row.cost
        services.cancel_job(job=job)  # under the cap of active jobs
        seen += 1
    assert seen >= 20
    assert get_held(funded_customer) == 0


@pytest.mark.parametrize(("kind", "model", "options", "price"), [
    ("image", "", {}, 1500),
    ("image_edit", "", {}, 2000),
    ("image", "nano-banana-pro", {"aspect_ratio": "16:9", "image_size": "2K"}, 4000),
    ("image", "nano-banana-pro", {"image_size": "4K"}, 6500),
    ("image", "nano-banana-2", {"image_size": "2K"}, 3000),
    ("video_text", "", {}, 5000),                              # 5 s standard at 10 ₽ a second
    ("video_text", "", {"duration": 10, "mode": "pro"}, 18_000),
    ("video_image", "kling-v2-1", {"duration": 10}, 10_000),
    ("video_text", "kling-v2-6", {"sound": True}, 5 * (2200 + 800)),
    ("video_text", "kling-v2-6", {"duration": 10, "sound": False}, 22_000),
])
def test_prices_come_from_the_offer_for_the_exact_options(kind, model, options, price):
    assert selectors.quote(kind=kind, model=model, options=options) == price


def test_disabling_an_offer_moves_new_orders_to_its_successor_and_queued_jobs_keep_theirs(funded_customer, no_enqueue):
    queued = services.submit_job(customer=funded_customer, kind="image", prompt="before", model="nano-banana")
    old, new = Offer.objects.get(key="nano-banana"), Offer.objects.get(key="nano-banana-2")
    old.enabled, old.successor = False, new
    old.save()
    assert "nano-banana" not in [offer.key for offer in selectors.offers()]
    assert selectors.offer_for(kind="image", model="nano-banana").key == "nano-banana-2"
    assert selectors.quote(kind="image", model="nano-banana") == 2500  # the successor's price
    moved = services.submit_job(customer=funded_customer, kind="image", prompt="after", model="nano-banana")
    assert (moved.offer_key, moved.model_id) == ("nano-banana-2", "gemini-3.1-flash-image-preview")
    assert moved.options == {"image_size": "1K"} and moved.cost_estimate == 2500
    # The default for pictures was the disabled offer: an order naming no model goes on too.
    assert services.submit_job(customer=funded_customer, kind="image", prompt="x").offer_key == "nano-banana-2"
    queued.refresh_from_db()
    assert (queued.offer_key, queued.model_id, queued.cost_estimate) == ("nano-banana", "gemini-2.5-flash-image", 1500)
    assert build_request(queued).model == "gemini-2.5-flash-image"
    # A successor that is disabled too is followed; a chain with no enabled end falls to the default.
    new.enabled, new.successor = False, Offer.objects.get(key="nano-banana-pro")
    new.save()
    assert selectors.offer_for(kind="image", model="nano-banana").key == "nano-banana-pro"


def test_a_disabled_offer_without_a_successor_sends_its_orders_to_the_kinds_default():
    Offer.objects.filter(key="kling-v2-6").update(enabled=False)
    assert selectors.offer_for(kind="video_text", model="kling-v2-6").key == "kling-v2-5-turbo"
    with pytest.raises(ModelUnavailable):
        selectors.quote(kind="image", model="no-such-model")


@pytest.mark.parametrize(("model", "options", "english", "russian"), [
    ("nano-banana", {"image_size": "4K"}, "Nano Banana does not offer the size 4K. Choose another option.",
     "Nano Banana не предлагает размер 4K. Выберите другой вариант."),
    ("nano-banana-pro", {"aspect_ratio": "7:3"}, "Nano Banana Pro does not offer the aspect ratio 7:3.",
     "Nano Banana Pro не предлагает соотношение сторон 7:3."),
    ("kling-v2-5-turbo", {"sound": True}, "Kling 2.5 Turbo does not offer sound.", "Kling 2.5 Turbo не предлагает звук."),
    ("kling-v2-6", {"mode": "std"}, "Kling 2.6 does not offer the std mode.", "Kling 2.6 не предлагает режим std."),
    ("kling-v2-1", {"duration": 7}, "Kling 2.1 does not offer 7-second videos.",
     "Kling 2.1 не предлагает видео длиной 7 секунд."),
])
def test_an_option_the_offer_does_not_take_is_refused_with_the_customers_message(
    funded_customer, no_enqueue, model, options, english, russian,
):
    kind = "video_image" if model.startswith("kling") else "image"
    offer = selectors.offer_for(kind=kind, model=model)
    with pytest.raises(OptionNotOffered) as caught:
        services.submit_job(customer=funded_customer, kind=kind, prompt="x", model=model, options=options,
                            input_images=[picture()] if kind == "video_image" else ())
    assert isinstance(caught.value, InvalidJobInput)
    with pytest.raises(OptionNotOffered):
        selectors.quote(kind=kind, model=offer.key, options=options)
    with translation.override("en"):
        assert str(caught.value).startswith(english)
    with translation.override("ru"):
        assert str(caught.value).startswith(russian)
    assert Job.objects.count() == 0


def test_several_pictures_up_to_the_offers_limit_reach_the_provider(funded_customer, no_enqueue):
    pictures = [picture(fmt="PNG"), picture(fmt="JPEG"), picture(fmt="WEBP")]
    job = services.submit_job(customer=funded_customer, kind="image_edit", prompt="merge them", input_images=pictures)
    assert len(job.input_files) == 3 and job.input_file.name == job.input_files[0]
    request = build_request(job)
    assert [mime for _data, mime in request.input_images] == ["image/png", "image/jpeg", "image/webp"]
    assert request.input_image == pictures[0] and request.input_mime == "image/png"
    with pytest.raises(TooManyInputImages) as caught:
        services.submit_job(customer=funded_customer, kind="image_edit", prompt="x", input_images=pictures * 2)
    with translation.override("en"):
        assert str(caught.value) == "Nano Banana takes at most 3 pictures at once. Send fewer."
    with translation.override("ru"):
        assert "не больше 3" in str(caught.value)
    services.submit_job(customer=funded_customer, kind="image_edit", prompt="x", model="nano-banana-pro",
                        input_images=pictures * 2)


def test_the_request_carries_every_option_of_the_job(funded_customer, no_enqueue):
    job = services.submit_job(
        customer=funded_customer, kind="video_image", prompt="the sea moves", model="kling-v2-1",
        options={"duration": 10, "mode": "pro", "negative_prompt": "blur", "aspect_ratio": "9:16"},
        input_images=[picture()], end_image=picture(fmt="JPEG"),
    )
    request = build_request(job)
    assert (request.model, request.duration, request.mode, request.negative_prompt, request.aspect_ratio) == (
        "kling-v2-1", 10, "pro", "blur", "9:16")
    assert request.end_image is not None and request.end_mime == "image/jpeg" and not request.sound
    sound = services.submit_job(customer=funded_customer, kind="video_text", prompt="rain", model="kling-v2-6",
                                options={"sound": True})
    assert build_request(sound).sound is True and build_request(sound).model == "kling-v2-6"
    picture_job = services.submit_job(customer=funded_customer, kind="image", prompt="x", model="nano-banana-pro",
                                      options={"image_size": "4K"})
    assert build_request(picture_job).image_size == "4K"
    with pytest.raises(OptionNotOffered):  # Kling 2.5 Turbo takes no last frame
        services.submit_job(customer=funded_customer, kind="video_image", prompt="x", input_images=[picture()],
                            end_image=picture())


def test_a_failed_submit_leaves_no_input_files(customer, no_enqueue):
    with pytest.raises(Exception):
        services.submit_job(customer=customer, kind="image_edit", prompt="x", input_images=[picture(), picture()])
    assert Job.objects.count() == 0
    _dirs, files = default_storage.listdir("jobs/input") if default_storage.exists("jobs/input") else ([], [])
    assert files == []


def test_the_old_staff_prices_are_kept_by_the_migration(settings):
    """Each old ``Price`` row's effect becomes a price line of the default offer, exactly."""
    migration = importlib.import_module("jobs.migrations.0006_seed_offers")

    class Row:
        def __init__(self, kind, amount, provider="", mode="", duration=0):
            self.kind, self.amount, self.provider, self.mode, self.duration = kind, amount, provider, mode, duration

    rows = [Row("image", 2500), Row("video_text", 7000), Row("video_text", 11_000, provider="kling", mode="pro", duration=10),
            Row("video_image", 9000, provider="fake", mode="pro")]

    class Old:
        class objects:
            @staticmethod
            def all():
                return rows

    offers = {offer.key: offer for offer in Offer.objects.all()}
    migration.move_staff_prices(Old, OfferPrice, offers)
    assert selectors.quote(kind="image") == 2500 and selectors.quote(kind="image_edit") == 2000
    assert selectors.quote(kind="video_text") == 7000
    assert selectors.quote(kind="video_text", options={"duration": 10}) == 7000
    assert selectors.quote(kind="video_text", options={"duration": 10, "mode": "pro"}) == 11_000
    assert selectors.quote(kind="video_image", options={"mode": "pro"}) == 9000  # the fake's, as nothing else matched
    assert selectors.quote(kind="video_image") == 5000


def test_one_catalogue_read_answers_every_quote_inside_it_from_one_read_of_the_offers():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs import selectors

    orders = [{"aspect_ratio": ratio, "image_size": size} for ratio in ("1:1", "16:9") for size in ("1K", "2K", "4K")]
    expected = [selectors.quote(kind="image", model="nano-banana-pro", options=o) for o in orders]
    with CaptureQueriesContext(connection) as queries, selectors.one_catalogue_read():
        prices = [selectors.quote(kind="image", model="nano-banana-pro", options=o) for o in orders]
    assert prices == expected and len(queries) == 2  # the offers and their price lines, once
