"""Fixtures for the browser tests: an app on the live server's services, and sessions made
with the factories in its database (each with its own people, so no test waits for a demo
mechanic to be free)."""
import uuid
from dataclasses import dataclass

import pytest

import config
from autodoctor import create_app
from autodoctor.extensions import db
from autodoctor.services import lifecycle, routing
from tests.factories import PaidSessionFactory, UserFactory


@pytest.fixture(scope="session")
def live_app(live_server):
    """An app on the live server's Postgres, Redis and upload folder, so its events, jobs and
    stored files reach the server and its worker."""

    class LiveDb(config.Config):
        SQLALCHEMY_DATABASE_URI = live_server.database_url
        SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        REDIS_URL = live_server.env["REDIS_URL"]
        UPLOAD_DIR = live_server.env["UPLOAD_DIR"]
        PUBLIC_URL = live_server.url
        SWEEP_INTERVAL_SECONDS = 0

    app = create_app(LiveDb)
    yield app
    with app.app_context():
        db.engine.dispose()


@dataclass(frozen=True)
class AcceptedSession:
    id: int
    customer: str  # e-mail addresses; every factory user's password is tests.factories.PASSWORD
    mechanic: str
    outsiders: tuple = ()  # logged-in customers with nothing to do with this session


@pytest.fixture
def accepted_session(live_app):
    """Make a paid session of `plan_code` for a new customer, accepted by a new mechanic
    (waiting for both to come into the room), plus `outsiders` unrelated customers.
    E-mail addresses are unique per call."""

    def make(plan_code, customer_name="Cara Customer", mechanic_name="Mack Mechanic", outsiders=0):
        tag = uuid.uuid4().hex[:8]

        def address(name):
            return f"{name.split()[0].lower()}-{tag}@example.com"

        with live_app.test_request_context():
            customer = UserFactory("customer", address(customer_name), customer_name)
            mechanic = UserFactory("mechanic", address(mechanic_name), mechanic_name)
            others = [UserFactory("customer", f"outsider{n}-{tag}@example.com", f"Otto Outside {n}")
                      for n in range(1, outsiders + 1)]
            db.session.commit()
            session = PaidSessionFactory(customer, plan_code)
            # Mechanics another test left online get no head start on this one.
            routing.broadcast(session.current_request.id, early=True)
            db.session.commit()
            lifecycle.accept_request(session.current_request.id, mechanic.id)
            db.session.commit()
            made = AcceptedSession(session.id, customer.email, mechanic.email, tuple(o.email for o in others))
            db.session.remove()
        return made

    return make
