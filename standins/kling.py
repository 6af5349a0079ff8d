"""Kling's video task API: create, look up (by task id or ``external_task_id``), callbacks, download.

It checks the HS256 JWT (``iss``/``exp``/``nbf``), the path and the body, and answers with
Kling's business codes beside the HTTP status.

- The create's body is checked against the protocol: a field the endpoint does not define (text2video:
  ``FIELDS["text2video"]``; image2video has ``image``/``image_tail`` and no ``aspect_ratio``), a
  ``model_name`` Kling does not serve, or a value the model does not take (``MODELS``: its modes;
  ``sound`` "on"/"off" on kling-v2-6 in pro mode only; ``image_tail`` in pro mode only;
  ``cfg_scale`` not on v2 models; duration "5"/"10"; aspect_ratio 16:9, 9:16, 1:1; prompts up to
  2,500 characters; images as bare base64) is refused with 400 code 1201 and creates nothing.

- ``POST /v1/videos/{text2video,image2video}`` takes an optional ``external_task_id`` (unique per
  account: a second create with it is refused, 400 code 1201, and creates nothing) and an
  optional ``callback_url``. With ``max_parallel`` tasks already submitted or processing, a
  create is refused with 429 code 1303 and creates nothing.
- ``GET /v1/videos/<endpoint>/<task_id or external_task_id>``: the task object (``task_id``,
  ``task_status``, ``task_status_msg``, ``task_info.external_task_id``, ``created_at``,
  ``updated_at`` in ms, ``task_result.videos`` once succeeded); an unknown id is 404 code 1203.
- A task is ``submitted`` when created, then ``processing``, then ``succeed`` or ``failed``. By
  default the polls drive it (the first poll finds it processing, the second done);
  ``task_seconds=D`` makes it a clock instead: processing after min(1 s, D/4), done D seconds
  after the create, polled or not.
- On every status change (the create's ``submitted`` included) the task object is POSTed as
  JSON to its ``callback_url`` from a background thread, in order per task, with a short
  timeout; a failed delivery is logged and dropped, as Kling does.
- More than ``requests_per_minute`` authenticated requests: 429 code 1302.
- ``GET /_stub/stats``: tasks_created, in_flight, max_in_flight, succeeded, failed,
  duplicate_external_ids (refused creates), refused_parallel, refused_rate, polls, requests,
  callbacks_sent, callbacks_failed.

Scripted behaviours (per created task): success, safety, rate_limit, concurrency_limit,
server_error, billing, task_failed, timeout, slow_create (the task is created, the answer comes
``slow_seconds`` later), malformed, expired_url, poll_error (one 500 on a
poll, then success), poll_down (every poll 500). The task's video URL: flaky_download (500
twice, then the video), redirect_home (a relative redirect to itself, then the video),
redirect_private / redirect_link_local (a redirect to 10.0.0.7 / 169.254.169.254),
slow_download (the video dripped in pieces, ``slow_seconds`` in all), unsized_download (chunked,
no Content-Length).
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import queue
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import jwt

from standins.stubserver import JSON, StreamedBody, StubServer

logger = logging.getLogger(__name__)

# A tiny but real MP4 would need ffmpeg; the stub's "video" only has to be bytes the client saves.
STUB_VIDEO = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
DEFAULT_REQUESTS_PER_MINUTE = 60_000  # generous: the product's own pacing is what tests exercise
ORDER = {"submitted": 0, "processing": 1, "succeed": 2, "failed": 2}
SAFETY_MESSAGE = "Failure to pass the risk control system"

FIELDS = {
    "text2video": {"model_name", "prompt", "negative_prompt", "cfg_scale", "mode", "camera_control", "aspect_ratio",
                   "duration", "sound", "callback_url", "external_task_id"},
    "image2video": {"model_name", "image", "image_tail", "prompt", "negative_prompt", "cfg_scale", "mode",
                    "static_mask", "dynamic_masks", "camera_control", "duration", "sound", "callback_url",
                    "external_task_id"},
}
# model_name -> (modes, modes with sound, modes with image_tail)
MODELS = {
    "kling-v1": ({"std", "pro"}, set(), {"pro"}),
    "kling-v1-6": ({"std", "pro"}, set(), {"pro"}),
    "kling-v2-1": ({"std", "pro"}, set(), {"pro"}),
    "kling-v2-1-master": ({"std", "pro"}, set(), set()),
    "kling-v2-5-turbo": ({"std", "pro"}, set(), {"pro"}),
    "kling-v2-6": ({"std", "pro"}, {"pro"}, {"pro"}),
}
PROMPT_CHARS = 2500


def body_refusal(endpoint: str, body: dict) -> str | None:
    """Why Kling would refuse this create's body (code 1201), or None."""
    unknown = sorted(set(body) - FIELDS[endpoint])
    if unknown:
        return f"Invalid request parameters: unknown field {unknown[0]}"
    model = body.get("model_name", "kling-v1")
    if model not in MODELS:
        return f"model_name {model} is not supported"
    modes, sound_modes, tail_modes = MODELS[model]
    mode = body.get("mode", "std")
    if not body.get("prompt") and endpoint == "text2video":
        return "prompt is required"
    if endpoint == "image2video" and not body.get("image"):
        return "image is required"
    if body.get("duration") not in ("5", "10") or mode not in modes:
        return "invalid duration or mode"
    if any(len(str(body.get(key) or "")) > PROMPT_CHARS for key in ("prompt", "negative_prompt")):
        return f"prompt and negative_prompt take at most {PROMPT_CHARS} characters"
    if "aspect_ratio" in body and body["aspect_ratio"] not in ("16:9", "9:16", "1:1"):
        return f"aspect_ratio {body['aspect_ratio']} is not supported"
    if "sound" in body and (body["sound"] not in ("on", "off") or mode not in sound_modes):
        return f"sound is not supported by {model} in {mode} mode"
    if "image_tail" in body and mode not in tail_modes:
        return f"image_tail is not supported by {model} in {mode} mode"
    if "cfg_scale" in body and model.startswith("kling-v2"):
        return f"cfg_scale is not supported by {model}"
    for key in ("image", "image_tail"):
        if str(body.get(key) or "").startswith("data:"):
            return f"{key} must be base64 without a data: prefix"
    return None


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Task:
    task_id: str
    endpoint: str
    behaviour: str
    external_task_id: str | None
    callback_url: str | None
    processing_at: float | None  # monotonic deadlines when the clock drives the task
    done_at: float | None
    created_at: int = field(default_factory=now_ms)
    updated_at: int = 0
    status: str = "submitted"
    status_msg: str = ""
    polls: int = 0
    downloads: int = 0
    duration: str = "5"

    @property
    def finished(self) -> bool:
        return ORDER[self.status] == 2


class Callbacks:
    """POSTs task objects from ``threads`` background threads; one task's always from the same
    thread, so its callbacks arrive in the order of its status changes."""

    def __init__(self, *, threads: int, timeout: float, counted):
        self.timeout, self.counted = timeout, counted
        self.queues = [queue.SimpleQueue() for _ in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(q,), name="kling-callbacks", daemon=True)
                        for q in self.queues]
        for thread in self.threads:
            thread.start()

    def send(self, url: str, payload: dict, *, shard: int) -> None:
        self.queues[shard % len(self.queues)].put((url, json.dumps(payload).encode()))

    def stop(self) -> None:
        for q in self.queues:
            q.put(None)

    def _run(self, q: queue.SimpleQueue) -> None:
        while (item := q.get()) is not None:
            url, data = item
            request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": JSON})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    answer.read()
                self.counted("callbacks_sent")
            except Exception as exc:  # noqa: BLE001 - Kling logs and forgets a failed callback
                logger.warning("kling stub: callback to %s failed: %s", url, exc)
                self.counted("callbacks_failed")


class Clock:
    """Calls ``fire(item)`` from one thread when each item's monotonic time comes."""

    def __init__(self, fire):
        self.fire = fire
        self.heap: list[tuple[float, int, object]] = []
        self.order = itertools.count()
        self.condition = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="kling-clock", daemon=True)
        self.thread.start()

    def at(self, when: float, item) -> None:
        with self.condition:
            heapq.heappush(self.heap, (when, next(self.order), item))
            self.condition.notify()

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify()

    def _run(self) -> None:
        while True:
            with self.condition:
                while not self.stopped and (not self.heap or self.heap[0][0] > time.monotonic()):
                    self.condition.wait(self.heap[0][0] - time.monotonic() if self.heap else None)
                if self.stopped:
                    return
                item = heapq.heappop(self.heap)[2]
            self.fire(item)


class KlingStub(StubServer):
    POLLS_BEFORE_DONE = 2

    def __init__(self, *, access_key: str = "test-access-key", secret_key: str = "test-secret-key-of-32-characters",
                 task_seconds: float | None = None, max_parallel: int | None = None,
                 requests_per_minute: int | None = DEFAULT_REQUESTS_PER_MINUTE,
                 callback_timeout: float = 2.0, callback_threads: int = 4, video: bytes = STUB_VIDEO, **kwargs):
        super().__init__(requests_per_minute=requests_per_minute, **kwargs)
        self.video_bytes = video  # STUB_VIDEO, or a real MP4 when the product should probe one
        self.access_key = access_key
        self.secret_key = secret_key
        self.task_seconds = task_seconds
        self.max_parallel = max_parallel
        self.tasks: dict[str, Task] = {}
        self.by_external_id: dict[str, Task] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.ids = itertools.count(860000000000000001)
        self.callbacks = Callbacks(threads=callback_threads, timeout=callback_timeout, counted=self._count)
        self.clock = Clock(self._tick)

    def stop(self) -> None:
        super().stop()
        self.clock.stop()
        self.callbacks.stop()

    def _count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def stats(self) -> dict:
        with self.lock:
            return {**super().stats(), "tasks_created": self.counts["tasks_created"], "in_flight": self.in_flight,
                    "max_in_flight": self.max_in_flight, "succeeded": self.counts["succeed"],
                    "failed": self.counts["failed"], "duplicate_external_ids": self.counts["duplicate_external_ids"],
                    "refused_parallel": self.counts["refused_parallel"], "polls": self.counts["polls"],
                    "callbacks_sent": self.counts["callbacks_sent"], "callbacks_failed": self.counts["callbacks_failed"],
                    "task_seconds": self.task_seconds, "max_parallel": self.max_parallel}

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.tasks.clear()
            self.by_external_id.clear()
            self.in_flight = self.max_in_flight = 0

    @staticmethod
    def answer(status: int, code: int, message: str, data=None, delay: float = 0):
        return status, {"code": code, "message": message, "request_id": "stub-request", "data": data}, JSON, delay

    def check_token(self, headers) -> tuple | None:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self.answer(401, 1001, "Authorization is empty")
        try:
            claims = jwt.decode(auth[7:], self.secret_key, algorithms=["HS256"], options={"require": ["iss", "exp", "nbf"]})
        except jwt.ExpiredSignatureError:
            return self.answer(401, 1004, "Authorization has expired")
        except jwt.PyJWTError:
            return self.answer(401, 1002, "Authorization is invalid")
        if claims.get("iss") != self.access_key:
            return self.answer(401, 1002, "Authorization is invalid")
        return None

    def handle(self, method, path, headers, body):
        if method == "GET" and path.startswith("/files/"):
            return self.video(urlsplit(path))
        refused = self.check_token(headers)
        if refused:
            return refused
        if self.over_rate(self.access_key):
            return self.answer(429, 1302, "The API request is too fast, please slow down the request frequency")
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[:2] != ["v1", "videos"] or parts[2] not in ("text2video", "image2video"):
            return self.answer(404, 1203, "Requested resource not found")
        if method == "POST" and len(parts) == 3:
            return self.create(parts[2], body or {})
        if method == "GET" and len(parts) == 4:
            return self.poll(parts[2], unquote(parts[3]))
        return self.answer(404, 1203, "Requested resource not found")

    # --- tasks ---

    def task_data(self, task: Task) -> dict:
        """The task object of a look-up's ``data`` and of a callback's body."""
        data = {"task_id": task.task_id, "task_status": task.status, "task_status_msg": task.status_msg,
                "task_info": {"external_task_id": task.external_task_id} if task.external_task_id else {},
                "created_at": task.created_at, "updated_at": task.updated_at}
        if task.status == "succeed":
            data["task_result"] = {"videos": [{"id": f"v{task.task_id}", "url": f"{self.url}/files/{task.task_id}.mp4",
                                               "duration": task.duration}]}
        return data

    def create(self, endpoint: str, body: dict):
        refused = body_refusal(endpoint, body)
        if refused:
            return self.answer(400, 1201, refused)
        external_id, callback_url = body.get("external_task_id"), body.get("callback_url")
        if external_id is not None and (not isinstance(external_id, str) or not external_id):
            return self.answer(400, 1201, "external_task_id must be a non-empty string")
        if callback_url is not None and (not isinstance(callback_url, str)
                                         or urlsplit(callback_url).scheme not in ("http", "https")):
            return self.answer(400, 1201, "callback_url must be an http(s) URL")
        with self.lock:
            if external_id is not None and external_id in self.by_external_id:
                self.counts["duplicate_external_ids"] += 1
                return self.answer(400, 1201, f"external_task_id {external_id} already exists")
            if self.max_parallel is not None and self.in_flight >= self.max_parallel:
                self.counts["refused_parallel"] += 1
                return self.answer(429, 1303, "Parallel task over resource pack limit")
            behaviour = self.next_behaviour()
            refused = self.refusal(behaviour)
            if refused:
                return refused
            task = self._new_task(endpoint, behaviour, external_id, callback_url)
            task.duration = body["duration"]
            # slow_create: the task is made (and paid) at once, the answer comes slow_seconds later.
            return self.answer(200, 0, "SUCCESS", {key: value for key, value in self.task_data(task).items()
                                                   if key in ("task_id", "task_status", "task_info", "created_at",
                                                              "updated_at")},
                               delay=self.slow_seconds if behaviour == "slow_create" else 0)

    def refusal(self, behaviour: str):
        """A scripted create that makes no task, or None."""
        if behaviour == "safety":
            return self.answer(400, 1301, SAFETY_MESSAGE)
        if behaviour == "rate_limit":
            return self.answer(429, 1302, "The API request is too fast, please slow down the request frequency")
        if behaviour == "concurrency_limit":
            return self.answer(429, 1303, "Parallel task over resource pack limit")
        if behaviour == "billing":
            return self.answer(429, 1102, "Resource pack exhausted")
        if behaviour == "server_error":
            return self.answer(500, 5000, "Server internal error")
        if behaviour == "timeout":
            return self.answer(200, 0, "SUCCESS", {"task_id": "late", "task_status": "submitted"}, delay=self.slow_seconds)
        if behaviour == "malformed":
            return 200, b'{"code": 0, "data": ', JSON, 0
        return None

    def _new_task(self, endpoint, behaviour, external_id, callback_url) -> Task:  # under the lock
        started = time.monotonic()
        timed = self.task_seconds is not None
        task = Task(task_id=str(next(self.ids)), endpoint=endpoint, behaviour=behaviour, external_task_id=external_id,
                    callback_url=callback_url,
                    processing_at=started + min(1.0, self.task_seconds / 4) if timed else None,
                    done_at=started + self.task_seconds if timed else None)
        task.updated_at = task.created_at
        self.tasks[task.task_id] = task
        if external_id is not None:
            self.by_external_id[external_id] = task
        self.counts["tasks_created"] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._announce(task)
        if timed:
            self.clock.at(task.processing_at, task)
            self.clock.at(task.done_at, task)
        return task

    def _tick(self, task: Task) -> None:
        with self.lock:
            if self.tasks.get(task.task_id) is task:  # not forgotten by a reset
                self._advance(task)

    def _advance(self, task: Task) -> None:  # under the lock
        """Move the task as far as its clock (or, without one, its polls) says."""
        if self.task_seconds is None or task.done_at is None:
            reached = 2 if task.polls >= self.POLLS_BEFORE_DONE else 1 if task.polls else 0
        else:
            now = time.monotonic()
            reached = 2 if now >= task.done_at else 1 if now >= task.processing_at else 0
        if reached >= 1 and task.status == "submitted":
            self._move(task, "processing")
        if reached == 2 and not task.finished:
            if task.behaviour == "task_failed":
                self._move(task, "failed", SAFETY_MESSAGE)
            else:
                self._move(task, "succeed")

    def _move(self, task: Task, status: str, message: str = "") -> None:  # under the lock
        task.status, task.status_msg, task.updated_at = status, message, now_ms()
        if task.finished:
            self.in_flight -= 1
            self.counts[status] += 1
        self._announce(task)

    def _announce(self, task: Task) -> None:  # under the lock: the snapshot is this change's
        if task.callback_url:
            self.callbacks.send(task.callback_url, self.task_data(task), shard=int(task.task_id))

    def poll(self, endpoint: str, task_id: str):
        with self.lock:
            task = self.tasks.get(task_id) or self.by_external_id.get(task_id)
            if task is None or task.endpoint != endpoint:
                return self.answer(404, 1203, "resource does not exist")
            self.counts["polls"] += 1
            task.polls += 1
            self._advance(task)
            if (task.behaviour == "poll_error" and task.polls == 1) or task.behaviour == "poll_down":
                return self.answer(500, 5000, "Server internal error")
            return self.answer(200, 0, "SUCCESS", self.task_data(task))

    def video(self, url):
        """The task's video file, as its behaviour has it."""
        task_id = url.path.rsplit("/", 1)[-1].removesuffix(".mp4")
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.behaviour == "expired_url":
                return 403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", "application/xml", 0
            task.downloads += 1
            behaviour, downloads = task.behaviour, task.downloads
        if behaviour == "flaky_download" and downloads <= 2:
            return 500, b"<Error><Code>InternalError</Code></Error>", "application/xml", 0
        redirects = {
            "redirect_home": f"{task_id}.mp4?moved=1",
            "redirect_private": f"http://10.0.0.7/files/{task_id}.mp4",
            "redirect_link_local": "http://169.254.169.254/latest/meta-data/",
        }
        if behaviour in redirects and not url.query:
            return 302, StreamedBody((b"",), headers=(("Location", redirects[behaviour]),)), "text/plain", 0
        if behaviour == "slow_download":
            pieces = tuple(self.video_bytes[i:i + 8] for i in range(0, len(self.video_bytes), 8))
            return 200, StreamedBody(pieces, pause=self.slow_seconds / len(pieces)), "video/mp4", 0
        if behaviour == "unsized_download":
            return 200, StreamedBody((self.video_bytes[:40], self.video_bytes[40:]), sized=False), "video/mp4", 0
        return 200, self.video_bytes, "video/mp4", 0
