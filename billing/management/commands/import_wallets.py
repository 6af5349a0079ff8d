import sqlite3
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.exceptions import InvalidAmount
from billing.money import check_kopecks, format_amount, roubles_to_kopecks
from billing.services import ImportCounts, import_opening_balances

BATCH = 500


class Command(BaseCommand):
    help = (
        "Import the old system's wallets table (user_id, balance in roubles) as opening balances. "
        "Idempotent: a second run moves nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("legacy_file", help="the old system's SQLite database")

    def handle(self, *args, legacy_file, **options):
        db = self._open(Path(legacy_file))
        total = db.execute("SELECT COUNT(*) FROM wallets").fetchone()[0]
        self.stdout.write(f"{total} wallet row(s) in {legacy_file}")
        counts = ImportCounts()
        seen = 0
        step = max(total // 20, BATCH)
        next_report = step
        batch: list[tuple[int, int]] = []
        for user_id, balance in db.execute("SELECT user_id, balance FROM wallets ORDER BY user_id"):
            seen += 1
            try:
                kopecks = roubles_to_kopecks(0 if balance is None else balance)
                check_kopecks(abs(kopecks), allow_zero=True)  # absurd sizes are refused
                batch.append((int(user_id), kopecks))
            except (InvalidAmount, TypeError, ValueError) as exc:
                counts.refused += 1
                counts.refused_rows.append(f"user {user_id}: balance {balance!r}: {exc}")
            if len(batch) >= BATCH:
                import_opening_balances(rows=batch, counts=counts)
                batch = []
            if seen >= next_report:
                self.stdout.write(f"  {seen}/{total} ({seen * 100 // max(total, 1)}%)")
                next_report += step
        if batch:
            import_opening_balances(rows=batch, counts=counts)
        db.close()
        for line in counts.refused_rows[:50]:
            self.stdout.write(self.style.WARNING(f"refused {line}"))
        self.stdout.write(
            f"imported {counts.imported} ({format_amount(counts.imported_kopecks)}), "
            f"already imported {counts.already_imported}, empty {counts.skipped_empty}, "
            f"refused {counts.refused}"
        )

    def _open(self, path: Path) -> sqlite3.Connection:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        with path.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise CommandError(f"{path} is not an SQLite database (the old system's file is).")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(wallets)")}
        except sqlite3.DatabaseError as exc:
            raise CommandError(f"{path} cannot be read: {exc}") from exc
        if not {"user_id", "balance"} <= columns:
            db.close()
            raise CommandError(f"{path} has no wallets(user_id, balance) table: not the old system's database.")
        return db
