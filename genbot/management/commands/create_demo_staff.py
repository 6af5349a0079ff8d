"""``manage.py create_demo_staff``: bin/run's demo superuser, on the local default database only.

Its password is printed by bin/run and written in the README, so it must never exist on a real
database: with DATABASE_URL set, or DATABASE_PATH pointing elsewhere, nothing is created.
"""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create bin/run's demo superuser (local default SQLite database only)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="genbot-demo")

    def handle(self, *args, username, password, **options):
        if not settings.DATABASE_IS_LOCAL_DEFAULT:
            self.stdout.write("not the local default database: no demo user (manage.py createsuperuser makes one)")
            return
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"demo user {username} exists")
            return
        User.objects.create_superuser(username, "", password)
        self.stdout.write(f"demo user {username} created")
