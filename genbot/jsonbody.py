"""The JSON body of a webhook request (YooKassa's, Telegram's): one parser, one notion of malformed.

``json.loads`` recurses once per nesting level, so a body of 100 000 ``[`` raises RecursionError
(a 500, and a worker thread busy unwinding) instead of ValueError; and what it returns is walked
again by whoever reads it. Both are refused here: past MAX_DEPTH levels the body is malformed.
"""
from __future__ import annotations

import json

# Telegram's deepest update (a message replying to a message, with entities) nests about ten levels.
MAX_DEPTH = 64


class MalformedJSON(ValueError):
    pass


def parse_json_body(body: bytes | str, *, max_depth: int = MAX_DEPTH):
    """The decoded body; MalformedJSON when it is not UTF-8 JSON or nests deeper than ``max_depth``."""
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise MalformedJSON("JSON nested too deep") from exc
    except ValueError as exc:  # not JSON, not UTF-8
        raise MalformedJSON(str(exc)) from exc
    # Iterative: this walk itself must not recurse.
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                raise MalformedJSON(f"JSON nested deeper than {max_depth} levels")
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return data
