"""A targeted offer in real browsers, three mechanics' dashboards open: a new request appears,
highlighted with the reasons, on the two top matches' dashboards first, and not on the third;
after the 60 s window (the servers' clock moved 61 s) it is on everyone's list without a
reload; one target accepts and it vanishes from the other two."""
import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from autodoctor.extensions import db
from autodoctor.models import MechanicProfile, RequestOffer, SessionRequest
from tests.e2e.helpers import log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

SSE_OPEN = "document.addEventListener('htmx:sseOpen', function () { window.__sseOpen = true; });"


def _people(live_app, tag, make):
    """Three strong matches for a `make` car in Toronto (two with a dashboard, one only online
    for the moment the request is routed) beat anyone else online; a weak one is the third
    dashboard. All have "Taking requests" on."""
    strong = dict(brands=make, specialties="check engine, brakes", years_experience=15, red_seal=True,
                  rating_sum=5, rating_count=1, completed_sessions=80, bio="Dealer technician", online=True)
    with live_app.test_request_context():
        people = {
            "ana": UserFactory("mechanic", f"ana-{tag}@example.com", f"Ana Target {tag}", **strong),
            "ben": UserFactory("mechanic", f"ben-{tag}@example.com", f"Ben Target {tag}", **strong),
            "dee": UserFactory("mechanic", f"dee-{tag}@example.com", f"Dee Target {tag}", **strong),
            "cal": UserFactory("mechanic", f"cal-{tag}@example.com", f"Cal Other {tag}", online=True),
            "customer": UserFactory("customer", f"cust-{tag}@example.com", "Tess Target"),
        }
        db.session.commit()
        made = {key: (user.id, user.email) for key, user in people.items()}
        db.session.remove()
    return made


def _wait_online(live_app, ids, timeout=15):
    deadline = time.time() + timeout
    with live_app.app_context():
        while time.time() < deadline:
            found = db.session.scalars(db.select(MechanicProfile.user_id).where(
                MechanicProfile.user_id.in_(ids), MechanicProfile.presence == "online")).all()
            db.session.remove()
            if set(found) == set(ids):
                return
            time.sleep(0.2)
    raise AssertionError("the dashboards never made their mechanics online")


def _open_request(live_app, people, make):
    """Dee is online for this moment only (no dashboard): the routing job (on the worker)
    offers the request to Ana, Ben and Dee."""
    from autodoctor import clock
    from autodoctor.models import User
    from tests.services.test_routing import open_request

    with live_app.test_request_context():
        db.session.execute(db.update(MechanicProfile).where(MechanicProfile.user_id == people["dee"][0])
                           .values(presence="online", last_seen_at=clock.now()))
        db.session.commit()
        customer = db.session.get(User, people["customer"][0])
        request_id = open_request(customer, make=make,
                                  concern="Check engine light and a grinding noise when braking")
        db.session.remove()
    return request_id


def _dee_offline(live_app, people):
    with live_app.app_context():
        db.session.execute(db.update(MechanicProfile).where(MechanicProfile.user_id == people["dee"][0])
                           .values(online=False, presence="offline"))
        db.session.commit()
        db.session.remove()


def _all_offline(live_app, people):
    """Leave nobody online: later tests' requests must not be offered to these mechanics."""
    with live_app.app_context():
        db.session.execute(db.update(MechanicProfile).where(MechanicProfile.user_id.in_(
            [people[k][0] for k in ("ana", "ben", "cal", "dee")])).values(online=False, presence="offline"))
        db.session.commit()
        db.session.remove()


def _offers(live_app, request_id, timeout=15):
    deadline = time.time() + timeout
    with live_app.app_context():
        while time.time() < deadline:
            rows = db.session.scalars(db.select(RequestOffer.mechanic_id).where(RequestOffer.request_id == request_id)
                                      .order_by(RequestOffer.rank)).all()
            broadcast_at = db.session.scalar(db.select(SessionRequest.broadcast_at)
                                             .where(SessionRequest.id == request_id))
            db.session.remove()
            if rows:
                return rows, broadcast_at
            time.sleep(0.2)
    raise AssertionError("the routing job made no offers")


def _dashboard(browser, base, email):
    context = browser.new_context(viewport={"width": 1024, "height": 768})  # a shop tablet
    context.add_init_script(SSE_OPEN)
    page = log_in(context.new_page(), base, email)
    page.goto(base + "/mechanic/")
    page.wait_for_function("window.__sseOpen === true")
    page.evaluate("window.__sameDocument = true")
    return context, page


def test_targeted_offer_then_everyone_then_accept(live_server, live_app, browser):
    tag = uuid.uuid4().hex[:8]
    make = f"Zephyr{tag}"
    people = _people(live_app, tag, make)
    base = live_server.url
    contexts = []
    try:
        pages = {}
        for key in ("ana", "ben", "cal"):
            context, pages[key] = _dashboard(browser, base, people[key][1])
            contexts.append(context)
        _wait_online(live_app, [people[k][0] for k in ("ana", "ben", "cal")])
        request_id = _open_request(live_app, people, make)
        offered, broadcast_at = _offers(live_app, request_id)
        _dee_offline(live_app, people)
        assert sorted(offered) == sorted(people[k][0] for k in ("ana", "ben", "dee"))
        opens = broadcast_at.strftime("%H:%M")

        card = f"#request-{request_id}"
        for key in ("ana", "ben"):  # highlighted at the top, with the reasons
            offer = pages[key].locator(f"#offers {card}")
            expect(offer).to_be_visible()
            expect(offer).to_have_class(re.compile(r"\boffered\b"))
            expect(offer.locator(".offer-reasons")).to_contain_text(f"Offered to you first — knows brakes · "
                                                                    f"knows check engine · brand specialist: {make}")
            expect(offer.locator(".offer-reasons")).to_contain_text("same city: Toronto")
            expect(offer).to_contain_text(f"other mechanics see it from {opens} UTC")
            expect(pages[key].locator(f".general-requests {card}")).to_have_count(0)
        time.sleep(1.5)  # the same pushes reached every dashboard by now
        expect(pages["cal"].locator(card)).to_have_count(0)

        live_server.move_clock(61)  # the servers' clock: the window is over; the sweep broadcasts
        expect(pages["cal"].locator(f".general-requests {card}")).to_be_visible(timeout=15000)
        expect(pages["cal"].locator(card)).not_to_have_class(re.compile(r"\boffered\b"))
        for key in ("ana", "ben"):  # moved from their offers into the general list, once
            expect(pages[key].locator(f".general-requests {card}")).to_be_visible()
            expect(pages[key].locator(f"#offers {card}")).to_have_count(0)
        assert all(p.evaluate("window.__sameDocument") for p in pages.values()), "a page was reloaded"

        pages["ben"].locator(f"{card} button.accept").click()
        expect(pages["ben"]).to_have_url(re.compile(r"/room/\d+$"))
        for key in ("ana", "cal"):
            expect(pages[key].locator(card)).to_have_count(0)
    finally:
        live_server.move_clock(0)
        for context in contexts:
            context.close()
        _all_offline(live_app, people)
