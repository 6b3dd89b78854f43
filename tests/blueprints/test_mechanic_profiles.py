"""Public mechanic profiles and the directory: anyone may look; only approved, active mechanics
are listed; online first, then a logged-in customer's favorites, then the best rated; text and
"online now" filters; offline mechanics have no booking buttons; the favorite button (HTMX swap,
or a plain post back to the page)."""
import re
from datetime import datetime, timedelta

import pytest

from autodoctor.extensions import db
from autodoctor.services import directory, favorites
from tests.factories import AcceptedSessionFactory, UserFactory

HTMX = {"HX-Request": "true"}


def text(response):
    return response.get_data(as_text=True)


def listed(page):
    """Mechanic ids in the order the directory shows them."""
    return [int(i) for i in re.findall(r'<article class="card mechanic-card[^"]*" id="mechanic-(\d+)"', page)]


def mechanic(name, online=False, rating=None, **profile):
    user = UserFactory("mechanic", full_name=name, **profile)
    if online:
        user.mechanic_profile.online = True
        user.mechanic_profile.presence = "online"
    if rating is not None:
        user.mechanic_profile.rating_sum, user.mechanic_profile.rating_count = rating * 10, 10
    db.session.commit()
    return user


def reviewed(mechanic_user, rating, words, at):
    """A completed session of a new customer with a rating and a review."""
    customer = UserFactory("customer", full_name=f"Rita Reviewer{at.day}")
    session = AcceptedSessionFactory(customer, mechanic_user)
    session.status, session.ended_at = "completed", at
    session.rating, session.review, session.rated_at = rating, words, at
    db.session.commit()
    return session


@pytest.fixture
def customer(app):
    user = UserFactory("customer")
    db.session.commit()
    return user


# The directory ---------------------------------------------------------------------------------


def test_anyone_can_browse_and_sees_only_approved_active_mechanics(app, client):
    shown = mechanic("Ada Approved", brands="Honda, Toyota", specialties="brakes", years_experience=12,
                     red_seal=True)
    hidden = mechanic("Uma Unapproved", approved=False)
    gone = mechanic("Sid Suspended")
    gone.is_active_account = False
    db.session.commit()
    page = text(client.get("/mechanics"))
    assert listed(page) == [shown.id]
    assert "Uma Unapproved" not in page and "Sid Suspended" not in page and hidden.id
    assert "Honda" in page and "brakes" in page and "12 years of experience" in page and "Red Seal certified" in page
    card = page[page.index(f'id="mechanic-{shown.id}"'):page.index("</article>")]
    assert "complete" not in card.lower().replace("completed", "")  # profile completeness is not public


def test_online_first_then_favorites_then_rating(app, login, customer):
    low = mechanic("Lou Low", rating=3)
    high = mechanic("Hal High", rating=5)
    unrated = mechanic("Nia New")
    fav = mechanic("Fay Favorite", rating=4)
    online = mechanic("Ona Online", online=True, rating=2)
    favorites.toggle(customer.id, fav.id)
    db.session.commit()
    assert listed(text(login(customer).get("/mechanics"))) == [online.id, fav.id, high.id, low.id, unrated.id]
    client = app.test_client()  # nobody's favorites
    assert listed(text(client.get("/mechanics"))) == [online.id, high.id, fav.id, low.id, unrated.id]


@pytest.mark.parametrize("query,expected", [
    ("honda", ["Ada"]), ("TORONTO", ["Ada", "Ben"]), ("ben", ["Ben"]), ("brakes", ["Ada"]),
    ("vw", ["Ben"]), ("honda toronto", ["Ada"]), ("honda calgary", []), ("100%", []), ("_", []),
])
def test_search_by_name_city_brand_or_specialty(app, client, query, expected):
    ada = mechanic("Ada Lovelace", brands="Honda", specialties="brakes, ABS")
    ben = mechanic("Ben Bolt", brands="Volkswagen")
    cal = mechanic("Cal Gary", brands="Ford")
    cal.city = "Calgary"
    db.session.commit()
    names = {ada.id: "Ada", ben.id: "Ben", cal.id: "Cal"}
    page = text(client.get("/mechanics", query_string={"q": query}))
    assert [names[i] for i in listed(page)] == expected
    if not expected:
        assert 'id="no-mechanics"' in page


def test_online_now_filter(app, client):
    mechanic("Otto Offline")
    online = mechanic("Ona Online", online=True)
    page = text(client.get("/mechanics?online=1"))
    assert listed(page) == [online.id]
    assert "1 mechanic online now" in page


def test_pages_keep_the_filters_and_a_bad_page_is_no_error(app, client, monkeypatch):
    monkeypatch.setattr(directory, "PER_PAGE", 2)
    made = [mechanic(f"Hon {i}", brands="Honda", rating=5 - i) for i in range(5)]
    mechanic("Fred Ford", brands="Ford")
    first = text(client.get("/mechanics?q=honda"))
    assert listed(first) == [made[0].id, made[1].id]
    assert 'href="/mechanics?q=honda&amp;page=2"' in first and "Page 1 of 3" in first
    assert listed(text(client.get("/mechanics?q=honda&page=3"))) == [made[4].id]
    assert listed(text(client.get("/mechanics?q=honda&page=99"))) == [made[4].id]  # past the end: the last page
    for bad in ("abc", "-4", "0"):
        response = client.get(f"/mechanics?q=honda&page={bad}")
        assert response.status_code == 200 and listed(text(response)) == [made[0].id, made[1].id]


def test_a_very_long_search_is_cut_not_refused(app, client):
    response = client.get("/mechanics", query_string={"q": "x" * 5000})
    assert response.status_code == 200


def test_htmx_search_swaps_only_the_results(app, client):
    mechanic("Ada Approved")
    page = text(client.get("/mechanics?q=ada", headers=HTMX))
    assert page.lstrip().startswith('<div id="mechanic-results"') and "<html" not in page


def test_offline_mechanics_have_no_booking_buttons(app, login, customer):
    offline = mechanic("Otto Offline")
    online = mechanic("Ona Online", online=True)
    page = text(login(customer).get("/mechanics"))
    assert f'id="book-{online.id}"' in page and f'id="book-{offline.id}"' not in page
    assert re.search(rf'<a class="button" href="/customer/book[^"]*" id="book-{online.id}">Get help now</a>', page)
    busy = mechanic("Bea Busy", online=True)
    AcceptedSessionFactory(UserFactory("customer"), busy)
    page = text(login(customer).get("/mechanics"))
    assert f'id="book-{busy.id}"' not in page  # in a session: not bookable now


def test_mechanics_and_admins_browse_without_booking_or_favorite_buttons(app, login):
    online = mechanic("Ona Online", online=True)
    for role in ("mechanic", "admin"):
        page = text(login(UserFactory(role)).get("/mechanics"))
        assert listed(page)[0] == online.id
        assert "Get help now" not in page and "Add to favorites" not in page


def test_the_favorite_button_shows_for_customers_only(app, login, client, customer):
    ada = mechanic("Ada Approved")
    assert "Add to favorites" not in text(client.get("/mechanics"))
    page = text(login(customer).get("/mechanics"))
    assert f'action="/customer/favorites/{ada.id}"' in page and "☆ Add to favorites" in page


# A profile ----------------------------------------------------------------------------------------------


def test_profile_shows_the_public_facts_and_the_latest_reviews(app, client):
    ada = mechanic("Ada Lovelace", brands="Honda, Acura", specialties="brakes, transmission", years_experience=1,
                   red_seal=True, bio="Twenty years on Hondas.")
    start = datetime(2026, 1, 1, 12, 0)
    for day in range(6):
        reviewed(ada, 5 if day % 2 else 4, f"Review number {day}", start + timedelta(days=day))
    AcceptedSessionFactory(UserFactory("customer"), ada).status = "completed"  # no review: not counted
    ada.mechanic_profile.rating_sum, ada.mechanic_profile.rating_count = 27, 6
    ada.mechanic_profile.completed_sessions = 7
    db.session.commit()
    page = text(client.get(f"/mechanics/{ada.id}"))
    assert "<h1>Ada Lovelace</h1>" in page
    for words in ("Toronto, CA", "1 year of experience", "Red Seal certified", "4.5", "(6 ratings)",
                  "7 sessions completed", "Honda", "Acura", "transmission", "Twenty years on Hondas.",
                  "Reviews (6)", "The latest 5 of 6 reviews."):
        assert words in page, words
    shown = re.findall(r"Review number (\d)", page)
    assert shown == ["5", "4", "3", "2", "1"]  # newest first, at most five
    assert "Rita" in page and "Reviewer" not in page  # first names only
    card = page[page.index(f'id="mechanic-{ada.id}"'):page.index("</article>")]
    assert "complete" not in card.lower().replace("completed", "")


def test_profile_without_reviews(app, client):
    ada = mechanic("Ada Approved")
    page = text(client.get(f"/mechanics/{ada.id}"))
    assert "No ratings yet" in page and "No written reviews yet." in page


@pytest.mark.parametrize("who", ["unknown", "customer", "admin", "unapproved", "suspended"])
def test_only_approved_active_mechanics_have_a_profile(app, client, who):
    if who == "unknown":
        target = 987654
    elif who in ("customer", "admin"):
        target = UserFactory(who).id
    else:
        user = mechanic("Hidden Person", approved=who != "unapproved")
        user.is_active_account = who != "suspended"
        target = user.id
    db.session.commit()
    assert client.get(f"/mechanics/{target}").status_code == 404


def test_profile_of_an_offline_mechanic_offers_scheduling_not_booking(app, login, customer):
    ada = mechanic("Ada Approved")
    page = text(login(customer).get(f"/mechanics/{ada.id}"))
    assert "Get help now" not in page and 'id="not-bookable"' in page and "/customer/schedule" in page
    ada.mechanic_profile.online, ada.mechanic_profile.presence = True, "online"
    db.session.commit()
    page = text(login(customer).get(f"/mechanics/{ada.id}"))
    assert "Get help now" in page and 'id="not-bookable"' not in page


def test_profile_shows_the_presence_badge_live(app, login, customer):
    ada = mechanic("Ada Approved", online=True)
    page = text(login(customer).get(f"/mechanics/{ada.id}"))
    assert f'id="presence-{ada.id}"' in page and "Online</span>" in page
    assert 'sse-connect="/presence/stream"' in page


# Favorites -------------------------------------------------------------------------------------------------


def test_favorite_toggle_with_htmx_swaps_the_button(app, login, customer):
    ada = mechanic("Ada Approved")
    me = login(customer)
    response = me.post(f"/customer/favorites/{ada.id}", data={"next": f"/mechanics/{ada.id}"}, headers=HTMX)
    assert response.status_code == 200
    button = text(response)
    assert button.lstrip().startswith(f'<form class="favorite" id="favorite-{ada.id}"')
    assert "★ Favorite" in button and 'aria-pressed="true"' in button
    assert favorites.favorite_ids(customer.id) == {ada.id}
    assert "★ Favorite" in text(me.get(f"/mechanics/{ada.id}"))
    button = text(me.post(f"/customer/favorites/{ada.id}", data={"next": f"/mechanics/{ada.id}"}, headers=HTMX))
    assert "☆ Add to favorites" in button and 'aria-pressed="false"' in button
    assert favorites.favorite_ids(customer.id) == set()


def test_favorite_toggle_without_javascript_goes_back(app, login, customer):
    ada = mechanic("Ada Approved")
    me = login(customer)
    response = me.post(f"/customer/favorites/{ada.id}", data={"next": "/mechanics?q=ada"})
    assert response.status_code == 303 and response.headers["Location"] == "/mechanics?q=ada"
    assert "Added to your favorites." in text(me.get("/mechanics?q=ada"))


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "", "mechanics"])
def test_favorite_toggle_never_sends_anyone_off_the_site(app, login, customer, next_url):
    ada = mechanic("Ada Approved")
    response = login(customer).post(f"/customer/favorites/{ada.id}", data={"next": next_url})
    assert response.status_code == 303 and response.headers["Location"] == "/mechanics"


def test_favorite_of_an_unknown_or_non_mechanic_is_not_found(app, login, customer):
    me = login(customer)
    other = UserFactory("customer")
    unapproved = mechanic("Uma Unapproved", approved=False)
    for target in (987654, other.id, customer.id, unapproved.id):
        assert me.post(f"/customer/favorites/{target}", headers=HTMX).status_code == 404
    assert favorites.favorite_ids(customer.id) == set()


def test_only_customers_have_favorites(app, login, client):
    ada = mechanic("Ada Approved")
    assert login(UserFactory("mechanic")).post(f"/customer/favorites/{ada.id}").status_code == 403
    response = client.post(f"/customer/favorites/{ada.id}")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]

