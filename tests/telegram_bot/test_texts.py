"""Every sentence the bot says exists in Russian and in English."""
from __future__ import annotations

from types import SimpleNamespace

from django.utils import translation

from jobs.exceptions import PriceChanged
from telegram_bot import keyboards, texts

JOB = SimpleNamespace(pk=7, kind="image", status="processing", progress=40, cost_actual=1500, cost_estimate=1500,
                      error="The service could not use this request.", prompt="a cat", result_mime="image/png",
                      options={"aspect_ratio": "16:9", "image_size": "2K"})


def _all_texts() -> list[str]:
    return [
        texts.start("Ann", 10_000), texts.balance(10_000, 1_500), texts.help_text(), texts.hint(),
        texts.unknown_command("/x"), texts.sticker(), texts.unsupported_content(), texts.text_too_long(10),
        texts.file_too_large(10 * 1024 * 1024), texts.send_as_photo(), texts.flood_limited(30), texts.requests_limited(30),
        texts.private_chat_only("genbot"), texts.private_chat_only(""), texts.blocked(),
        texts.internal_error(), texts.cancelled_dialogue(), texts.nothing_to_cancel(), texts.expired(),
        texts.job_gone(), texts.topup_choose(), texts.topup_custom(), texts.topup_method(50_000),
        texts.topup_yookassa(50_000), texts.payment_succeeded(50_000, 60_000), texts.payment_canceled(50_000),
        texts.refund_succeeded(50_000), texts.paysupport(42), texts.ask_picture_prompt(), texts.ask_edit_photo(),
        texts.ask_photo_caption(), texts.ask_video_duration(), texts.ask_video_aspect(), texts.ask_video_mode(),
        texts.ask_video_prompt(), texts.confirm_job("video_text", "waves", {"duration": 5, "mode": "pro"}, 5_000, 9_000),
        texts.job_progress(JOB), texts.job_completed(JOB),
        texts.result_caption(JOB, "Nano Banana Pro", 8_500), texts.job_failed(JOB), texts.job_cancelled(JOB), texts.jobs_list([JOB]),
        texts.jobs_list([]), texts.choose_language(), texts.language_set(),
        str(keyboards.main_menu()), str(keyboards.confirm("Qt0k3n-_", 1_500)),
        texts.confirm_job("image", "a cat", {}, 1_500, 500, topup=10_000), str(keyboards.topup_to_confirm(10_000)),
        str(keyboards.video_durations({5: 5_000})), str(keyboards.video_modes({"std": (5_000, True)})),
        str(keyboards.video_modes({"pro": (9_000, False)})), str(PriceChanged()),
        # issue 14: the model and options, results, albums
        texts.choose_settings_group(), texts.settings_saved(), texts.settings_saved_send_prompt(),
        texts.ask_edit_result(), texts.ask_animate_prompt(), texts.result_gone(), texts.input_gone(),
        texts.settings_screen("picture", "Nano Banana Pro", {"aspect_ratio": "16:9", "image_size": "2K"}),
        texts.settings_screen("video", "Kling 2.6", {"duration": 10, "mode": "pro", "sound": True}),
        texts.option_value("sound", True), texts.option_value("sound", False), texts.option_value("duration", 5),
        texts.albums_cut(3, 5), texts.ask_album_caption(3), texts.original_caption(JOB),
        texts.confirm_job("image_edit", "swap", {"aspect_ratio": "1:1"}, 1_500, 9_000, model="Nano Banana", inputs=3),
        # issue 15: promotions
        texts.start("Ann", 10_000, [texts.welcome_bonus(5_000), texts.joined_by_invitation()]),
        texts.topup_choose(10), texts.topup_method(100_000, 10), texts.payment_succeeded(100_000, 110_000, 10_000),
        texts.ask_promo_code(), texts.promo_code_again(), texts.promo_redeemed(5_000, 0, 15_000),
        texts.promo_redeemed(0, 15), texts.invite("https://t.me/b?start=r_x", SimpleNamespace(joined=2, paid=1, earned=5_000)),
        texts.referral_joined("Bob"), texts.referral_joined(""), texts.referral_bonus("referral_signup", 5_000, 9_000),
        texts.referral_bonus("referral_percent", 1_000, None), texts.bonus_taken_back(1_000, referral=True, balance_now=0),
        texts.bonus_taken_back(1_000, referral=False, balance_now=0), str(keyboards.share_invite("https://t.me/b?start=r_x")),
        str(keyboards.settings_groups()), str(keyboards.result_actions(JOB, 0, original_button=True)),
        str(keyboards.settings_screen("picture", "nb", {}, [(SimpleNamespace(key="nb", title="NB"), 1_500)],
                                      [("aspect_ratio", [("16:9", 1_500)])])),
    ]


def test_every_text_has_a_russian_translation_and_renders_its_figures():
    with translation.override("en"):
        english = _all_texts()
    with translation.override("ru"):
        russian = _all_texts()
    untranslated = [en for en, ru in zip(english, russian) if en == ru]
    assert untranslated == []
    assert "Ваш баланс: 100\u00a0₽." in russian[1] and "Your balance: ₽100." in english[1]


def test_the_progress_bar_shows_the_percentage():
    assert texts.progress_bar(40) == "████░░░░░░ 40%"
    assert texts.progress_bar(100).endswith("100%") and "░" not in texts.progress_bar(100)
