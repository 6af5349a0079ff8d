"""A finished job's results as messages: the picture as a photo (a preview) and its original file
as a document, the video as a video, each captioned with the prompt and the model and carrying
the buttons that act on it (``keyboards.result_actions``: Again, Edit this, Animate, Original).

Written by the ``job_finished`` receiver (inside the transaction that finished the job) and by
the handlers that send a result again (``/history``, the "original file" button). The photo's
file is the original too: the delivery loop uploads a smaller JPEG of it when Telegram would
refuse it as a photo (``telegram_bot.delivery``), so the preview never costs a stored copy.
"""
from __future__ import annotations

from django.core.files.storage import default_storage

from jobs.models import Job
from telegram_bot import keyboards, offers, texts
from telegram_bot.messages import media_message
from telegram_bot.models import OutboxMessage

# Telegram's upload limit for videos sent by a bot; larger results go as documents.
VIDEO_LIMIT = 50 * 1024 * 1024
# Pictures made at these sizes are ordered for their detail: their original file comes at once.
FULL_SIZE_AUTOMATIC = ("2K", "4K")


def is_picture(job: Job) -> bool:
    return job.result_mime.startswith("image/") and job.result_mime != "image/gif"


def original_automatic(job: Job) -> bool:
    """Whether the original file goes with the photo, unasked (else it is a button under it)."""
    return is_picture(job) and (job.options or {}).get("image_size") in FULL_SIZE_AUTOMATIC


def kept(job: Job) -> list[str]:
    """The job's result files still in storage (the clean-up removes them after a while)."""
    return [] if job.results_deleted_at else list(job.result_files or [])


def result_messages(job: Job, chat_id: int, *, balance: int | None = None) -> list[OutboxMessage]:
    """The messages that show the job's results, in order (none when it has none)."""
    caption = texts.result_caption(job, offers.job_title(job), balance)
    infos = job.result_info or []
    messages = []
    for index, name in enumerate(kept(job)):
        markup = keyboards.result_actions(job, index, original_button=not original_automatic(job))
        if is_picture(job):
            messages.append(media_message(chat_id, "sendPhoto", name, caption=caption, reply_markup=markup))
            if original_automatic(job):
                messages.append(original_message(job, chat_id, index))
            continue
        method = "sendVideo" if job.result_mime.startswith("video/") and _size(name) <= VIDEO_LIMIT else "sendDocument"
        info = infos[index] if index < len(infos) else {}
        attributes = _video_attributes(info) if method == "sendVideo" else None
        messages.append(media_message(chat_id, method, name, caption=caption, reply_markup=markup, attributes=attributes))
    return messages


def original_message(job: Job, chat_id: int, index: int) -> OutboxMessage:
    """The original file of result ``index`` as a document: Telegram keeps it byte for byte."""
    name = job.result_files[index]
    return media_message(chat_id, "sendDocument", name, caption=texts.original_caption(job))


def _size(name: str) -> int:
    try:
        return default_storage.size(name)
    except (OSError, NotImplementedError):
        return 0


def _video_attributes(info: dict) -> dict:
    """sendVideo's width, height and duration, as the worker read them from the file (jobs.media).

    Only what was read is sent: a video whose file could not be read goes without them.
    """
    return {key: info[key] for key in ("width", "height", "duration") if isinstance(info.get(key), int)}
