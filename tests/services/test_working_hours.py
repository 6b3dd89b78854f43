"""The write side of mechanics' availability: validation, replace-week semantics, overrides,
time off entered in local time (across daylight-saving changes) and the settings."""
from datetime import date, datetime

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models.scheduling import DateOverride, TimeOff, WeeklyHours
from autodoctor.services import working_hours
from autodoctor.services.errors import NotFound
from autodoctor.services.working_hours import AvailabilityInvalid
from tests.factories import UserFactory


@pytest.fixture
def mechanic(app):
    clock.set(datetime(2026, 3, 1, 12, 0))  # a Sunday, before the March change in Toronto
    user = UserFactory("mechanic")
    db.session.commit()
    return user


def _rows(mechanic):
    return [(r.weekday, r.start_minute, r.end_minute) for r in db.session.scalars(
        db.select(WeeklyHours).where(WeeklyHours.mechanic_id == mechanic.id)
        .order_by(WeeklyHours.weekday, WeeklyHours.start_minute))]


def test_replace_week_stores_several_ranges_a_day_and_replaces_the_old_week(mechanic):
    working_hours.replace_week(mechanic.id, {0: [("13:00", "17:00"), ("09:00", "12:00")], 2: [("08:30", "11:45")]})
    assert _rows(mechanic) == [(0, 540, 720), (0, 780, 1020), (2, 510, 705)]
    working_hours.replace_week(mechanic.id, {1: [("10:00", "14:00")]})
    assert _rows(mechanic) == [(1, 600, 840)]  # Monday and Wednesday are gone: the whole week is replaced
    week = working_hours.editor_state(mechanic.id).week
    assert [d.ranges for d in week] == [[], [("10:00", "14:00")], [], [], [], [], []]


def test_end_of_midnight_means_the_end_of_the_day(mechanic):
    working_hours.replace_week(mechanic.id, {5: [("18:00", "00:00")]})
    assert _rows(mechanic) == [(5, 1080, 1440)]
    assert working_hours.editor_state(mechanic.id).week[5].ranges == [("18:00", "00:00")]


def test_blank_rows_are_ignored(mechanic):
    working_hours.replace_week(mechanic.id, {0: [("", ""), ("09:00", "10:00")]})
    assert _rows(mechanic) == [(0, 540, 600)]


@pytest.mark.parametrize("ranges,message", [
    ([("09:00", "12:00"), ("11:00", "13:00")], "09:00–12:00 overlaps 11:00–13:00"),
    ([("12:00", "09:00")], "the end must be after the start"),
    ([("09:00", "09:00")], "the end must be after the start"),
    ([("09:10", "12:00")], "quarter hour"),
    ([("09:00", "")], "both a start and an end"),
    ([("nine", "12:00")], "HH:MM"),
    ([("25:00", "26:00")], "not a time of day"),
])
def test_bad_ranges_are_refused_per_day_and_nothing_changes(mechanic, ranges, message):
    working_hours.replace_week(mechanic.id, {0: [("09:00", "17:00")]})
    db.session.commit()
    with pytest.raises(AvailabilityInvalid) as caught:
        working_hours.replace_week(mechanic.id, {0: [("08:00", "09:00")], 3: ranges})
    assert set(caught.value.errors) == {"weekday-3"}
    assert caught.value.errors["weekday-3"].startswith("Thursday: ")
    assert message in caught.value.errors["weekday-3"]
    db.session.rollback()
    assert _rows(mechanic) == [(0, 540, 1020)]


def test_touching_ranges_are_fine(mechanic):
    working_hours.replace_week(mechanic.id, {0: [("09:00", "12:00"), ("12:00", "13:00")]})
    assert len(_rows(mechanic)) == 2


def test_override_with_ranges_then_day_off_then_cleared(mechanic):
    working_hours.set_override(mechanic.id, "2026-03-10", [("10:00", "12:00"), ("14:00", "15:00")])
    rows = db.session.scalars(db.select(DateOverride).order_by(DateOverride.start_minute)).all()
    assert [(r.day, r.start_minute, r.end_minute) for r in rows] == [
        (date(2026, 3, 10), 600, 720), (date(2026, 3, 10), 840, 900)]
    working_hours.set_override(mechanic.id, date(2026, 3, 10), day_off=True)  # replaces that date's rows
    rows = db.session.scalars(db.select(DateOverride)).all()
    assert [(r.start_minute, r.end_minute) for r in rows] == [(None, None)]
    [override] = working_hours.editor_state(mechanic.id).overrides
    assert override.day == date(2026, 3, 10) and override.day_off
    working_hours.clear_override(mechanic.id, "2026-03-10")
    assert working_hours.editor_state(mechanic.id).overrides == []
    with pytest.raises(NotFound):
        working_hours.clear_override(mechanic.id, "2026-03-10")


def test_override_validation(mechanic):
    with pytest.raises(AvailabilityInvalid) as caught:
        working_hours.set_override(mechanic.id, "2026-02-28", [])
    assert caught.value.errors == {"day": "Choose today or a later date.",
                                   "ranges": "Add the hours you work that day, or tick “Day off”."}
    with pytest.raises(AvailabilityInvalid) as caught:
        working_hours.set_override(mechanic.id, "", [("10:00", "09:00")])
    assert caught.value.errors["day"] == "Choose a date."
    assert "after the start" in caught.value.errors["ranges"]
    with pytest.raises(AvailabilityInvalid) as caught:
        working_hours.set_override(mechanic.id, "2027-06-01", day_off=True)
    assert "within the next 365 days" in caught.value.errors["day"]


def test_past_overrides_are_not_listed(mechanic):
    working_hours.set_override(mechanic.id, "2026-03-02", day_off=True)
    clock.set(datetime(2026, 3, 4, 12, 0))
    assert working_hours.editor_state(mechanic.id).overrides == []


def test_time_off_is_entered_in_local_time_and_stored_in_utc_across_the_march_change(mechanic):
    # Toronto moves from EST (UTC-5) to EDT (UTC-4) at 02:00 on Sunday 2026-03-08.
    row = working_hours.add_time_off(mechanic.id, "2026-03-07T09:00", "2026-03-09T09:00", "Family")
    assert (row.starts_at, row.ends_at) == (datetime(2026, 3, 7, 14, 0), datetime(2026, 3, 9, 13, 0))
    [shown] = working_hours.editor_state(mechanic.id).time_off
    assert (shown.starts_local, shown.ends_local, shown.reason) == (
        datetime(2026, 3, 7, 9, 0), datetime(2026, 3, 9, 9, 0), "Family")


def test_time_off_across_the_november_change(mechanic):
    # Back from EDT (UTC-4) to EST (UTC-5) at 02:00 on Sunday 2026-11-01.
    row = working_hours.add_time_off(mechanic.id, "2026-10-31T20:00", "2026-11-01T20:00")
    assert (row.starts_at, row.ends_at) == (datetime(2026, 11, 1, 0, 0), datetime(2026, 11, 2, 1, 0))
    assert row.ends_at - row.starts_at == (datetime(2026, 11, 2, 1) - datetime(2026, 11, 1, 0))  # 25 hours


def test_skipped_and_repeated_local_times(mechanic):
    # 02:30 does not exist on 2026-03-08 in Toronto: read as 03:30 EDT. 01:30 on 2026-11-01
    # happens twice: the first (EDT) one is meant.
    assert working_hours.to_utc(datetime(2026, 3, 8, 2, 30), "America/Toronto") == datetime(2026, 3, 8, 7, 30)
    assert working_hours.to_utc(datetime(2026, 11, 1, 1, 30), "America/Toronto") == datetime(2026, 11, 1, 5, 30)


def test_time_off_follows_the_mechanics_zone(mechanic):
    working_hours.update_settings(mechanic.id, "Europe/London", 0, "", 30)
    row = working_hours.add_time_off(mechanic.id, "2026-03-10T09:00", "2026-03-10T17:00")
    assert (row.starts_at, row.ends_at) == (datetime(2026, 3, 10, 9, 0), datetime(2026, 3, 10, 17, 0))


@pytest.mark.parametrize("starts,ends,errors", [
    ("2026-03-10T09:00", "2026-03-10T08:00", {"ends_at": "The end must be after the start."}),
    ("2026-03-10T09:00", "2026-06-10T09:00", {"ends_at": "Time off can last at most 90 days; add another entry for more."}),
    ("2026-02-10T09:00", "2026-02-11T09:00", {"ends_at": "This time is already over."}),
    ("", "2026-03-10T08:00", {"starts_at": "Choose a date and time."}),
    ("2026-03-10T09:00", "soon", {"ends_at": "Enter a date and time."}),
])
def test_time_off_validation(mechanic, starts, ends, errors):
    with pytest.raises(AvailabilityInvalid) as caught:
        working_hours.add_time_off(mechanic.id, starts, ends)
    assert caught.value.errors == errors
    assert db.session.scalar(db.select(db.func.count()).select_from(TimeOff)) == 0


def test_overlapping_time_off_is_refused_and_a_long_reason_too(mechanic):
    working_hours.add_time_off(mechanic.id, "2026-03-10T09:00", "2026-03-12T09:00")
    with pytest.raises(AvailabilityInvalid) as caught:
        working_hours.add_time_off(mechanic.id, "2026-03-11T09:00", "2026-03-13T09:00")
    assert "Overlaps your time off from Mar 10 09:00 to Mar 12 09:00" in caught.value.errors["starts_at"]
    with pytest.raises(AvailabilityInvalid) as caught:
        working_hours.add_time_off(mechanic.id, "2026-03-20T09:00", "2026-03-21T09:00", "x" * 201)
    assert set(caught.value.errors) == {"reason"}


def test_time_off_delete_only_own(mechanic):
    other = UserFactory("mechanic")
    row = working_hours.add_time_off(mechanic.id, "2026-03-10T09:00", "2026-03-12T09:00")
    with pytest.raises(NotFound):
        working_hours.delete_time_off(other.id, row.id)
    working_hours.delete_time_off(mechanic.id, row.id)
    assert working_hours.editor_state(mechanic.id).time_off == []
    with pytest.raises(NotFound):
        working_hours.delete_time_off(mechanic.id, row.id)


def test_finished_time_off_is_not_listed(mechanic):
    working_hours.add_time_off(mechanic.id, "2026-03-02T09:00", "2026-03-02T17:00")
    clock.set(datetime(2026, 3, 3, 0, 0))
    assert working_hours.editor_state(mechanic.id).time_off == []


def test_settings_are_saved(mechanic):
    profile = working_hours.update_settings(mechanic.id, "America/Vancouver", "15", "6", "60")
    assert (profile.time_zone, profile.buffer_minutes, profile.daily_cap, profile.booking_window_days) == (
        "America/Vancouver", 15, 6, 60)
    profile = working_hours.update_settings(mechanic.id, "UTC", 0, "", 1)
    assert profile.daily_cap is None


@pytest.mark.parametrize("args,field,message", [
    (("Mars/Olympus", 0, "", 30), "time_zone", "“Mars/Olympus” is not a time zone we know"),
    (("", 0, "", 30), "time_zone", "Choose your time zone."),
    (("UTC", 121, "", 30), "buffer_minutes", "between 0 and 120"),
    (("UTC", -5, "", 30), "buffer_minutes", "between 0 and 120"),
    (("UTC", "ten", "", 30), "buffer_minutes", "whole number"),
    (("UTC", 0, "0", 30), "daily_cap", "between 1 and 48"),
    (("UTC", 0, "49", 30), "daily_cap", "between 1 and 48"),
    (("UTC", 0, "", 0), "booking_window_days", "between 1 and 365"),
    (("UTC", 0, "", 366), "booking_window_days", "between 1 and 365"),
    (("UTC", 0, "", ""), "booking_window_days", "Enter the booking window"),
])
def test_settings_validation(mechanic, args, field, message):
    with pytest.raises(AvailabilityInvalid) as caught:
        working_hours.update_settings(mechanic.id, *args)
    assert list(caught.value.errors) == [field]
    assert message in caught.value.errors[field]
    db.session.rollback()
    assert working_hours.editor_state(mechanic.id).time_zone == "America/Toronto"


def test_zone_groups_offer_the_common_zones():
    groups = dict(working_hours.zone_groups())
    assert ("America/Toronto", "Toronto") in groups["America"]
    assert ("America/Argentina/Salta", "Argentina – Salta") in groups["America"]
    assert "US" not in groups and "Etc" not in groups
