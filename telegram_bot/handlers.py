"""Update handlers: parse the update, call one service, render a text from ``texts``.

Replies go through the durable outbox (``telegram_bot.outbox``), so a handler never waits on
Telegram's flood limits; callback and pre-checkout answers are immediate Bot API calls because
Telegram waits for them. The middleware has already found the customer (``data["customer"]``),
activated their language and applied the flood limit; a generation request or a payment started
is counted against the request limit by ``allow_request`` where it is made.
"""
from __future__ import annotations

import logging
import math

from django.conf import settings
from django.utils import translation

from billing import selectors as billing_selectors
from billing.exceptions import BillingError, InsufficientFunds
from billing.money import parse_amount
from billing.services import get_or_create_customer
from jobs import selectors as job_selectors
from jobs import services as job_services
from jobs.catalog import VIDEO_ASPECT_RATIOS
from jobs.exceptions import EmptyPrompt, JobError, JobNotCancellable, PriceChanged
from jobs.models import Job, JobKind
from payments import services as payment_services
from payments.exceptions import PaymentError
from telegram_bot import callbacks, keyboards, outbox, quotes, texts
from telegram_bot import selectors as bot_selectors
from telegram_bot.files import FileDownloadError, FileTooLarge, download_telegram_file
from telegram_bot.middleware import allow_request, forget_customer
from telegram_bot.services import claim_confirmed_draft, clear_state, get_state, set_state

logger = logging.getLogger(__name__)

COMMANDS = ("start", "balance", "topup", "picture", "edit", "video", "jobs", "history", "cancel", "help", "lang", "paysupport")
OTHER_CONTENT = ["audio", "video", "voice", "video_note", "location", "contact", "venue", "animation", "poll", "dice", "game"]


# --- dialogue state ------------------------------------------------------------------------


def reply(chat_id: int, text: str, markup: dict | None = None):
    return outbox.enqueue_text(chat_id, text, reply_markup=markup)


class Handlers:
    def __init__(self, bot):
        self.bot = bot

    # --- commands ----------------------------------------------------------------------------

    def start(self, message, data):
        customer = data["customer"]
        clear_state(message.chat.id)
        name = customer.first_name or customer.username
        reply(message.chat.id, texts.start(name, billing_selectors.get_balance(customer)), keyboards.main_menu())

    def balance(self, message, data):
        self._balance(message.chat.id, data["customer"])

    def _balance(self, chat_id, customer):
        reply(chat_id, texts.balance(billing_selectors.get_balance(customer), billing_selectors.get_held(customer)),
              keyboards.topup_button())

    def help(self, message, data):
        reply(message.chat.id, texts.help_text(), keyboards.main_menu())

    def lang(self, message, data):
        reply(message.chat.id, texts.choose_language(), keyboards.languages())

    def paysupport(self, message, data):
        reply(message.chat.id, texts.paysupport(data["customer"].telegram_id))

    def history(self, message, data):
        self._history(message.chat.id, data["customer"])

    def _history(self, chat_id, customer, page: int = 0):
        history = bot_selectors.history_page(customer, page)
        reply(chat_id, texts.history(history), keyboards.history_pages(history))

    def jobs(self, message, data):
        self._jobs(message.chat.id, data["customer"])

    def _jobs(self, chat_id, customer):
        active = list(job_selectors.active_jobs(customer).order_by("id"))
        rows = [[keyboards.button(f"✖️ #{job.pk}", callbacks.CancelJob(job.pk))] for job in active]
        reply(chat_id, texts.jobs_list(active), keyboards.inline(*rows) if rows else keyboards.main_menu())

    def cancel(self, message, data):
        chat_id = message.chat.id
        if clear_state(chat_id):
            reply(chat_id, texts.cancelled_dialogue(), keyboards.main_menu())
        elif job_selectors.active_jobs(data["customer"]).exists():
            self._jobs(chat_id, data["customer"])
        else:
            reply(chat_id, texts.nothing_to_cancel(), keyboards.main_menu())

    def topup(self, message, data):
        self._topup(message.chat.id)

    def _topup(self, chat_id):
        clear_state(chat_id)
        reply(chat_id, texts.topup_choose(), keyboards.topup_amounts())

    def picture(self, message, data):
        prompt = _command_argument(message.text)
        if prompt:
            return self._offer(message.chat.id, data["customer"], kind=JobKind.IMAGE, prompt=prompt)
        set_state(message.chat.id, "picture_prompt")
        reply(message.chat.id, texts.ask_picture_prompt())

    def edit(self, message, data):
        set_state(message.chat.id, "edit_photo")
        reply(message.chat.id, texts.ask_edit_photo())

    def video(self, message, data):
        self._video(message.chat.id)

    def _video(self, chat_id):
        set_state(chat_id, "video_options", {})
        reply(chat_id, texts.ask_video_duration(), keyboards.video_durations(quotes.video_duration_prices()))

    def unknown_command(self, message, data):
        reply(message.chat.id, texts.unknown_command(message.text.split()[0]))

    # --- content -----------------------------------------------------------------------------

    def text(self, message, data):
        chat_id, text = message.chat.id, message.text or ""
        if len(text) > settings.JOB_MAX_PROMPT_LENGTH:
            return reply(chat_id, texts.text_too_long(settings.JOB_MAX_PROMPT_LENGTH))
        conversation = get_state(chat_id)
        state = conversation.state
        if state == "picture_prompt":
            return self._offer(chat_id, data["customer"], kind=JobKind.IMAGE, prompt=text)
        if state == "video_prompt":
            return self._offer(chat_id, data["customer"], kind=JobKind.VIDEO_TEXT, prompt=text, options=conversation.data)
        if state == "topup_amount":
            return self._topup_amount(chat_id, text)
        if state == "edit_photo":
            return reply(chat_id, texts.ask_edit_photo())
        reply(chat_id, texts.hint(), keyboards.main_menu())

    def _topup_amount(self, chat_id: int, text: str):
        try:
            amount = payment_services.check_topup_amount(parse_amount(text))
        except (BillingError, PaymentError) as exc:
            return reply(chat_id, str(exc))
        clear_state(chat_id)
        self._topup_methods(chat_id, amount)

    def _topup_methods(self, chat_id: int, amount: int):
        stars = math.ceil(amount / settings.STARS_RATE_KOPECKS)
        reply(chat_id, texts.topup_method(amount), keyboards.topup_methods(amount, stars))

    def photo(self, message, data):
        chat_id = message.chat.id
        photo = message.photo[-1]
        if (photo.file_size or 0) > settings.JOB_MAX_INPUT_BYTES:
            return reply(chat_id, texts.file_too_large(settings.JOB_MAX_INPUT_BYTES))
        conversation = get_state(chat_id)
        video = conversation.state in ("video_prompt", "video_options")
        caption = (message.caption or "").strip()
        if not caption:
            if not video:
                set_state(chat_id, "edit_photo")
            return reply(chat_id, texts.ask_photo_caption())
        if len(caption) > settings.JOB_MAX_PROMPT_LENGTH:
            return reply(chat_id, texts.text_too_long(settings.JOB_MAX_PROMPT_LENGTH))
        kind = JobKind.VIDEO_IMAGE if video else JobKind.IMAGE_EDIT
        options = conversation.data if video else {}
        self._offer(chat_id, data["customer"], kind=kind, prompt=caption, options=options, file_id=photo.file_id)

    def document(self, message, data):
        document = message.document
        if (document.file_size or 0) > settings.JOB_MAX_INPUT_BYTES:
            return reply(message.chat.id, texts.file_too_large(settings.JOB_MAX_INPUT_BYTES))
        if (document.mime_type or "").startswith("image/"):
            return reply(message.chat.id, texts.send_as_photo())
        reply(message.chat.id, texts.unsupported_content())

    def sticker(self, message, data):
        reply(message.chat.id, texts.sticker(), keyboards.main_menu())

    def other(self, message, data):
        reply(message.chat.id, texts.unsupported_content())

    # --- paid jobs ---------------------------------------------------------------------------

    def _offer(self, chat_id, customer, *, kind: str, prompt: str, options: dict | None = None, file_id: str = ""):
        """Show the price as a new quote (see ``quotes``); the draft waits in the conversation."""
        prompt = prompt.strip()
        if not prompt:
            return reply(chat_id, str(EmptyPrompt()))
        draft = quotes.make_draft(kind=kind, prompt=prompt, options=options, file_id=file_id)
        quotes.show(chat_id, draft, billing_selectors.get_balance(customer))

    def _confirm(self, query, customer, pressed: callbacks.Confirm):
        """Start the job of the pressed quote, once: only its own, current quote's button does."""
        if not allow_request(self.bot, customer, query=query):
            return None
        chat_id = query.message.chat.id
        draft = claim_confirmed_draft(chat_id, quote=pressed.quote, price=pressed.price)
        if draft is None:
            return self._expired(query)
        self.bot.answer_callback_query(query.id)
        quotes.retire_shown(chat_id)  # the used quote's keyboard goes
        image = None
        try:
            if draft.get("file_id"):
                image = download_telegram_file(self.bot, draft["file_id"], max_bytes=settings.JOB_MAX_INPUT_BYTES)
            options = draft.get("options") or {}
            job = job_services.submit_job(
                customer=customer, kind=draft["kind"], prompt=draft["prompt"], input_image=image,
                aspect_ratio=options.get("aspect_ratio", ""), duration=options.get("duration"), mode=options.get("mode"),
                quoted_price=draft["price"],
            )
        except PriceChanged as exc:
            reply(chat_id, str(exc))
            return quotes.show(chat_id, quotes.requote(draft), billing_selectors.get_balance(customer))
        except InsufficientFunds:
            # The balance fell since the quote: the same order quoted again, with the top-up that covers it.
            return quotes.show(chat_id, quotes.requote(draft), billing_selectors.get_balance(customer))
        except (JobError, BillingError) as exc:
            return reply(chat_id, str(exc))
        except FileTooLarge as exc:
            return reply(chat_id, texts.file_too_large(exc.limit))
        except FileDownloadError as exc:
            logger.warning("chat %s: the photo could not be downloaded: %s", chat_id, exc)
            return reply(chat_id, texts.file_download_failed())
        outbox.topic_message(chat_id, f"job:{job.pk}", texts.job_progress(job), reply_markup=keyboards.cancel_job(job.pk))

    def _expired(self, query):
        """A button that can do nothing any more: say so, and take its keyboard off the message."""
        self.bot.answer_callback_query(query.id, text=texts.expired())
        quotes.remove_keyboard(query.message.chat.id, query.message.message_id)

    def _cancel_job(self, query, customer, job_id: int):
        job = Job.objects.filter(pk=job_id, customer_id=customer.pk).first()
        if job is None:
            return self.bot.answer_callback_query(query.id, text=texts.job_gone(), show_alert=True)
        try:
            job_services.cancel_job(job=job)
        except JobNotCancellable as exc:
            return self.bot.answer_callback_query(query.id, text=str(exc), show_alert=True)
        self.bot.answer_callback_query(query.id, text=texts.job_cancelled(job))

    # --- buttons -----------------------------------------------------------------------------

    def callback(self, query, data):
        customer = data["customer"]
        if query.message is None:
            return self.bot.answer_callback_query(query.id, text=texts.expired())
        chat_id = query.message.chat.id
        pressed = callbacks.parse(query.data)
        if isinstance(pressed, callbacks.Confirm):
            return self._confirm(query, customer, pressed)
        if isinstance(pressed, callbacks.CancelJob):
            return self._cancel_job(query, customer, pressed.job_id)
        if isinstance(pressed, callbacks.Expired):
            return self._expired(query)
        self.bot.answer_callback_query(query.id)
        match pressed:
            case callbacks.CancelDialogue():
                clear_state(chat_id)
                quotes.retire_shown(chat_id)
                return reply(chat_id, texts.cancelled_dialogue(), keyboards.main_menu())
            case callbacks.Menu(item=item):
                return self._menu(chat_id, customer, item)
            case callbacks.TopupAmount(amount=None):
                set_state(chat_id, "topup_amount")
                return reply(chat_id, texts.topup_custom())
            case callbacks.TopupAmount(amount=amount):
                return self._topup_methods(chat_id, amount)
            case callbacks.Pay(method=method, amount=amount):
                return self._pay(chat_id, customer, method, amount)
            case callbacks.VideoDuration() | callbacks.VideoAspect() | callbacks.VideoMode():
                return self._video_option(chat_id, pressed)
            case callbacks.HistoryPage(page=page):
                return self._history(chat_id, customer, page)
            case callbacks.Language(code=code):
                get_or_create_customer(telegram_id=customer.telegram_id, language=code)
                forget_customer(customer.telegram_id)
                translation.activate(code)
                return reply(chat_id, texts.language_set(), keyboards.main_menu())
        reply(chat_id, texts.expired(), keyboards.main_menu())

    def _menu(self, chat_id, customer, item):
        if item == "picture":
            set_state(chat_id, "picture_prompt")
            return reply(chat_id, texts.ask_picture_prompt())
        if item == "edit":
            set_state(chat_id, "edit_photo")
            return reply(chat_id, texts.ask_edit_photo())
        if item == "video":
            return self._video(chat_id)
        if item == "topup":
            return self._topup(chat_id)
        if item == "balance":
            return self._balance(chat_id, customer)
        if item == "jobs":
            return self._jobs(chat_id, customer)
        if item == "history":
            return self._history(chat_id, customer)
        if item == "lang":
            return reply(chat_id, texts.choose_language(), keyboards.languages())
        reply(chat_id, texts.help_text(), keyboards.main_menu())

    def _video_option(self, chat_id, pressed: callbacks.Callback):
        conversation = get_state(chat_id)
        if conversation.state not in ("video_options", "video_prompt"):
            return reply(chat_id, texts.expired(), keyboards.main_menu())
        options = dict(conversation.data)
        match pressed:
            case callbacks.VideoDuration(seconds=seconds) if seconds in job_selectors.VIDEO_DURATIONS:
                options["duration"] = seconds
                set_state(chat_id, "video_options", options)
                return reply(chat_id, texts.ask_video_aspect(), keyboards.video_aspects(VIDEO_ASPECT_RATIOS))
            case callbacks.VideoAspect(ratio=ratio) if ratio in VIDEO_ASPECT_RATIOS:
                options["aspect_ratio"] = ratio
                set_state(chat_id, "video_options", options)
                prices = quotes.video_mode_prices(options.get("duration"))
                return reply(chat_id, texts.ask_video_mode(), keyboards.video_modes(prices))
            case callbacks.VideoMode(mode=mode) if mode in job_selectors.VIDEO_MODES:
                options["mode"] = mode
                set_state(chat_id, "video_prompt", options)
                return reply(chat_id, texts.ask_video_prompt())
        reply(chat_id, texts.expired(), keyboards.main_menu())

    def _pay(self, chat_id, customer, method, amount):
        if not allow_request(self.bot, customer, chat_id=chat_id):
            return None
        try:
            if method == "yk":
                payment = payment_services.create_topup(customer=customer, amount=amount, provider="yookassa")
                return reply(chat_id, texts.topup_yookassa(payment.amount), keyboards.pay_link(payment.confirmation_url, payment.amount))
            if method == "st":
                payment = payment_services.create_topup(customer=customer, amount=amount, provider="stars")
                invoice = payment_services.build_stars_invoice(payment=payment)
                price = invoice.prices[0]
                outbox.enqueue_invoice(
                    chat_id, title=invoice.title, description=invoice.description, payload=invoice.payload,
                    currency=invoice.currency, amount=price["amount"], label=price["label"],
                )
                return None
        except (PaymentError, BillingError) as exc:
            return reply(chat_id, str(exc))
        reply(chat_id, texts.expired(), keyboards.main_menu())

    # --- Stars -------------------------------------------------------------------------------

    def pre_checkout(self, query, data):
        try:
            payment_services.validate_pre_checkout(
                payload=query.invoice_payload, currency=query.currency, total_amount=query.total_amount,
                telegram_user_id=query.from_user.id,
            )
        except PaymentError as exc:
            return self.bot.answer_pre_checkout_query(query.id, ok=False, error_message=str(exc))
        self.bot.answer_pre_checkout_query(query.id, ok=True)

    def successful_payment(self, message, data):
        paid = message.successful_payment
        try:
            payment_services.confirm_stars_payment(
                payload=paid.invoice_payload, currency=paid.currency, total_amount=paid.total_amount,
                telegram_payment_charge_id=paid.telegram_payment_charge_id, telegram_user_id=message.from_user.id,
            )
        except PaymentError:
            logger.exception("Stars payment %s not credited", paid.telegram_payment_charge_id)
            reply(message.chat.id, texts.paysupport(message.from_user.id))
        # The payment_succeeded receiver tells the customer (once, whatever the provider).


def _command_argument(text: str | None) -> str:
    parts = (text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def register(bot) -> Handlers:
    h = Handlers(bot)
    for command in COMMANDS:
        bot.register_message_handler(getattr(h, command), commands=[command])
    bot.register_message_handler(h.successful_payment, content_types=["successful_payment"])
    bot.register_message_handler(h.unknown_command, content_types=["text"], func=lambda m: (m.text or "").startswith("/"))
    bot.register_message_handler(h.text, content_types=["text"])
    bot.register_message_handler(h.photo, content_types=["photo"])
    bot.register_message_handler(h.document, content_types=["document"])
    bot.register_message_handler(h.sticker, content_types=["sticker"])
    bot.register_message_handler(h.other, content_types=OTHER_CONTENT)
    bot.register_callback_query_handler(h.callback, func=lambda q: True)
    bot.register_pre_checkout_query_handler(h.pre_checkout, func=lambda q: True)
    return h

