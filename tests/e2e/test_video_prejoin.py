"""The video pre-join screen in a real Chromium with fake media devices, against the live
server (which has LiveKit settings but no LiveKit server: tokens are issued, joining fails).

- A customer on a phone-sized screen sees their camera preview playing, can pick a camera
  and a microphone, and — since no LiveKit server answers — gets a clear "could not connect"
  message with a retry while the chat keeps working.
- A browser that refuses camera access shows what is wrong and how to fix it, and the chat
  still works.
The session (video15, accepted by a mechanic) is made with the factories on the live
server's database, through the same services the pages use."""
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import open_room

pytestmark = pytest.mark.e2e
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--use-fake-device-for-media-stream"]
PHONE = {"width": 360, "height": 740}


@pytest.fixture
def video_session(accepted_session):
    """A paid video15 session accepted by its own mechanic."""
    return accepted_session("video15", customer_name="Vic Viewer", mechanic_name="Max Mechanic")


@pytest.fixture(scope="module")
def media_browsers(browser):
    """Two Chromiums from the same Playwright: one that grants the fake camera/microphone
    without asking, one where the permission prompt goes unanswered (= denied)."""
    allowing = browser.browser_type.launch(executable_path="/usr/bin/chromium", headless=True,
                                           args=CHROMIUM_ARGS + ["--use-fake-ui-for-media-stream"])
    refusing = browser.browser_type.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
    yield allowing, refusing
    allowing.close()
    refusing.close()


def send_chat(page, text):
    page.fill("#chat-body", text)
    page.press("#chat-body", "Enter")
    expect(page.locator("#chat-log")).to_contain_text(text)


def test_customer_previews_camera_picks_devices_and_is_told_when_video_cannot_connect(
        live_server, media_browsers, video_session):
    allowing, _ = media_browsers
    context = allowing.new_context(viewport=PHONE)
    try:
        page = open_room(context, live_server.url, video_session.customer, video_session.id)
        expect(page.locator("#video-prejoin")).to_be_visible()
        expect(page.locator("#video-join")).to_have_text("Join video call")
        page.wait_for_function("document.getElementById('video-preview').videoWidth > 0", timeout=10000)
        assert page.evaluate("!document.getElementById('video-preview').paused")
        expect(page.locator("#video-preview-state")).to_be_hidden()
        for select in ("#video-camera", "#video-microphone"):
            options = page.locator(f"{select} option")
            expect(options.first).not_to_have_attribute("value", "")
            assert options.count() >= 1
        # Chromium's fake devices include several microphones: picking another one restarts
        # the preview with that device.
        microphones = page.locator("#video-microphone option")
        assert microphones.count() >= 2
        chosen = microphones.nth(1).get_attribute("value")
        page.select_option("#video-microphone", chosen)
        page.wait_for_function("""want => {
            const tracks = document.getElementById('video-preview').srcObject?.getAudioTracks() || [];
            return tracks.length > 0 && tracks[0].getSettings().deviceId === want;
        }""", arg=chosen)
        expect(page.locator("#video-microphone")).to_have_value(chosen)
        page.wait_for_function("document.getElementById('video-preview').videoWidth > 0")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing off-screen

        page.click("#video-join")
        message = page.locator("#video-message")
        expect(message).to_contain_text("Could not connect to video", timeout=25000)
        expect(message).to_contain_text("Chat still works")
        expect(page.locator("#video-join")).to_have_text("Try again")
        expect(page.locator("#video-join")).to_be_enabled()
        expect(page.locator("#video-call")).to_be_hidden()
        expect(page.locator("#video-prejoin")).to_be_visible()  # the preview is still there
        send_chat(page, "Video will not connect, typing instead.")
    finally:
        context.close()


def test_a_refused_camera_says_how_to_fix_it_and_chat_still_works(live_server, media_browsers, video_session):
    _, refusing = media_browsers
    context = refusing.new_context(viewport={"width": 1024, "height": 800})
    try:
        page = open_room(context, live_server.url, video_session.mechanic, video_session.id)
        message = page.locator("#video-message")
        expect(message).to_contain_text("blocking the camera and microphone", timeout=10000)
        expect(message).to_contain_text("allow Camera and Microphone")
        expect(page.locator("#video-preview-state")).to_have_text("Camera blocked")
        expect(page.locator("#video-retry-devices")).to_be_visible()
        expect(page.locator("#video-join")).to_have_text("Join without camera")
        send_chat(page, "No camera here, but chat works.")
    finally:
        context.close()
