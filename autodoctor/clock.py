"""The one clock. Naive UTC everywhere (SQLite and Postgres store the same values);
tests move it with set()/advance()."""
from datetime import UTC, datetime, timedelta

_override = None


def now() -> datetime:
    if _override is not None:
        return _override
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def set(value):  # noqa: A001 - mirrors freezegun's vocabulary
    global _override
    _override = value


def advance(**kwargs):
    set(now() + timedelta(**kwargs))


def reset():
    set(None)
