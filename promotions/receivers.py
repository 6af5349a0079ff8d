"""What promotions does when payments announce a change (connected in ``PromotionsConfig.ready``).

Both run inside the payment's transaction, in ``billing.signals.send_in_transaction``'s
savepoint: the bonuses commit with the credit (or the take-back with the refund) or not at all.
"""
from django.dispatch import receiver

from payments.models import Payment, Refund
from payments.signals import payment_succeeded, refund_succeeded

from . import services


@receiver(payment_succeeded, sender=Payment, dispatch_uid="promotions.payment_bonuses")
def credit_bonuses_of_payment(sender, payment, **kwargs):
    services.credit_payment_bonuses(payment=payment)


@receiver(refund_succeeded, sender=Refund, dispatch_uid="promotions.take_back_bonuses")
def take_back_bonuses_of_refund(sender, refund, payment, **kwargs):
    services.take_back_payment_bonuses(refund=refund, payment=payment)
