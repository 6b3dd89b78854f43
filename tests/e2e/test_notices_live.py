"""In-app reminders in a real browser: the customer has their appointments page open and the
mechanic their dashboard; the 15-minute reminder goes out (e-mail and in-app) and the notice
appears on both pages without a reload, each on its person's clock; the customer dismisses it
and it is gone, for good."""
import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment, Plan
from autodoctor.services import appointments
from autodoctor.services.availability import local
from tests.e2e.helpers import log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

SSE_OPEN = "document.addEventListener('htmx:sseOpen', function () { window.__sseOpen = true; });"


def _people(live_app):
    tag = uuid.uuid4().hex[:8]
    with live_app.test_request_context():
        customer = UserFactory("customer", f"notice-c-{tag}@example.com", "Nora Notice")
        mechanic = UserFactory("mechanic", f"notice-m-{tag}@example.com", f"Remi Reminder {tag}",
                               time_zone="America/Vancouver")
        db.session.commit()
        made = customer.id, customer.email, mechanic.id, mechanic.email, mechanic.full_name
        db.session.remove()
        return made


def _appointment_in_14_minutes(live_app, customer_id, mechanic_id):
    """Booked from Tokyo, 14 minutes from now: its 15-minute reminder is due."""
    with live_app.test_request_context():
        plan = db.session.scalar(db.select(Plan).where(Plan.code == "video15"))
        starts_at = clock.now().replace(second=0, microsecond=0) + timedelta(minutes=14)
        appointment = Appointment(customer_id=customer_id, mechanic_id=mechanic_id, plan_id=plan.id, status="booked",
                                  starts_at=starts_at, ends_at=starts_at + timedelta(minutes=plan.minutes),
                                  customer_time_zone="Asia/Tokyo", last_reminder_minutes=60)
        db.session.add(appointment)
        db.session.commit()
        # The worker's sweep (every 2 s) may send it first: it goes out once either way.
        appointments.send_due_reminder(appointment.id)
        db.session.commit()
        made = (appointment.id, local(starts_at, "Asia/Tokyo").strftime("%H:%M %Z"),
                local(starts_at, "America/Vancouver").strftime("%H:%M %Z"))
        db.session.remove()
        return made


def _open(browser, base, email, path):
    context = browser.new_context()
    context.add_init_script(SSE_OPEN)
    page = log_in(context.new_page(), base, email)
    page.goto(base + path)
    page.wait_for_function("window.__sseOpen === true")
    page.evaluate("window.__sameDocument = true")
    return context, page


def test_the_reminder_appears_on_open_pages_and_dismiss_removes_it(live_server, live_app, browser):
    customer_id, customer, mechanic_id, mechanic, mechanic_name = _people(live_app)
    base = live_server.url
    customer_context, page = _open(browser, base, customer, "/customer/appointments")
    mechanic_context, dashboard = _open(browser, base, mechanic, "/mechanic/")
    try:
        expect(page.locator("#notices .notice")).to_have_count(0)
        appointment_id, tokyo, vancouver = _appointment_in_14_minutes(live_app, customer_id, mechanic_id)

        notice = page.locator("#notices .notice")
        link = notice.get_by_role("link")
        expect(link).to_have_text(f"Your appointment with {mechanic_name} starts in 15 minutes, at {tokyo} "
                                  "— sign the waiver and join.")
        expect(link).to_have_attribute("href", f"/customer/appointments#appointment-{appointment_id}")
        expect(dashboard.locator("#notices .notice")).to_contain_text(f"Appointment with Nora Notice in 15 minutes, "
                                                                      f"at {vancouver}.")
        assert page.evaluate("window.__sameDocument") and dashboard.evaluate("window.__sameDocument")
        live_server.wait_for_mail(customer, "in 15 minutes")

        notice.get_by_role("button", name="Dismiss").click()
        expect(page.locator("#notices .notice")).to_have_count(0)
        assert page.evaluate("window.__sameDocument") is True  # dismissed by HTMX, no reload
        page.reload()
        expect(page.locator(f"#appointment-{appointment_id}")).to_be_visible()
        expect(page.locator("#notices .notice")).to_have_count(0)
        expect(dashboard.locator("#notices .notice")).to_have_count(1)  # the mechanic's own notice stays
    finally:
        customer_context.close()
        mechanic_context.close()
