"""The minimal admin console: the unattended queue and assigning a mechanic."""
from datetime import timedelta

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.services import lifecycle, sweep
from tests.factories import PaidSessionFactory, UserFactory


def unattended_session():
    session = PaidSessionFactory(UserFactory("customer"))
    db.session.commit()
    clock.set(clock.now() + timedelta(minutes=6))
    sweep.run_sweep()
    return session.id


def test_unattended_request_appears_in_the_admin_queue(app, login):
    admin = UserFactory("admin")
    UserFactory("mechanic", full_name="Raj Spanner")
    session_id = unattended_session()
    page = login(admin).get("/admin/").get_data(as_text=True)
    assert f"#{session_id} Quick Chat" in page
    assert "Raj Spanner" in page


def test_admin_assigns_an_unattended_request_to_a_free_mechanic(app, login):
    admin = UserFactory("admin")
    mechanic_id = UserFactory("mechanic", full_name="Raj Spanner").id
    session_id = unattended_session()
    request_id = db.session.get(ConsultSession, session_id).current_request.id
    response = login(admin).post(f"/admin/requests/{request_id}/assign", data={"mechanic_id": mechanic_id},
                                 follow_redirects=True)
    assert f"Session #{session_id} assigned to Raj Spanner." in response.get_data(as_text=True)
    db.session.expire_all()
    session = db.session.get(ConsultSession, session_id)
    assert (session.status, session.mechanic_id) == ("waiting", mechanic_id)
    assert [e.kind for e in session_events(session_id)][-1] == "assigned"


def test_admin_cannot_assign_a_busy_mechanic(app, login):
    admin = UserFactory("admin")
    mechanic_id = UserFactory("mechanic").id
    busy = PaidSessionFactory(UserFactory("customer"))
    lifecycle.accept_request(busy.current_request.id, mechanic_id)
    db.session.commit()
    session_id = unattended_session()
    request_id = db.session.get(ConsultSession, session_id).current_request.id
    page = login(admin).post(f"/admin/requests/{request_id}/assign", data={"mechanic_id": mechanic_id},
                             follow_redirects=True).get_data(as_text=True)
    assert "Choose a mechanic who is free right now." in page
    db.session.expire_all()
    assert db.session.get(ConsultSession, session_id).status == "pending"


def test_admin_pages_are_for_admins_only(app, login):
    assert login(UserFactory("mechanic")).get("/admin/").status_code == 403
    assert login(UserFactory("customer")).get("/admin/").status_code == 403


def session_events(session_id):
    from autodoctor.services import timeline

    return timeline.for_session(session_id)
