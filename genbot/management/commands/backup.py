from django.core.management.base import BaseCommand, CommandError

from genbot.backups import BackupError, make_backup


class Command(BaseCommand):
    help = "Back up the database (PostgreSQL: pg_dump custom format; SQLite: online backup) and prune old backups."

    def add_arguments(self, parser):
        parser.add_argument("--dir", help="where backups go (default BACKUP_DIR)")
        parser.add_argument("--keep", type=int, help="how many backups to keep (default BACKUP_KEEP)")

    def handle(self, *args, dir=None, keep=None, **options):
        if keep is not None and keep < 1:
            raise CommandError("--keep must be at least 1")
        try:
            path = make_backup(directory=dir, keep=keep)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"backup written: {path} ({path.stat().st_size} bytes)"))
