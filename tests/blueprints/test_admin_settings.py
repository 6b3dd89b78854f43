"""Admin plans and fee rules: validation, the audit trail with before/after, and changes that
apply to new sessions only (a session keeps its price, minutes and platform fee)."""
from datetime import datetime, timedelta

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import AuditEntry, ConsultSession, FeeRule, LedgerEntry, Payment, Plan
from autodoctor.services import lifecycle, plans
from autodoctor.services.errors import NotFound
from tests.factories import AcceptedSessionFactory, PaidSessionFactory, PaymentFactory, UserFactory

NOW = datetime(2026, 3, 2, 15, 0)


@pytest.fixture
def admin(app, login):
    clock.set(NOW)
    user = UserFactory("admin", full_name="Ada Admin")
    db.session.commit()
    return login(user)


def plan(code):
    db.session.expire_all()
    return db.session.scalar(db.select(Plan).where(Plan.code == code))


def form_for(p, **changes):
    data = {"name": p.name, "price": f"{p.price_cents / 100:.2f}", "minutes": str(p.minutes),
            "extension_price": "" if p.extension_price_cents is None else f"{p.extension_price_cents / 100:.2f}",
            "max_photos": str(p.max_photos), "reason": "Spring pricing"}
    if p.active:
        data["active"] = "y"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def audit_rows(action=None):
    query = db.select(AuditEntry).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return db.session.scalars(query).all()


def test_plans_page_lists_every_plan_and_the_default_fee(app, admin):
    plan("quick_advice").active = False
    db.session.commit()
    page = admin.get("/admin/plans").get_data(as_text=True)
    for name in ("Free Session", "Quick Advice", "Quick Chat", "Standard Video", "Full Diagnostic"):
        assert name in page
    assert "inactive" in page and "$29.99" in page and "not extendable" in page
    assert 'id="current-fee">20%' in page
    assert "no rule has been set yet" in page


@pytest.mark.parametrize("changes,message", [
    ({"name": "A"}, "The name must be 2 to 80 characters."),
    ({"name": "x" * 81}, "The name must be 2 to 80 characters."),
    ({"price": "abc"}, "Enter an amount in dollars, like 29.99."),
    ({"price": "-5"}, "An amount cannot be negative."),
    ({"price": "9.999"}, "Use at most 2 decimals (whole cents), like 29.99."),
    ({"price": "1000"}, "The most an amount can be is $999.99."),
    ({"price": ""}, "Enter the price in dollars, like 29.99 (0 for a free plan)."),
    ({"minutes": "0"}, "Minutes must be a whole number from 1 to 240."),
    ({"minutes": "241"}, "Minutes must be a whole number from 1 to 240."),
    ({"minutes": "ten"}, "Minutes must be a whole number from 1 to 240."),
    ({"extension_price": "0"}, "Leave the extension price empty (the plan cannot be extended) or enter more"),
    ({"max_photos": "21"}, "Photos must be a whole number from 0 to 20."),
    ({"reason": ""}, "Say why the plan changes (kept in its history)."),
])
def test_a_bad_plan_edit_is_refused_with_a_message_and_changes_nothing(app, admin, changes, message):
    before = plan("chat10")
    snapshot = (before.name, before.price_cents, before.minutes, before.extension_price_cents, before.max_photos)
    response = admin.post(f"/admin/plans/{before.id}/edit", data=form_for(before, **changes))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page.replace("&#39;", "'")
    assert page.count(message) == 1, "one message per problem"
    after = plan("chat10")
    assert (after.name, after.price_cents, after.minutes, after.extension_price_cents, after.max_photos) == snapshot
    assert audit_rows() == []


def test_an_empty_post_changes_nothing(app, admin):
    p = plan("chat10")
    assert admin.post(f"/admin/plans/{p.id}/edit", data={}).status_code == 422
    assert admin.post("/admin/fee-rules", data={}).status_code == 422
    assert plan("chat10").active and plan("chat10").price_cents == 999
    assert audit_rows() == [] and db.session.scalar(db.select(db.func.count(FeeRule.id))) == 0


def test_a_plan_edit_is_audited_with_only_what_changed_and_shown_in_its_history(app, admin):
    p = plan("chat10")
    response = admin.post(f"/admin/plans/{p.id}/edit",
                          data=form_for(p, price="$12.50", minutes="35", extension_price=""))
    assert response.status_code == 303
    p = plan("chat10")
    assert (p.price_cents, p.minutes, p.extension_price_cents, p.name) == (1250, 35, None, "Quick Chat")
    [entry] = audit_rows("plan.update")
    assert entry.before == {"price_cents": 999, "minutes": 30, "extension_price_cents": 499}
    assert entry.after == {"price_cents": 1250, "minutes": 35, "extension_price_cents": None}
    assert (entry.reason, entry.target_type, entry.target_id) == ("Spring pricing", "plan", p.id)
    assert entry.actor.full_name == "Ada Admin"
    assert "applies to new sessions only" in admin.get("/admin/plans").get_data(as_text=True)
    history = admin.get(f"/admin/plans/{p.id}/edit").get_data(as_text=True)
    assert "Ada Admin" in history and "Spring pricing" in history
    assert "Price: $9.99 → <b>$12.50</b>" in history
    assert "+15 min price: $4.99 → <b>not extendable</b>" in history


def test_saving_without_changes_says_so_and_records_nothing(app, admin):
    p = plan("video15")
    response = admin.post(f"/admin/plans/{p.id}/edit", data=form_for(p), follow_redirects=True)
    assert "Nothing changed" in response.get_data(as_text=True)
    assert audit_rows() == []


def test_a_price_and_minutes_change_applies_to_new_sessions_only(app, admin):
    earlier = PaidSessionFactory(UserFactory("customer"))
    open_checkout = PaymentFactory(UserFactory("customer"))
    db.session.commit()
    earlier_id, checkout_id = earlier.id, open_checkout.id
    p = plan("chat10")
    assert admin.post(f"/admin/plans/{p.id}/edit", data=form_for(p, price="14.00", minutes="40")).status_code == 303
    db.session.expire_all()
    earlier = db.session.get(ConsultSession, earlier_id)
    assert earlier.minutes == 30
    assert db.session.scalar(db.select(Payment.amount_cents).where(Payment.session_id == earlier_id)) == 999
    assert db.session.get(Payment, checkout_id).amount_cents == 999, "an open checkout keeps its amount"
    later = PaidSessionFactory(UserFactory("customer"))
    db.session.commit()
    assert later.minutes == 40
    assert db.session.scalar(db.select(Payment.amount_cents).where(Payment.session_id == later.id)) == 1400


def test_a_deactivated_plan_is_not_offered_but_its_sessions_carry_on(app, admin, login):
    customer = UserFactory("customer")
    mechanic = UserFactory("mechanic")
    session = AcceptedSessionFactory(customer, mechanic, plan_code="diagnostic")
    p = plan("diagnostic")
    assert admin.post(f"/admin/plans/{p.id}/edit", data=form_for(p, active=None)).status_code == 303
    assert not plan("diagnostic").active
    assert "Full Diagnostic" not in login(UserFactory("customer")).get("/pricing").get_data(as_text=True)
    assert "Full Diagnostic" not in login(UserFactory("customer")).get("/customer/schedule").get_data(as_text=True)
    with pytest.raises(NotFound):  # the book-now wizard and the intake take plans from here
        plans.get_plan("diagnostic")
    assert "diagnostic" not in [p.code for p in plans.list_plans()]
    for user in (customer, mechanic):  # the existing session still runs to the end
        lifecycle.join_room(session.id, user.id)
        db.session.commit()
    assert lifecycle.maybe_go_live(session.id)
    db.session.commit()
    assert lifecycle.end_at_time_limit(session.id, now=clock.now() + timedelta(minutes=61))
    db.session.commit()
    assert db.session.get(ConsultSession, session.id).status == "completed"


@pytest.mark.parametrize("percent,note,message", [
    ("14", "too low", "The platform fee is a whole percent from 15 to 25."),
    ("26", "too high", "The platform fee is a whole percent from 15 to 25."),
    ("20.5", "half", "The platform fee is a whole percent from 15 to 25."),
    ("abc", "words", "The platform fee is a whole percent from 15 to 25."),
    ("22", "", "Say why the fee changes (kept in the history)."),
    ("20", "same again", "The platform fee is already 20%."),
])
def test_a_bad_fee_rule_is_refused(app, admin, percent, note, message):
    response = admin.post("/admin/fee-rules", data={"percent": percent, "note": note})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(FeeRule.id))) == 0
    assert audit_rows() == []


def settle(customer, mechanic):
    session = AcceptedSessionFactory(customer, mechanic, live=True)
    assert lifecycle.end_at_time_limit(session.id, now=clock.now() + timedelta(minutes=31))
    db.session.commit()
    return db.session.scalar(db.select(LedgerEntry.amount_cents).where(
        LedgerEntry.session_id == session.id, LedgerEntry.account == "platform"))


def test_a_fee_change_applies_to_sessions_created_after_it(app, admin):
    mechanic_a, mechanic_b = UserFactory("mechanic"), UserFactory("mechanic")
    before = AcceptedSessionFactory(UserFactory("customer"), mechanic_a, live=True)
    response = admin.post("/admin/fee-rules", data={"percent": "25", "note": "New marketing budget"},
                          follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "The platform fee is now 25% for new sessions" in page
    assert 'id="current-fee">25%' in page and "New marketing budget" in page and "Ada Admin" in page
    [entry] = audit_rows("fee.update")
    assert (entry.before, entry.after, entry.reason) == ({"platform_percent": 20}, {"platform_percent": 25},
                                                         "New marketing budget")
    assert lifecycle.end_at_time_limit(before.id, now=clock.now() + timedelta(minutes=31))
    db.session.commit()
    old_fee = db.session.scalar(db.select(LedgerEntry.amount_cents).where(
        LedgerEntry.session_id == before.id, LedgerEntry.account == "platform"))
    assert old_fee == 200  # 20% of $9.99, rounded half up
    assert settle(UserFactory("customer"), mechanic_b) == 250  # 25% of $9.99


def test_the_fee_history_lists_rules_newest_first(app, admin):
    admin.post("/admin/fee-rules", data={"percent": "18", "note": "Launch promo"})
    clock.set(NOW + timedelta(days=30))
    admin.post("/admin/fee-rules", data={"percent": "22", "note": "Promo over"})
    page = admin.get("/admin/plans").get_data(as_text=True)
    assert page.index("Promo over") < page.index("Launch promo")
    assert "no rule has been set yet" not in page
    assert [e.after for e in audit_rows("fee.update")] == [{"platform_percent": 18}, {"platform_percent": 22}]


def test_plan_pages_are_admin_only(app, login):
    p = plan("chat10")
    for role in ("customer", "mechanic"):
        client = login(UserFactory(role))
        assert client.get("/admin/plans").status_code == 403
        assert client.post(f"/admin/plans/{p.id}/edit", data=form_for(p, price="1.00")).status_code == 403
    assert plan("chat10").price_cents == 999


def test_editing_a_missing_plan_is_404(app, admin):
    assert admin.get("/admin/plans/9999/edit").status_code == 404
