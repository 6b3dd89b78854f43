"""The waitlist: join only while nobody is online, one waiting place per customer (keeping the
book-now draft), positions in order of joining, leave, an honest estimate from history, every
waiting customer told once and in order when a mechanic comes online (in-app and e-mail, with a
link that resumes the booking), and expiry after 24 hours by the sweep."""
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import BookingDraft, Notification, OutboxEmail, WaitlistEntry
from autodoctor.services import sweep, waitlist
from autodoctor.services.errors import Conflict
from tests.factories import AcceptedSessionFactory, PaidSessionFactory, UserFactory

NOW = datetime(2026, 3, 10, 18, 30)


@pytest.fixture(autouse=True)
def frozen():
    clock.set(NOW)


@pytest.fixture
def events(monkeypatch):
    """The waitlist's own events, as (kind, data)."""
    seen = []
    monkeypatch.setattr(waitlist, "emit", lambda kind, **data: seen.append((kind, data)))
    return seen


def customers(n):
    made = [UserFactory("customer", full_name=f"Wanda Waiting {i}") for i in range(1, n + 1)]
    db.session.commit()
    return made


def mechanic(online=False, **profile):
    user = UserFactory("mechanic", full_name="Otto Online", **profile)
    if online:
        go_online(user)
    db.session.commit()
    return user


def go_online(user):
    user.mechanic_profile.online = True
    user.mechanic_profile.presence = "online"
    user.mechanic_profile.presence_changed_at = clock.now()
    db.session.commit()


def entry_of(customer):
    return waitlist.latest_entry(customer.id)


def joined(customer, at=None, draft_id=None):
    entry = waitlist.join(customer.id, draft_id, now=at or clock.now())
    db.session.commit()
    return entry


# Joining -------------------------------------------------------------------------------------


def test_join_while_nobody_is_online_gives_places_in_order(app, events):
    first, second, third = customers(3)
    mechanic()  # offline
    a = joined(first)
    b = joined(second, NOW + timedelta(seconds=5))
    c = joined(third, NOW + timedelta(seconds=9))
    assert [waitlist.position(e) for e in (a, b, c)] == [1, 2, 3]
    assert a.status == "waiting" and a.expires_at == NOW + timedelta(hours=24)
    assert ("waitlist.changed", {"customer_ids": [first.id]}) in events


def test_joining_twice_keeps_one_place(app):
    (customer,) = customers(1)
    first = joined(customer)
    again = joined(customer, NOW + timedelta(minutes=3))
    assert again.id == first.id and again.created_at == NOW
    assert db.session.scalar(sa.select(sa.func.count(WaitlistEntry.id))) == 1


def test_ties_on_the_same_second_go_by_id(app):
    first, second = customers(2)
    a, b = joined(first), joined(second)
    assert a.created_at == b.created_at
    assert (waitlist.position(a), waitlist.position(b)) == (1, 2)


def test_nobody_joins_while_a_mechanic_is_online(app):
    (customer,) = customers(1)
    mechanic(online=True)
    with pytest.raises(waitlist.MechanicOnline) as caught:
        waitlist.join(customer.id)
    assert caught.value.message == "A mechanic is online — continue booking."
    assert isinstance(caught.value, Conflict)


def test_a_busy_mechanic_still_counts_as_online(app):
    """Only offline -> online wakes the waitlist, so a customer is not parked behind a mechanic
    who is online but in a session: they book and their request waits for that mechanic."""
    (customer,) = customers(1)
    busy = mechanic(online=True)
    AcceptedSessionFactory(UserFactory("customer"), busy)
    with pytest.raises(waitlist.MechanicOnline):
        waitlist.join(customer.id)


def test_a_customer_with_an_active_session_cannot_join(app):
    (customer,) = customers(1)
    PaidSessionFactory(customer)
    db.session.commit()
    with pytest.raises(waitlist.ActiveSession):
        waitlist.join(customer.id)


def test_the_entry_keeps_the_customers_own_draft(app):
    mine, theirs = customers(2)
    draft = BookingDraft(customer_id=mine.id, data={"step": "mechanic"})
    other = BookingDraft(customer_id=theirs.id, data={})
    db.session.add_all([draft, other])
    db.session.commit()
    assert joined(mine).draft_id == draft.id  # found without being named
    waitlist.leave(mine.id)
    assert joined(mine, draft_id=other.id).draft_id is None  # someone else's draft is never kept
    assert joined(theirs, draft_id=other.id).draft_id == other.id


# Leaving and positions -------------------------------------------------------------------------


def test_leaving_moves_everyone_behind_up(app, events):
    first, second, third = customers(3)
    entries = [joined(c, NOW + timedelta(seconds=i)) for i, c in enumerate((first, second, third))]
    assert waitlist.leave(first.id, now=NOW + timedelta(minutes=1)) is True
    db.session.commit()
    db.session.refresh(entries[0])
    assert entries[0].status == "left" and entries[0].closed_at == NOW + timedelta(minutes=1)
    assert [waitlist.position(e) for e in entries] == [None, 1, 2]
    assert events[-1] == ("waitlist.changed", {"customer_ids": [first.id]})
    assert waitlist.leave(first.id) is False  # not on it any more


def test_one_can_join_again_after_leaving(app):
    (customer,) = customers(1)
    joined(customer)
    waitlist.leave(customer.id)
    db.session.commit()
    again = joined(customer, NOW + timedelta(minutes=2))
    assert waitlist.position(again) == 1
    assert db.session.scalar(sa.select(sa.func.count(WaitlistEntry.id))) == 2


# A mechanic comes online -------------------------------------------------------------------------


@pytest.mark.parametrize("told_first", [False, True], ids=["still-waiting", "came-back-through-the-link"])
def test_paying_for_a_session_takes_the_customer_off_the_waitlist(app, told_first):
    first, second = customers(2)
    mine, behind = waitlist.join(first.id), waitlist.join(second.id)
    if told_first:
        waitlist.mechanic_came_online(mechanic(online=True).id)
    db.session.commit()
    PaidSessionFactory(first)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, mine.id).status == "booked"
    if not told_first:
        assert waitlist.position(db.session.get(WaitlistEntry, behind.id)) == 1  # moved up


def test_everyone_waiting_is_told_once_in_order_in_app_and_by_email(app, events):
    first, second, third = customers(3)
    draft = BookingDraft(customer_id=first.id, data={})
    db.session.add(draft)
    db.session.commit()
    for i, c in enumerate((first, second, third)):
        joined(c, NOW + timedelta(seconds=i))
    otto = mechanic()
    go_online(otto)
    clock.set(NOW + timedelta(minutes=7))

    assert waitlist.mechanic_came_online(otto.id) == 3
    db.session.commit()

    for c in (first, second, third):
        entry = entry_of(c)
        assert entry.status == "notified" and entry.notified_at == NOW + timedelta(minutes=7)
    notices = db.session.scalars(sa.select(Notification).where(Notification.kind == "waitlist_online")
                                 .order_by(Notification.id)).all()
    assert [n.user_id for n in notices] == [first.id, second.id, third.id]  # position 1 first
    assert notices[0].text == "Otto Online is online now — continue your booking."
    assert notices[0].link.startswith("/customer/book")
    emails = db.session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)).all()
    assert [e.to_address for e in emails] == [first.email, second.email, third.email]
    assert emails[0].subject == "A mechanic is online now — continue your AutoDoctor booking"
    assert "Otto Online is online now" in emails[0].body_text
    assert f"{app.config['PUBLIC_URL']}/customer/book" in emails[0].body_text  # absolute, resumes the draft
    assert events[-1] == ("waitlist.changed", {"customer_ids": [first.id, second.id, third.id]})

    assert waitlist.mechanic_came_online(otto.id) == 0  # told once, however often it runs
    other = mechanic(online=True)
    assert waitlist.mechanic_came_online(other.id) == 0
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(OutboxEmail.id))) == 3


def test_nothing_happens_when_the_mechanic_is_offline_again(app):
    (customer,) = customers(1)
    joined(customer)
    otto = mechanic()  # came online and left before the job ran
    assert waitlist.mechanic_came_online(otto.id) == 0
    assert waitlist.mechanic_came_online(customer.id) == 0  # not a mechanic
    assert waitlist.mechanic_came_online(123456) == 0
    assert entry_of(customer).status == "waiting"


def test_a_customer_who_found_help_meanwhile_is_not_told(app):
    booked_meanwhile, waiting = customers(2)
    joined(booked_meanwhile)
    joined(waiting, NOW + timedelta(seconds=1))
    PaidSessionFactory(booked_meanwhile)
    db.session.commit()
    otto = mechanic(online=True)
    assert waitlist.mechanic_came_online(otto.id) == 1
    db.session.commit()
    assert entry_of(booked_meanwhile).status == "booked"
    assert entry_of(waiting).status == "notified"
    assert [n.user_id for n in db.session.scalars(sa.select(Notification))] == [waiting.id]


def test_an_overdue_place_is_not_told_but_expired(app):
    late, fresh = customers(2)
    joined(late, NOW - timedelta(hours=25))
    joined(fresh)
    otto = mechanic(online=True)
    assert waitlist.mechanic_came_online(otto.id) == 1
    db.session.commit()
    assert entry_of(late).status == "waiting"  # the sweep expires it
    sweep.run_sweep(NOW)
    assert entry_of(late).status == "expired"


# Expiry -------------------------------------------------------------------------------------------------


def test_places_expire_after_24_hours_by_the_sweep(app):
    (customer,) = customers(1)
    joined(customer)
    sweep.run_sweep(NOW + timedelta(hours=23, minutes=59))
    assert entry_of(customer).status == "waiting"
    sweep.run_sweep(NOW + timedelta(hours=24))
    entry = entry_of(customer)
    assert entry.status == "expired" and entry.closed_at == NOW + timedelta(hours=24)
    (notice,) = db.session.scalars(sa.select(Notification).where(Notification.user_id == customer.id)).all()
    assert notice.kind == "waitlist_expired" and notice.link == "/customer/waitlist"
    assert "ran out after 24 hours" in notice.text
    sweep.run_sweep(NOW + timedelta(hours=25))  # once
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 1


def test_expire_does_them_all(app):
    a, b = customers(2)
    joined(a, NOW - timedelta(hours=30))
    joined(b)
    assert waitlist.expire(NOW) == 1
    db.session.commit()
    assert (entry_of(a).status, entry_of(b).status) == ("expired", "waiting")


# The estimate ---------------------------------------------------------------------------------------------


def past(customer, days_ago, minutes_waited, status="notified", at=NOW):
    created = at - timedelta(days=days_ago)
    db.session.add(WaitlistEntry(
        customer_id=customer.id, status=status, created_at=created, expires_at=created + timedelta(hours=24),
        notified_at=created + timedelta(minutes=minutes_waited) if status == "notified" else None,
        closed_at=created + timedelta(minutes=minutes_waited)))
    db.session.commit()


def test_no_history_no_estimate(app):
    estimate = waitlist.estimate()
    assert estimate.minutes is None
    assert estimate.text.startswith("We can't estimate the wait yet")


def test_the_estimate_is_the_median_wait_at_this_time_of_day(app):
    (customer,) = customers(1)
    for days_ago, waited in ((1, 10), (2, 40), (3, 22)):
        past(customer, days_ago, waited)
    past(customer, 4, 500, at=NOW - timedelta(hours=5))  # another time of day: not counted
    past(customer, 20, 500)  # older than 14 days: not counted
    past(customer, 5, 1, status="left")  # left: we only know they waited at least that long
    estimate = waitlist.estimate()
    assert (estimate.minutes, estimate.samples) == (22, 3)
    assert estimate.text == ("Mechanics usually come online within about 25 minutes at this time of day "
                             "(the middle of 3 recent waits).")


def test_the_hour_window_wraps_around_midnight(app):
    clock.set(datetime(2026, 3, 10, 0, 20))
    (customer,) = customers(1)
    for days_ago in (1, 2, 3):
        past(customer, days_ago, 6, at=datetime(2026, 3, 10, 23, 50))
    assert waitlist.estimate().minutes == 6


def test_expired_waits_count_as_the_full_day(app):
    (customer,) = customers(1)
    past(customer, 1, 30)
    past(customer, 2, 0, status="expired")
    past(customer, 3, 0, status="expired")
    estimate = waitlist.estimate()
    assert estimate.minutes == 24 * 60
    assert estimate.text == "At this time of day mechanics often don't come online within 24 hours."


@pytest.mark.parametrize("minutes,words", [(1, "a minute"), (7, "7 minutes"), (41, "45 minutes"),
                                           (95, "2 hours"), (61, "65 minutes")])
def test_durations_read_naturally(minutes, words):
    assert waitlist._duration(minutes) == words


# Postgres: at the same moment --------------------------------------------------------------------------------


def _race(app, n, work):
    import threading

    barrier, errors, results = threading.Barrier(n), [], []

    def run(i):
        try:
            with app.test_request_context():
                barrier.wait(5)
                results.append(work(i))
                db.session.commit()
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return results


def test_one_customer_joining_from_five_tabs_at_once_gets_one_place(pg_app):
    customer = UserFactory("customer")
    db.session.commit()
    customer_id = customer.id
    db.session.remove()
    ids = _race(pg_app, 5, lambda i: waitlist.join(customer_id).id)
    assert len(set(ids)) == 1
    assert db.session.scalar(sa.select(sa.func.count(WaitlistEntry.id))) == 1


def test_two_mechanics_coming_online_together_tell_each_customer_once(pg_app):
    people = [UserFactory("customer") for _ in range(6)]
    db.session.commit()
    for i, person in enumerate(people):
        waitlist.join(person.id, now=NOW + timedelta(seconds=i))
        db.session.commit()
    mechanics = [mechanic(online=True), mechanic(online=True)]
    mechanic_ids = [m.id for m in mechanics]
    db.session.remove()
    told = _race(pg_app, 2, lambda i: waitlist.mechanic_came_online(mechanic_ids[i]))
    assert sum(told) == 6
    assert db.session.scalar(sa.select(sa.func.count(OutboxEmail.id))) == 6
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 6
