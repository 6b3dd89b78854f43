"""The matching score (DESIGN.md "Matching score") with fixed inputs: each rule's points, the
reasons naming the right thing and adding up to the score, keywords from text and OBD-II
codes, missing profile fields, ties and limits; and candidates() loading mechanics in one query."""
import pytest
import sqlalchemy as sa

from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.services import matching
from autodoctor.services.matching import WEIGHTS, Candidate, keywords, rank, wanted
from tests.factories import AcceptedSessionFactory, UserFactory


def cand(id=1, **kw):
    """A candidate with nothing that scores, unless given."""
    fields = dict(name=f"Mechanic {id}", online=False, specialties=frozenset(), brands=frozenset(), brand_labels={},
                  years=0, rating=None, rating_count=0, red_seal=False, complete=False, completed=0, city="",
                  city_label="", country="")
    fields.update(kw)
    return Candidate(id=id, **fields)


NOTHING = wanted("")


def score(c, w=NOTHING):
    (match,) = rank(w, [c])
    assert sum(points for _, points in match.reasons) == match.score == matching.points(c, w)
    return match


# --- each rule -------------------------------------------------------------------------------

def test_a_candidate_with_nothing_scores_zero_with_no_reasons():
    match = score(cand())
    assert match.score == 0 and match.reasons == ()


@pytest.mark.parametrize("kw, phrase, points", [
    ({"online": True}, "online now", 50),
    ({"years": 10}, "10 years' experience", 20),
    ({"years": 25}, "25 years' experience", 20),
    ({"years": 9}, "9 years' experience", 10),
    ({"years": 5}, "5 years' experience", 10),
    ({"rating": 4.5, "rating_count": 2}, "rated 4.5", 15),
    ({"rating": 5.0, "rating_count": 1}, "rated 5.0", 15),
    ({"rating": 4.49, "rating_count": 9}, "rated 4.5", 10),  # shown rounded, scored on the real value
    ({"rating": 4.0, "rating_count": 3}, "rated 4.0", 10),
    ({"red_seal": True}, "Red Seal certified", 10),
    ({"complete": True}, "complete profile", 8),
    ({"completed": 50}, "50 sessions completed", 12),
    ({"completed": 49}, "49 sessions completed", 8),
    ({"completed": 20}, "20 sessions completed", 8),
])
def test_each_rule_gives_its_points_and_says_why(kw, phrase, points):
    match = score(cand(**kw))
    assert match.reasons == ((phrase, points),)


@pytest.mark.parametrize("kw", [{"years": 4}, {"rating": 3.99, "rating_count": 5}, {"completed": 19}])
def test_below_the_lowest_step_gives_nothing(kw):
    assert score(cand(**kw)).score == 0


def test_weights_are_the_ones_in_design_md():
    assert WEIGHTS == {"online": 50, "keyword": 15, "brand": 30, "years_10": 20, "years_5": 10, "rating_45": 15,
                       "rating_40": 10, "red_seal": 10, "complete": 8, "sessions_50": 12, "sessions_20": 8,
                       "country": 25, "city": 35}


def test_each_keyword_match_gives_15():
    c = cand(specialties=keywords("brakes, suspension, electrical"))
    match = score(c, wanted("Grinding noise when braking and the steering wobbles"))
    assert match.reasons == (("knows brakes", 15), ("knows suspension", 15))
    assert match.score == 30


def test_brand_specialist_names_the_brand():
    c = matching._from_row(1, "Mia", "Toronto", "CA", "offline", "", "Honda, Toyota", 0, 0, 0, False, 0, False, "")
    match = score(c, wanted("", "honda"))
    assert match.reasons == (("brand specialist: Honda", 30),)


@pytest.mark.parametrize("make, brands", [("VW", "Volkswagen"), ("Chevy", "Chevrolet"),
                                          ("Mercedes-Benz", "mercedes"), ("Mercedes Benz", "Mercedes-Benz"),
                                          ("  honda ", "HONDA")])
def test_brands_compare_by_their_common_names(make, brands):
    labels = matching._brand_labels(brands)
    c = cand(brands=frozenset(labels), brand_labels=labels)
    assert score(c, wanted("", make)).score == 30


def test_same_city_and_country_name_the_city():
    c = cand(city=matching._place("Toronto"), city_label="Toronto", country="CA")
    match = score(c, wanted("", None, " toronto", "ca"))
    assert match.reasons == (("same city: Toronto", 35), ("same country", 25))
    assert match.score == 60


def test_same_city_needs_the_same_country():
    c = cand(city="london", city_label="London", country="CA")
    assert score(c, wanted("", None, "London", "GB")).score == 0
    assert score(c, wanted("", None, "Ottawa", "CA")).reasons == (("same country", 25),)


def test_city_names_compare_without_accents_case_or_hyphens():
    c = cand(city=matching._place("Montréal"), city_label="Montréal", country="CA")
    assert score(c, wanted("", None, "MONTREAL", "CA")).score == 60
    c = cand(city=matching._place("Trois-Rivières"), city_label="Trois-Rivières", country="CA")
    assert score(c, wanted("", None, "trois rivieres", "CA")).score == 60


def test_everything_at_once_adds_up():
    labels = matching._brand_labels("Honda")
    c = cand(online=True, specialties=keywords("brakes, check engine"), brands=frozenset(labels),
             brand_labels=labels, years=12, rating=4.8, rating_count=10, red_seal=True, complete=True, completed=60,
             city="toronto", city_label="Toronto", country="CA")
    match = score(c, wanted("Check engine light, brakes squeal", "Honda", "Toronto", "CA"))
    assert match.score == 50 + 15 + 15 + 30 + 20 + 15 + 10 + 8 + 12 + 35 + 25
    assert [phrase for phrase, _ in match.reasons] == [
        "online now", "knows brakes", "knows check engine", "brand specialist: Honda", "12 years' experience",
        "rated 4.8", "Red Seal certified", "complete profile", "60 sessions completed", "same city: Toronto",
        "same country"]
    assert match.phrases == [phrase for phrase, _ in match.reasons]


# --- keywords --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Grinding noise from the front left wheel when braking.", {"noise", "brakes"}),
    ("Check engine light came on", {"check engine"}),
    ("Transmission slips and shifts hard", {"transmission"}),
    ("Squealing brakes, calipers sticking", {"noise", "brakes"}),
    ("Car won’t start, battery is new", {"electrical"}),  # a typographic apostrophe
    ("Overheating in traffic, coolant low", {"cooling"}),
    ("A/C blows warm air", {"hvac"}),
    ("It has 200,000 miles on it", set()),  # no stray "mil" (check engine lamp)
    ("", set()),
    (None, set()),
])
def test_keywords_from_text(text, expected):
    assert keywords(text) == frozenset(expected)


@pytest.mark.parametrize("text, expected", [
    ("P0301", {"check engine", "diagnostics", "engine"}),  # ignition / misfire
    ("p0301", {"check engine", "diagnostics", "engine"}),  # lower case
    ("P0700", {"check engine", "diagnostics", "transmission"}),
    ("P0420 catalyst efficiency", {"check engine", "diagnostics", "exhaust"}),
    ("P0171 lean", {"check engine", "diagnostics", "fuel"}),
    ("C0035", {"diagnostics", "brakes", "suspension"}),
    ("U0100", {"diagnostics", "electrical"}),
    ("B1000", {"diagnostics", "electrical"}),
    ("My scanner says P0301, and also u0100.", {"check engine", "diagnostics", "engine", "electrical"}),
    ("Codes P0301/P0700 after the rain", {"check engine", "diagnostics", "engine", "transmission"}),
    ("Part number XP03011 fits", set()),
    ("P9999", set()),  # not an OBD-II code (second character 0-3)
])
def test_keywords_from_obd_codes(text, expected):
    assert keywords(text) == frozenset(expected)


def test_a_mechanics_specialties_are_read_the_same_way():
    assert keywords("brake jobs, ABS") == {"brakes"}
    assert "brakes" in keywords("grinding when braking") & keywords("brake jobs, ABS")


# --- missing profile fields ------------------------------------------------------------------

def test_missing_fields_score_nothing_and_never_fail():
    empty = matching._from_row(7, "New Mechanic", None, None, "online", "", "", None, 0, 0, False, None, None, "")
    assert empty.rating is None and empty.city == "" and empty.country == "" and not empty.complete
    match = score(empty, wanted("Brakes squeal", "Honda", "Toronto", "CA"))
    assert match.reasons == (("online now", 50),)


def test_a_request_without_place_or_vehicle_gets_no_place_or_brand_points():
    labels = matching._brand_labels("Honda")
    c = cand(brands=frozenset(labels), brand_labels=labels, city="toronto", city_label="Toronto", country="CA")
    assert score(c, wanted("help", None, None, None)).score == 0
    assert score(c, wanted("help", None, "Toronto", None)).score == 0  # a city alone is not a place


def test_completeness_counts_the_profile_fields(app):
    mechanic = UserFactory("mechanic", bio="", specialties="", brands="", years_experience=0)
    profile = mechanic.mechanic_profile
    assert matching.completeness(profile, None, None) == pytest.approx(1 / 7)  # only the time zone
    profile.bio, profile.specialties, profile.brands, profile.years_experience = "Hi", "brakes", "Honda", 3
    assert matching.completeness(profile, "Toronto", "CA") == 1


# --- ranking: ties, limit --------------------------------------------------------------------

def test_higher_score_first():
    pool = [cand(1), cand(2, online=True), cand(3, red_seal=True)]
    assert [m.mechanic_id for m in rank(NOTHING, pool)] == [2, 3, 1]


def test_ties_go_to_rating_then_completed_sessions_then_lower_id():
    # Same score (10 each), different tie-breakers.
    pool = [cand(5, red_seal=True, completed=3), cand(4, red_seal=True, completed=3),
            cand(3, red_seal=True, completed=9), cand(6, years=5, rating=3.9, rating_count=1),
            cand(2, red_seal=True)]
    assert [m.mechanic_id for m in rank(NOTHING, pool)] == [6, 3, 4, 5, 2]
    assert {m.score for m in rank(NOTHING, pool)} == {10}


def test_unrated_ranks_below_rated_on_a_tie():
    pool = [cand(1, red_seal=True), cand(2, red_seal=True, rating=3.0, rating_count=1)]
    assert [m.mechanic_id for m in rank(NOTHING, pool)] == [2, 1]


def test_limit_keeps_the_best_in_order():
    pool = [cand(i, years=i) for i in range(1, 13)]  # 1..12 years
    best = rank(NOTHING, pool, limit=3)
    assert [m.mechanic_id for m in best] == [10, 11, 12]  # 10+ years all score 20: lower id first
    best = rank(NOTHING, pool, limit=5)
    assert [(m.mechanic_id, m.score) for m in best] == [(10, 20), (11, 20), (12, 20), (5, 10), (6, 10)]
    assert rank(NOTHING, pool, limit=0) == []
    assert len(rank(NOTHING, pool, limit=50)) == 12
    assert rank(NOTHING, [], limit=3) == []


def test_rank_agrees_with_points_for_every_candidate():
    pool = [cand(i, online=i % 2 == 0, years=i % 15, rating=(3.5 + (i % 4) / 4) if i % 3 else None,
                 rating_count=1, red_seal=i % 5 == 0, completed=i * 3 % 70, country="CA" if i % 2 else "US",
                 city="toronto" if i % 4 == 1 else "", city_label="Toronto",
                 specialties=keywords("brakes" if i % 3 == 0 else "engine")) for i in range(1, 60)]
    w = wanted("brakes grinding, misfire", None, "Toronto", "CA")
    ranked = rank(w, pool)
    by_id = {c.id: c for c in pool}
    for m in ranked:
        assert m.score == matching.points(by_id[m.mechanic_id], w) == sum(p for _, p in m.reasons)
    keys = [(m.score, by_id[m.mechanic_id].rating or 0, by_id[m.mechanic_id].completed, -m.mechanic_id)
            for m in ranked]
    assert keys == sorted(keys, reverse=True)


# --- candidates() ----------------------------------------------------------------------------

def test_candidates_load_profiles_in_one_query(app):
    mia = UserFactory("mechanic", full_name="Mia", years_experience=12, red_seal=True, brands="Honda, Toyota",
                      specialties="brakes, electrical", bio="Twelve years at a dealer", rating_sum=9,
                      rating_count=2, completed_sessions=21, presence="online", online=True)
    UserFactory("mechanic", approved=False)  # not approved: never a candidate
    gone = UserFactory("mechanic")
    gone.is_active_account = False
    UserFactory("customer")
    raj = UserFactory("mechanic", full_name="Raj")
    db.session.commit()
    statements = []

    def count(conn, cursor, statement, *_):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        pool = matching.candidates()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert [c.id for c in pool] == [mia.id, raj.id]
    c = pool[0]
    assert (c.name, c.online, c.years, c.rating, c.red_seal, c.completed, c.complete) == \
        ("Mia", True, 12, 4.5, True, 21, True)
    assert c.specialties == {"brakes", "electrical"} and c.brands == {"honda", "toyota"}
    assert (c.city, c.city_label, c.country) == ("toronto", "Toronto", "CA")
    assert not pool[1].complete and pool[1].rating is None
    assert c.base == 50 + 20 + 15 + 10 + 8 + 8
    assert [c.id for c in matching.candidates(online_only=True)] == [mia.id]


def test_candidates_available_only_leaves_out_mechanics_in_a_session(app):
    free = UserFactory("mechanic", presence="online", online=True)
    busy = UserFactory("mechanic", presence="online", online=True)
    customer = UserFactory("customer")
    db.session.commit()
    AcceptedSessionFactory(customer, busy)
    assert db.session.scalar(sa.select(ConsultSession.status).where(ConsultSession.mechanic_id == busy.id)) == "waiting"
    assert {c.id for c in matching.candidates(online_only=True)} == {free.id, busy.id}
    assert [c.id for c in matching.candidates(online_only=True, available_only=True)] == [free.id]
    assert [c.id for c in matching.candidates(ids=[busy.id])] == [busy.id]


def test_wanted_for_intake_reads_vehicle_concern_and_place(app):
    from tests.factories import IntakeFactory

    customer = UserFactory("customer")
    intake = IntakeFactory(customer, concern="Brakes grind, code C0035", make="VW", city="Ottawa", country="ca")
    w = matching.wanted_for_intake(intake)
    assert w.make == "volkswagen" and w.make_label == "VW" and w.city == "ottawa" and w.country == "CA"
    assert {"brakes", "diagnostics", "noise", "suspension"} <= w.keywords
    advice = IntakeFactory(UserFactory("customer"), advice_only=True, concern="Which oil should I use?")
    assert matching.wanted_for_intake(advice).make == ""
