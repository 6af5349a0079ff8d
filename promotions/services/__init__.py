"""Every write to promotions goes through here; one module per topic, every public name here too.

- ``welcome``: the welcome bonus, once per Telegram id.
- ``referrals``: attributing a new customer to the owner of a referral link.
- ``promo_codes``: staff create codes; customers redeem them (``attempts``: the brute-force limit).
- ``topups``: starting a top-up with its package bonus.
- ``payment_bonuses``: a payment's bonuses when it succeeds, their take-back when it is refunded
  (called by ``promotions.receivers``).
- ``ledger``: the one credit of a bonus and its announcement.
"""
from .payment_bonuses import credit_payment_bonuses, take_back_payment_bonuses
from .promo_codes import create_promo_code, normalise_code, redeem_promo_code
from .referrals import attribute_referral
from .topups import BONUS_PERCENT, start_topup
from .welcome import grant_welcome_bonus

__all__ = [
    "BONUS_PERCENT",
    "attribute_referral",
    "create_promo_code",
    "credit_payment_bonuses",
    "grant_welcome_bonus",
    "normalise_code",
    "redeem_promo_code",
    "start_topup",
    "take_back_payment_bonuses",
]
