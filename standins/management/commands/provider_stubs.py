"""``manage.py provider_stubs``: the Gemini and Kling stubs in one process, for benchmarks and trials."""
import threading
from pathlib import Path

from django.core.management.base import BaseCommand

from standins.gemini import DEFAULT_REQUESTS_PER_MINUTE as GEMINI_RPM
from standins.gemini import GeminiStub
from standins.kling import DEFAULT_REQUESTS_PER_MINUTE as KLING_RPM
from standins.kling import KlingStub


def limit(value: int | None) -> int | None:
    """0 on the command line: no limit."""
    return value or None


class Command(BaseCommand):
    help = ("Run the local Gemini and Kling stubs (the real clients' protocols; GET /_stub/stats, "
            "POST /_stub/reset) until interrupted.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--gemini-port", type=int, default=8083)
        parser.add_argument("--kling-port", type=int, default=8084)
        parser.add_argument("--gemini-latency", type=float, default=0.0, help="seconds per generateContent call")
        parser.add_argument("--gemini-max-concurrent", type=int, default=0,
                            help="calls at once before 429 RESOURCE_EXHAUSTED (0: no limit)")
        parser.add_argument("--gemini-rpm", type=int, default=GEMINI_RPM, help="requests per minute (0: no limit)")
        parser.add_argument("--kling-task-seconds", type=float, default=None,
                            help="seconds from create to succeed (default: the second poll finishes a task)")
        parser.add_argument("--kling-max-parallel", type=int, default=0,
                            help="tasks submitted or processing before 429 code 1303 (0: no limit)")
        parser.add_argument("--kling-rpm", type=int, default=KLING_RPM,
                            help="requests per minute before 429 code 1302 (0: no limit)")
        parser.add_argument("--kling-video", type=Path, default=None,
                            help="an MP4 file every task delivers (default: a few bytes no player reads)")

    def handle(self, *args, host, gemini_port, kling_port, gemini_latency, gemini_max_concurrent, gemini_rpm,
               kling_task_seconds, kling_max_parallel, kling_rpm, kling_video, **options):
        gemini = GeminiStub(host=host, port=gemini_port, latency=gemini_latency, record_requests=False,
                            max_concurrent=limit(gemini_max_concurrent), requests_per_minute=limit(gemini_rpm))
        kling = KlingStub(host=host, port=kling_port, task_seconds=kling_task_seconds, record_requests=False,
                          max_parallel=limit(kling_max_parallel), requests_per_minute=limit(kling_rpm),
                          **({"video": kling_video.read_bytes()} if kling_video else {}))
        gemini.start(), kling.start()
        self.stdout.write(f"Gemini stub on {gemini.url}: GEMINI_API_URL={gemini.url} NANO_BANANA_API_KEY={gemini.api_key}")
        self.stdout.write(f"Kling stub on {kling.url}: KLING_API_URL={kling.url} "
                          f"KLING_API_KEY={kling.access_key}:{kling.secret_key}")
        self.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            gemini.stop()
            kling.stop()
