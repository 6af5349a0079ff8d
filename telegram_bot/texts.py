"""Every sentence the bot says, in English source strings translated by Django's gettext (ru, en).

Call these with the customer's language active (the middleware activates it for handlers;
receivers wrap their work in ``translation.override``).
"""
from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import ordinal
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from billing.models import SystemAccount
from billing.money import format_amount

KIND_NAMES = {
    "image": gettext_lazy("Picture"),
    "image_edit": gettext_lazy("Photo edit"),
    "video_text": gettext_lazy("Video"),
    "video_image": gettext_lazy("Video from a photo"),
}
STATUS_NAMES = {
    "pending": gettext_lazy("queued"),
    "processing": gettext_lazy("generating"),
    "completed": gettext_lazy("ready"),
    "failed": gettext_lazy("failed"),
    "cancelled": gettext_lazy("cancelled"),
}
MODE_NAMES = {"std": gettext_lazy("standard"), "pro": gettext_lazy("pro")}


def money(kopecks: int) -> str:
    return format_amount(kopecks, get_language() or "ru")


def kind_name(kind: str) -> str:
    return str(KIND_NAMES.get(kind, kind))


# --- sentences without parameters: ``texts.hint()`` says one in the language active then ------


def _fixed(sentence) -> Callable[[], str]:
    return lambda: str(sentence)


# general
help_text = _fixed(gettext_lazy(
    "What I can do:\n"
    "🖼 just write a description (or /picture) — a picture\n"
    "✏️ send a photo or an album with a caption — I change them as the caption says\n"
    "🎬 /video — a short video from a description or a photo\n"
    "⚙️ /settings — the model and options, with the price on each button; I remember them\n"
    "💳 /topup — top up the balance (card or Telegram Stars)\n"
    "💰 /balance — your balance\n"
    "⏳ /jobs — running jobs, with progress and a cancel button\n"
    "🧾 /history — payments, charges and recent results\n"
    "🎁 /promo — redeem a promo code\n"
    "🤝 /invite — invite friends and earn bonuses\n"
    "🌐 /lang — language\n"
    "✖️ /cancel — stop the current dialogue\n"
    "🆘 /paysupport — help with payments\n\n"
    "You see the price before every paid job; if a job fails, the money comes back."
))
hint = _fixed(gettext_lazy("I did not understand that. Use the buttons below or see /help."))
sticker = _fixed(gettext_lazy("Nice sticker! I understand text and photos, though. See /help."))
unsupported_content = _fixed(gettext_lazy("I cannot use this kind of message. Send text or a photo, or see /help."))
file_download_failed = _fixed(gettext_lazy("I could not get your photo from Telegram. Please send it again."))
send_as_photo = _fixed(gettext_lazy("Send the picture as a photo (not as a file), with a caption saying what to do."))
internal_error = _fixed(gettext_lazy("Something went wrong on our side. Please try again in a minute."))
cancelled_dialogue = _fixed(gettext_lazy("Cancelled. Choose what to do next:"))
nothing_to_cancel = _fixed(gettext_lazy("There is nothing to cancel. Choose what to do:"))
expired = _fixed(gettext_lazy("This offer has expired. Start again from the menu."))
job_gone = _fixed(gettext_lazy("This job no longer exists."))

# top-ups
topup_custom = _fixed(gettext_lazy("Send the amount in roubles, for example 750."))

# jobs
ask_picture_prompt = _fixed(gettext_lazy("Describe the picture you want, in any language."))
ask_edit_photo = _fixed(gettext_lazy("Send a photo with a caption saying what to change in it."))
ask_photo_caption = _fixed(gettext_lazy("Add a caption to the photo saying what to do with it, and send it again."))
ask_video_duration = _fixed(gettext_lazy("Video: choose the duration."))
ask_video_aspect = _fixed(gettext_lazy("Choose the aspect ratio."))
ask_video_mode = _fixed(gettext_lazy("Choose the quality: standard, or pro (better, dearer)."))
ask_video_prompt = _fixed(gettext_lazy("Now send a description of the video, or a photo with a caption to bring it to life."))

# model and options
choose_settings_group = _fixed(gettext_lazy("Model and options: for pictures or for videos?"))
settings_saved = _fixed(gettext_lazy("Saved: your next orders use these settings."))
settings_saved_send_prompt = _fixed(gettext_lazy("Saved. Now send the description."))

# results
ask_edit_result = _fixed(gettext_lazy("Write what to change in this picture."))
ask_animate_prompt = _fixed(gettext_lazy("Describe the motion: what should happen in the video?"))
result_gone = _fixed(gettext_lazy("This result is no longer kept. Order it again from the menu."))
input_gone = _fixed(gettext_lazy("The picture this order works from is no longer kept. Send it again."))

# language
choose_language = _fixed(gettext_lazy("Choose the language."))
language_set = _fixed(gettext_lazy("Language: English."))


def start(name: str, balance: int, news: list[str] = ()) -> str:
    """The greeting; ``news``: what this /start brought (a bonus, an invitation, a promo code)."""
    lines = [_("Hello, %(name)s! I make pictures and short videos with AI.") % {"name": name or _("friend")}, *news]
    lines += [_("Your balance: %(balance)s.") % {"balance": money(balance)}, "", _("Choose what to do:")]
    return "\n".join(lines)


def balance(available: int, held: int) -> str:
    text = _("Your balance: %(balance)s.") % {"balance": money(available)}
    if held:
        text += "\n" + _("Reserved for running jobs: %(held)s.") % {"held": money(held)}
    return text


def unknown_command(command: str) -> str:
    return _("Unknown command %(command)s. See /help.") % {"command": command[:32]}


def text_too_long(limit: int) -> str:
    return _("That message is too long: keep it under %(limit)s characters.") % {"limit": limit}


def file_too_large(limit_bytes: int) -> str:
    return _("The file is too large: send one under %(megabytes)s MB.") % {"megabytes": max(1, limit_bytes // (1024 * 1024))}


def flood_limited(seconds: int) -> str:
    return _(
        "You are sending messages too fast. I will not process them for %(seconds)s s; try again after that."
    ) % {"seconds": seconds}


def requests_limited(seconds: int) -> str:
    return _("Too many orders and payments in a short time. Try again in %(seconds)s s.") % {"seconds": seconds}


def private_chat_only(bot_username: str) -> str:
    if bot_username:
        return _("I work in a private chat only: open @%(username)s and write to me there.") % {"username": bot_username}
    return _("I work in a private chat only: write to me directly.")


def blocked() -> str:
    return _("Your account is blocked. If you think this is a mistake, write to %(contact)s.") % {
        "contact": settings.BOT_SUPPORT_CONTACT
    }


# --- top-ups ---------------------------------------------------------------------------------


def topup_choose(promo_percent: int = 0) -> str:
    """Above the amount buttons; ``promo_percent``: a redeemed promo code waiting for this top-up."""
    text = _("How much do you want to add to your balance?")
    if promo_percent:
        text += "\n" + _("🎁 Your promo code adds %(percent)s %% to this top-up.") % {"percent": promo_percent}
    return text


def topup_method(amount: int, bonus_percent: int = 0) -> str:
    if bonus_percent:
        return _("Top up by %(amount)s, +%(percent)s %% bonus. Choose how to pay:") % {
            "amount": money(amount), "percent": bonus_percent,
        }
    return _("Top up by %(amount)s. Choose how to pay:") % {"amount": money(amount)}


def topup_amount_label(amount: int, bonus_percent: int) -> str:
    """A top-up button: "1 000 ₽ +10 %" (the package's bonus), or the amount alone."""
    return f"{money(amount)} +{bonus_percent} %" if bonus_percent else money(amount)


def topup_yookassa(amount: int) -> str:
    return _(
        "Pay %(amount)s by the button below. The money appears on your balance as soon as the "
        "payment goes through; I will tell you."
    ) % {"amount": money(amount)}


def payment_succeeded(amount: int, balance_now: int, bonus: int = 0) -> str:
    """``bonus``: what the payment brought the payer besides (its package, a promo code's percent)."""
    if bonus:
        return _("✅ Payment received: %(amount)s, and a bonus of %(bonus)s. Your balance: %(balance)s.") % {
            "amount": money(amount), "bonus": money(bonus), "balance": money(balance_now)
        }
    return _("✅ Payment received: %(amount)s. Your balance: %(balance)s.") % {
        "amount": money(amount), "balance": money(balance_now)
    }


def payment_canceled(amount: int) -> str:
    return _("The payment of %(amount)s was canceled; no money was taken.") % {"amount": money(amount)}


def refund_succeeded(amount: int) -> str:
    return _("↩️ A refund of %(amount)s was sent back to you.") % {"amount": money(amount)}


def balance_adjusted(amount: int, reason: str, balance_now: int) -> str:
    """A staff adjustment, with the reason staff wrote for the customer."""
    if amount > 0:
        text = _("💰 Support added %(amount)s to your balance. Reason: %(reason)s. Your balance: %(balance)s.")
    else:
        text = _("Support took %(amount)s from your balance. Reason: %(reason)s. Your balance: %(balance)s.")
    return text % {"amount": money(abs(amount)), "reason": reason, "balance": money(balance_now)}


def paysupport(telegram_id: int) -> str:
    return _(
        "Questions about a payment or a refund? Write to %(contact)s with the date, the amount and "
        "your Telegram id (%(telegram_id)s). Money for a failed job returns to your balance "
        "automatically."
    ) % {"contact": settings.BOT_SUPPORT_CONTACT, "telegram_id": telegram_id}


# --- jobs ------------------------------------------------------------------------------------


def confirm_job(kind: str, prompt: str, options: dict, price: int, balance_now: int, *, topup: int = 0,
                model: str = "", inputs: int = 0) -> str:
    """The quote; with ``topup`` (the balance is short) it asks for that top-up instead of "Start?".

    ``model``: the offer's title; ``inputs``: how many pictures the order works from.
    """
    lines = [_("%(what)s: “%(prompt)s”") % {"what": kind_name(kind), "prompt": _shorten(prompt, 300)}]
    details = ", ".join(word for word in [model, *option_words(options)] if word)
    if details:
        lines.append(details)
    if inputs > 1:
        lines.append(ngettext("From %(count)s picture.", "From %(count)s pictures.", inputs) % {"count": inputs})
    lines.append(_("Price: %(price)s. Your balance: %(balance)s.") % {"price": money(price), "balance": money(balance_now)})
    if topup:
        lines.append(_("Not enough money for it. Top up %(amount)s and I will show this offer again to start it.") % {
            "amount": money(topup)
        })
    else:
        lines.append(_("Start?"))
    return "\n".join(lines)


def progress_bar(progress: int, width: int = 10) -> str:
    progress = max(0, min(100, int(progress)))
    filled = round(progress * width / 100)
    return "█" * filled + "░" * (width - filled) + f" {progress}%"


def job_progress(job, progress: int | None = None) -> str:
    progress = job.progress if progress is None else progress
    head = _("%(what)s #%(id)s") % {"what": kind_name(job.kind), "id": job.pk}
    if job.status == "pending":
        state = "⏳ " + (queue_place(job) or _("In the queue…"))
    else:
        state = _("⚙️ Generating…")
    return f"{head}\n{state}\n{progress_bar(progress)}"


def queue_place(job) -> str:
    """"3rd in line, about 2 min" for a job waiting for a provider slot; "" for any other."""
    if job.status != "pending" or not job.queue_position:
        return ""
    seconds = job.queue_eta or 0
    if seconds < 60:
        wait = _("less than a minute")
    else:
        minutes = -(-seconds // 60)
        wait = _("about %(minutes)s min") % {"minutes": minutes}
    return _("%(place)s in line, %(wait)s") % {"place": ordinal(job.queue_position), "wait": wait}


def job_completed(job) -> str:
    return _("✅ %(what)s #%(id)s is ready. Charged %(price)s.") % {
        "what": kind_name(job.kind), "id": job.pk, "price": money(job.cost_actual or 0)
    }


def result_caption(job, model: str, balance_now: int | None = None) -> str:
    """Under a result: the prompt (shortened), the model and options, the job, the balance."""
    details = ", ".join([model, *option_words(job.options or {})]) if model else ", ".join(option_words(job.options or {}))
    lines = [f"“{_shorten(job.prompt, 200)}”"]
    if details:
        lines.append(details)
    head = _("%(what)s #%(id)s") % {"what": kind_name(job.kind), "id": job.pk}
    if balance_now is not None:
        head += " · " + _("Balance: %(balance)s.") % {"balance": money(balance_now)}
    lines.append(head)
    return "\n".join(lines)


def original_caption(job) -> str:
    return _("The original file of #%(id)s, full size.") % {"id": job.pk}


GROUP_NAMES = {"picture": gettext_lazy("Pictures"), "video": gettext_lazy("Videos")}


def settings_screen(group: str, model: str, options: dict) -> str:
    """Above the settings buttons: what the group's orders use now."""
    now = ", ".join([model, *option_words(options)])
    return _(
        "%(group)s: %(now)s.\nChoose the model and options; each button shows the price of the order with that choice."
    ) % {"group": GROUP_NAMES[group], "now": now}


def option_value(name: str, value) -> str:
    """One option value on a button: "16:9", "2K", "10 s", "pro", "🔊 on"."""
    if name == "sound":
        return _("🔊 on") if value else _("🔇 off")
    if name == "duration":
        return _("%(seconds)s s") % {"seconds": value}
    if name == "mode":
        return str(MODE_NAMES.get(value, value))
    return str(value)


def albums_cut(limit: int, sent: int) -> str:
    return _("This model takes up to %(limit)s pictures at once: I use the first %(limit)s of the %(sent)s.") % {
        "limit": limit, "sent": sent,
    }


def ask_album_caption(count: int) -> str:
    return ngettext(
        "I have your photo. Now write what to do with it.",
        "I have your %(count)s photos. Now write what to do with them.",
        count,
    ) % {"count": count}


def option_words(options: dict) -> list[str]:
    """An order's options as the customer reads them: "10 s", "16:9", "2K", "pro", "with sound"."""
    words = []
    if options.get("duration"):
        words.append(_("%(seconds)s s") % {"seconds": options["duration"]})
    if options.get("aspect_ratio"):
        words.append(options["aspect_ratio"])
    if options.get("image_size"):
        words.append(options["image_size"])
    if options.get("mode"):
        words.append(str(MODE_NAMES.get(options["mode"], options["mode"])))
    if options.get("sound"):
        words.append(_("with sound"))
    return words


def job_failed(job) -> str:
    return _("❌ %(what)s #%(id)s failed: %(error)s\nThe money (%(price)s) was returned to your balance.") % {
        "what": kind_name(job.kind), "id": job.pk, "error": job.error or _("the generation did not succeed."),
        "price": money(job.cost_estimate),
    }


def job_cancelled(job) -> str:
    return _("✖️ %(what)s #%(id)s was cancelled. The money (%(price)s) was returned to your balance.") % {
        "what": kind_name(job.kind), "id": job.pk, "price": money(job.cost_estimate)
    }


def jobs_list(jobs) -> str:
    if not jobs:
        return _("You have no running jobs.")
    lines = [_("Your running jobs:")]
    for job in jobs:
        place = queue_place(job)
        lines.append(f"#{job.pk} {kind_name(job.kind)} — {place or progress_bar(job.progress)}")
    return "\n".join(lines)


def history(page) -> str:
    """A page of ``telegram_bot.selectors.history_page``: one line per movement and per job."""
    if not page.entries:
        return _("No payments or jobs yet.") if page.number == 0 else _("There is nothing older.")
    lines = [_("History, page %(page)s:") % {"page": page.number + 1}]
    for entry in page.entries:
        if entry.job is not None:
            amount, what = _job_cost(entry.job), _job_line(entry.job)
        else:
            signed = entry.transfer.signed_amount
            amount, what = ("+" if signed > 0 else "") + money(signed), _movement_name(entry.transfer)
        lines.append(f"{local_time(entry.created_at)}  {amount}  {what}")
    return "\n".join(lines)


def local_time(moment) -> str:
    """``02.12 18:05 (MSK)``: in ``TIME_ZONE``, named; the year only when it is not this one."""
    zone = ZoneInfo(settings.TIME_ZONE)
    local = timezone.localtime(moment, zone)
    shown = local.strftime("%d.%m %H:%M" if local.year == timezone.localtime(timezone=zone).year else "%d.%m.%Y %H:%M")
    return f"{shown} ({local.tzname() or settings.TIME_ZONE})"


def _job_cost(job) -> str:
    if job.status == "completed":
        return money(-(job.cost_actual or 0))
    if job.status in ("pending", "processing"):
        return _("%(amount)s reserved") % {"amount": money(job.cost_estimate)}
    return money(0)


def _job_line(job) -> str:
    head = _("%(what)s #%(id)s “%(prompt)s”") % {"what": kind_name(job.kind), "id": job.pk, "prompt": _shorten(job.prompt, 40)}
    if job.status in ("failed", "cancelled"):
        outcome = _("%(status)s, the money was returned") % {"status": STATUS_NAMES[job.status]}
    else:
        outcome = str(STATUS_NAMES.get(job.status, job.status))
    return f"{head}: {outcome}"


def _movement_name(transfer) -> str:
    """What a money movement that is not a job's was, from where it came or went (the ledger's
    own description is for staff, in English)."""
    incoming = transfer.signed_amount > 0
    if transfer.source == SystemAccount.ADJUSTMENTS:
        return _("Correction by support")
    if transfer.source in (SystemAccount.YOOKASSA, SystemAccount.STARS):
        if not incoming:
            return _("Refund of a top-up")
        # A refund the provider refused gives the money back under the key of payments' Refund.
        if transfer.idempotency_key.startswith("refund-failed:"):
            return _("Refund failed: the money is back on your balance")
        return _("Top-up by card") if transfer.source == SystemAccount.YOOKASSA else _("Top-up with Telegram Stars")
    if transfer.source == SystemAccount.LEGACY:
        return _("Balance carried over from the old bot")
    return _("Bonus") if incoming else _("Debit")


def _shorten(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- promotions: the welcome bonus, promo codes, invitations ---------------------------------

ask_promo_code = _fixed(gettext_lazy("Send the promo code (or /cancel)."))
promo_code_again = _fixed(gettext_lazy("Send the code again, or /cancel."))
joined_by_invitation = _fixed(gettext_lazy("🤝 You joined through a friend's invitation."))
share_invite_button = _fixed(gettext_lazy("📤 Share the link"))
invite_share_text = _fixed(gettext_lazy("Pictures and videos with AI: join me here"))


def welcome_bonus(amount: int) -> str:
    return _("🎁 Welcome bonus: %(amount)s on your balance.") % {"amount": money(amount)}


def promo_redeemed(amount: int, percent: int, balance_now: int | None = None) -> str:
    """A promo code accepted: ``amount`` credited now (with the balance), or ``percent`` on the next top-up."""
    if percent:
        return _("🎁 Promo code accepted: +%(percent)s %% on your next top-up.") % {"percent": percent}
    text = _("🎁 Promo code accepted: +%(amount)s.") % {"amount": money(amount)}
    return text if balance_now is None else f"{text} {balance(balance_now, 0)}"


def referral_rules() -> list[str]:
    """What a referrer earns per friend, from REFERRAL_SIGNUP_BONUS_KOPECKS, REFERRAL_PERCENT, REFERRAL_MONTHS."""
    rules = []
    if settings.REFERRAL_SIGNUP_BONUS_KOPECKS:
        rules.append(_("• %(amount)s when their first top-up goes through") % {"amount": money(settings.REFERRAL_SIGNUP_BONUS_KOPECKS)})
    if settings.REFERRAL_PERCENT and settings.REFERRAL_MONTHS:
        rules.append(ngettext(
            "• %(percent)s %% of each of their top-ups for %(months)s month",
            "• %(percent)s %% of each of their top-ups for %(months)s months", settings.REFERRAL_MONTHS,
        ) % {"percent": settings.REFERRAL_PERCENT, "months": settings.REFERRAL_MONTHS})
    return [_("For each friend who joins through it you get:"), *rules] if rules else []


def invite(link: str, summary) -> str:
    """/invite: the link, the rules, and ``summary`` (promotions' ReferralSummary: joined, paid, earned)."""
    figures = _("Joined: %(joined)s, topped up: %(paid)s. You earned: %(earned)s.") % {
        "joined": summary.joined, "paid": summary.paid, "earned": money(summary.earned)
    }
    return "\n".join([_("🤝 Invite friends with your link:"), link, "", *referral_rules(), "", figures])


def referral_joined(name: str) -> str:
    """To the referrer: someone started the bot through their link (named by first name only)."""
    return "\n".join([_("🤝 %(name)s joined through your invitation.") % {"name": _shorten(name, 40) or _("Someone")}, *referral_rules()])


def referral_bonus(kind: str, amount: int, balance_now: int | None) -> str:
    """To the referrer: a bonus from a friend's top-up (``kind``: promotions' BonusKind value)."""
    text = (_("🤝 Your friend made their first top-up: +%(amount)s for you.") if kind == "referral_signup"
            else _("🤝 Your friend topped up: +%(amount)s for you.")) % {"amount": money(amount)}
    return text if balance_now is None else f"{text} {balance(balance_now, 0)}"


def bonus_taken_back(taken: int, *, referral: bool, balance_now: int) -> str:
    """A refunded top-up takes its bonus back: the payer's own (package, promo) or the referrer's."""
    text = (_("↩️ Your friend's top-up was refunded, so %(amount)s of the bonus you got for it was taken back.")
            if referral else _("↩️ Your top-up was refunded, so %(amount)s of its bonus was taken back."))
    return f"{text % {'amount': money(taken)}} {balance(balance_now, 0)}"
