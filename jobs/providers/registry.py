"""Which provider makes which kind: a real one when its key is set, the fake otherwise.

``AI_PROVIDER`` overrides: ``fake`` always uses the fake, ``real`` always the real providers
(a missing key then fails the job with a clear error), ``auto`` (default) decides by the keys.
"""
from __future__ import annotations

from django.conf import settings

from .. import catalog
from .base import BaseAIProvider
from .fake import FakeProvider
from .gemini import GeminiImageProvider
from .kling import KlingVideoProvider

def provider_name_for(kind: str) -> str:
    mode = (settings.AI_PROVIDER or "auto").lower()
    video = catalog.is_video(kind)
    if mode == "fake":
        return FakeProvider.name
    if mode == "real":
        return KlingVideoProvider.name if video else GeminiImageProvider.name
    key = settings.KLING_API_KEY if video else settings.NANO_BANANA_API_KEY
    if not key:
        return FakeProvider.name
    return KlingVideoProvider.name if video else GeminiImageProvider.name


PROVIDERS: dict[str, type[BaseAIProvider]] = {
    FakeProvider.name: FakeProvider,
    GeminiImageProvider.name: GeminiImageProvider,
    KlingVideoProvider.name: KlingVideoProvider,
}


def get_provider(name: str) -> BaseAIProvider:
    """A provider instance by the name stored on the job (configured from settings now)."""
    return PROVIDERS[name]()
