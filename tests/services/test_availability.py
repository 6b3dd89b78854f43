"""The availability service with fixed clocks: 30-minute slots on the mechanic's wall clock,
right across the March and November daylight-saving changes (a mechanic in America/Toronto
seen by a customer in Europe/London, whose changes fall on other dates), overrides, time
off, buffers, minimum notice, booking window, daily cap, holds, longer plans."""
from datetime import date, datetime, time, timedelta

import pytest

from autodoctor.extensions import db
from autodoctor.models import Appointment, DateOverride, Plan, TimeOff, WeeklyHours
from autodoctor.services import availability
from autodoctor.services.availability import Slot, day_window, local
from tests.factories import UserFactory

TORONTO, LONDON = "America/Toronto", "Europe/London"
NINE_TO_FIVE = (9 * 60, 17 * 60)


def mechanic(zone=TORONTO, hours=None, days=range(5), **settings):
    """A mechanic with weekly hours (Mon–Fri 09:00–17:00 unless told otherwise)."""
    user = UserFactory("mechanic")
    profile = user.mechanic_profile
    profile.time_zone = zone
    profile.booking_window_days = settings.pop("booking_window_days", 365)
    for key, value in settings.items():
        setattr(profile, key, value)
    for weekday in days:
        for lo, hi in hours or [NINE_TO_FIVE]:
            db.session.add(WeeklyHours(mechanic_id=user.id, weekday=weekday, start_minute=lo, end_minute=hi))
    db.session.commit()
    return user.id


def on_day(mechanic_id, day, zone=TORONTO, minutes=30, now=None):
    """The slots on the mechanic's local `day`, as local wall times (HH:MM) in `zone`."""
    start, end = day_window(day, TORONTO)
    found = availability.slots(mechanic_id, start, end, minutes, now or datetime(2026, 1, 1))
    return [local(s.starts_at, zone).strftime("%H:%M") for s in found]


def book(mechanic_id, starts_at, minutes=30, status="booked", hold_expires_at=None):
    plan = db.session.scalar(db.select(Plan).where(Plan.code == "video15"))
    db.session.add(Appointment(customer_id=UserFactory("customer").id, mechanic_id=mechanic_id, plan_id=plan.id,
                               status=status, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes),
                               hold_expires_at=hold_expires_at))
    db.session.commit()


def utc(*args):
    return datetime(*args)


HALF_HOURS = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)]


def test_a_working_day_has_sixteen_half_hour_slots_on_the_wall_clock(app):
    m = mechanic()
    assert on_day(m, date(2026, 1, 12)) == HALF_HOURS  # a Monday
    assert on_day(m, date(2026, 1, 10)) == []  # Saturday: no weekly hours
    start, end = day_window(date(2026, 1, 12), TORONTO)
    first = availability.slots(m, start, end, now=datetime(2026, 1, 1))[0]
    assert first == Slot(utc(2026, 1, 12, 14, 0), utc(2026, 1, 12, 14, 30))  # 09:00 EST = 14:00 UTC


@pytest.mark.parametrize("day, utc_hour, london", [
    # Spring: Toronto moves on 8 March 2026, London only on 29 March.
    (date(2026, 3, 6), 14, "14:00"),   # Friday before: EST (-5); London GMT: 5 hours apart
    (date(2026, 3, 9), 13, "13:00"),   # Monday after: EDT (-4); London still GMT: 4 hours apart
    (date(2026, 3, 30), 13, "14:00"),  # after London's change too: BST, 5 hours apart again
    # Autumn: London moves back on 25 October 2026, Toronto on 1 November.
    (date(2026, 10, 23), 13, "14:00"),
    (date(2026, 10, 26), 13, "13:00"),
    (date(2026, 11, 2), 14, "14:00"),
])
def test_nine_oclock_in_toronto_across_daylight_saving_as_seen_from_london(app, day, utc_hour, london):
    m = mechanic()
    start, end = day_window(day, TORONTO)
    found = availability.slots(m, start, end, now=datetime(2026, 1, 1))
    assert len(found) == 16
    assert found[0].starts_at == datetime.combine(day, time(utc_hour))
    assert on_day(m, day) == HALF_HOURS  # always 09:00–16:30 for the mechanic
    assert on_day(m, day, zone=LONDON)[0] == london
    assert on_day(m, day, zone=LONDON)[-1] == f"{int(london[:2]) + 7}:30"


def test_the_night_of_the_change_has_no_slot_in_the_skipped_hour_and_none_twice(app):
    m = mechanic(hours=[(0, 4 * 60)], days=[6])  # Sundays 00:00–04:00
    assert on_day(m, date(2026, 3, 8)) == ["00:00", "00:30", "01:00", "01:30", "03:00", "03:30"]
    november = on_day(m, date(2026, 11, 1))
    assert november == ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "03:30"]
    start, end = day_window(date(2026, 11, 1), TORONTO)
    assert end - start == timedelta(hours=25)  # the day is an hour longer; each slot is still 30 minutes
    for slot in availability.slots(m, start, end, now=datetime(2026, 1, 1)):
        assert slot.ends_at - slot.starts_at == timedelta(minutes=30)


def test_override_replaces_the_day_and_an_empty_override_is_a_day_off(app):
    m = mechanic()
    db.session.add_all([
        DateOverride(mechanic_id=m, day=date(2026, 1, 12), start_minute=7 * 60, end_minute=8 * 60),
        DateOverride(mechanic_id=m, day=date(2026, 1, 12), start_minute=18 * 60, end_minute=19 * 60),
        DateOverride(mechanic_id=m, day=date(2026, 1, 13)),
        DateOverride(mechanic_id=m, day=date(2026, 1, 17), start_minute=10 * 60, end_minute=11 * 60),  # a Saturday
    ])
    db.session.commit()
    assert on_day(m, date(2026, 1, 12)) == ["07:00", "07:30", "18:00", "18:30"]
    assert on_day(m, date(2026, 1, 13)) == []
    assert on_day(m, date(2026, 1, 14)) == HALF_HOURS
    assert on_day(m, date(2026, 1, 17)) == ["10:00", "10:30"]


def test_time_off_removes_every_slot_it_touches(app):
    m = mechanic()
    db.session.add(TimeOff(mechanic_id=m, starts_at=utc(2026, 1, 12, 15, 15), ends_at=utc(2026, 1, 12, 17, 0)))
    db.session.add(TimeOff(mechanic_id=m, starts_at=utc(2026, 1, 14, 0, 0), ends_at=utc(2026, 1, 16, 0, 0)))
    db.session.commit()
    # 10:15–12:00 Toronto: 10:00 (overlaps from 10:15), 10:30, 11:00, 11:30 go.
    assert on_day(m, date(2026, 1, 12)) == [h for h in HALF_HOURS if h not in ("10:00", "10:30", "11:00", "11:30")]
    # The second absence runs from Tuesday 19:00 to Thursday 19:00 in Toronto.
    assert on_day(m, date(2026, 1, 13)) == HALF_HOURS
    assert on_day(m, date(2026, 1, 14)) == on_day(m, date(2026, 1, 15)) == []
    assert on_day(m, date(2026, 1, 16)) == HALF_HOURS


def test_buffer_keeps_time_free_around_appointments(app):
    m = mechanic(buffer_minutes=15)
    book(m, utc(2026, 1, 12, 15, 0))  # 10:00–10:30 Toronto
    assert "09:30" not in on_day(m, date(2026, 1, 12))  # would end 10:00, inside the 15 minutes before
    assert [h for h in on_day(m, date(2026, 1, 12)) if "09:00" <= h <= "11:30"] == ["09:00", "11:00", "11:30"]
    other = mechanic(buffer_minutes=0)
    book(other, utc(2026, 1, 12, 15, 0))
    assert [h for h in on_day(other, date(2026, 1, 12)) if "09:00" <= h <= "11:00"] == [
        "09:00", "09:30", "10:30", "11:00"]


def test_minimum_notice_is_two_hours(app):
    m = mechanic()
    now = utc(2026, 1, 12, 13, 10)  # 08:10 in Toronto
    assert on_day(m, date(2026, 1, 12), now=now)[0] == "10:30"  # 10:10 is the earliest start
    assert on_day(m, date(2026, 1, 12), now=utc(2026, 1, 12, 13, 0))[0] == "10:00"  # exactly 2 hours
    assert availability.is_bookable(m, utc(2026, 1, 12, 15, 0), now=utc(2026, 1, 12, 13, 0))
    assert not availability.is_bookable(m, utc(2026, 1, 12, 15, 0), now=utc(2026, 1, 12, 13, 1))


def test_booking_window_limits_how_far_ahead(app):
    m = mechanic(booking_window_days=7)
    now = utc(2026, 1, 12, 12, 0)
    assert on_day(m, date(2026, 1, 16), now=now) == HALF_HOURS
    assert on_day(m, date(2026, 1, 19), now=now) == []  # 7 days from now ends Monday 07:00 Toronto
    assert on_day(m, date(2026, 1, 26), now=now) == []


def test_daily_cap_closes_a_day_that_is_full(app):
    m = mechanic(daily_cap=2)
    book(m, utc(2026, 1, 12, 15, 0))
    assert len(on_day(m, date(2026, 1, 12))) == 15
    book(m, utc(2026, 1, 12, 19, 0))
    assert on_day(m, date(2026, 1, 12)) == []
    assert on_day(m, date(2026, 1, 13)) == HALF_HOURS


def test_a_hold_blocks_until_it_expires_and_cancelled_ones_never(app):
    m = mechanic()
    now = utc(2026, 1, 5, 12, 0)
    book(m, utc(2026, 1, 12, 15, 0), status="held", hold_expires_at=now + timedelta(minutes=15))
    book(m, utc(2026, 1, 12, 16, 0), status="cancelled")
    assert "10:00" not in on_day(m, date(2026, 1, 12), now=now)
    assert "11:00" in on_day(m, date(2026, 1, 12), now=now)
    assert "10:00" in on_day(m, date(2026, 1, 12), now=now + timedelta(minutes=15))


def test_a_longer_plan_needs_the_whole_time_free_inside_the_hours(app):
    m = mechanic(hours=[(9 * 60, 12 * 60), (13 * 60, 17 * 60)])
    book(m, utc(2026, 1, 12, 15, 0))  # 10:00–10:30
    assert on_day(m, date(2026, 1, 12), minutes=60) == [
        "09:00", "10:30", "11:00", "13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00"]


def test_many_mechanics_at_once_match_one_at_a_time_in_five_queries(app):
    from sqlalchemy import event

    ids = [mechanic(zone=zone) for zone in (TORONTO, "America/Vancouver", LONDON)]
    book(ids[0], utc(2026, 1, 12, 15, 0))
    start, end = day_window(date(2026, 1, 12), TORONTO)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        together = availability.slots_for_mechanics(ids, start, end, now=datetime(2026, 1, 1))
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(statements) == 5
    for m in ids:
        assert together[m] == availability.slots(m, start, end, now=datetime(2026, 1, 1))
    assert len(together[ids[0]]) == 15
    assert local(together[ids[1]][0].starts_at, "America/Vancouver").strftime("%H:%M") == "09:00"
    # London's 09:00 is 04:00 in Toronto: before that Monday's Toronto window starts it is still Sunday.
    assert all(s.starts_at >= start for s in together[ids[2]])


def test_postgres_refuses_overlapping_appointments_for_one_mechanic(pg_app):
    """The exclusion constraint, on its own: overlapping held/booked rows of one mechanic are
    refused; touching ones, other mechanics' and cancelled ones are not."""
    from sqlalchemy.exc import IntegrityError

    first, second = mechanic(), mechanic()
    book(first, utc(2026, 1, 12, 15, 0))
    book(first, utc(2026, 1, 12, 15, 30))  # starts as the first ends
    book(second, utc(2026, 1, 12, 15, 0))
    book(first, utc(2026, 1, 12, 15, 0), status="cancelled")
    for status in ("booked", "held"):
        with pytest.raises(IntegrityError, match="ex_appointments_no_overlap"):
            book(first, utc(2026, 1, 12, 15, 15), status=status, hold_expires_at=utc(2030, 1, 1))
        db.session.rollback()
