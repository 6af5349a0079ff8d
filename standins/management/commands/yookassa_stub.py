from django.conf import settings
from django.core.management.base import BaseCommand

from standins.yookassa import RATE_LIMIT, YooKassaStub


class Command(BaseCommand):
    help = "Run the local YooKassa stub (API v3 for the SDK and a fake checkout page) for offline runs."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8082)
        parser.add_argument(
            "--webhook-url", default=settings.YOOKASSA_STUB_WEBHOOK_URL,
            help="where notifications are posted (default YOOKASSA_STUB_WEBHOOK_URL)",
        )
        parser.add_argument(
            "--calls-per-second", type=int, default=RATE_LIMIT[0],
            help=f"API calls a shop may make in any second; more are answered 429 (default {RATE_LIMIT[0]})",
        )

    def handle(self, *args, host, port, webhook_url, calls_per_second, **options):
        # The configured shop (settings' demo shop in offline runs).
        stub = YooKassaStub(host=host, port=port, webhook_url=webhook_url, rate_limit=(calls_per_second, 1.0))
        self.stdout.write(f"YooKassa stub on http://{host}:{port}/v3, notifications to {webhook_url}")
        try:
            stub.serve_forever()
        except KeyboardInterrupt:
            pass
