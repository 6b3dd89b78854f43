"""The availability editor page and its HTMX posts: each part saves and answers with its own
fragment and a message, or with the errors next to the fields (422)."""
from datetime import datetime

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models.scheduling import DateOverride, TimeOff, WeeklyHours
from autodoctor.services import working_hours

HX = {"HX-Request": "true"}


@pytest.fixture
def mechanic(users):
    clock.set(datetime(2026, 3, 1, 12, 0))
    return users["mechanic_a"]


@pytest.fixture
def client_m(login, mechanic):
    return login(mechanic)


def test_page_shows_the_mechanics_hours_overrides_time_off_and_settings(client_m, mechanic):
    working_hours.replace_week(mechanic.id, {1: [("09:00", "12:00"), ("13:00", "17:00")]})
    working_hours.set_override(mechanic.id, "2026-03-16", day_off=True)
    working_hours.add_time_off(mechanic.id, "2026-03-20T08:00", "2026-03-27T18:00", "Vacation in Quebec")
    working_hours.update_settings(mechanic.id, "America/Toronto", 15, "5", 45)
    db.session.commit()
    html = client_m.get("/mechanic/availability").get_data(as_text=True)
    assert "Weekly hours" in html and "availability-1.js" in html and "availability-1.css" in html
    assert 'name="day-1-start" value="09:00"' in html and 'name="day-1-end" value="17:00"' in html
    assert 'name="day-1-on" value="1" data-day-toggle checked' in html
    assert 'name="day-0-on" value="1" data-day-toggle>' in html  # Monday off
    assert "Mon Mar 16, 2026" in html and "Day off" in html
    assert "Fri Mar 20, 08:00" in html and "Fri Mar 27, 18:00" in html and "Vacation in Quebec" in html
    assert '<option value="America/Toronto" selected>' in html
    assert 'name="daily_cap" value="5"' in html and 'name="booking_window_days" value="45"' in html
    assert "Back to the dashboard" in html


def test_empty_states(client_m):
    html = client_m.get("/mechanic/availability").get_data(as_text=True)
    assert "No special dates" in html and "No time off planned." in html


def test_nav_and_dashboard_link_to_the_editor(client_m):
    assert 'href="/mechanic/availability"' in client_m.get("/mechanic/").get_data(as_text=True)


def test_weekly_hours_save(client_m, mechanic):
    response = client_m.post("/mechanic/availability/weekly", headers=HX, data={
        "day-1-on": "1", "day-1-start": ["09:00", "13:00"], "day-1-end": ["12:00", "17:00"],
        "day-2-start": ["09:00"], "day-2-end": ["17:00"],  # Wednesday toggled off: its ranges are dropped
    })
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card availability-part" id="availability-weekly">')
    assert "Weekly hours saved." in html and "<html" not in html
    rows = db.session.scalars(db.select(WeeklyHours).order_by(WeeklyHours.start_minute)).all()
    assert [(r.weekday, r.start_minute, r.end_minute) for r in rows] == [(1, 540, 720), (1, 780, 1020)]


def test_weekly_hours_error_keeps_what_was_typed(client_m, mechanic):
    working_hours.replace_week(mechanic.id, {0: [("09:00", "17:00")]})
    db.session.commit()
    response = client_m.post("/mechanic/availability/weekly", headers=HX, data={
        "day-0-on": "1", "day-0-start": ["08:00"], "day-0-end": ["16:00"],
        "day-1-on": "1", "day-1-start": ["09:00", "11:00"], "day-1-end": ["12:00", "13:00"],
    })
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Tuesday: 09:00–12:00 overlaps 11:00–13:00." in html
    assert 'id="weekday-1"' in html and 'class="weekday has-error" id="weekday-1"' in html
    assert 'name="day-0-start" value="08:00"' in html and 'name="day-1-start" value="11:00"' in html
    assert "Weekly hours saved." not in html
    rows = db.session.scalars(db.select(WeeklyHours)).all()
    assert [(r.weekday, r.start_minute, r.end_minute) for r in rows] == [(0, 540, 1020)]


def test_override_add_and_remove(client_m, mechanic):
    response = client_m.post("/mechanic/availability/overrides", headers=HX, data={
        "day": "2026-03-10", "start": ["10:00", ""], "end": ["14:00", ""]})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Tuesday, March 10 is now special hours." in html and "10:00–14:00" in html
    response = client_m.post("/mechanic/availability/overrides", headers=HX, data={"day": "2026-03-11", "day_off": "1"})
    assert "Wednesday, March 11 is now a day off." in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(DateOverride)) == 2
    response = client_m.post("/mechanic/availability/overrides/delete", headers=HX, data={"day": "2026-03-10"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Tuesday, March 10 is back to your weekly hours." in html
    assert "10:00–14:00" not in html
    response = client_m.post("/mechanic/availability/overrides/delete", headers=HX, data={"day": "2026-03-10"})
    assert response.status_code == 404 and "no special hours any more" in response.get_data(as_text=True)


def test_override_errors_next_to_fields(client_m):
    response = client_m.post("/mechanic/availability/overrides", headers=HX, data={
        "day": "2026-02-01", "start": ["12:00"], "end": ["10:00"]})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'class="field has-error" id="field-override-day"' in html and "Choose today or a later date." in html
    assert "12:00–10:00: the end must be after the start." in html
    assert 'value="2026-02-01"' in html


def test_time_off_add_and_remove(client_m, mechanic):
    response = client_m.post("/mechanic/availability/time-off", headers=HX, data={
        "starts_at": "2026-03-07T09:00", "ends_at": "2026-03-09T09:00", "reason": "Wedding"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Time off added." in html
    assert "Sat Mar 7, 09:00" in html and "Mon Mar 9, 09:00" in html and "Wedding" in html
    row = db.session.scalar(db.select(TimeOff))
    assert (row.starts_at, row.ends_at) == (datetime(2026, 3, 7, 14), datetime(2026, 3, 9, 13))
    response = client_m.post("/mechanic/availability/time-off/delete", headers=HX, data={"time_off_id": row.id})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Time off removed." in html and "No time off planned." in html


def test_time_off_errors_and_other_mechanics_entries(client_m, login, users, mechanic):
    response = client_m.post("/mechanic/availability/time-off", headers=HX, data={
        "starts_at": "2026-03-07T09:00", "ends_at": "2026-03-07T08:00", "reason": "x"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'class="field has-error" id="field-ends_at"' in html and "The end must be after the start." in html
    other = users["mechanic_b"]
    row = working_hours.add_time_off(other.id, "2026-03-10T09:00", "2026-03-11T09:00")
    db.session.commit()
    response = client_m.post("/mechanic/availability/time-off/delete", headers=HX, data={"time_off_id": row.id})
    assert response.status_code == 404 and "already removed" in response.get_data(as_text=True)
    assert db.session.get(TimeOff, row.id) is not None


def test_settings_save_and_errors(client_m, mechanic):
    response = client_m.post("/mechanic/availability/settings", headers=HX, data={
        "time_zone": "America/Vancouver", "buffer_minutes": "10", "daily_cap": "", "booking_window_days": "90"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Settings saved." in html and "America/Vancouver" in html
    assert 'id="availability-time-off" hx-swap-oob="true"' in html  # local times re-shown in the new zone
    profile = mechanic.mechanic_profile
    db.session.refresh(profile)
    assert (profile.time_zone, profile.buffer_minutes, profile.daily_cap, profile.booking_window_days) == (
        "America/Vancouver", 10, None, 90)
    response = client_m.post("/mechanic/availability/settings", headers=HX, data={
        "time_zone": "Atlantis/Capital", "buffer_minutes": "500", "daily_cap": "3", "booking_window_days": "90"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'class="field has-error" id="field-time_zone"' in html and "is not a time zone we know" in html
    assert 'class="field has-error" id="field-buffer_minutes"' in html and "between 0 and 120" in html
    assert 'name="buffer_minutes" value="500"' in html
    db.session.refresh(profile)
    assert profile.buffer_minutes == 10


def test_plain_form_post_redirects_with_a_flash(client_m):
    response = client_m.post("/mechanic/availability/settings", data={
        "time_zone": "UTC", "buffer_minutes": "0", "daily_cap": "", "booking_window_days": "30"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/mechanic/availability")
    assert "Settings saved." in client_m.get("/mechanic/availability").get_data(as_text=True)


@pytest.mark.parametrize("role", ["customer_a", "admin"])
def test_other_roles_are_refused(login, users, role):
    c = login(users[role])
    assert c.get("/mechanic/availability").status_code == 403
    assert c.post("/mechanic/availability/weekly", data={"day-0-on": "1"}).status_code == 403


def test_anonymous_is_sent_to_log_in(client):
    response = client.get("/mechanic/availability")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
