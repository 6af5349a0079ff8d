from django.apps import AppConfig


class StandinsConfig(AppConfig):
    name = "standins"
    verbose_name = "Local stand-ins of outside services"
