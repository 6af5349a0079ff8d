from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "promotions"

    def ready(self):
        from promotions import receivers  # noqa: F401 - the bonuses of a payment and their take-back
