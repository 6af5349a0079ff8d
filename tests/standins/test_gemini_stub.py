"""The Gemini stub: a latency per call, a concurrency limit answering Google's 429
RESOURCE_EXHAUSTED (real threads), its own request limit, and stats."""
from __future__ import annotations

import threading

import pytest
import requests

from standins.gemini import GeminiStub

BODY = {"contents": [{"parts": [{"text": "a red fox"}]}], "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}


def call(stub: GeminiStub) -> requests.Response:
    return requests.post(f"{stub.url}/v1beta/models/{stub.model}:generateContent", json=BODY,
                         headers={"x-goog-api-key": stub.api_key}, timeout=10)


@pytest.fixture
def gemini(start_stub):
    return lambda **options: start_stub(GeminiStub, **options)


def test_calls_over_the_concurrency_limit_are_429_resource_exhausted_at_once(gemini):
    stub = gemini(latency=0.6, max_concurrent=2)
    barrier, answers = threading.Barrier(5), []

    def worker():
        barrier.wait()
        answers.append(call(stub))

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(ok) == 2 and len(refused) == 3
    assert all("inlineData" in a.json()["candidates"][0]["content"]["parts"][1] for a in ok)
    error = refused[0].json()["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED" and error["message"]
    assert all(a.elapsed.total_seconds() < 0.5 for a in refused)  # refused at once, not after the latency
    stats = stub.stats()
    assert (stats["calls"], stats["max_concurrent"], stats["refused_concurrency"], stats["concurrent"]) == (2, 2, 3, 0)
    assert call(stub).status_code == 200  # the slots came back


def test_the_latency_is_spent_in_every_call(gemini):
    stub = gemini(latency=0.3)
    assert call(stub).elapsed.total_seconds() >= 0.3


def test_its_own_request_limit_answers_429(gemini):
    stub = gemini(requests_per_minute=2)
    assert [call(stub).status_code for _ in range(2)] == [200, 200]
    refused = call(stub)
    assert refused.status_code == 429 and refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    stats = requests.get(f"{stub.url}/_stub/stats", timeout=5).json()
    assert (stats["requests"], stats["calls"], stats["refused_rate"]) == (3, 2, 1)
