"""Files in the live room, two browsers at once (gunicorn gevent x2, Redis pub/sub, Postgres,
CSRF on): the customer, on a 360 px phone screen, shares a photo; the mechanic's room shows
the server-made thumbnail without a reload and opens the full image; a third logged-in user
gets 404 on the file's address. A file too big for its type is stopped in the browser before
any upload, and a bigger upload on a slow connection shows its progress.

The session is set up with the factories directly in the live server's database (its own
customer and mechanic, so no other test's demo mechanic has to be free)."""
import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.helpers import log_in, open_room

pytestmark = pytest.mark.e2e
PHONE = {"width": 360, "height": 740}


def photo_bytes():
    img = Image.new("RGB", (1600, 1200), (200, 40, 40))
    img.paste((40, 40, 200), (800, 0, 1600, 1200))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def pdf_bytes(size):
    head = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%"
    tail = b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.fixture
def live_room(accepted_session):
    """A chat10 session in the live database: a customer's paid request, accepted by a mechanic
    (waiting until both are in the room), plus an unrelated customer."""
    return accepted_session("chat10", customer_name="Cora Files", mechanic_name="Max Wrench", outsiders=1)


def test_customer_shares_a_photo_and_the_mechanic_opens_it(live_server, browser, live_room):
    base, room_url = live_server.url, f"{live_server.url}/room/{live_room.id}"
    customer_ctx = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    mechanic_ctx, outsider_ctx = browser.new_context(), browser.new_context()
    try:
        customer = log_in(customer_ctx.new_page(), base, live_room.customer)
        mechanic = log_in(mechanic_ctx.new_page(), base, live_room.mechanic)
        outsider = log_in(outsider_ctx.new_page(), base, live_room.outsiders[0])
        for page in (customer, mechanic):
            page.goto(room_url)
            expect(page.locator("#connection-state")).to_have_text("Connected")

        # On the phone: "Attach" and "Take a photo" fit the screen and are big enough to tap.
        for button in ("Attach file", "Take photo"):
            box = customer.get_by_text(button).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (button, box)
            assert box["height"] >= 44, (button, box)
        assert customer.evaluate("document.querySelector('#upload').scrollWidth") <= PHONE["width"]

        # Too big for its type: stopped in the browser at once, nothing is sent.
        uploads_sent = []
        customer.on("request", lambda r: uploads_sent.append(r.url) if r.url.endswith("/files") else None)
        customer.set_input_files("#upload-file", files=[{"name": "huge.jpg", "mimeType": "image/jpeg",
                                                          "buffer": b"\xff\xd8\xff" + b"\x00" * (11 * 1024 * 1024)}])
        expect(customer.locator("#upload .upload-error")).to_have_text(
            "“huge.jpg” is 11.0 MB; JPEG files are limited to 10 MB.")
        expect(customer.locator(".upload-chosen")).to_be_hidden()

        photo = photo_bytes()
        customer.set_input_files("#upload-file", files=[{"name": "dash.jpg", "mimeType": "image/jpeg", "buffer": photo}])
        expect(customer.locator(".upload-name")).to_contain_text("dash.jpg")
        expect(customer.locator("#upload .upload-error")).to_have_text("")
        customer.fill("#upload-caption", "Warning light on the dash")
        customer.get_by_role("button", name="Send file").click()
        expect(customer.locator("#upload .upload-status")).to_have_text("Sent “dash.jpg”.")
        assert len(uploads_sent) == 1

        # The mechanic's room shows the thumbnail, pushed over the socket: no reload.
        line = mechanic.locator("#chat-log .msg.has-file", has_text="Warning light on the dash")
        expect(line).to_have_count(1)
        thumb = line.locator("a.attachment.photo img")
        expect(thumb).to_be_visible()
        mechanic.wait_for_function(
            "img => img.complete && img.naturalWidth === 320 && img.naturalHeight === 240", arg=thumb.element_handle())
        expect(customer.locator("#chat-log .msg.mine.has-file img")).to_be_visible()  # and on the sender's side

        link = line.locator("a.attachment.photo")
        full_url = base + link.get_attribute("href")
        with mechanic_ctx.expect_event("response", lambda r: r.url == full_url) as response_info, \
                mechanic_ctx.expect_page() as tab_info:
            link.click()
        response = response_info.value
        assert response.status == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["cache-control"] == "private, no-store"
        tab = tab_info.value
        tab.wait_for_load_state()
        assert tab.evaluate("document.images[0].naturalWidth") == 1600  # the full image, loaded
        assert response.body() == photo

        # Somebody else, logged in, cannot open it (nor its thumbnail).
        for url in (full_url, full_url + "/thumb"):
            assert outsider.goto(url).status == 404
            assert outsider.request.get(url).status == 404
    finally:
        for ctx in (customer_ctx, mechanic_ctx, outsider_ctx):
            ctx.close()


def test_a_bigger_upload_shows_its_progress(live_server, browser, live_room):
    base, room_url = live_server.url, f"{live_server.url}/room/{live_room.id}"
    customer_ctx, mechanic_ctx = browser.new_context(viewport=PHONE), browser.new_context()
    try:
        customer = log_in(customer_ctx.new_page(), base, live_room.customer)
        mechanic = log_in(mechanic_ctx.new_page(), base, live_room.mechanic)
        for page in (customer, mechanic):
            page.goto(room_url)
            expect(page.locator("#connection-state")).to_have_text("Connected")
        # A slow mobile uplink (about 1 Mbit/s), so the 1.5 MB upload takes a while.
        cdp = customer_ctx.new_cdp_session(customer)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 40, "downloadThroughput": -1,
                                                       "uploadThroughput": 128 * 1024})
        customer.set_input_files("#upload-file", files=[{"name": "service-manual.pdf", "mimeType": "application/pdf",
                                                          "buffer": pdf_bytes(1536 * 1024)}])
        customer.get_by_role("button", name="Send file").click()
        progress = customer.locator("#upload .upload-progress")
        expect(progress).to_be_visible()
        expect(customer.get_by_role("button", name="Send file")).to_be_disabled()  # no second tap while it uploads
        customer.wait_for_function(
            "() => { const p = document.querySelector('#upload progress'); return p && p.value > 5 && p.value < 100; }")
        expect(customer.locator(".upload-percent")).to_have_text(re.compile(r"^Uploading… \d{1,2}%$"))
        expect(customer.locator("#upload .upload-status")).to_have_text("Sent “service-manual.pdf”.", timeout=30000)
        expect(progress).to_be_hidden()
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                       "uploadThroughput": -1})
        doc = mechanic.locator("#chat-log .msg a.attachment.document")
        expect(doc).to_contain_text("service-manual.pdf")
        expect(doc).to_contain_text("PDF · 1.5 MB · Download")
    finally:
        customer_ctx.close()
        mechanic_ctx.close()


def test_a_body_over_the_server_limit_still_answers_in_the_form(live_server, browser, live_room, tmp_path):
    """Past the browser's pre-check (here switched off), a 102 MB body is refused by the server
    before it is parsed (413); the form still shows the clear message, not an error page."""
    ctx = browser.new_context()
    try:
        customer = open_room(ctx, live_server.url, live_room.customer, live_room.id)
        big = tmp_path / "long.mp4"
        with open(big, "wb") as f:
            f.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
            f.truncate(102 * 1024 * 1024)
        customer.evaluate("document.getElementById('upload-form').setAttribute('data-limits', '{\"video/mp4\": 1e12}')")
        customer.set_input_files("#upload-file", str(big))
        customer.get_by_role("button", name="Send file").click()
        expect(customer.locator("#upload .upload-error")).to_have_text(
            "That file is too large to send: photos are limited to 10 MB, videos to 100 MB and PDFs to 25 MB. "
            "Nothing was shared.", timeout=30000)
        expect(customer.locator("#upload-form")).to_be_visible()
        expect(customer.locator("#chat-log .msg.has-file")).to_have_count(0)
    finally:
        ctx.close()
