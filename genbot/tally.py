"""Counts of what a batch did, by outcome: a payments sync, a wallet import, a broadcast.

Shared plumbing: it imports no app.
"""
from __future__ import annotations


class Tally:
    """Named counts, each 0 at first. A subclass names them once in ``counts``; the batch adds
    with ``tally.add(outcome)`` (the outcome may be computed at run time) or ``tally.sent += 1``,
    and ``as_dict()`` gives them, in that order, to logs, task results and commands' output.
    Anything else a batch keeps (a list of refused rows, the time taken) its subclass sets up
    in ``__init__``."""

    counts: tuple[str, ...] = ()

    def __init__(self, **given: int):
        unknown = set(given) - set(self.counts)
        if unknown:
            raise TypeError(f"{type(self).__name__} counts no {sorted(unknown)}")
        for name in self.counts:
            setattr(self, name, given.get(name, 0))

    def add(self, outcome: str, amount: int = 1) -> None:
        if outcome not in self.counts:
            raise KeyError(f"{type(self).__name__} counts no {outcome!r}")
        setattr(self, outcome, getattr(self, outcome) + amount)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.counts}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"
