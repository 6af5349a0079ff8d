from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from genbot.backups import BackupError, Target, restore_backup


class Command(BaseCommand):
    help = (
        "Restore a backup made by `backup` into the configured database, or with --into into another "
        "(for example a scratch database, to verify a backup). Run `reconcile` afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup_file")
        parser.add_argument("--into", help="a database URL to restore into instead of the configured one")
        parser.add_argument("--yes", action="store_true", help="confirm: the target's contents are replaced")

    def handle(self, *args, backup_file, into=None, yes=False, **options):
        if not yes:
            raise CommandError("restore replaces the target database's contents: add --yes to confirm")
        try:
            target = Target.from_url(into) if into else None
            restore_backup(path=Path(backup_file), target=target)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"restored {backup_file}; now run `manage.py reconcile`"))
