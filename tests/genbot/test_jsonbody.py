"""One parser for webhook bodies: malformed (ValueError) when not JSON or nested too deep, never RecursionError."""
import pytest

from genbot.jsonbody import MAX_DEPTH, MalformedJSON, parse_json_body


def nested(levels: int) -> bytes:
    return b'{"a": ' * levels + b"1" + b"}" * levels


def test_a_body_nested_up_to_the_limit_parses():
    data = parse_json_body(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH):
        data = data["a"]
    assert data == 1
    assert parse_json_body(b'{"update_id": 1, "message": {"chat": {"id": 5}, "entities": [{"offset": 0}]}}')["update_id"] == 1


@pytest.mark.parametrize("body", [
    nested(MAX_DEPTH + 1),
    b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    b"[" * 100_000 + b"]" * 100_000,  # json.loads itself gives up: RecursionError
    b"\xff\xfe",
    b"{not json",
    b"",
])
def test_malformed_bodies_raise_a_value_error(body):
    with pytest.raises(MalformedJSON) as raised:
        parse_json_body(body)
    assert isinstance(raised.value, ValueError)
