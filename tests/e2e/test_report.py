"""The diagnostic report end to end, against the live server (gunicorn gevent + RQ worker +
Postgres + Redis + a real SMTP server):

- the mechanic, on a 360 px phone screen in the room, types trouble codes and sees their
  standard meaning appear, adds and removes rows without a reload, gets field errors, saves;
- the session ends; the customer reads the report on the summary, downloads the PDF, and
  receives the e-mail with the PDF attached (rendered by the worker).
The session (diagnostic, accepted by its own mechanic) is made with the factories on the live
server's database, through the same services the pages use."""
import email
import io
import re

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.e2e.helpers import open_room

pytestmark = pytest.mark.e2e
PHONE = {"width": 360, "height": 740}
FINDINGS = "Cylinder 1 misfires under load; the ignition coil boot is cracked and arcing."


@pytest.fixture
def diagnostic_session(accepted_session):
    return accepted_session("diagnostic", customer_name="Rita Driver", mechanic_name="Mo Wrench")


def pdf_text(data):
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def fits_the_screen(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_mechanic_writes_the_report_on_a_phone_and_the_customer_gets_it(live_server, browser, diagnostic_session):
    base, session_id = live_server.url, diagnostic_session.id
    mechanic_ctx = browser.new_context(viewport=PHONE, accept_downloads=True)
    customer_ctx = browser.new_context(viewport={"width": 1024, "height": 800}, accept_downloads=True)
    try:
        mechanic = open_room(mechanic_ctx, base, diagnostic_session.mechanic, session_id)
        customer = open_room(customer_ctx, base, diagnostic_session.customer, session_id)
        expect(mechanic.locator("#timer")).to_be_visible(timeout=10000)  # both here: live
        form = mechanic.locator("#report-form")
        form.scroll_into_view_if_needed()
        expect(customer.locator("#report-form")).to_have_count(0)

        codes = form.locator("#code-rows .code-row")
        codes.nth(0).locator("input[name=code]").press_sequentially("p0301", delay=30)
        expect(codes.nth(0).locator(".code-desc")).to_contain_text("Cylinder 1 Misfire Detected")
        form.locator("button:has-text('Add a code')").click()
        expect(codes).to_have_count(2)
        codes.nth(1).locator("input[name=code]").press_sequentially("P0420", delay=30)
        expect(codes.nth(1).locator(".code-desc")).to_contain_text("Catalyst System Efficiency Below Threshold")
        form.locator("button:has-text('Add a code')").click()
        codes.nth(2).locator("input[name=code]").press_sequentially("Z9", delay=30)
        expect(codes.nth(2).locator(".code-desc")).to_contain_text("is not an OBD-II code")
        codes.nth(2).locator("[data-remove-row]").click()
        expect(codes).to_have_count(2)

        repairs = form.locator("#repair-rows .repair-row")
        repairs.nth(0).locator("input[name=repair_description]").fill("Replace ignition coil 1")
        repairs.nth(0).locator("input[name=repair_low]").fill("120")
        repairs.nth(0).locator("input[name=repair_high]").fill("250")
        form.locator("button:has-text('Add a repair')").click()
        repairs.nth(1).locator("input[name=repair_description]").fill("Spark plugs (set of 4)")
        repairs.nth(1).locator("input[name=repair_low]").fill("80")
        repairs.nth(1).locator("input[name=repair_high]").fill("60")
        assert fits_the_screen(mechanic), "the report form is wider than a 360 px screen"

        form.locator("button[type=submit]").click()  # no findings, no verdict, low > high
        form = mechanic.locator("#report-form")
        expect(form.locator("#report-errors")).to_contain_text("not saved")
        expect(form.locator("#field-findings .error")).to_have_text(
            "Write your findings: what you checked and what you found.")
        expect(form.locator("#field-verdict .error")).to_be_visible()
        expect(form.locator("#repair-rows .repair-row").nth(1).locator(".error")).to_have_text(
            "The low estimate is more than the high estimate.")
        expect(form.locator("#code-rows input[name=code]").nth(1)).to_have_value("P0420")  # nothing lost

        form.locator("textarea[name=findings]").fill(FINDINGS)
        form.locator("label.choice-caution").click()
        form.locator("#repair-rows .repair-row").nth(1).locator("input[name=repair_high]").fill("110")
        form.locator("button[type=submit]").click()
        expect(mechanic.locator("#report-notice")).to_contain_text("Report saved. Rita will get it by e-mail")
        assert fits_the_screen(mechanic)

        mechanic.fill("textarea[name=notes]", "Coil 1 replaced soon; see the report.")
        mechanic.click("button:has-text('End session')")
        expect(mechanic).to_have_url(re.compile(r"/summary$"), timeout=10000)
        expect(customer).to_have_url(re.compile(r"/summary$"), timeout=10000)

        section = customer.locator("#report-summary")
        expect(section).to_contain_text("Drive with caution")
        section.locator("a:has-text('View report')").click()
        expect(customer.locator("#verdict")).to_contain_text("Drive with caution")
        expect(customer.locator("#report-codes")).to_contain_text("P0301")
        expect(customer.locator("#report-codes")).to_contain_text("Cylinder 1 Misfire Detected")
        expect(customer.locator("#report-repairs")).to_contain_text("$120–$250")
        expect(customer.locator("#report-repairs tfoot")).to_contain_text("$200–$360")
        with customer.expect_download() as download:
            customer.click("a:has-text('Download PDF')")
        data = open(download.value.path(), "rb").read()
        assert download.value.suggested_filename == f"autodoctor-report-{session_id}.pdf"
        assert data.startswith(b"%PDF-") and FINDINGS in pdf_text(data)

        message = live_server.wait_for_mail(diagnostic_session.customer, "diagnostic report", timeout=30)
        parsed = email.message_from_bytes(message.as_bytes())
        [attachment] = [p for p in parsed.walk() if p.get_content_disposition() == "attachment"]
        assert attachment.get_content_type() == "application/pdf"
        attached = attachment.get_payload(decode=True)
        assert attached.startswith(b"%PDF-")
        text = pdf_text(attached)
        assert FINDINGS in text and "Catalyst System Efficiency Below Threshold" in text and "$60" not in text
    finally:
        mechanic_ctx.close()
        customer_ctx.close()
