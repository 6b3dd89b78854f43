"""Intakes without a waiver yet (a scheduled appointment: it is signed on the day), and a draft
that can be saved again after its transaction was rolled back."""
import pytest

from autodoctor.extensions import db
from autodoctor.models import Intake, Vehicle, Waiver
from autodoctor.services import intakes, plans
from tests.factories import UserFactory

DATA = {"year": 2011, "make": "Honda", "model": "Civic", "vin": "", "concern": "Grinding noise when braking.",
        "city": "Toronto", "country": "ca"}


def test_no_waiver_means_signed_later(app):
    customer = UserFactory()
    intake = intakes.create_intake(customer, plans.get_plan("chat10"), DATA, [], None)  # no accept_waiver asked
    assert intake.waiver is None and db.session.scalar(db.select(db.func.count(Waiver.id))) == 0
    assert (intake.country, str(intake.vehicle)) == ("CA", "2011 Honda Civic")


def test_book_now_still_needs_the_waiver(app):
    with pytest.raises(intakes.IntakeErrors) as caught:
        intakes.create_intake(UserFactory(), plans.get_plan("chat10"), DATA, [], {"ip": "127.0.0.1"})
    assert caught.value.errors == {"accept_waiver": "You must accept the waiver to continue."}


def test_a_draft_is_saved_again_after_a_rollback(app):
    customer, plan = UserFactory(), plans.get_plan("chat10")
    db.session.commit()
    draft = intakes.check_intake(customer, plan, DATA, [], waiver_now=False)
    intakes.add_intake(customer, plan, draft)
    db.session.rollback()
    intake = intakes.add_intake(customer, plan, draft)
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Intake.id))) == 1
    assert db.session.scalar(db.select(db.func.count(Vehicle.id))) == 1 and intake.vehicle.make == "Honda"


def test_a_saved_vehicle_must_be_the_customers_own(app):
    customer, other, plan = UserFactory(), UserFactory(), plans.get_plan("chat10")
    theirs = intakes.create_intake(other, plan, DATA, [], None).vehicle
    with pytest.raises(intakes.IntakeErrors) as caught:
        intakes.check_intake(customer, plan, {**DATA, "vehicle_id": theirs.id}, [], waiver_now=False)
    assert caught.value.errors == {"vehicle": "Choose one of your vehicles, or add one."}
    mine = intakes.create_intake(customer, plan, DATA, [], None).vehicle
    draft = intakes.check_intake(customer, plan, {**DATA, "vehicle_id": mine.id, "make": ""}, [], waiver_now=False)
    assert draft.vehicle_id == mine.id and draft.new_vehicle is None and draft.vehicle_label == "2011 Honda Civic"
