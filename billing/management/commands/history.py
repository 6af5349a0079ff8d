from django.core.management.base import BaseCommand, CommandError

from billing import selectors
from billing.money import format_amount

from ._customer_arg import customer_from_arg


class Command(BaseCommand):
    help = "Show a customer's newest ledger rows."

    def add_arguments(self, parser):
        parser.add_argument("telegram_id")
        parser.add_argument("--limit", type=int, default=10)

    def handle(self, *args, telegram_id, limit, **options):
        if limit < 1 or limit > 10_000:
            raise CommandError("--limit must be between 1 and 10000")
        customer = customer_from_arg(telegram_id)
        rows = selectors.get_ledger_history(customer, limit=limit)
        if not rows:
            self.stdout.write("No movements yet.")
        for t in rows:
            if t.signed_amount:
                shown = format_amount(t.signed_amount)
            else:
                shown = f"{'reserved' if t.kind == 'pending' else 'released'} {format_amount(t.amount)}"
            self.stdout.write(f"{t.created_at:%Y-%m-%d %H:%M} #{t.pk} {t.kind:<7} {shown:>22}  {t.description or t.source}")
