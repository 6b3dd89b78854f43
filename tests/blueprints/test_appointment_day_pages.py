"""The day of an appointment in the pages: the customer signs the waiver (typed name + drawn
signature) and lands in the room; the mechanic sees "Waiting for waiver", then "Join the room";
an in-person visit's waiver is signed on the mechanic's tablet, then "Visit done"."""
from datetime import timedelta

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment
from autodoctor.services import appointments
from tests.blueprints.test_appointment_pages import NOW, TEN_AM, text
from tests.factories import UserFactory
from tests.services.test_appointment_day import signature
from tests.services.test_appointments import checkout, pay, plan
from tests.services.test_availability import mechanic


@pytest.fixture(autouse=True)
def fixed_clock():
    clock.set(NOW)
    yield
    clock.reset()


def booked(app, kind="online"):
    customer = UserFactory("customer", full_name="Cara Customer")
    mechanic_id = mechanic()
    appointment = appointments.hold_slot(customer.id, mechanic_id, plan(), TEN_AM, kind=kind,
                                         customer_time_zone="Europe/London")
    _, payment = checkout(app, appointment)
    assert pay(app, payment) == "fulfilled"
    return customer, db.session.get(Appointment, appointment.id)


def test_sign_the_waiver_and_land_in_the_room_while_the_mechanic_watches(app, login):
    customer, appointment = booked(app)
    mechanic_client = login(appointment.mechanic)
    customer_client = login(customer)
    clock.set(TEN_AM - timedelta(minutes=20))
    page = text(customer_client.get(f"/customer/appointments/{appointment.id}/waiver"))
    assert "You can sign the waiver and join from <strong>14:45</strong>" in page  # London time
    assert "signature-pad" not in page

    dashboard = text(mechanic_client.get("/mechanic/"))
    assert "Next appointment: <strong>Mon 12 Jan, 10:00 EST</strong>" in dashboard and "Cara Customer" in dashboard
    clock.set(TEN_AM - timedelta(minutes=15))
    board = text(mechanic_client.get("/mechanic/appointments?day=2026-01-12"))
    assert "Waiting for waiver" in board and 'hx-trigger="every 10s"' in board
    page = text(customer_client.get(f"/customer/appointments/{appointment.id}/waiver"))
    assert "signature-pad" in page and "Sign and join" in page and "version 2026-11" in page

    refused = customer_client.post(f"/customer/appointments/{appointment.id}/waiver",
                                   data={"signed_name": "", "signature": ""})
    assert refused.status_code == 422
    assert "Type your full name." in text(refused) and "Sign in the box" in text(refused)
    assert not appointments.waiver_signed(db.session.get(Appointment, appointment.id))
    # "Join" without a signature goes to the waiver.
    assert customer_client.post(f"/customer/appointments/{appointment.id}/join").headers["Location"].endswith(
        f"/customer/appointments/{appointment.id}/waiver")

    signed = customer_client.post(f"/customer/appointments/{appointment.id}/waiver",
                                  data={"signed_name": "Cara Customer", "signature": signature()},
                                  headers={"User-Agent": "PhoneBrowser/1.0"})
    assert signed.status_code == 303
    db.session.expire_all()
    session_id = db.session.get(Appointment, appointment.id).session_id
    assert signed.headers["Location"].endswith(f"/room/{session_id}")
    assert db.session.get(Appointment, appointment.id).intake.waiver.user_agent == "PhoneBrowser/1.0"
    assert customer_client.get(f"/room/{session_id}").status_code == 200
    board = text(mechanic_client.get("/mechanic/appointments?day=2026-01-12"))
    assert "Waiting for waiver" not in board and f'href="/room/{session_id}">Join the room' in board
    assert mechanic_client.get(f"/room/{session_id}").status_code == 200
    # Back on the list, "Join" goes straight into the same room.
    listing = text(customer_client.get("/customer/appointments"))
    assert ">Join</button>" in listing
    again = customer_client.post(f"/customer/appointments/{appointment.id}/join")
    assert again.headers["Location"].endswith(f"/room/{session_id}")


def test_an_in_person_waiver_is_signed_on_the_mechanics_tablet(app, login):
    customer, appointment = booked(app, kind="in_person")
    mechanic_client = login(appointment.mechanic)
    clock.set(TEN_AM - timedelta(minutes=5))
    listing = text(login(customer).get("/customer/appointments"))
    assert "sign the waiver on" in listing and "Sign the waiver and join" not in listing
    board = text(mechanic_client.get("/mechanic/appointments?day=2026-01-12"))
    assert "Waiver on this tablet" in board
    page = text(mechanic_client.get(f"/mechanic/appointments/{appointment.id}/waiver"))
    assert "Hand this tablet to Cara" in page and "signature-pad" in page
    wrong = mechanic_client.post(f"/mechanic/appointments/{appointment.id}/waiver",
                                 data={"signed_name": "Mack Mechanic", "signature": signature()})
    assert wrong.status_code == 422 and "Type the name on the booking: Cara Customer." in text(wrong)
    done = mechanic_client.post(f"/mechanic/appointments/{appointment.id}/waiver",
                                data={"signed_name": "Cara Customer", "signature": signature()})
    assert done.status_code == 303
    assert "Waiver signed by Cara Customer" in text(mechanic_client.get(done.headers["Location"]))
    clock.set(TEN_AM + timedelta(minutes=30))
    board = text(mechanic_client.get("/mechanic/appointments?day=2026-01-12"))
    assert "Visit done" in board and "Mark no-show" not in board
    finished = mechanic_client.post(f"/mechanic/appointments/{appointment.id}/complete", data={})
    assert finished.status_code == 303
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).status == "completed"


def test_other_people_cannot_sign_or_join(app, login):
    _, appointment = booked(app)
    clock.set(TEN_AM)
    stranger = login(UserFactory("customer"))
    assert stranger.get(f"/customer/appointments/{appointment.id}/waiver").status_code == 404
    assert stranger.post(f"/customer/appointments/{appointment.id}/waiver",
                         data={"signed_name": "X Y", "signature": signature()}).status_code == 404
    assert stranger.post(f"/customer/appointments/{appointment.id}/join").status_code == 404
    other_mechanic = login(UserFactory("mechanic"))
    assert other_mechanic.get(f"/mechanic/appointments/{appointment.id}/waiver").status_code == 404
    assert other_mechanic.post(f"/mechanic/appointments/{appointment.id}/complete").status_code == 404
