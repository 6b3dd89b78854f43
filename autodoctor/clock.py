"""The one clock. Naive UTC everywhere (SQLite and Postgres store the same values);
tests move it with set()/advance().

Browser tests move the clock of the live server's processes (web and worker) too: when
`CLOCK_OFFSET_FILE` is set, the number of seconds in that file is added to the real
time (re-read whenever the file changes). Only the test fixture sets it."""
import os
from datetime import UTC, datetime, timedelta

_override = None
_offset_file = os.environ.get("CLOCK_OFFSET_FILE")
_offset = (None, timedelta(0))  # (file mtime, offset)


def now() -> datetime:
    if _override is not None:
        return _override
    real = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    return real + _file_offset() if _offset_file else real


def _file_offset():
    global _offset
    try:
        mtime = os.stat(_offset_file).st_mtime_ns
    except OSError:
        return timedelta(0)
    if mtime != _offset[0]:
        try:
            with open(_offset_file) as f:
                _offset = (mtime, timedelta(seconds=float(f.read().strip() or 0)))
        except (OSError, ValueError):
            return _offset[1]
    return _offset[1]


def set(value):  # noqa: A001 - mirrors freezegun's vocabulary
    global _override
    _override = value


def advance(**kwargs):
    set(now() + timedelta(**kwargs))


def reset():
    set(None)
