"""What promotions does when payments announce a change (connected in ``PromotionsConfig.ready``).

Filled in by the promotions services: a payment's bonuses when it succeeds, their take-back
when it is refunded.
"""
