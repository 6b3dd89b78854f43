"""Scheduling in a real browser on a phone in London: a new customer picks online, a plan, a
mechanic, a day and a time (the page never reloads, times on the London clock), holds it,
pays with the test card and lands on the appointments page; the appointment is booked."""
import re
import uuid

import pytest
from playwright.sync_api import expect

from autodoctor.extensions import db
from autodoctor.models import Appointment
from autodoctor.services import availability, working_hours
from tests.e2e.helpers import signup
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}


def _mechanic(live_app):
    """A mechanic in Toronto working every day around the clock, so there are times whenever the test runs."""
    tag = uuid.uuid4().hex[:8]
    with live_app.test_request_context():
        mechanic = UserFactory("mechanic", f"sched-{tag}@example.com", f"Sky Scheduler {tag}")
        working_hours.update_settings(mechanic.id, "America/Toronto", 0, "", 30)
        working_hours.replace_week(mechanic.id, {day: [("00:00", "24:00")] for day in range(7)})
        db.session.commit()
        return mechanic.id, mechanic.full_name


def test_a_new_customer_schedules_pays_and_is_booked(live_server, live_app, browser):
    mechanic_id, mechanic_name = _mechanic(live_app)
    context = browser.new_context(viewport=PHONE, timezone_id="Europe/London", has_touch=True)
    page = context.new_page()
    base = live_server.url
    try:
        signup(page, base, f"planner-{uuid.uuid4().hex[:8]}@example.com")
        page.get_by_role("link", name="Schedule for later").click()
        expect(page).to_have_url(re.compile(r"/customer/schedule$"))
        page.evaluate("window.__sameDocument = true")

        page.locator("input[name=kind][value=online]").check()
        page.locator("input[name=plan][value=chat10]").check()
        mechanic = page.locator(f"#mechanic-{mechanic_id}")
        expect(mechanic).to_contain_text(mechanic_name)
        expect(mechanic).to_contain_text("Next free:")
        mechanic.locator("input").check()
        page.locator("#step-day .schedule-choice.day:not(.unavailable) input").last.check()
        expect(page.locator("[data-zone-label]")).to_have_text("Europe/London")
        first_time = page.locator("input[name=starts_at]").first
        starts_at = first_time.get_attribute("value")
        shown = page.locator("#step-time .schedule-choice.time").first.inner_text().strip()
        first_time.check()

        review = page.locator("#step-review")
        expect(review).to_contain_text(mechanic_name)
        expect(review).to_contain_text("$9.99")
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .map(e => e.tagName + '.' + e.className + '#' + e.id + ':' + Math.round(e.getBoundingClientRect().right))""")
        assert not wide, wide  # fits 360 px
        assert page.evaluate("window.__sameDocument") is True  # every step came by HTMX
        review.get_by_role("button", name="Hold this time and pay").click()

        expect(page).to_have_url(re.compile(r"/checkout/\d+/test$"))
        page.fill("input[name=card_number]", "4242 4242 4242 4242")
        page.click("button:has-text('Pay')")
        expect(page).to_have_url(re.compile(r"/customer/appointments"))
        expect(page.locator("body")).to_contain_text("Your appointment is booked.")
    finally:
        context.close()

    with live_app.app_context():
        appointment = db.session.scalar(db.select(Appointment).where(Appointment.mechanic_id == mechanic_id))
        assert appointment.status == "booked"
        assert appointment.customer_time_zone == "Europe/London"
        assert appointment.starts_at.strftime("%Y-%m-%dT%H:%M") == starts_at
        # The time the customer picked was on the London clock.
        assert availability.local(appointment.starts_at, "Europe/London").strftime("%H:%M") == shown
        db.session.remove()
