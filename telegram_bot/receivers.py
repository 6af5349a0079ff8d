"""Turn what jobs, payments and promotions announce into messages for the customer (through the outbox).

Connected in ``TelegramBotConfig.ready``. A signal that announces a change (``job_finished``,
the payments' signals, ``balance_adjusted``) arrives inside the transaction that made it, in
whatever process made it (a worker, the web process, the bot), so the outbox rows a receiver
writes commit with the change or not at all; ``job_progress`` arrives after its heartbeat
committed. Each receiver only writes outbox rows, which the delivery loop sends within
Telegram's limits and retries until sent.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import receiver
from django.utils import translation

from billing import selectors as billing_selectors
from billing.signals import balance_adjusted
from jobs.models import Job, JobStatus
from jobs.signals import job_finished, job_progress
from payments.signals import payment_canceled, payment_succeeded, refund_succeeded
from promotions import selectors as promotion_selectors
from promotions.models import BonusKind
from promotions.signals import bonus_credited, bonus_taken_back, referral_attributed
from telegram_bot import keyboards, outbox, quotes, results, texts
from telegram_bot.messages import edit_message, text_message

logger = logging.getLogger(__name__)

def _progress_message(job):
    return outbox.topic_message(
        job.customer.telegram_id, f"job:{job.pk}", texts.job_progress(job), reply_markup=keyboards.cancel_job(job.pk)
    )


@receiver(job_progress, dispatch_uid="telegram_bot.job_progress")
def on_job_progress(sender, job, progress, **kwargs):
    # The worker's copy of the job may be stale: a cancel may have won meanwhile.
    if not Job.objects.filter(pk=job.pk, status__in=JobStatus.active()).exists():
        return
    with translation.override(job.customer.language):
        message = _progress_message(job)
        text = texts.job_progress(job, progress)
        if message.params.get("text") != text:  # a message written just now already says it
            outbox.enqueue_progress_edit(message, text, reply_markup=keyboards.cancel_job(job.pk))


@receiver(job_finished, dispatch_uid="telegram_bot.job_finished")
def on_job_finished(sender, job, **kwargs):
    # Inside the transaction that finished the job (see jobs.signals): the messages commit with
    # the job's new status or not at all, so a worker killed right after the commit loses nothing.
    customer = job.customer
    chat_id = customer.telegram_id
    with translation.override(customer.language):
        if job.status == JobStatus.COMPLETED:
            final = texts.job_completed(job)
        elif job.status == JobStatus.FAILED:
            final = texts.job_failed(job)
        else:
            final = texts.job_cancelled(job)
        messages = []
        progress = outbox.find_topic_message(f"job:{job.pk}")
        if progress is not None:
            outbox.drop_pending_edits(progress)  # the final state replaces any progress not yet shown
            messages.append(edit_message(progress, final))
        if job.status == JobStatus.COMPLETED:
            messages += results.result_messages(job, chat_id, balance=billing_selectors.get_balance(customer))
        elif progress is None or job.status == JobStatus.FAILED:
            # No progress message to edit (a job the bot did not start, e.g. a staff retry): the
            # final state is a message of its own. A failure always is, so it is not missed.
            messages.append(text_message(chat_id, final, reply_markup=keyboards.main_menu()))
        outbox.enqueue_all(messages)


@receiver(payment_succeeded, dispatch_uid="telegram_bot.payment_succeeded")
def on_payment_succeeded(sender, payment, balance=None, **kwargs):
    # Inside the transaction that credited the wallet (see payments.signals), as all below.
    customer = payment.customer
    bonus, balance = _payers_bonus(payment, balance)
    with translation.override(customer.language):
        outbox.enqueue_text(
            customer.telegram_id, texts.payment_succeeded(payment.amount, balance, bonus), reply_markup=keyboards.main_menu(),
        )
    _resume_quote_after_topup(customer, balance, payment)


def _resume_quote_after_topup(customer, balance: int, payment) -> None:
    # After the "payment received" message, so that comes first. A receiver that raises rolls
    # back what every receiver of the signal wrote, so a failure here stays here (its own
    # savepoint, logged) and cannot cost the customer that message. On SQLite the outbox's
    # process lock is not taken inside the payment's transaction, which already holds the
    # database's. The quote is shown again with a fresh button; nothing starts without a press.
    try:
        with transaction.atomic(), translation.override(customer.language):
            quotes.resume_after_topup(customer.telegram_id, balance)
    except Exception:  # noqa: BLE001 - the payment and its message stand whatever happens here
        logger.exception("payment %s: the quote that waited for this top-up was not shown again", payment.pk)


def _payers_bonus(payment, balance: int | None) -> tuple[int, int]:
    """(the payer's own bonuses of this payment, the balance with them).

    promotions credits a payment's bonuses in its own ``payment_succeeded`` receiver, connected
    before these (its app comes first in INSTALLED_APPS), so they are on the ledger by now; the
    payer's (package, promo percent) are told here, in one message with the payment, and
    ``on_bonus_credited`` leaves them out. ``balance`` is what the payment's credit left on the
    wallet (no read here); read when the sender could not say or a bonus came on top.
    """
    bonus = sum(b.amount for b in promotion_selectors.payment_bonuses(payment) if b.beneficiary_id == payment.customer_id)
    if balance is None or bonus:
        balance = billing_selectors.get_balance(payment.customer)
    return bonus, balance


@receiver(payment_canceled, dispatch_uid="telegram_bot.payment_canceled")
def on_payment_canceled(sender, payment, **kwargs):
    customer = payment.customer
    with translation.override(customer.language):
        outbox.enqueue_text(customer.telegram_id, texts.payment_canceled(payment.amount))


@receiver(refund_succeeded, dispatch_uid="telegram_bot.refund_succeeded")
def on_refund_succeeded(sender, refund, payment, **kwargs):
    customer = payment.customer
    with translation.override(customer.language):
        outbox.enqueue_text(customer.telegram_id, texts.refund_succeeded(refund.amount))


@receiver(balance_adjusted, dispatch_uid="telegram_bot.balance_adjusted")
def on_balance_adjusted(sender, adjustment, **kwargs):
    # Inside the transaction that moved the money (see billing.signals): the message commits
    # with it. Only the reason meant for the customer is told, never the staff note.
    customer = adjustment.customer
    with translation.override(customer.language):
        outbox.enqueue_text(
            customer.telegram_id,
            texts.balance_adjusted(adjustment.amount, adjustment.customer_reason, billing_selectors.get_balance(customer)),
        )


# --- promotions: referrals and the bonuses of payments ---------------------------------------
# Sent inside the transaction that moved the money (billing.signals.send_in_transaction).


@receiver(bonus_credited, dispatch_uid="telegram_bot.bonus_credited")
def on_bonus_credited(sender, customer, amount, kind, balance=None, payment=None, **kwargs):
    # The welcome bonus and an amount promo code are told by the reply of the command that
    # earned them (telegram_bot.handlers.bonuses), the payer's own bonus with the payment
    # (``_payers_bonus``): what is left is a referrer's bonus from a friend's top-up.
    if kind in ("welcome", "promo") or (payment is not None and payment.customer_id == customer.pk):
        return
    with translation.override(customer.language):
        outbox.enqueue_text(customer.telegram_id, texts.referral_bonus(kind, amount, balance))


@receiver(bonus_taken_back, dispatch_uid="telegram_bot.bonus_taken_back")
def on_bonus_taken_back(sender, bonus, taken, written_off, **kwargs):
    # Only what left the wallet is told: a part written off (the wallet lacked it) is the
    # house's loss, nothing the customer owes or can act on.
    if not taken:
        return
    customer = bonus.beneficiary
    referral = bonus.kind in (BonusKind.REFERRAL_SIGNUP, BonusKind.REFERRAL_PERCENT)
    with translation.override(customer.language):
        outbox.enqueue_text(customer.telegram_id, texts.bonus_taken_back(
            taken, referral=referral, balance_now=billing_selectors.get_balance(customer),
        ))


@receiver(referral_attributed, dispatch_uid="telegram_bot.referral_attributed")
def on_referral_attributed(sender, referral, **kwargs):
    # The referrer learns the newcomer's first name only (no username, no id).
    referrer = referral.referrer
    with translation.override(referrer.language):
        outbox.enqueue_text(referrer.telegram_id, texts.referral_joined(referral.referee.first_name))
