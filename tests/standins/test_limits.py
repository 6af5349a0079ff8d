"""The stand-ins' own rate limiter, and the Bot API sandbox's flood limits built on it."""
from __future__ import annotations

import pytest

from standins.limits import SlidingWindow, admit
from standins.telegram import ApiError, SandboxState


def test_a_window_admits_its_limit_then_answers_when_the_oldest_call_leaves_it():
    window = SlidingWindow(limit=3, seconds=1.0)
    assert [admit([(window, "k")], now=t) for t in (10.0, 10.2, 10.4)] == [0.0, 0.0, 0.0]
    assert admit([(window, "k")], now=10.5) == pytest.approx(0.5)  # 10.0 leaves at 11.0
    assert admit([(window, "other")], now=10.5) == 0.0  # keys are counted apart
    assert admit([(window, "k")], now=11.0) == 0.0


def test_a_call_refused_by_one_window_is_counted_in_none():
    per_key, overall = SlidingWindow(limit=1, seconds=1.0), SlidingWindow(limit=1, seconds=1.0)
    admit([(overall, None)], now=0.0)
    assert admit([(per_key, "k"), (overall, None)], now=0.1) == pytest.approx(0.9)
    assert admit([(per_key, "k")], now=0.2) == 0.0  # the refused call took no room in per_key


def test_a_window_forgets_keys_whose_calls_all_left_it():
    window = SlidingWindow(limit=1, seconds=1.0, max_keys=2)
    for key in range(3):
        admit([(window, key)], now=0.0)
    admit([(window, "late")], now=5.0)
    assert list(window._calls) == ["late"]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sends(state: SandboxState, chat_id: int, times: list[float]) -> list[int]:
    codes = []
    for t in times:
        state.clock.now = 1000.0 + t
        try:
            state.call("sendMessage", {"chat_id": chat_id, "text": "hi"}, {})
            codes.append(200)
        except ApiError as exc:
            codes.append(exc.code)
            assert exc.code == 429 and exc.parameters["retry_after"] >= 1
    return codes


def test_a_chat_kept_at_two_a_second_is_answered_429_as_telegram_would():
    # Within the short burst window, but twice Telegram's one message a second per chat.
    codes = _sends(SandboxState(clock=Clock()), 5, [i * 0.5 for i in range(20)])
    assert codes[:15] == [200] * 15 and 429 in codes[15:]


def test_a_sender_pacing_one_a_second_after_a_burst_of_two_is_never_refused():
    # The product's sender: a burst of two, then one a second (telegram_bot.sender).
    state = SandboxState(clock=Clock())
    assert _sends(state, 6, [0.0, 0.0] + [float(i) for i in range(1, 40)]) == [200] * 41
    assert state.stats["too_many_requests"] == 0


def test_all_chats_together_are_held_to_about_thirty_a_second():
    state = SandboxState(clock=Clock())
    codes = [_sends(state, 9000 + i, [0.01 * i])[0] for i in range(40)]
    assert codes[:35] == [200] * 35 and codes[35:] == [429] * 5
    assert state.stats["too_many_requests"] == 5


def test_without_flood_limits_nothing_is_refused():
    assert _sends(SandboxState(flood_limits=False, clock=Clock()), 7, [0.0] * 10) == [200] * 10
