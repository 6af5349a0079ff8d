"""What promotions announces. The bot subscribes (it tells the customer); promotions never imports it.

Each is sent INSIDE the transaction that moved the money (``billing.signals.send_in_transaction``):
what a receiver writes (the customer's message in the outbox) commits with the bonus or not at
all; a receiver that raises has its writes rolled back and is logged, and the bonus stays.

- ``bonus_credited(sender, customer, amount, kind, balance, payment=None)``: money reached
  ``customer``'s wallet. ``kind`` is "welcome", "promo" or a ``BonusKind`` value; ``balance``
  the wallet's available kopecks right after the credit; ``payment`` the top-up that brought a
  payment bonus (the referee's, for a referral bonus). ``sender`` is ``Customer`` (welcome),
  ``PromoRedemption`` (promo) or ``PaymentBonus``.
- ``bonus_taken_back(sender=PaymentBonus, bonus, taken, written_off)``: a refund of
  ``bonus.payment`` took ``taken`` kopecks of the bonus back from ``bonus.beneficiary``;
  ``written_off`` is what the wallet lacked.
- ``referral_attributed(sender=Referral, referral)``: ``referral.referee`` joined through
  ``referral.referrer``'s link.
"""
from django.dispatch import Signal

bonus_credited = Signal()
bonus_taken_back = Signal()
referral_attributed = Signal()
