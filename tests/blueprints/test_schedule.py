"""The customer's scheduling page: steps shown one after another, times in the customer's own
zone, the vehicle and concern (with photos) it collects, review with the price and any account
credit, hold + checkout with the intake (no waiver yet), a time taken meanwhile leaving nothing
behind, validation, the hand-off from "book now", and the offer to move an upcoming booking."""
import io
import re
from datetime import datetime
from html import unescape
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment, Intake, Payment, StoredFile, Vehicle, Waiver
from autodoctor.models.scheduling import WeeklyHours
from autodoctor.services import appointments, plans
from tests.factories import IntakeFactory, UserFactory

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
    data = {"tz": "Europe/London", "kind": "online", "vehicle": "none", "plan": "chat10", "mechanic": str(mechanic_id),
            "day": TUESDAY}
    data.update(extra)
    return data


CONCERN = {"concern": "Grinding noise from the front left wheel when braking.", "city": "London", "country": "GB"}
TIME = "2026-04-07T13:00"


def complete(mechanic_id, **extra):
    """Every step and field filled in: what "Review" and "Hold this time and pay" send."""
    return steps(mechanic_id, starts_at=TIME, **{**CONCERN, **extra})


def png_bytes(color=(200, 30, 30)):
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buf, format="PNG")
    return buf.getvalue()


def post(client, url, data, photos=()):
    data = dict(data)
    if photos:
        data["photos"] = [(io.BytesIO(content), name) for name, content in photos]
    return client.post(url, data=data, headers=HX, content_type="multipart/form-data")


def field_errors(response, name):
    page = response.get_data(as_text=True)
    match = re.search(rf'<div class="field[^"]*" id="field-{name}">(.*?)</div>', page, re.S)
    assert match, f"field {name} not on the page"
    return [unescape(m) for m in re.findall(r'<p class="error" role="alert">(.*?)</p>', match.group(1), re.S)]


def count(model):
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def stored_files(app):
    root = Path(app.config["UPLOAD_DIR"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


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
    assert "Online or in person?" in html and 'id="step-vehicle"' not in html and 'id="step-plan"' not in html
    fragment = client_c.get("/customer/schedule", headers=HX, query_string={"kind": "online"}).get_data(as_text=True)
    assert "<html" not in fragment and 'id="step-vehicle"' in fragment and 'id="step-plan"' not in fragment
    assert "Add a vehicle" in fragment and "Just advice, no vehicle" in fragment
    fragment = client_c.get("/customer/schedule", headers=HX, query_string={
        "kind": "online", "vehicle": "none"}).get_data(as_text=True)
    assert 'id="step-plan"' in fragment and 'id="step-mechanic"' not in fragment
    assert "Quick Chat" in fragment and "Free Session" not in fragment  # the free plan is not scheduled
    fragment = client_c.get("/customer/schedule", headers=HX, query_string={
        "kind": "online", "vehicle": "none", "plan": "chat10", "tz": "Europe/London"}).get_data(as_text=True)
    assert "Any available" in fragment and "Tom Toronto" in fragment
    assert "Next free: Mon 6 Apr 2026, 15:00" in fragment  # 10:00 in Toronto: two hours from 08:00
    assert "No free times in the next two weeks" in fragment  # the fixture's mechanics have no hours
    fragment = client_c.get("/customer/schedule", headers=HX, query_string=steps(
        world["mechanic"].id, day="")).get_data(as_text=True)
    assert 'id="step-day"' in fragment and "Tue 7 Apr" in fragment and 'id="step-time"' not in fragment
    assert 'id="step-concern" hidden' in fragment  # drawn, so what is typed there survives, but not shown yet
    fragment = client_c.get("/customer/schedule", headers=HX, query_string=steps(
        world["mechanic"].id, starts_at=TIME)).get_data(as_text=True)
    assert 'id="step-concern">' in fragment and "7. Your concern" in fragment and "recent repairs" in fragment
    assert ">Review</button>" in fragment and 'id="step-review"' not in fragment


def test_the_concern_inputs_stay_in_the_browser_across_redraws(client_c, world):
    """Typed text and picked photos are kept by hx-preserve and left out of the GETs, so
    neither a redraw nor a long description can lose them."""
    html = client_c.get("/customer/schedule").get_data(as_text=True)
    for tag in ('<textarea id="schedule-concern" name="concern"', '<input type="file" id="schedule-photos"',
                '<select id="schedule-country" name="country"', '<input type="text" id="schedule-city"'):
        assert re.search(re.escape(tag) + r'[^>]*hx-preserve="true"', html), tag
    assert 'hx-params="not concern,city,country,photos,csrf_token"' in html
    assert 'enctype="multipart/form-data"' in html


def test_saved_vehicles_are_offered_once_each(client_c, world):
    customer = world["customer"]
    IntakeFactory(customer)
    IntakeFactory(customer)  # the same Civic again
    IntakeFactory(customer, year=2019, make="Ford", model="Focus")
    IntakeFactory(world["other"], year=2020, make="Tesla", model="Model 3")
    db.session.commit()
    fragment = client_c.get("/customer/schedule", headers=HX, query_string={"kind": "online"}).get_data(as_text=True)
    assert fragment.count("2015 Honda Civic") == 1 and "2019 Ford Focus" in fragment and "Tesla" not in fragment
    assert fragment.index("2019 Ford Focus") < fragment.index("2015 Honda Civic")  # newest first


def test_a_day_without_free_times_says_so(client_c, world):
    html = client_c.get("/customer/schedule", query_string=steps(world["mechanic"].id, day="2026-04-11")).get_data(
        as_text=True)
    assert "No free times on this day — try another day." in html


def test_review_shows_vehicle_concern_photos_and_the_price(client_c, world, app):
    mechanic_id = world["mechanic"].id
    long_concern = "Grinding noise from the front left wheel when braking, " * 6
    response = post(client_c, "/customer/schedule/review", complete(
        mechanic_id, vehicle="new", year="2011", make="Honda", model="Civic", concern=long_concern),
        photos=[("wheel.png", png_bytes()), ("pads.png", png_bytes((0, 0, 200)))])
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "8. Review" in html and "Tue 7 Apr 2026, 14:00" in html and "Tom Toronto" in html
    assert '<dd id="review-vehicle">2011 Honda Civic</dd>' in html
    shown = unescape(re.search(r'<dd id="review-concern">(.*?)</dd>', html).group(1))
    assert shown.startswith("Grinding noise from the front left wheel") and shown.endswith("…") and len(shown) <= 120
    assert '<dd id="review-photos">2 photos</dd>' in html
    assert "<strong>$9.99</strong>" in html and "Hold this time and pay" in html and "Account credit" not in html
    assert (count(Intake), count(Vehicle), count(StoredFile), stored_files(app)) == (0, 0, 0, [])  # nothing kept yet
    html = post(client_c, "/customer/schedule/review", complete(
        mechanic_id, kind="in_person", plan="video15")).get_data(as_text=True)
    assert "<strong>$15.00</strong> deposit, balance after service" in html
    assert '<dd id="review-vehicle">Just advice, no vehicle</dd>' in html and '<dd id="review-photos">None</dd>' in html


def test_review_shows_account_credit(client_c, world, monkeypatch):
    from autodoctor.services import money

    monkeypatch.setattr(money, "credit_balance", lambda customer_id: 450)
    html = post(client_c, "/customer/schedule/review", complete(world["mechanic"].id)).get_data(as_text=True)
    assert "Account credit −$4.50," in html and "to pay <strong>$5.49</strong>" in html
    monkeypatch.setattr(money, "credit_balance", lambda customer_id: 5000)
    html = post(client_c, "/customer/schedule/review", complete(world["mechanic"].id)).get_data(as_text=True)
    assert "Account credit −$9.99," in html and "to pay <strong>$0.00</strong>" in html


def test_a_time_page_never_holds_without_the_concern_step(client_c, world):
    html = client_c.get("/customer/schedule", query_string=steps(world["mechanic"].id, starts_at=TIME)).get_data(
        as_text=True)
    assert "Hold this time and pay" not in html  # the review comes after the concern


def test_hold_attaches_the_intake_without_a_waiver_and_redirects_to_checkout(client_c, world, app):
    response = post(client_c, "/customer/schedule", complete(
        world["mechanic"].id, vehicle="new", year="2011", make="Honda", model="Civic", vin=" 1hgcm82633a004352 "),
        photos=[("wheel.png", png_bytes())])
    assert response.status_code == 204, response.get_data(as_text=True)
    appointment = db.session.scalar(db.select(Appointment))
    payment = db.session.scalar(db.select(Payment).where(Payment.appointment_id == appointment.id))
    assert response.headers["HX-Redirect"].endswith(f"/customer/checkout/{payment.id}/test")
    assert (appointment.status, appointment.mechanic_id, appointment.customer_id) == (
        "held", world["mechanic"].id, world["customer"].id)
    assert appointment.starts_at == datetime(2026, 4, 7, 13, 0) and appointment.customer_time_zone == "Europe/London"
    assert appointment.any_mechanic is False and payment.amount_cents == 999
    intake = appointment.intake
    assert intake.concern == CONCERN["concern"] and (intake.city, intake.country) == ("London", "GB")
    assert intake.plan.code == "chat10" and intake.advice_only is False
    assert (intake.vehicle.year, intake.vehicle.make, intake.vehicle.vin) == (2011, "Honda", "1HGCM82633A004352")
    assert intake.vehicle.owner_id == world["customer"].id
    assert [p.original_name for p in intake.photos] == ["wheel.png"] and len(stored_files(app)) == 2  # + thumbnail
    assert intake.waiver is None and count(Waiver) == 0  # signed on the day


def test_a_saved_vehicle_is_used_as_it_is(client_c, world):
    saved = IntakeFactory(world["customer"]).vehicle
    db.session.commit()
    response = post(client_c, "/customer/schedule", complete(world["mechanic"].id, vehicle=str(saved.id)))
    assert response.status_code == 204
    assert db.session.scalar(db.select(Appointment)).intake.vehicle_id == saved.id and count(Vehicle) == 1


def test_someone_elses_vehicle_cannot_be_chosen(client_c, world):
    theirs = IntakeFactory(world["other"]).vehicle
    db.session.commit()
    response = post(client_c, "/customer/schedule", complete(world["mechanic"].id, vehicle=str(theirs.id)))
    assert response.status_code == 422
    assert "Choose a vehicle, add one, or choose “Just advice”." in response.get_data(as_text=True)
    assert count(Appointment) == 0


def test_paying_books_it_and_lands_on_the_appointments_page(client_c, world):
    client_c.post("/customer/schedule", data=complete(world["mechanic"].id))
    payment = db.session.scalar(db.select(Payment).where(Payment.purpose == "appointment"))
    response = client_c.post(f"/customer/checkout/{payment.id}/test", data={"card_number": "4242 4242 4242 4242"},
                             follow_redirects=True)
    assert response.request.path == "/customer/appointments"
    assert "Your appointment is booked." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(db.select(Appointment)).status == "booked"


def test_account_credit_that_covers_the_price_books_it_without_a_card(client_c, world):
    from autodoctor.services import money

    customer = world["customer"]
    money._post(None, None, "Credit from a late cancellation", (money.ESCROW, "credit", -1500),
                (money.credit_account(customer.id), "credit", 1500))
    db.session.commit()
    response = post(client_c, "/customer/schedule", complete(world["mechanic"].id))
    assert response.status_code == 204 and response.headers["HX-Redirect"].endswith("/customer/appointments")
    page = client_c.get("/customer/appointments").get_data(as_text=True)
    assert "Your appointment is booked. It was paid from your account credit." in page
    appointment = db.session.scalar(db.select(Appointment))
    payment = db.session.scalar(db.select(Payment).where(Payment.appointment_id == appointment.id))
    assert (appointment.status, payment.provider, payment.amount_cents, payment.credit_cents) == (
        "booked", "credit", 0, 999)
    assert money.credit_balance(customer.id) == 501


def test_any_available_takes_the_first_mechanic_free_at_that_time(client_c, world):
    second = toronto_mechanic("Ann Second")
    appointments.hold_slot(world["other"].id, world["mechanic"].id, plans.get_plan("chat10"),
                           datetime(2026, 4, 7, 13, 0), "online", "UTC")
    db.session.commit()
    response = post(client_c, "/customer/schedule", complete("any"))
    assert response.status_code == 204
    mine = db.session.scalar(db.select(Appointment).where(Appointment.customer_id == world["customer"].id))
    assert mine.mechanic_id == second.id and mine.any_mechanic is True
    assert mine.intake.concern == CONCERN["concern"] and count(Intake) == 1


def test_a_time_taken_meanwhile_offers_other_times_and_leaves_nothing_behind(client_c, world, app):
    mechanic_id = world["mechanic"].id
    page = post(client_c, "/customer/schedule/review", complete(mechanic_id))
    assert "Hold this time and pay" in page.get_data(as_text=True)
    appointments.hold_slot(world["other"].id, mechanic_id, plans.get_plan("chat10"), datetime(2026, 4, 7, 13, 0))
    db.session.commit()
    response = post(client_c, "/customer/schedule", complete(
        mechanic_id, vehicle="new", year="2011", make="Honda", model="Civic"), photos=[("wheel.png", png_bytes())])
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "That time was just taken. Please pick another time." in html
    assert ">Tue 7 Apr 2026, 14:30</button>" in html and "Tue 7 Apr 2026, 14:00</button>" not in html
    assert '"starts_at": "2026-04-07T13:30"' in html
    assert "Hold this time and pay" not in html
    assert count(Appointment) == 1
    assert (count(Intake), count(Vehicle), count(StoredFile), stored_files(app)) == (0, 0, 0, [])


def test_taken_at_the_hold_itself_leaves_nothing_behind(client_c, world, app, monkeypatch):
    """The time looked free but the hold refuses it (another booking committed in between):
    the intake, the new vehicle and the photos are all rolled back, no file stays on disk."""
    def taken(*args, **kwargs):
        assert kwargs["intake"].id is not None  # the intake was flushed, then goes with the rollback
        raise appointments.SlotTaken([])

    monkeypatch.setattr(appointments, "hold_slot", taken)
    response = post(client_c, "/customer/schedule", complete(
        world["mechanic"].id, vehicle="new", year="2011", make="Honda", model="Civic"),
        photos=[("wheel.png", png_bytes())])
    assert response.status_code == 409
    assert (count(Intake), count(Vehicle), count(StoredFile), count(Appointment), stored_files(app)) == (
        0, 0, 0, 0, [])


def test_validation_names_the_missing_step(client_c, world):
    response = client_c.post("/customer/schedule", headers=HX, data={"tz": "Europe/London"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Please complete the highlighted steps." in html and "Choose an online or an in-person appointment." in html
    html = client_c.post("/customer/schedule", headers=HX, data={"kind": "online", "plan": "chat10"}).get_data(
        as_text=True)
    assert "Choose a vehicle, add one, or choose “Just advice”." in html
    html = client_c.post("/customer/schedule", headers=HX, data={
        "kind": "online", "vehicle": "none", "plan": "chat10"}).get_data(as_text=True)
    assert "Choose a mechanic, or “Any available”." in html
    html = client_c.post("/customer/schedule", headers=HX, data=steps(world["mechanic"].id)).get_data(as_text=True)
    assert "Choose a time." in html
    html = client_c.post("/customer/schedule", headers=HX, data=steps(
        world["mechanic"].id, plan="free")).get_data(as_text=True)
    assert "Choose a plan." in html
    assert count(Appointment) == 0


def test_the_concern_and_vehicle_fields_are_checked(client_c, world, app):
    mechanic_id = world["mechanic"].id
    response = post(client_c, "/customer/schedule", complete(
        mechanic_id, vehicle="new", year="1890", make="", model="Civic", vin="1HGCM82633A00435",
        concern="noise", city="", country="ZZ"))
    assert response.status_code == 422
    assert "Please correct the highlighted fields." in response.get_data(as_text=True)
    assert field_errors(response, "year")[0].startswith("Enter a year between 1950 and ")
    assert field_errors(response, "make") == ["Enter the make, e.g. Honda."]
    assert field_errors(response, "vin") == ["A VIN has 17 characters; this one has 16."]
    assert field_errors(response, "concern") == ["Describe the problem in at least 10 characters."]
    assert field_errors(response, "city") == ["Enter your city."]
    assert field_errors(response, "country") == ["Choose your country."]
    assert field_errors(response, "model") == []
    response = post(client_c, "/customer/schedule/review", complete(mechanic_id, concern="x" * 4001))
    assert response.status_code == 422
    assert field_errors(response, "concern") == ["Keep the description under 4,000 characters."]
    assert (count(Appointment), count(Intake), count(Vehicle), stored_files(app)) == (0, 0, 0, [])


def test_photos_are_checked_against_the_plan(client_c, world, app):
    mechanic_id = world["mechanic"].id
    response = post(client_c, "/customer/schedule", complete(mechanic_id, plan="quick_advice"),
                    photos=[("a.png", png_bytes()), ("b.png", png_bytes())])
    assert response.status_code == 422
    assert field_errors(response, "photos") == ["The Quick Advice plan takes up to 1 photo."]
    assert "Quick Advice: up to 1 photo." in response.get_data(as_text=True)
    response = post(client_c, "/customer/schedule/review", complete(mechanic_id),
                    photos=[("engine.png", b"#!/bin/sh\necho definitely a photo\n" * 10)])
    assert response.status_code == 422
    assert "“engine.png” is not a file type we accept" in field_errors(response, "photos")[0]
    assert (count(Appointment), count(Intake), count(StoredFile), stored_files(app)) == (0, 0, 0, [])


def test_dashboard_and_nav_link_to_the_page(client_c):
    html = client_c.get("/customer/").get_data(as_text=True)
    assert html.count('href="/customer/schedule"') == 2


def test_other_roles_cannot_schedule(login, users, world):
    assert login(users["mechanic_a"]).get("/customer/schedule").status_code == 403


# --- "schedule instead" from book now --------------------------------------------------------

def test_the_book_now_page_offers_to_schedule_instead(client_c):
    """The book-now wizard links to the scheduling page with what its draft holds."""
    client_c.post("/customer/book/vehicle", data={"vehicle": "none"})
    client_c.post("/customer/book/plan", data={"plan": "video15"})
    html = client_c.get("/customer/book/mechanic").get_data(as_text=True)
    link = re.search(r'<a[^>]*href="(/customer/schedule\?[^"]*)"[^>]*id="schedule-instead"[^>]*>'
                     r'Schedule for later instead</a>', html)
    assert link and "from=intake" in link.group(1) and "plan=video15" in link.group(1)
    assert "vehicle=none" in link.group(1)


def test_what_was_typed_on_book_now_is_carried_over(client_c, world):
    # What the book-now form sends with formmethod=get: its token is taken out of the URL first.
    sent = {"csrf_token": "abc", "plan": "video15", "year": "2011", "make": "Honda", "model": "Civic",
            "vin": "1HGCM82633A004352", "concern": "Grinding noise when braking <b>hard</b>", "city": "Leeds",
            "country": "GB", "photos": "wheel.png", "accept_waiver": "y", "from": "intake"}
    response = client_c.get("/customer/schedule", query_string=sent)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert "csrf_token" not in location and "accept_waiver" not in location and "photos" not in location
    html = client_c.get(location).get_data(as_text=True)
    assert "We kept what you entered." in html
    assert "Grinding noise when braking &lt;b&gt;hard&lt;/b&gt;</textarea>" in html
    assert re.search(r'id="schedule-city" name="city" value="Leeds"', html)
    assert '<option value="GB" selected>' in html
    for name, value in (("vehicle", "new"), ("plan", "video15"), ("year", "2011"), ("make", "Honda")):
        assert f'<input type="hidden" name="{name}" value="{value}">' in html  # until their steps show
    # Once "online" is chosen, the vehicle step shows what was typed, and the plan is chosen.
    fragment = client_c.get("/customer/schedule", headers=HX, query_string={
        "kind": "online", "vehicle": "new", "plan": "video15", "year": "2011", "make": "Honda", "model": "Civic",
        "vin": "1HGCM82633A004352"}).get_data(as_text=True)
    assert re.search(r'name="vehicle" value="new" checked', fragment)
    assert re.search(r'id="vehicle-make" name="make" value="Honda"', fragment)
    assert re.search(r'name="plan" value="video15" checked', fragment) and 'id="step-mechanic"' in fragment


def test_carried_values_are_checked_like_any_input(client_c, world):
    saved = IntakeFactory(world["customer"]).vehicle  # 2015 Honda Civic
    db.session.commit()
    html = client_c.get("/customer/schedule", query_string={
        "plan": "platinum", "advice_only": "y", "concern": "x" * 5000, "city": "c" * 300, "country": "Narnia",
        "from": "intake"}).get_data(as_text=True)
    assert 'name="plan"' not in html  # an unknown plan is ignored
    assert '<input type="hidden" name="vehicle" value="none">' in html
    concern = re.search(r'<textarea id="schedule-concern"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    assert concern == "x" * 4000
    assert re.search(r'name="city" value="c{80}"', html) and "<option value=\"\" selected>" in html
    html = client_c.get("/customer/schedule", query_string={
        "plan": "free", "year": "2015", "make": "honda", "model": "civic", "from": "intake"}).get_data(as_text=True)
    assert 'name="plan"' not in html  # the free plan is not scheduled
    assert f'<input type="hidden" name="vehicle" value="{saved.id}">' in html  # the same car, already saved


def test_city_and_country_default_to_the_last_intake(client_c, world):
    IntakeFactory(world["customer"], city="Galway", country="IE")
    db.session.commit()
    html = client_c.get("/customer/schedule").get_data(as_text=True)
    assert re.search(r'id="schedule-city" name="city" value="Galway"', html) and '<option value="IE" selected>' in html
    assert "We kept what you entered." not in html


# --- an upcoming booking ---------------------------------------------------------------------

def _booked(world, starts_at=datetime(2026, 4, 7, 13, 0)):
    appointment = appointments.hold_slot(world["customer"].id, world["mechanic"].id, plans.get_plan("chat10"),
                                         starts_at, "online", "Europe/London")
    appointments.confirm(appointment.id)
    db.session.commit()
    return appointment


def test_a_customer_with_an_upcoming_booking_is_offered_to_move_or_cancel_it(client_c, world):
    appointment = _booked(world)
    html = client_c.get("/customer/schedule").get_data(as_text=True)
    assert "You already have an appointment on Tue 7 Apr 2026, 14:00" in html
    assert (f'href="/customer/appointments/{appointment.id}/reschedule">Move it to another time</a>') in html
    assert f'href="/customer/appointments/{appointment.id}/cancel">Cancel it</a>' in html
    assert 'id="schedule-form"' not in html  # the offer first
    another = re.search(r'<a class="button secondary" href="([^"]+)" id="book-another">Book another one anyway</a>',
                        html).group(1)
    html = client_c.get(unescape(another)).get_data(as_text=True)
    assert "You already have an appointment" not in html and 'id="schedule-form"' in html
    fresh = client_c.get("/customer/schedule", headers=HX, query_string={"kind": "online"}).get_data(as_text=True)
    assert "You already have an appointment" not in fresh


def test_book_another_keeps_what_was_carried_over(client_c, world):
    _booked(world)
    html = client_c.get("/customer/schedule", query_string={"plan": "video15", "from": "intake"}).get_data(
        as_text=True)
    another = unescape(re.search(r'href="([^"]+)" id="book-another"', html).group(1))
    assert "plan=video15" in another and "another=1" in another
    html = client_c.get(another).get_data(as_text=True)
    assert '<input type="hidden" name="plan" value="video15">' in html and "We kept what you entered." in html


def test_an_appointment_too_close_to_move_is_only_offered_to_cancel(client_c, world):
    _booked(world)
    clock.set(datetime(2026, 4, 7, 12, 0))  # an hour before it starts
    html = client_c.get("/customer/schedule").get_data(as_text=True)
    assert "Move it to another time" not in html and "Cancel it</a>" in html
    assert "It starts in less than 2 hours, so it can no longer be moved." in html


def test_links_rebuilt_from_the_query_keep_only_the_pages_own_names(client_c, world):
    _booked(world)
    hostile = {"_scheme": "javascript", "_external": "1", "_anchor": "x", "plan": "chat10"}
    response = client_c.get("/customer/schedule", query_string={**hostile, "csrf_token": "abc"})
    assert response.status_code == 303 and response.headers["Location"] == "/customer/schedule?plan=chat10"
    html = client_c.get("/customer/schedule", query_string=hostile).get_data(as_text=True)
    another = unescape(re.search(r'href="([^"]+)" id="book-another"', html).group(1))
    assert another == "/customer/schedule?plan=chat10&another=1"
