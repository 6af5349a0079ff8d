"""The product's settings with the benchmarks' URL conf (``bench/urls.py``): for ``bench/webhook.py``."""
from genbot.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
