"""Paid jobs: pictures, photo edits and videos asked for, quoted, confirmed, listed and cancelled.

A dialogue collects the order (``DialogueState``); ``_offer`` shows its price as a quote
(``telegram_bot.quotes``), and only that quote's confirm button starts the job, counted
against the request limit (``allow_request``).
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.storage import default_storage

from billing import selectors as billing_selectors
from billing.exceptions import InsufficientFunds
from jobs import selectors as job_selectors
from jobs import services as job_services
from genbot.errors import GenbotError
from jobs.exceptions import EmptyPrompt, JobNotCancellable, PriceChanged
from jobs.models import Job, JobKind
from telegram_bot import albums, callbacks, keyboards, offers, outbox, quotes, texts
from telegram_bot.files import FileDownloadError, FileTooLarge, download_telegram_file
from telegram_bot.handlers.base import HandlerBase, command_argument, reply
from telegram_bot.middleware import allow_request
from telegram_bot.models import DialogueState, SettingsGroup
from telegram_bot.services import (
    claim_confirmed_draft,
    clear_state,
    get_state,
    remember_settings,
    remembered_settings,
    set_state,
)

logger = logging.getLogger(__name__)


class JobHandlers(HandlerBase):
    # --- asking for a job ----------------------------------------------------------------------

    def picture(self, message, data):
        prompt = command_argument(message.text)
        if prompt:
            return self._offer_remembered(message.chat.id, data["customer"], kind=JobKind.IMAGE, prompt=prompt)
        self._ask_picture_prompt(message.chat.id)

    def _ask_picture_prompt(self, chat_id):
        set_state(chat_id, DialogueState.PICTURE_PROMPT)
        reply(chat_id, texts.ask_picture_prompt())

    def edit(self, message, data):
        self._ask_edit_photo(message.chat.id)

    def _ask_edit_photo(self, chat_id):
        set_state(chat_id, DialogueState.EDIT_PHOTO)
        reply(chat_id, texts.ask_edit_photo())

    def video(self, message, data):
        self._video(message.chat.id, data["customer"])

    def _video(self, chat_id, customer):
        """With settings remembered, straight to the description (they show on the quote, with a
        button to change them); the first time, the duration, aspect ratio and quality steps."""
        model, options = remembered_settings(customer, SettingsGroup.VIDEO)
        if options:
            set_state(chat_id, DialogueState.VIDEO_PROMPT, offers.fit(JobKind.VIDEO_TEXT, model, options)[1])
            return reply(chat_id, texts.ask_video_prompt(), keyboards.inline([keyboards.settings_button(SettingsGroup.VIDEO)]))
        set_state(chat_id, DialogueState.VIDEO_OPTIONS, {})
        reply(chat_id, texts.ask_video_duration(), keyboards.video_durations(quotes.video_duration_prices(model)))

    def _video_option(self, chat_id, customer, pressed: callbacks.Callback):
        conversation = get_state(chat_id)
        if conversation.state not in DialogueState.video():
            return reply(chat_id, texts.expired(), keyboards.main_menu())
        options = dict(conversation.data)
        model, _remembered = remembered_settings(customer, SettingsGroup.VIDEO)
        offer = offers.offer_for(JobKind.VIDEO_TEXT, model)
        match pressed:
            case callbacks.VideoDuration(seconds=seconds) if seconds in offers.values(offer, "duration"):
                options["duration"] = seconds
                set_state(chat_id, DialogueState.VIDEO_OPTIONS, options)
                return reply(chat_id, texts.ask_video_aspect(), keyboards.video_aspects(offers.values(offer, "aspect_ratio")))
            case callbacks.VideoAspect(ratio=ratio) if ratio in offers.values(offer, "aspect_ratio"):
                options["aspect_ratio"] = ratio
                set_state(chat_id, DialogueState.VIDEO_OPTIONS, options)
                prices = quotes.video_mode_prices(options.get("duration"), model)
                return reply(chat_id, texts.ask_video_mode(), keyboards.video_modes(prices))
            case callbacks.VideoMode(mode=mode) if mode in offers.values(offer, "mode"):
                options["mode"] = mode
                set_state(chat_id, DialogueState.VIDEO_PROMPT, options)
                remember_settings(customer=customer, group=SettingsGroup.VIDEO, model=offer.key, options=options)
                return reply(chat_id, texts.ask_video_prompt())
        reply(chat_id, texts.expired(), keyboards.main_menu())

    def photo(self, message, data):
        chat_id = message.chat.id
        photo = message.photo[-1]
        if (photo.file_size or 0) > settings.JOB_MAX_INPUT_BYTES:
            return reply(chat_id, texts.file_too_large(settings.JOB_MAX_INPUT_BYTES))
        caption = (message.caption or "").strip()
        if len(caption) > settings.JOB_MAX_PROMPT_LENGTH:
            return reply(chat_id, texts.text_too_long(settings.JOB_MAX_PROMPT_LENGTH))
        if message.media_group_id:
            return albums.photo_arrived(self, message, data["customer"], file_id=photo.file_id, caption=caption)
        self._photos(chat_id, data["customer"], [photo.file_id], caption)

    def _photos(self, chat_id, customer, file_ids: list[str], caption: str):
        """One photo, or an album's: an edit of them (a video from the first, in a video dialogue)
        quoted with the caption; without one, the bot asks for it and the next text is it."""
        conversation = get_state(chat_id)
        video = conversation.state in DialogueState.video()
        inputs = [{"file_id": file_id} for file_id in file_ids]
        if video:
            options = {k: v for k, v in conversation.data.items() if k != "inputs"}
            inputs = inputs[:1]
        else:
            options, inputs = {}, self._within_limit(chat_id, customer, inputs)
        if not caption:
            state = conversation.state if video else DialogueState.EDIT_PHOTO
            set_state(chat_id, state, {**options, "inputs": inputs})
            return reply(chat_id, texts.ask_album_caption(len(inputs)) if len(inputs) > 1 else texts.ask_photo_caption())
        if video:
            return self._offer_remembered(chat_id, customer, kind=JobKind.VIDEO_IMAGE, prompt=caption, options=options,
                                          inputs=inputs)
        self._offer_remembered(chat_id, customer, kind=JobKind.IMAGE_EDIT, prompt=caption, inputs=inputs)

    def _within_limit(self, chat_id, customer, inputs: list[dict]) -> list[dict]:
        """The first pictures up to the remembered model's limit (the customer is told of a cut)."""
        model, _options = remembered_settings(customer, SettingsGroup.PICTURE)
        limit = offers.max_inputs(JobKind.IMAGE_EDIT, model)
        if len(inputs) > limit:
            reply(chat_id, texts.albums_cut(limit, len(inputs)))
        return inputs[:limit]

    def document(self, message, data):
        document = message.document
        if (document.file_size or 0) > settings.JOB_MAX_INPUT_BYTES:
            return reply(message.chat.id, texts.file_too_large(settings.JOB_MAX_INPUT_BYTES))
        if (document.mime_type or "").startswith("image/"):
            return reply(message.chat.id, texts.send_as_photo())
        reply(message.chat.id, texts.unsupported_content())

    # --- the quote and its confirm button ------------------------------------------------------

    def _offer(self, chat_id, customer, *, kind: str, prompt: str, model: str = "", options: dict | None = None,
               inputs=()):
        """Show the price as a new quote (see ``quotes``); the draft waits in the conversation."""
        prompt = prompt.strip()
        if not prompt:
            return reply(chat_id, str(EmptyPrompt()))
        draft = quotes.make_draft(kind=kind, prompt=prompt, model=model, options=options, inputs=inputs)
        quotes.show(chat_id, draft, billing_selectors.get_balance(customer))

    def _offer_remembered(self, chat_id, customer, *, kind: str, prompt: str, options: dict | None = None, inputs=()):
        """An order with the customer's remembered model and options (``options`` on top of them)."""
        model, remembered = remembered_settings(customer, offers.group_of(kind))
        self._offer(chat_id, customer, kind=kind, prompt=prompt, model=model, options={**remembered, **(options or {})},
                    inputs=inputs)

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
        try:
            images = self._load_inputs(customer, quotes.draft_inputs(draft))
            job = job_services.submit_job(
                customer=customer, kind=draft["kind"], prompt=draft["prompt"], model=draft.get("model", ""),
                options=draft.get("options") or {}, input_images=images, quoted_price=draft["price"],
            )
        except PriceChanged as exc:
            reply(chat_id, str(exc))
            return quotes.show(chat_id, quotes.requote(draft), billing_selectors.get_balance(customer))
        except InsufficientFunds:
            # The balance fell since the quote: the same order quoted again, with the top-up that covers it.
            return quotes.show(chat_id, quotes.requote(draft), billing_selectors.get_balance(customer))
        except GenbotError as exc:
            return reply(chat_id, str(exc))
        except FileTooLarge as exc:
            return reply(chat_id, texts.file_too_large(exc.limit))
        except FileDownloadError as exc:
            logger.warning("chat %s: the photo could not be downloaded: %s", chat_id, exc)
            return reply(chat_id, texts.file_download_failed())
        except FileNotFoundError:
            return reply(chat_id, texts.input_gone())
        outbox.topic_message(chat_id, f"job:{job.pk}", texts.job_progress(job), reply_markup=keyboards.cancel_job(job.pk))

    def _load_inputs(self, customer, inputs: list[dict]) -> list[bytes]:
        """The pictures of a draft: photos from Telegram, or the customer's own stored files
        (a draft is the bot's record, never the customer's words, so its names are trusted)."""
        images = []
        for ref in inputs:
            if ref.get("file_id"):
                images.append(download_telegram_file(self.bot, ref["file_id"], max_bytes=settings.JOB_MAX_INPUT_BYTES))
            else:
                with default_storage.open(ref["stored"], "rb") as handle:
                    images.append(handle.read())
        return images

    def _drop_dialogue(self, chat_id):
        clear_state(chat_id)
        quotes.retire_shown(chat_id)
        reply(chat_id, texts.cancelled_dialogue(), keyboards.main_menu())

    # --- running jobs --------------------------------------------------------------------------

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

    def _cancel_job(self, query, customer, job_id: int):
        job = Job.objects.filter(pk=job_id, customer_id=customer.pk).first()
        if job is None:
            return self.bot.answer_callback_query(query.id, text=texts.job_gone(), show_alert=True)
        try:
            job_services.cancel_job(job=job)
        except JobNotCancellable as exc:
            return self.bot.answer_callback_query(query.id, text=str(exc), show_alert=True)
        self.bot.answer_callback_query(query.id, text=texts.job_cancelled(job))
