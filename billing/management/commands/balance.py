from django.core.management.base import BaseCommand

from billing import selectors
from billing.money import format_amount

from ._customer_arg import customer_from_arg


class Command(BaseCommand):
    help = "Show a customer's available and reserved balance."

    def add_arguments(self, parser):
        parser.add_argument("telegram_id")

    def handle(self, *args, telegram_id, **options):
        customer = customer_from_arg(telegram_id)
        available, held = selectors.get_balance(customer), selectors.get_held(customer)
        self.stdout.write(f"{customer}: available {format_amount(available)}, reserved {format_amount(held)}")
