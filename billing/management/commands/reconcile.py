from django.core.management.base import BaseCommand, CommandError

from billing import selectors
from billing.money import format_amount


class Command(BaseCommand):
    help = "Recompute every account's balance and held from the ledger; report drift (exit 1 on drift)."

    def handle(self, *args, **options):
        drift = selectors.find_drift()
        total = selectors.total_of_all_accounts()
        ledger_total = selectors.accounts_total_from_ledger()
        for d in drift:
            self.stdout.write(
                f"DRIFT {d.label}: balance cached {d.cached_balance} ledger {d.ledger_balance}; "
                f"held cached {d.cached_held} ledger {d.ledger_held}"
            )
        if total != 0 or ledger_total != 0:
            self.stdout.write(f"DRIFT accounts do not sum to zero: cached {total}, ledger {ledger_total}")
        if drift or total != 0 or ledger_total != 0:
            raise CommandError(f"{len(drift)} account(s) drifted from the ledger")
        wallets = selectors.wallet_totals()
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: every account agrees with the ledger; wallets hold {format_amount(wallets['balance'])} "
                f"({format_amount(wallets['held'])} reserved)"
            )
        )
