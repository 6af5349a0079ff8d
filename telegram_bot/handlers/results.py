"""The buttons under a result: Again (the same order, quoted anew), Edit this and Animate (the
result becomes the input of a photo edit or a video), its original file, and sending a kept
result again from /history. Only the customer's own jobs answer; a paid step is always a quote.
"""
from __future__ import annotations

from billing import selectors as billing_selectors
from jobs.models import Job, JobKind, JobStatus
from telegram_bot import callbacks, offers, outbox, quotes, results, texts
from telegram_bot.handlers.base import HandlerBase, reply
from telegram_bot.models import DialogueState, SettingsGroup
from telegram_bot.services import remembered_settings, set_state


def job_inputs(job: Job) -> list[dict]:
    """The job's input pictures as draft inputs (stored names: the customer's own files)."""
    names = list(job.input_files or ([job.input_file.name] if job.input_file else []))
    return [{"stored": name} for name in names]


class ResultHandlers(HandlerBase):
    def _result_action(self, chat_id, customer, pressed: callbacks.ResultAction):
        job = Job.objects.filter(pk=pressed.job_id, customer_id=customer.pk, status=JobStatus.COMPLETED).first()
        if job is None:
            return reply(chat_id, texts.job_gone())
        if pressed.action == "again":
            draft = quotes.make_draft(kind=job.kind, prompt=job.prompt, model=offers.job_model(job),
                                      options=job.options, inputs=job_inputs(job))
            return quotes.show(chat_id, draft, billing_selectors.get_balance(customer))
        kept = results.kept(job)
        if pressed.action == "send":
            return outbox.enqueue_all(results.result_messages(job, chat_id)) if kept else reply(chat_id, texts.result_gone())
        if pressed.index >= len(kept):
            return reply(chat_id, texts.result_gone())
        result = {"stored": kept[pressed.index]}
        match pressed.action:
            case "file":
                outbox.enqueue(results.original_message(job, chat_id, pressed.index))
            case "edit" if results.is_picture(job):
                set_state(chat_id, DialogueState.EDIT_PHOTO, {"inputs": [result]})
                reply(chat_id, texts.ask_edit_result())
            case "animate" if results.is_picture(job):
                _model, options = remembered_settings(customer, SettingsGroup.VIDEO)
                _model, options = offers.fit(JobKind.VIDEO_IMAGE, _model, options)
                set_state(chat_id, DialogueState.VIDEO_PROMPT, {**options, "inputs": [result]})
                reply(chat_id, texts.ask_animate_prompt())
            case _:
                reply(chat_id, texts.expired())
