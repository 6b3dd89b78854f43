"""Mechanic presence: the "Taking requests" toggle and the dashboard stream's heartbeat make a
mechanic online; a stream gone for the window (fixed clock, the sweep) or the toggle turned
off makes them offline; a waiting or live session makes them busy. Each change is a guarded
UPDATE announced once — also when two tabs beat at the same moment (real Postgres) — and
going online enqueues the waitlist's job."""
import sys
import types
from datetime import datetime, timedelta

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import MechanicProfile, User
from autodoctor.services import lifecycle, presence, sweep
from autodoctor.services.errors import Forbidden, NotFound
from tests.factories import AcceptedSessionFactory, UserFactory

T0 = datetime(2026, 11, 24, 12, 0, 0)


@pytest.fixture
def changes(monkeypatch):
    """Every "presence.changed" emitted (the real emit still runs), and every waitlist job enqueued."""
    seen, came_online = [], []
    real_emit = presence.emit

    def recording_emit(kind, **data):
        if kind == "presence.changed":
            seen.append((data["mechanic_id"], data["presence"]))
        real_emit(kind, **data)

    monkeypatch.setattr(presence, "emit", recording_emit)
    fake_jobs = types.ModuleType("autodoctor.jobs.waitlist")
    fake_jobs.mechanic_came_online_job = came_online.append
    monkeypatch.setitem(sys.modules, "autodoctor.jobs.waitlist", fake_jobs)
    return types.SimpleNamespace(presence=seen, came_online=came_online)


def profile(mechanic_id):
    db.session.expire_all()
    return db.session.get(MechanicProfile, mechanic_id)


def mechanic(**profile_fields):
    user = UserFactory("mechanic", **profile_fields)
    db.session.commit()
    return user.id


def test_toggle_on_with_the_dashboard_open_goes_online_and_off_goes_offline_at_once(app, changes):
    clock.set(T0)
    mid = mechanic()
    assert presence.status(mid) == "offline"
    presence.seen(mid)  # the dashboard stream connects
    db.session.commit()
    assert presence.status(mid) == "offline"  # the toggle is off
    assert presence.set_online(mid, True)
    db.session.commit()
    assert presence.status(mid) == "online"
    assert profile(mid).online and profile(mid).presence_changed_at == T0
    clock.set(T0 + timedelta(seconds=5))
    assert presence.set_online(mid, False)
    db.session.commit()
    assert presence.status(mid) == "offline"
    assert not profile(mid).online
    assert profile(mid).presence_changed_at == T0 + timedelta(seconds=5)
    assert changes.presence == [(mid, "online"), (mid, "offline")]


def test_toggle_on_without_a_dashboard_stream_waits_for_its_first_beat(app, changes):
    clock.set(T0)
    mid = mechanic()
    assert not presence.set_online(mid, True)
    db.session.commit()
    assert presence.status(mid) == "offline"
    assert profile(mid).online
    presence.seen(mid)
    db.session.commit()
    assert presence.status(mid) == "online"
    assert changes.presence == [(mid, "online")]


def test_a_stream_gone_for_the_window_is_offline_after_the_sweep(app, changes):
    clock.set(T0)
    mid, other = mechanic(), mechanic()
    for m in (mid, other):
        presence.seen(m)
        presence.set_online(m, True)
    db.session.commit()
    assert presence.online_ids() == {mid, other}
    window = timedelta(seconds=app.config["PRESENCE_TIMEOUT_SECONDS"])
    clock.set(T0 + window / 2)
    presence.seen(other)  # the other dashboard is still open
    db.session.commit()
    clock.set(T0 + window)  # seen exactly a window ago: still online
    sweep.run_sweep()
    assert presence.status(mid) == "online"
    clock.set(T0 + window + timedelta(seconds=1))
    sweep.run_sweep()
    assert presence.status(mid) == "offline"
    assert presence.status(other) == "online"
    assert profile(mid).online  # the toggle stays on: the next beat brings them back
    assert presence.online_ids() == {other}
    assert changes.presence[-1] == (mid, "offline")
    sweep.run_sweep()  # nothing left to expire: announced once
    assert changes.presence.count((mid, "offline")) == 1
    presence.seen(mid)  # the dashboard is back
    db.session.commit()
    assert presence.status(mid) == "online"


def test_expire_leaves_a_mechanic_whose_beat_landed_in_between(app, changes):
    clock.set(T0)
    mid = mechanic()
    presence.seen(mid)
    presence.set_online(mid, True)
    db.session.commit()
    later = T0 + timedelta(seconds=app.config["PRESENCE_TIMEOUT_SECONDS"] + 5)
    clock.set(later)
    presence.seen(mid)  # arrives after the sweep read the clock
    db.session.commit()
    assert presence.expire(later) == 0
    assert presence.status(mid) == "online"


def test_busy_while_in_a_session_toggle_or_not(app, changes):
    clock.set(T0)
    mid, free = mechanic(), mechanic()
    customer = UserFactory("customer")
    db.session.commit()
    for m in (mid, free):
        presence.seen(m)
        presence.set_online(m, True)
    db.session.commit()
    session_id = AcceptedSessionFactory(customer, db.session.get(User, mid)).id
    assert presence.status(mid) == "busy"
    assert presence.online_ids() == {free}
    assert presence.online_ids(include_busy=True) == {mid, free}
    presence.set_online(mid, False)
    db.session.commit()
    assert presence.status(mid) == "busy"
    assert presence.statuses([mid, free, 999999]) == {mid: "busy", free: "online", 999999: "offline"}
    lifecycle.cancel_orphaned(session_id, now=T0 + timedelta(hours=2))
    db.session.commit()
    assert presence.status(mid) == "offline"
    assert presence.session_mechanic_id(session_id) == mid


def test_beats_from_two_tabs_write_once_and_announce_once(app, changes):
    clock.set(T0)
    mid = mechanic()
    presence.set_online(mid, True)
    db.session.commit()
    assert presence.seen(mid) is True  # tab 1
    assert presence.seen(mid) is False  # tab 2, the same moment: nothing written
    db.session.commit()
    clock.set(T0 + timedelta(seconds=2))
    assert presence.seen(mid) is False  # within window/6 of the last write
    clock.set(T0 + timedelta(seconds=app.config["PRESENCE_TIMEOUT_SECONDS"] // 6 + 1))
    assert presence.seen(mid) is True
    db.session.commit()
    assert profile(mid).last_seen_at == clock.now()
    assert changes.presence == [(mid, "online")]
    assert presence.set_online(mid, True) is False  # already online: no second announcement
    db.session.commit()
    assert changes.presence == [(mid, "online")]


def test_going_online_enqueues_the_waitlist_job_each_time_and_only_then(app, changes):
    clock.set(T0)
    mid = mechanic()
    presence.seen(mid)
    db.session.commit()
    presence.set_online(mid, True)
    db.session.commit()
    assert changes.came_online == [mid]
    presence.set_online(mid, True)
    presence.seen(mid)
    db.session.commit()
    assert changes.came_online == [mid]
    presence.set_online(mid, False)
    db.session.commit()
    presence.set_online(mid, True)
    db.session.commit()
    assert changes.came_online == [mid, mid]


def test_nothing_is_announced_or_enqueued_when_the_transaction_rolls_back(app, changes):
    clock.set(T0)
    mid = mechanic()
    presence.seen(mid)
    db.session.commit()
    presence.set_online(mid, True)
    db.session.rollback()
    assert presence.status(mid) == "offline"
    assert not profile(mid).online
    assert changes.came_online == []


def test_only_mechanics_have_a_toggle(app):
    customer = UserFactory("customer")
    db.session.commit()
    with pytest.raises(NotFound):
        presence.set_online(customer.id, True)
    assert presence.status(customer.id) == "offline"


def test_unapproved_or_deactivated_mechanics_are_not_in_online_ids(app, changes):
    clock.set(T0)
    ok, unapproved, inactive = mechanic(), mechanic(approved=False), mechanic()
    for m in (ok, unapproved, inactive):
        presence.seen(m)
        if m == unapproved:  # the approval gate: the switch cannot be turned on
            with pytest.raises(Forbidden):
                presence.set_online(m, True)
        else:
            presence.set_online(m, True)
    db.session.get(User, inactive).is_active_account = False
    db.session.commit()
    assert presence.online_ids() == {ok}


def test_the_heartbeat_is_at_least_three_times_a_window(app):
    app.config["PRESENCE_TIMEOUT_SECONDS"] = 60
    assert presence.heartbeat_seconds() == 15  # the SSE keepalive
    app.config["PRESENCE_TIMEOUT_SECONDS"] = 6
    assert presence.heartbeat_seconds() == 2


@pytest.mark.parametrize("how", ["beat", "toggle"])
def test_two_tabs_at_the_same_moment_announce_once_on_postgres(pg_app, monkeypatch, how):
    """Real threads with their own sessions: 10 tabs' first beats (or "on" taps, with the
    dashboard already seen) race; exactly one flips presence and announces it."""
    from tests.services.test_concurrency_pg import race

    announced, came_online = [], []
    real_emit = presence.emit
    monkeypatch.setattr(presence, "emit", lambda kind, **data: (announced.append(data), real_emit(kind, **data)))
    fake_jobs = types.ModuleType("autodoctor.jobs.waitlist")
    fake_jobs.mechanic_came_online_job = came_online.append
    monkeypatch.setitem(sys.modules, "autodoctor.jobs.waitlist", fake_jobs)
    for _ in range(5):
        mid = mechanic()
        presence.seen(mid) if how == "toggle" else presence.set_online(mid, True)
        db.session.commit()
        announced.clear()
        came_online.clear()
        work = (lambda i, mid=mid: presence.seen(mid)) if how == "beat" else \
            (lambda i, mid=mid: presence.set_online(mid, True))
        results = race(pg_app, 10, work)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert announced == [{"mechanic_id": mid, "presence": "online"}]
        assert came_online == [mid]
        assert presence.status(mid) == "online"
