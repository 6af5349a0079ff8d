"""Local HTTP servers speaking the Gemini and Kling protocols, so the real clients are tested.

The stubs themselves live in ``standins.gemini`` and ``standins.kling`` on the server of
``standins.stubserver``; this module is the one place tests and ``manage.py provider_stubs``
import them from.
"""
from standins.gemini import GeminiStub, stub_png
from standins.kling import STUB_VIDEO, KlingStub
from standins.stubserver import StreamedBody, StubServer

__all__ = ["GeminiStub", "KlingStub", "STUB_VIDEO", "StreamedBody", "StubServer", "stub_png"]
