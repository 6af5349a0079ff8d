"""The Kling stub speaks the task protocol the product is written against: external ids,
callbacks on every status change, a task clock, the parallel-task limit (1303), its own request
limit (1302) and the stats a benchmark reads over HTTP."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from jobs.providers.kling import make_token
from standins.kling import KlingStub
from tests.helpers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
BODY = {"model_name": "kling-v1", "prompt": "a cat on a piano", "mode": "std", "duration": "5"}


class Client:
    def __init__(self, stub: KlingStub):
        self.stub = stub

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {make_token(self.stub.access_key, self.stub.secret_key)}"}

    def create(self, **extra) -> requests.Response:
        return requests.post(f"{self.stub.url}/v1/videos/text2video", json={**BODY, **extra},
                             headers=self.headers(), timeout=5)

    def get(self, task_id: str, endpoint: str = "text2video") -> requests.Response:
        return requests.get(f"{self.stub.url}/v1/videos/{endpoint}/{task_id}", headers=self.headers(), timeout=5)


@pytest.fixture
def kling(start_stub):
    return lambda **options: Client(start_stub(KlingStub, **options))


@pytest.fixture
def receiver():
    """A tiny HTTP server recording the callbacks POSTed to it: (content type, JSON body)."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}/webhook/kling/signed-token"
    yield server
    server.shutdown()
    server.server_close()


def test_a_task_is_found_by_its_external_id_and_a_second_create_with_it_is_refused(kling):
    client = kling()
    created = client.create(external_task_id="genbot-job-7")
    assert created.status_code == 200
    data = created.json()["data"]
    assert data["task_status"] == "submitted" and data["task_info"] == {"external_task_id": "genbot-job-7"}

    by_external, by_id = client.get("genbot-job-7").json()["data"], client.get(data["task_id"]).json()["data"]
    assert by_external["task_id"] == by_id["task_id"] == data["task_id"]
    assert by_external["task_info"]["external_task_id"] == "genbot-job-7"
    assert set(by_external) >= {"task_id", "task_status", "task_status_msg", "task_info", "created_at", "updated_at"}

    again = client.create(external_task_id="genbot-job-7")
    assert again.status_code == 400
    assert again.json()["code"] == 1201 and "already exists" in again.json()["message"]
    stats = client.stub.stats()
    assert stats["tasks_created"] == 1 and stats["duplicate_external_ids"] == 1 and len(client.stub.tasks) == 1


def test_an_unknown_id_is_404_code_1203_and_the_endpoint_must_match(kling):
    client = kling()
    assert (client.get("nope").status_code, client.get("nope").json()["code"]) == (404, 1203)
    task_id = client.create(external_task_id="x").json()["data"]["task_id"]
    assert client.get(task_id, endpoint="image2video").json()["code"] == 1203


def test_by_default_the_second_poll_finishes_a_task_with_its_video(kling):
    client = kling(video=b"an mp4 of the caller's choice")
    task_id = client.create().json()["data"]["task_id"]
    assert client.get(task_id).json()["data"]["task_status"] == "processing"
    done = client.get(task_id).json()["data"]
    assert done["task_status"] == "succeed"
    video = requests.get(done["task_result"]["videos"][0]["url"], timeout=5)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"
    assert video.content == b"an mp4 of the caller's choice"


def test_with_a_task_duration_the_clock_finishes_the_task_unpolled(kling):
    client = kling(task_seconds=0.4)
    task_id = client.create().json()["data"]["task_id"]
    assert client.get(task_id).json()["data"]["task_status"] in ("submitted", "processing")
    assert client.stub.stats()["in_flight"] == 1
    wait_until(lambda: client.stub.stats()["in_flight"] == 0, timeout=5, message="the task's end")
    assert client.get(task_id).json()["data"]["task_status"] == "succeed"
    assert client.stub.stats()["succeeded"] == 1


@pytest.mark.parametrize("behaviour, final", [("success", "succeed"), ("task_failed", "failed")])
def test_every_status_change_is_posted_to_the_callback_url_as_the_task_object(kling, receiver, behaviour, final):
    client = kling(task_seconds=0.3)
    client.stub.script(behaviour)
    task_id = client.create(external_task_id="job-1", callback_url=receiver.url).json()["data"]["task_id"]
    wait_until(lambda: len(receiver.received) == 3, timeout=5, message="three callbacks")
    assert [body["task_status"] for _type, body in receiver.received] == ["submitted", "processing", final]
    assert {content_type for content_type, _body in receiver.received} == {"application/json"}
    last = receiver.received[-1][1]
    assert last == client.get(task_id).json()["data"]  # the same object as the look-up's data
    assert last["task_info"] == {"external_task_id": "job-1"}
    assert ("task_result" in last) == (final == "succeed")
    assert client.stub.stats()["callbacks_sent"] == 3


def test_a_poll_driven_task_calls_back_on_the_polls_that_move_it(kling, receiver):
    client = kling()
    task_id = client.create(callback_url=receiver.url).json()["data"]["task_id"]
    client.get(task_id), client.get(task_id), client.get(task_id)
    wait_until(lambda: len(receiver.received) == 3, timeout=5, message="three callbacks")
    assert [body["task_status"] for _type, body in receiver.received] == ["submitted", "processing", "succeed"]


def test_a_failed_callback_is_logged_and_dropped_and_the_task_carries_on(kling, caplog):
    client = kling(task_seconds=0.2, callback_timeout=0.5)
    client.create(callback_url=f"http://127.0.0.1:{free_port()}/nobody")
    wait_until(lambda: client.stub.stats()["callbacks_failed"] == 3, timeout=10, message="three failed callbacks")
    assert client.stub.stats()["succeeded"] == 1 and client.stub.stats()["callbacks_sent"] == 0
    assert "callback to" in caplog.text


def test_a_create_over_the_parallel_limit_is_1303_and_makes_nothing_until_a_task_finishes(kling):
    client = kling(max_parallel=2, task_seconds=0.5)
    first, second = client.create(), client.create()
    assert first.status_code == second.status_code == 200
    over = client.create(external_task_id="third")
    assert over.status_code == 429 and over.json()["code"] == 1303
    assert client.get("third").status_code == 404  # nothing was made, the id is still free
    stats = client.stub.stats()
    assert (stats["tasks_created"], stats["refused_parallel"], stats["in_flight"]) == (2, 1, 2)

    wait_until(lambda: client.stub.stats()["in_flight"] < 2, timeout=5, message="a task to finish")
    assert client.create(external_task_id="third").status_code == 200
    assert client.stub.stats()["max_in_flight"] == 2


def test_its_own_request_limit_answers_1302(kling):
    client = kling(requests_per_minute=3)
    task_id = client.create().json()["data"]["task_id"]
    assert [client.get(task_id).status_code for _ in range(2)] == [200, 200]
    refused = client.get(task_id)
    assert refused.status_code == 429 and refused.json()["code"] == 1302
    assert client.create().json()["code"] == 1302
    assert client.stub.stats()["refused_rate"] == 2 and client.stub.stats()["tasks_created"] == 1


def test_stats_and_reset_over_http_are_not_counted_as_requests(kling):
    client = kling(max_parallel=1)
    client.create(external_task_id="a"), client.create(external_task_id="b")
    stats = requests.get(f"{client.stub.url}/_stub/stats", timeout=5).json()
    assert stats["requests"] == 2 and stats["tasks_created"] == 1 and stats["refused_parallel"] == 1
    assert requests.post(f"{client.stub.url}/_stub/reset", timeout=5).json() == {"reset": True}
    stats = requests.get(f"{client.stub.url}/_stub/stats", timeout=5).json()
    assert (stats["requests"], stats["tasks_created"], stats["in_flight"]) == (0, 0, 0)
    assert client.create(external_task_id="a").status_code == 200  # the ids were forgotten too


def test_many_tasks_at_once_from_many_threads_are_counted_exactly(kling):
    # Tasks driven by their polls, not a clock: none can finish before every create has been
    # answered, so each figure is exact however slowly a loaded machine schedules the threads.
    client = kling(max_parallel=1000)
    answers: list[requests.Response] = []

    def create(i: int) -> None:
        answers.append(client.create(external_task_id=f"job-{i % 100}"))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [answer.json()["data"]["task_id"] for answer in answers if answer.status_code == 200]
    stats = client.stub.stats()
    assert len(created) == len(set(created)) == 100 and stats["tasks_created"] == 100
    assert stats["duplicate_external_ids"] == 100 and stats["max_in_flight"] == stats["in_flight"] == 100
    for task_id in created * KlingStub.POLLS_BEFORE_DONE:
        assert client.get(task_id).status_code == 200
    stats = client.stub.stats()
    assert (stats["succeeded"], stats["in_flight"], stats["max_in_flight"]) == (100, 0, 100)


def test_the_command_runs_both_stubs_with_their_options():
    gemini_port, kling_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "provider_stubs", "--gemini-port", str(gemini_port), "--kling-port",
         str(kling_port), "--kling-task-seconds", "0.2", "--kling-max-parallel", "7", "--gemini-latency", "0.1",
         "--gemini-max-concurrent", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "KLING_API_URL=" in process.stdout.readline() + process.stdout.readline()
        kling = requests.get(f"http://127.0.0.1:{kling_port}/_stub/stats", timeout=5).json()
        gemini = requests.get(f"http://127.0.0.1:{gemini_port}/_stub/stats", timeout=5).json()
        assert (kling["task_seconds"], kling["max_parallel"]) == (0.2, 7)
        assert (gemini["latency"], gemini["concurrency_limit"]) == (0.1, 3)
    finally:
        process.terminate()
        process.wait(timeout=10)
