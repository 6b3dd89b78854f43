"""Every admin action is in the audit log with its values before and after.

Each admin POST route is driven once through the UI with valid input against a small world,
and must add an audit row of its action with before and/or after values. A new admin POST
route fails `test_every_admin_action_is_listed` until it is added here."""
import re
from datetime import timedelta

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import AuditEntry, ConsultSession, Plan, SessionRequest
from autodoctor.services import lifecycle, sweep
from tests.factories import AcceptedSessionFactory, PaidSessionFactory, UserFactory


def _unattended_request_id():
    session = PaidSessionFactory(UserFactory("customer"))
    db.session.commit()
    return session.current_request.id


def _applicant():
    mechanic = UserFactory("mechanic")
    mechanic.mechanic_profile.approved = False
    mechanic.mechanic_profile.applied_at = clock.now()
    db.session.commit()
    return mechanic.id


def _completed_session_id():
    mechanic = UserFactory("mechanic")
    session = AcceptedSessionFactory(UserFactory("customer"), mechanic, live=True)
    lifecycle.end_session(session.id, mechanic.id, "Replace the spark plugs.")
    db.session.commit()
    return session.id


def _maintenance_token(client):
    page = client.get("/admin/maintenance").get_data(as_text=True)
    return re.search(r'name="token" type="hidden" value="([0-9a-f]+)"|id="token" name="token" type="hidden" '
                     r'value="([0-9a-f]+)"', page).group(0).rsplit('"', 2)[-2]


def _world():
    """{endpoint: (audit action, path, form data or a function of the client giving it)}."""
    free_mechanic = UserFactory("mechanic")
    reassign_to = UserFactory("mechanic")
    waiting = AcceptedSessionFactory(UserFactory("customer"), UserFactory("mechanic"))
    live = AcceptedSessionFactory(UserFactory("customer"), UserFactory("mechanic"), live=True)
    pending = PaidSessionFactory(UserFactory("customer"))
    db.session.commit()
    assign, extend, cancel = (_unattended_request_id() for _ in range(3))
    clock.set(clock.now() + timedelta(minutes=6))
    sweep.run_sweep()  # the three requests are unattended now
    overdue = PaidSessionFactory(UserFactory("customer"))  # mark-unattended is due at apply time
    db.session.commit()
    db.session.execute(db.update(SessionRequest).where(SessionRequest.id == overdue.current_request.id)
                       .values(created_at=clock.now() - timedelta(minutes=6)))
    db.session.commit()
    completed = _completed_session_id()
    customer = UserFactory("customer")
    banned = UserFactory("customer")
    plan = db.session.scalar(db.select(Plan).where(Plan.code == "chat10"))
    approve, reject, revoke = _applicant(), _applicant(), UserFactory("mechanic").id
    db.session.commit()
    users = f"/admin/users/{customer.id}"
    return {
        "admin.request_assign": ("request.assign", f"/admin/requests/{assign}/assign",
                                 {"mechanic_id": free_mechanic.id}),
        "admin.request_extend": ("request.extend", f"/admin/requests/{extend}/extend", {"minutes": "30"}),
        "admin.request_cancel": ("session.cancel", f"/admin/requests/{cancel}/cancel",
                                 {"reason": "Customer asked by phone"}),
        "admin.session_force_end": ("session.force_end", f"/admin/sessions/{live.id}/end",
                                    {"end-reason": "Abusive language"}),
        "admin.session_cancel": ("session.cancel", f"/admin/sessions/{pending.id}/cancel",
                                 {"cancel-reason": "Duplicate booking"}),
        "admin.session_reassign": ("session.reassign", f"/admin/sessions/{waiting.id}/reassign",
                                   {"reassign-mechanic_id": reassign_to.id, "reassign-reason": "Mechanic unwell"}),
        "admin.session_refund": ("session.refund", f"/admin/sessions/{completed}/refund",
                                 {"refund-scope": "partial", "refund-amount": "2.50",
                                  "refund-reason": "Connection problems"}),
        "admin.user_suspend": ("user.suspend", f"{users}/suspend", {"suspend-reason": "Chargeback under review"}),
        "admin.user_ban": ("user.ban", f"/admin/users/{banned.id}/ban", {"ban-reason": "Fraud"}),
        "admin.user_reactivate": ("user.reactivate", f"/admin/users/{banned.id}/reactivate",
                                  {"reactivate-reason": "Appeal accepted"}),
        "admin.user_verify_email": ("user.verify_email", f"{users}/verify-email", {"verify_email-confirm": "yes"}),
        "admin.user_password_reset": ("user.password_reset", f"{users}/password-reset",
                                      {"password_reset-confirm": "yes"}),
        "admin.user_note_create": ("user.note", f"{users}/notes", {"note-body": "Called about a refund."}),
        "admin.user_free_session": ("user.grant_free_session", f"{users}/free-session",
                                    {"free_session-plan_code": "chat10", "free_session-reason": "Goodwill"}),
        "admin.application_approve": ("mechanic.approve", f"/admin/applications/{approve}/approve",
                                      {"confirm": "y"}),
        "admin.application_reject": ("mechanic.reject", f"/admin/applications/{reject}/reject",
                                     {"reason": "The insurance document has expired."}),
        "admin.application_revoke": ("mechanic.revoke", f"/admin/applications/{revoke}/revoke",
                                     {"reason": "Certificate withdrawn by the issuer."}),
        "admin.plan_update": ("plan.update", f"/admin/plans/{plan.id}/edit",
                              {"name": plan.name, "price": "10.99", "minutes": str(plan.minutes),
                               "extension_price": "", "max_photos": str(plan.max_photos), "active": "y",
                               "reason": "Price review"}),
        "admin.fee_rule_create": ("fee.update", "/admin/fee-rules", {"percent": "22", "note": "Q1 pricing"}),
        "admin.maintenance_apply": ("maintenance.cleanup", "/admin/maintenance",
                                    lambda client: {"token": _maintenance_token(client), "confirm": "y"}),
    }


def _admin_post_endpoints(app):
    return {rule.endpoint for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("admin.") and "POST" in (rule.methods or ())}


def test_every_admin_action_is_listed(app):
    """A new admin POST route must be added to `_world` (and write its audit row)."""
    with app.test_request_context():
        listed = set(_world())
    assert _admin_post_endpoints(app) == listed


def test_every_admin_action_writes_an_audit_row_with_before_and_after(app, login):
    admin = UserFactory("admin")
    world = _world()
    client = login(admin)
    for endpoint, (action, path, data) in world.items():
        before = db.session.scalar(db.select(db.func.count(AuditEntry.id)).where(AuditEntry.action == action))
        response = client.post(path, data=data(client) if callable(data) else data)
        assert response.status_code in (200, 303), (endpoint, response.status_code,
                                                     response.get_data(as_text=True)[:500])
        db.session.expire_all()
        rows = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == action)
                                  .order_by(AuditEntry.id)).all()
        assert len(rows) == before + 1, f"{endpoint} wrote no {action!r} audit row"
        row = rows[-1]
        assert row.actor_id == admin.id and row.created_at is not None, endpoint
        assert row.before is not None or row.after is not None, f"{endpoint}: no before/after values"
        assert row.summary, endpoint
    # A sanity check that the actions really happened (not only their audit rows).
    assert db.session.scalar(db.select(db.func.count(ConsultSession.id)).where(
        ConsultSession.end_reason == "admin_ended")) == 1
