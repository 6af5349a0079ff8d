"""A payment's bonuses: credited when it succeeds, taken back in proportion when it is refunded.

Both run in the payment's own transaction (``promotions.receivers``), so the bonus commits with
the credit or the refund or not at all. Keys (the models' docstring): ``payment-bonus:<kind>:
<payment id>``, and ``referral-signup:<referee id>`` for the referrer's bonus at the referee's
first top-up (once per referee, whichever payment it comes with).

Take-back: for each bonus the target is ``floor(amount * refunded / paid)``, cumulative, so the
partial refunds of a payment add up to the whole bonus when all of it is refunded; each refund
takes what the target is still missing from the beneficiary's AVAILABLE balance
(``billing.services.take_back``) and writes off the rest (held money is a job's, not ours).
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing import services as billing
from billing.models import Customer
from billing.signals import send_in_transaction
from payments.models import Payment, Refund

from .. import selectors
from ..models import BonusKind, BonusTakeback, PaymentBonus, PromoRedemption
from ..signals import bonus_taken_back
from .ledger import announce_credit, credit_bonus

logger = logging.getLogger("promotions")


def percent_of(amount: int, percent: int) -> int:
    return amount * percent // 100


def credit_payment_bonuses(*, payment: Payment) -> list[PaymentBonus]:
    """Credit what ``payment`` (just succeeded) brings: package, promo percent, referral bonuses.

    Expects the payment's transaction. One read decides them all (``selectors.bonus_facts``): a
    payment without bonuses costs the notification one statement.
    """
    facts = selectors.bonus_facts(payment)
    steps = [step for step, applies in ((_package_bonus, facts.bonus_percent), (_promo_percent_bonus, facts.redemption_id),
                                        (_referral_bonuses, facts.referral_id)) if applies]
    return _each_alone(steps, payment, lambda credit: credit(payment, facts))


def _each_alone(steps, payment: Payment, run) -> list:
    """``run(step)`` for each step in a savepoint of its own: one that fails is logged and rolled
    back alone; the payment (or refund), its message and the other bonuses stay."""
    done = []
    for step in steps:
        try:
            with transaction.atomic():
                done.extend(run(step))
        except Exception:  # noqa: BLE001 - a bonus must never cost the payment its other effects
            logger.exception("payment %s: bonus step %r failed; rolled back", payment.pk, step)
    return done


def _package_bonus(payment: Payment, facts: selectors.BonusFacts) -> list[PaymentBonus]:
    return _bonus(payment, BonusKind.PACKAGE, payment.customer, percent_of(payment.amount, facts.bonus_percent))


def _promo_percent_bonus(payment: Payment, facts: selectors.BonusFacts) -> list[PaymentBonus]:
    if PromoRedemption.objects.filter(applied_payment_id=payment.pk).exists():
        return []
    # Conditional: of two payments succeeding at once, one takes the redemption.
    if not PromoRedemption.objects.filter(pk=facts.redemption_id, applied_payment__isnull=True).update(
        applied_payment_id=payment.pk
    ):
        return []
    return _bonus(payment, BonusKind.PROMO_PERCENT, payment.customer, percent_of(payment.amount, facts.redemption_percent))


def _referral_bonuses(payment: Payment, facts: selectors.BonusFacts) -> list[PaymentBonus]:
    referrer = Customer.objects.get(pk=facts.referrer_id)
    bonuses = _bonus(
        payment, BonusKind.REFERRAL_SIGNUP, referrer, settings.REFERRAL_SIGNUP_BONUS_KOPECKS,
        key=f"referral-signup:{payment.customer_id}",
    )
    succeeded_at = payment.succeeded_at or timezone.now()
    if succeeded_at < selectors.add_months(facts.referral_created_at, settings.REFERRAL_MONTHS):
        bonuses += _bonus(
            payment, BonusKind.REFERRAL_PERCENT, referrer, percent_of(payment.amount, settings.REFERRAL_PERCENT)
        )
    return bonuses


def _bonus(payment: Payment, kind: str, beneficiary: Customer, amount: int, *, key: str = "") -> list[PaymentBonus]:
    """Credit one bonus and record it; nothing when it is 0 or its key was used before."""
    if amount <= 0:
        return []
    transfer = credit_bonus(
        customer=beneficiary, amount=amount, idempotency_key=key or f"payment-bonus:{kind}:{payment.pk}", kind=kind,
        description=f"{BonusKind(kind).label}: payment #{payment.pk}",
    )
    if transfer is None:
        return []  # credited before: its PaymentBonus exists (a second one would point at the same transfer)
    bonus = PaymentBonus.objects.create(
        kind=kind, payment=payment, beneficiary=beneficiary, amount=amount, transfer=transfer
    )
    announce_credit(sender=PaymentBonus, transfer=transfer, customer=beneficiary, kind=kind, payment=payment)
    return [bonus]


def take_back_payment_bonuses(*, refund: Refund, payment: Payment) -> list[BonusTakeback]:
    """Take back, in proportion to what ``payment`` has refunded now, each of its bonuses.

    Expects the refund's transaction (the payment's row is locked by its refunded-amount
    UPDATE, so two refunds of one payment take back one after the other). A refund seen again
    (``BonusTakeback`` is UNIQUE per bonus and refund) takes nothing more.
    """
    bonuses = PaymentBonus.objects.filter(payment_id=payment.pk).order_by("id")
    return _each_alone(bonuses, payment, lambda bonus: _take_back(bonus.pk, refund=refund, payment=payment))


def _take_back(bonus_id: int, *, refund: Refund, payment: Payment) -> list[BonusTakeback]:
    bonus = PaymentBonus.objects.select_for_update().select_related("beneficiary").get(pk=bonus_id)
    target = bonus.amount * payment.refunded_amount // payment.amount
    due = target - bonus.taken_back - bonus.written_off
    if due <= 0 or BonusTakeback.objects.filter(bonus=bonus, refund=refund).exists():
        return []
    transfer = billing.take_back(
        customer=bonus.beneficiary, up_to=due, idempotency_key=f"bonus-takeback:{bonus.pk}:{refund.pk}",
        description=f"{bonus.get_kind_display()} taken back: refund #{refund.pk} of payment #{payment.pk}",
    )
    taken = transfer.amount if transfer else 0
    takeback = BonusTakeback.objects.create(
        bonus=bonus, refund=refund, taken=taken, written_off=due - taken, transfer=transfer
    )
    PaymentBonus.objects.filter(pk=bonus.pk).update(
        taken_back=F("taken_back") + taken, written_off=F("written_off") + takeback.written_off
    )
    bonus.taken_back += taken
    bonus.written_off += takeback.written_off
    if takeback.written_off:
        logger.warning("bonus %s: %s kopecks could not be taken back (written off)", bonus.pk, takeback.written_off)
    send_in_transaction(
        bonus_taken_back, logger=logger, sender=PaymentBonus, bonus=bonus, taken=taken, written_off=takeback.written_off
    )
    return [takeback]
