"""The customer's scheduling page: steps shown one after another, times in the customer's own
zone, review with the price, hold + checkout, a time taken meanwhile, validation."""
from datetime import datetime

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment, Payment
from autodoctor.models.scheduling import WeeklyHours
from autodoctor.services import appointments, plans
from tests.factories import UserFactory

HX = {"HX-Request": "true"}
# Monday 6 April 2026, 12:00 UTC: Toronto is on EDT (UTC-4), London on BST (UTC+1).
NOW = datetime(2026, 4, 6, 12, 0)
TUESDAY = "2026-04-07"


def toronto_mechanic(name):
    user = UserFactory("mechanic", full_name=name)
    user.mechanic_profile.time_zone = "America/Toronto"
    user.mechanic_profile.booking_window_days = 60
    for weekday in range(5):
        db.session.add(WeeklyHours(mechanic_id=user.id, weekday=weekday, start_minute=9 * 60, end_minute=17 * 60))
    db.session.commit()
    return user


@pytest.fixture
def world(users):
    clock.set(NOW)
    return {"customer": users["customer_a"], "other": users["customer_b"], "mechanic": toronto_mechanic("Tom Toronto")}


@pytest.fixture
def client_c(login, world):
    return login(world["customer"])


def steps(mechanic_id, **extra):
    data = {"tz": "Europe/London", "kind": "online", "plan": "chat10", "mechanic": str(mechanic_id), "day": TUESDAY}
    data.update(extra)
    return data


def test_times_are_shown_in_the_customers_zone(client_c, world):
    html = client_c.get("/customer/schedule", query_string=steps(world["mechanic"].id)).get_data(as_text=True)
    # 09:00 in Toronto (EDT) is 13:00 UTC and 14:00 in London (BST).
    assert 'value="2026-04-07T13:00"' in html and "<strong>14:00</strong>" in html
    assert "<strong>21:30</strong>" in html and "<strong>22:00</strong>" not in html  # last start for 30 min
    assert "Times are shown in your time zone: <strong data-zone-label>Europe/London</strong>" in html
    assert "schedule-1.js" in html and "Back to my sessions" in html


def test_unknown_zone_falls_back_to_utc(client_c, world):
    html = client_c.get("/customer/schedule", query_string=steps(world["mechanic"].id, tz="Mars/Olympus")).get_data(
        as_text=True)
    assert "<strong data-zone-label>UTC</strong>" in html and "<strong>13:00</strong>" in html
    assert "<strong>14:00</strong>" in html  # 10:00 in Toronto


def test_steps_appear_one_after_another_and_htmx_gets_only_the_steps(client_c, world):
    html = client_c.get("/customer/schedule").get_data(as_text=True)
    assert "Online or in person?" in html and 'id="step-plan"' not in html
    fragment = client_c.get("/customer/schedule", headers=HX, query_string={"kind": "online"}).get_data(as_text=True)
    assert "<html" not in fragment and 'id="step-plan"' in fragment and 'id="step-mechanic"' not in fragment
    assert "Quick Chat" in fragment and "Free Session" not in fragment  # the free plan is not scheduled
    fragment = client_c.get("/customer/schedule", headers=HX, query_string={
        "kind": "online", "plan": "chat10", "tz": "Europe/London"}).get_data(as_text=True)
    assert "Any available" in fragment and "Tom Toronto" in fragment
    assert "Next free: Mon 6 Apr 2026, 15:00" in fragment  # 10:00 in Toronto: two hours from 08:00
    assert "No free times in the next two weeks" in fragment  # the fixture's mechanics have no hours
    fragment = client_c.get("/customer/schedule", headers=HX, query_string=steps(
        world["mechanic"].id, day="")).get_data(as_text=True)
    assert 'id="step-day"' in fragment and "Tue 7 Apr" in fragment and 'id="step-time"' not in fragment


def test_a_day_without_free_times_says_so(client_c, world):
    html = client_c.get("/customer/schedule", query_string=steps(world["mechanic"].id, day="2026-04-11")).get_data(
        as_text=True)
    assert "No free times on this day — try another day." in html


def test_review_shows_the_price_online_and_the_deposit_in_person(client_c, world):
    mechanic_id = world["mechanic"].id
    html = client_c.get("/customer/schedule", query_string=steps(mechanic_id, starts_at="2026-04-07T13:00")).get_data(
        as_text=True)
    assert "Tue 7 Apr 2026, 14:00" in html and "Tom Toronto" in html and "Hold this time and pay" in html
    assert "<strong>$9.99</strong></dd>" in html
    html = client_c.get("/customer/schedule", query_string=steps(
        mechanic_id, kind="in_person", plan="video15", starts_at="2026-04-07T13:00")).get_data(as_text=True)
    assert "<strong>$15.00</strong> deposit, balance after service" in html


def test_hold_and_redirect_to_checkout(client_c, world):
    response = client_c.post("/customer/schedule", headers=HX, data=steps(
        world["mechanic"].id, starts_at="2026-04-07T13:00"))
    assert response.status_code == 204
    appointment = db.session.scalar(db.select(Appointment))
    payment = db.session.scalar(db.select(Payment).where(Payment.appointment_id == appointment.id))
    assert response.headers["HX-Redirect"].endswith(f"/customer/checkout/{payment.id}/test")
    assert (appointment.status, appointment.mechanic_id, appointment.customer_id) == (
        "held", world["mechanic"].id, world["customer"].id)
    assert appointment.starts_at == datetime(2026, 4, 7, 13, 0) and appointment.customer_time_zone == "Europe/London"
    assert payment.amount_cents == 999


def test_paying_books_it_and_lands_on_the_appointments_page(client_c, world):
    client_c.post("/customer/schedule", data=steps(world["mechanic"].id, starts_at="2026-04-07T13:00"))
    payment = db.session.scalar(db.select(Payment).where(Payment.purpose == "appointment"))
    response = client_c.post(f"/customer/checkout/{payment.id}/test", data={"card_number": "4242 4242 4242 4242"},
                             follow_redirects=True)
    assert response.request.path == "/customer/appointments"
    assert "Your appointment is booked." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(db.select(Appointment)).status == "booked"


def test_any_available_takes_the_first_mechanic_free_at_that_time(client_c, world):
    second = toronto_mechanic("Ann Second")
    appointments.hold_slot(world["other"].id, world["mechanic"].id, plans.get_plan("chat10"),
                           datetime(2026, 4, 7, 13, 0), "online", "UTC")
    db.session.commit()
    response = client_c.post("/customer/schedule", headers=HX, data=steps("any", starts_at="2026-04-07T13:00"))
    assert response.status_code == 204
    mine = db.session.scalar(db.select(Appointment).where(Appointment.customer_id == world["customer"].id))
    assert mine.mechanic_id == second.id


def test_a_time_taken_meanwhile_offers_other_times(client_c, world):
    mechanic_id = world["mechanic"].id
    page = client_c.get("/customer/schedule", query_string=steps(mechanic_id, starts_at="2026-04-07T13:00"))
    assert "Hold this time and pay" in page.get_data(as_text=True)
    appointments.hold_slot(world["other"].id, mechanic_id, plans.get_plan("chat10"), datetime(2026, 4, 7, 13, 0))
    db.session.commit()
    response = client_c.post("/customer/schedule", headers=HX, data=steps(mechanic_id, starts_at="2026-04-07T13:00"))
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "That time was just taken. Please pick another time." in html
    assert ">Tue 7 Apr 2026, 14:30</button>" in html and "Tue 7 Apr 2026, 14:00</button>" not in html
    assert '"starts_at": "2026-04-07T13:30"' in html
    assert "Hold this time and pay" not in html
    assert db.session.scalar(db.select(db.func.count(Appointment.id))) == 1


def test_validation_names_the_missing_step(client_c, world):
    response = client_c.post("/customer/schedule", headers=HX, data={"tz": "Europe/London"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Please complete the highlighted steps." in html and "Choose an online or an in-person appointment." in html
    html = client_c.post("/customer/schedule", headers=HX, data={"kind": "online", "plan": "chat10"}).get_data(
        as_text=True)
    assert "Choose a mechanic, or “Any available”." in html
    html = client_c.post("/customer/schedule", headers=HX, data=steps(world["mechanic"].id)).get_data(as_text=True)
    assert "Choose a time." in html
    html = client_c.post("/customer/schedule", headers=HX, data=steps(
        world["mechanic"].id, plan="free")).get_data(as_text=True)
    assert "Choose a plan." in html
    assert db.session.scalar(db.select(db.func.count(Appointment.id))) == 0


def test_dashboard_and_nav_link_to_the_page(client_c):
    html = client_c.get("/customer/").get_data(as_text=True)
    assert html.count('href="/customer/schedule"') == 2


def test_other_roles_cannot_schedule(login, users, world):
    assert login(users["mechanic_a"]).get("/customer/schedule").status_code == 403


def test_a_customer_with_an_upcoming_booking_is_offered_to_manage_it(client_c, world):
    appointment = appointments.hold_slot(world["customer"].id, world["mechanic"].id, plans.get_plan("chat10"),
                                         datetime(2026, 4, 7, 13, 0), "online", "Europe/London")
    appointments.confirm(appointment.id)
    db.session.commit()
    html = client_c.get("/customer/schedule").get_data(as_text=True)
    assert "You already have an appointment: <strong>Tue 7 Apr 2026, 14:00 (Europe/London)</strong>" in html
    assert 'href="/customer/appointments"' in html and "Manage my appointments" in html
    fresh = client_c.get("/customer/schedule", headers=HX, query_string={"kind": "online"}).get_data(as_text=True)
    assert "You already have an appointment" not in fresh
