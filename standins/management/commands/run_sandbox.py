"""``manage.py run_sandbox --port 8081``: the local Bot API server and its chat page."""
from django.core.management.base import BaseCommand

from standins.telegram import SandboxServer


class Command(BaseCommand):
    help = "Run the local Bot API sandbox (Bot API subset + browser chat page)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8081)
        parser.add_argument("--no-flood-limits", action="store_true", help="Never answer 429.")

    def handle(self, *args, host, port, no_flood_limits, **options):
        server = SandboxServer(host=host, port=port, flood_limits=not no_flood_limits)
        self.stdout.write(f"Bot API sandbox on {server.url} (chat page: {server.url}/)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
