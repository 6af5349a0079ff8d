"""Model choices held by the database too: a CHECK that a column holds one of its choices.

Shared plumbing: it imports no app.
"""
from __future__ import annotations

from django.db import models
from django.db.models import Q


def one_of(field: str, choices: type[models.Choices], *, name: str) -> models.CheckConstraint:
    """``field`` holds one of ``choices``' values (``CHECK (field IN (...))``): a value written
    around the ORM (raw SQL, a bulk update with a typo) is refused by the database."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)
