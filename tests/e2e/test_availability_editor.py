"""The availability editor in a real browser on a tablet: a mechanic adds a second range to
Tuesday without a reload, saves, reloads and finds it there; and the page fits a phone."""
import uuid

import pytest
from playwright.sync_api import expect

from autodoctor.extensions import db
from autodoctor.models.scheduling import WeeklyHours
from autodoctor.services import working_hours
from tests.e2e.helpers import DEMO_PASSWORD, log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

TABLET = {"width": 1024, "height": 768}


def _mechanic(live_app, week):
    email = f"avail-{uuid.uuid4().hex[:8]}@example.com"
    with live_app.test_request_context():
        mechanic = UserFactory("mechanic", email, "Tess Tablet")
        working_hours.replace_week(mechanic.id, week)
        db.session.commit()
        return email, mechanic.id


def test_add_a_second_range_on_tuesday_without_reload(live_server, live_app, browser):
    email, mechanic_id = _mechanic(live_app, {1: [("09:00", "12:00")]})
    context = browser.new_context(viewport=TABLET, has_touch=True)
    page = log_in(context.new_page(), live_server.url, email)
    try:
        page.goto(live_server.url + "/mechanic/availability")
        tuesday = page.locator("#weekday-1")
        expect(tuesday.locator("[data-range]")).to_have_count(1)
        expect(page.locator("#weekday-0")).to_contain_text("Day off")
        page.evaluate("window.__sameDocument = true")

        tuesday.get_by_role("button", name="+ Add a range").click()
        expect(tuesday.locator("[data-range]")).to_have_count(2)
        second = tuesday.locator("[data-range]").nth(1)
        expect(second.locator("input[name=day-1-start]")).to_have_value("13:00")  # an hour after the last range
        second.locator("input[name=day-1-start]").fill("13:30")
        second.locator("input[name=day-1-end]").fill("17:00")
        expect(page.locator("[data-unsaved]")).to_be_visible()
        page.get_by_role("button", name="Save weekly hours").click()

        expect(page.locator("#availability-weekly")).to_contain_text("Weekly hours saved.")
        assert page.evaluate("window.__sameDocument") is True  # saved by HTMX, no page load
        page.reload()
        tuesday = page.locator("#weekday-1")
        expect(tuesday.locator("[data-range]")).to_have_count(2)
        expect(tuesday.locator("input[name=day-1-start]").nth(0)).to_have_value("09:00")
        expect(tuesday.locator("input[name=day-1-end]").nth(0)).to_have_value("12:00")
        expect(tuesday.locator("input[name=day-1-start]").nth(1)).to_have_value("13:30")
        expect(tuesday.locator("input[name=day-1-end]").nth(1)).to_have_value("17:00")
        with live_app.app_context():
            rows = db.session.scalars(db.select(WeeklyHours).where(WeeklyHours.mechanic_id == mechanic_id)
                                      .order_by(WeeklyHours.start_minute)).all()
            assert [(r.weekday, r.start_minute, r.end_minute) for r in rows] == [(1, 540, 720), (1, 810, 1020)]
            db.session.remove()

        # Touch targets stay big on the tablet.
        box = tuesday.get_by_role("button", name="+ Add a range").bounding_box()
        assert box["height"] >= 44
    finally:
        context.close()


def test_demo_hours_copy_monday_and_a_phone_screen(live_server, browser):
    """Lena (demo data) works Mon–Fri 09–12 and 13–17 in Vancouver; on a 360 px phone the page
    does not scroll sideways, and "copy Monday" fills Tuesday to Friday (not saved here)."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, has_touch=True, is_mobile=True)
    page = log_in(context.new_page(), live_server.url, "lena@autodoctor.example", DEMO_PASSWORD)
    try:
        page.goto(live_server.url + "/mechanic/availability")
        expect(page.locator("#time-zone")).to_have_value("America/Vancouver")
        expect(page.locator("#weekday-4 input[name=day-4-start]")).to_have_count(2)
        expect(page.locator("#weekday-5")).to_contain_text("Day off")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360

        monday = page.locator("#weekday-0")
        monday.get_by_role("button", name="+ Add a range").click()
        monday.locator("input[name=day-0-start]").nth(2).fill("18:00")
        monday.locator("input[name=day-0-end]").nth(2).fill("19:00")
        page.get_by_role("button", name="Copy Monday to Tue–Fri").click()
        expect(page.locator("#weekday-3 [data-range]")).to_have_count(3)
        expect(page.locator("#weekday-3 input[name=day-3-start]").nth(2)).to_have_value("18:00")
        expect(page.locator("#weekday-5 [data-range]")).to_have_count(0)  # weekend untouched
    finally:
        context.close()
