"""Telegram's published Bot API types (``shared/specs/telegram-bot-api-10.1.json``), to check what the
sandbox answers: every required field present, no field the type does not have, recursively.

The spec is a folder beside the project (``<project>/../shared/specs/``, as CI lays it out) or
beside a folder holding the project (a worktree): the first ancestor that has it.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SPEC_NAME = "telegram-bot-api-10.1.json"
PROJECT = Path(__file__).resolve().parents[2]
ARRAY = "Array of "
PRIMITIVES = {
    "String": lambda v: isinstance(v, str),
    "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "Float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "Boolean": lambda v: isinstance(v, bool),
    "True": lambda v: v is True,
}


def spec_path() -> Path:
    for folder in PROJECT.parents:
        candidate = folder / "shared" / "specs" / SPEC_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{SPEC_NAME} not found in shared/specs/ beside {PROJECT} or any folder above it")


@cache
def load_spec() -> "BotApiSpec":
    return BotApiSpec(json.loads(spec_path().read_text()))


class BotApiSpec:
    def __init__(self, data: dict):
        self.version = data["version"]
        self.types: dict = data["types"]
        self.methods: dict = data["methods"]

    def check_result(self, method: str, result) -> list[str]:
        """What is wrong with ``result`` as the answer to ``method`` (empty: nothing)."""
        if method not in self.methods:
            return [f"{method}: not a Bot API method"]
        return self._any_of(self.methods[method]["returns"], result, method)

    def check(self, type_name: str, value, path: str = "") -> list[str]:
        """What is wrong with ``value`` as a ``type_name`` ("Message", "Array of PhotoSize", "Integer")."""
        path = path or type_name
        if type_name.startswith(ARRAY):
            if not isinstance(value, list):
                return [f"{path}: {type_name} expected, got {type(value).__name__}"]
            inner = type_name[len(ARRAY):]
            return [error for i, item in enumerate(value) for error in self.check(inner, item, f"{path}[{i}]")]
        if type_name in PRIMITIVES:
            return [] if PRIMITIVES[type_name](value) else [f"{path}: {type_name} expected, got {value!r:.80}"]
        spec = self.types.get(type_name)
        if spec is None:
            return [f"{path}: unknown type {type_name}"]
        if "subtypes" in spec:  # one of several objects (MaybeInaccessibleMessage, MessageOrigin...)
            return self._any_of(spec["subtypes"], value, path)
        if not isinstance(value, dict):
            return [f"{path}: {type_name} object expected, got {value!r:.80}"]
        fields = {field["name"]: field for field in spec.get("fields", [])}
        errors = [f"{path}.{name}: no such field in {type_name}" for name in value if name not in fields]
        for name, field in fields.items():
            if name not in value:
                if field["required"]:
                    errors.append(f"{path}.{name}: required in {type_name}, missing")
                continue
            errors += self._any_of(field["types"], value[name], f"{path}.{name}")
        return errors

    def _any_of(self, type_names: list[str], value, path: str) -> list[str]:
        attempts = [self.check(name, value, path) for name in type_names]
        if any(not errors for errors in attempts):
            return []
        return min(attempts, key=len) if len(type_names) == 1 else [
            f"{path}: none of {' | '.join(type_names)} fits; closest: {min(attempts, key=len)}"
        ]
