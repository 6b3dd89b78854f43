"""The audit log: every admin action, with who did it, when, and the values before and after.

Services that change something on an admin's behalf take an `Actor` (the admin's id and the
request's IP address, built by the admin blueprint) and call `record` in the same transaction
as the change, so the log never disagrees with the data."""
from dataclasses import dataclass
from datetime import date, datetime

from autodoctor.extensions import db
from autodoctor.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    id: int
    ip: str | None = None


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def snapshot(obj, *fields):
    """{field: value} of an object, JSON-safe (datetimes as text)."""
    return {field: _plain(getattr(obj, field)) for field in fields}


def record(actor, action, target_type, target_id, summary, before=None, after=None, reason=None):
    """One audit row. `action` is "<object>.<verb>" (e.g. "session.refund"); `before`/`after`
    are dicts of the values that changed (or None when nothing existed before / after)."""
    entry = AuditEntry(actor_id=actor.id if actor else None, ip_address=actor.ip if actor else None,
                       action=action, target_type=target_type, target_id=target_id, summary=summary[:300],
                       reason=(reason or None) and reason[:500], before=_plain(before), after=_plain(after))
    db.session.add(entry)
    db.session.flush()
    return entry


def changed(before, after):
    """Only the keys whose values differ, as (before, after) dicts."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}
