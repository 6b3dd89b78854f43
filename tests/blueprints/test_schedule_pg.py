"""Scheduling on Postgres, where the exclusion constraint (not the availability check) can be
what refuses a time: the intake, the new vehicle and the photos go with the rolled-back hold,
and with "any available" the next mechanic gets the booking with a single intake."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment, Intake, StoredFile, Vehicle
from autodoctor.services import appointments, availability, plans
from tests.blueprints.test_schedule import NOW, complete, png_bytes, post, stored_files, toronto_mechanic
from tests.factories import PASSWORD, UserFactory


@pytest.fixture
def world(pg_app, monkeypatch):
    """The first mechanic's time is taken by another customer just before this customer's hold
    inserts its row (committed on another connection, after the page and the checks saw it free)."""
    clock.set(NOW)
    customer, other = UserFactory("customer"), UserFactory("customer")
    first = toronto_mechanic("Anna First")
    db.session.commit()
    real_hold, plan_id, refused = appointments.hold_slot, plans.get_plan("chat10").id, []

    def raced(customer_id, mechanic_id, plan, starts_at, *args, **kwargs):
        if mechanic_id == first.id:
            with db.engine.begin() as conn:
                conn.execute(sa.insert(Appointment).values(
                    customer_id=other.id, mechanic_id=first.id, plan_id=plan_id, kind="online", status="held",
                    starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), customer_time_zone="UTC",
                    hold_expires_at=NOW + timedelta(minutes=15), ics_sequence=0, any_mechanic=False,
                    created_at=NOW))
            monkeypatch.setattr(availability, "is_bookable", lambda *a, **k: True)  # so only the constraint refuses
        try:
            return real_hold(customer_id, mechanic_id, plan, starts_at, *args, **kwargs)
        except appointments.SlotTaken as exc:
            refused.append((mechanic_id, type(exc.__context__).__name__))
            raise

    monkeypatch.setattr(appointments, "hold_slot", raced)
    client = pg_app.test_client()
    assert client.post("/login", data={"email": customer.email, "password": PASSWORD}).status_code == 303
    return {"client": client, "customer": customer, "first": first, "refused": refused}


def counts():
    db.session.expire_all()
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(m)) for m in (Intake, Vehicle, StoredFile))


def test_a_hold_refused_by_the_constraint_leaves_nothing_behind(pg_app, world):
    response = post(world["client"], "/customer/schedule", complete(
        world["first"].id, vehicle="new", year="2011", make="Honda", model="Civic"), photos=[("a.png", png_bytes())])
    assert response.status_code == 409, response.get_data(as_text=True)[:500]
    assert counts() == (0, 0, 0) and stored_files(pg_app) == []
    assert db.session.scalar(sa.select(sa.func.count(Appointment.id))) == 1  # the other customer's
    assert world["refused"] == [(world["first"].id, "IntegrityError")]


def test_any_available_moves_on_with_one_intake(pg_app, world):
    second = toronto_mechanic("Ben Second")
    db.session.commit()
    response = post(world["client"], "/customer/schedule", complete(
        "any", vehicle="new", year="2011", make="Honda", model="Civic"), photos=[("a.png", png_bytes())])
    assert response.status_code == 204, response.get_data(as_text=True)[:500]
    mine = db.session.scalar(sa.select(Appointment).where(Appointment.customer_id == world["customer"].id))
    assert mine.mechanic_id == second.id and mine.any_mechanic is True
    assert world["refused"] == [(world["first"].id, "IntegrityError")]
    assert counts() == (1, 1, 1) and len(stored_files(pg_app)) == 2  # the photo and its thumbnail
    assert mine.intake.vehicle.make == "Honda" and mine.intake.waiver is None
