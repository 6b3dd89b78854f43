"""Which mechanics fit a request best: the score from DESIGN.md, with the reasons behind it.

  online now 50 · each keyword match 15 · brand specialist for the customer's make 30 ·
  experience 10+ years 20 / 5+ years 10 · rating >= 4.5 15 / >= 4.0 10 · Red Seal 10 ·
  profile >= 95% complete 8 · completed sessions >= 50 12 / >= 20 8 · same country 25 ·
  same city 35

Keywords are the vehicle systems a text talks about ("brakes", "check engine", ...), found by
words and phrases (a plural "s" included) and by OBD-II codes (P0301 -> check engine, engine;
P0700 -> transmission; C0035 -> brakes, suspension; U0100 -> electrical; every code also
-> diagnostics). A mechanic's specialties are read the same way, so "brake jobs, ABS" matches
"grinding when braking". City and country points need the same country (Toronto, CA is not
Toronto, US). Ties go to the better rating, then more completed sessions, then the
longer-standing account (lower id), so the order never depends on the database's mood.

Scoring is arithmetic on preloaded candidates (one query loads them all, columns only): the
part of a score that does not depend on the request (online, experience, rating, Red Seal,
profile, sessions) is added up once per candidate (`Candidate.base`), so ranking 10,000
mechanics is a set intersection and a few comparisons each; the reasons are written only for
the matches returned."""
import heapq
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from autodoctor.extensions import db

WEIGHTS = {
    "online": 50, "keyword": 15, "brand": 30, "years_10": 20, "years_5": 10, "rating_45": 15, "rating_40": 10,
    "red_seal": 10, "complete": 8, "sessions_50": 12, "sessions_20": 8, "country": 25, "city": 35,
}

# System -> the words and phrases that mean it (lower case; matched on word boundaries).
SYSTEMS = {
    "brakes": ("brake", "brakes", "braking", "brake pad", "pads", "rotor", "rotors", "caliper", "abs"),
    "check engine": ("check engine", "check-engine", "engine light", "cel", "mil"),
    "engine": ("engine", "misfire", "misfiring", "stall", "stalls", "stalling", "rough idle", "idle", "knocking",
               "power loss", "loses power", "spark plug", "spark plugs", "timing belt", "oil leak"),
    "transmission": ("transmission", "gearbox", "shift", "shifting", "slipping", "clutch", "cvt", "gear"),
    "noise": ("noise", "noises", "squeal", "squeals", "squealing", "squeak", "squeaking", "grinding", "grind",
              "rattle", "rattling", "knock", "clunk", "clunking", "whine", "whining", "hum", "humming", "ticking"),
    "electrical": ("electrical", "battery", "alternator", "starter", "fuse", "fuses", "wiring", "won't start",
                   "wont start", "no start", "dead battery", "lights flicker"),
    "suspension": ("suspension", "shock", "shocks", "strut", "struts", "steering", "alignment", "wobble",
                   "vibration", "vibrates", "pulls to", "bouncy"),
    "cooling": ("coolant", "overheat", "overheating", "overheats", "radiator", "thermostat", "water pump",
                "temperature gauge"),
    "exhaust": ("exhaust", "muffler", "catalytic", "catalytic converter", "emissions", "smoke", "smoking"),
    "fuel": ("fuel", "gas mileage", "fuel economy", "injector", "injectors", "fuel pump", "fuel smell"),
    "hvac": ("air conditioning", "a/c", "ac", "heater", "heating", "hvac", "blower", "defrost"),
    "tires": ("tire", "tires", "tyre", "tyres", "flat", "tpms", "puncture", "tread"),
    "hybrid/ev": ("hybrid", "ev", "electric vehicle", "charging", "high voltage"),
    "diagnostics": ("diagnostic", "diagnostics", "diagnose", "obd", "obd2", "obd-ii", "scan", "code", "codes"),
}
_PHRASES = sorted(((phrase, system) for system, phrases in SYSTEMS.items() for phrase in phrases),
                  key=lambda item: -len(item[0]))
_PHRASE_RE = re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(p) for p, _ in _PHRASES) + r")s?(?![a-z0-9])")
_PHRASE_SYSTEM = dict(_PHRASES)
OBD_CODE = re.compile(r"\b([PBCU])([0-3])([0-9A-F])([0-9A-F]{2})\b", re.I)
# OBD-II code families -> systems (SAE J2012 groups for powertrain codes).
_OBD_P = {"0": ("fuel",), "1": ("fuel",), "2": ("fuel",), "3": ("engine",), "4": ("exhaust",), "5": ("engine",),
          "6": ("electrical",), "7": ("transmission",), "8": ("transmission",), "9": ("transmission",),
          "A": ("hybrid/ev",), "B": ("hybrid/ev",), "C": ("hybrid/ev",)}
_OBD_FAMILY = {"B": ("electrical",), "C": ("brakes", "suspension"), "U": ("electrical",)}

BRAND_ALIASES = {"vw": "volkswagen", "chevy": "chevrolet", "mercedes": "mercedes benz", "benz": "mercedes benz",
                 "merc": "mercedes benz", "landrover": "land rover", "alfa": "alfa romeo"}


def keywords(text):
    """The systems a piece of text talks about, as a frozenset of names from SYSTEMS."""
    text = (text or "").lower().replace("\u2019", "'")
    found = {_PHRASE_SYSTEM[m.group(1)] for m in _PHRASE_RE.finditer(text)}
    for letter, _digit, family, _ in OBD_CODE.findall(text.upper()):
        if letter == "P":
            found.update(("check engine", "diagnostics", *_OBD_P.get(family, ())))
        else:
            found.update(("diagnostics", *_OBD_FAMILY[letter]))
    return frozenset(found)


def brand(name):
    """A make as compared: lower case, no accents, hyphens as spaces, single spaces, common
    short names expanded ("VW" -> "volkswagen", "Mercedes-Benz" -> "mercedes benz")."""
    name = " ".join(_plain(name).replace("-", " ").split())
    return BRAND_ALIASES.get(name, name)


def _plain(value):
    """Lower case without accents ("Montréal" -> "montreal")."""
    value = (value or "").lower()
    if value.isascii():
        return value
    return "".join(ch for ch in unicodedata.normalize("NFKD", value) if not unicodedata.combining(ch))


@lru_cache(maxsize=8192)
def _place(value):
    """A city as compared: _plain(), hyphens as spaces, single spaces (cached: few distinct cities)."""
    return " ".join(_plain(value).replace("-", " ").split())


@dataclass(frozen=True)
class Wanted:
    """What a request asks for: systems from its concern, the vehicle's make, where the customer is."""

    keywords: frozenset = frozenset()
    make: str = ""  # brand() form
    city: str = ""  # _place() form
    country: str = ""  # ISO code, upper case
    make_label: str = ""  # as the customer wrote it, for the reasons


def wanted(concern="", make=None, city=None, country=None):
    return Wanted(keywords(concern), brand(make), _place(city), (country or "").strip().upper(), (make or "").strip())


def wanted_for_intake(intake):
    vehicle = None if intake.advice_only else intake.vehicle
    return wanted(intake.concern, vehicle.make if vehicle else None, intake.city, intake.country)


@dataclass(slots=True)
class Candidate:
    """A mechanic as scored (built once per request from one query; treat as read-only).
    `base` is the part of the score that does not depend on the request; it is computed when
    not given."""

    id: int
    name: str
    online: bool
    specialties: frozenset  # systems
    brands: frozenset  # brand() forms
    brand_labels: dict  # brand() form -> as written
    years: int
    rating: float | None
    rating_count: int
    red_seal: bool
    complete: bool  # profile >= 95% complete
    completed: int
    city: str  # _place() form
    city_label: str
    country: str
    base: int | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.base is None:
            self.base = base_points(self)


@dataclass(frozen=True)
class Match:
    mechanic_id: int
    score: int
    reasons: tuple  # ((phrase, points), ...), one per rule that gave points; the points add up to score

    @property
    def phrases(self):
        return [phrase for phrase, _ in self.reasons]


PROFILE_FIELDS = 7  # bio, specialties, brands, years, city, country, time zone


def completeness(profile, city, country):
    """The share of a mechanic's profile filled in (0..1); `city` and `country` are the user's."""
    filled = sum(bool(v) for v in ((profile.bio or "").strip(), (profile.specialties or "").strip(),
                                   (profile.brands or "").strip(), profile.years_experience, city, country,
                                   profile.time_zone))
    return filled / PROFILE_FIELDS


def _available():
    """SQL: the mechanic (users.id) is not in a waiting or live session (lifecycle.mechanic_busy,
    for every row of one query)."""
    from autodoctor.models import ConsultSession, User

    return ~db.select(ConsultSession.id).where(
        ConsultSession.mechanic_id == User.id, ConsultSession.status.in_(("waiting", "live"))).exists()


def candidates(online_only=False, available_only=False, ids=None):
    """Every approved, active mechanic as a Candidate, in one query (columns, not objects).
    `online_only`: presence 'online'; `available_only`: not in a waiting/live session;
    `ids`: only these mechanics."""
    from autodoctor.models import MechanicProfile as P
    from autodoctor.models import User

    query = db.select(User.id, User.full_name, User.city, User.country, P.presence, P.specialties, P.brands,
                      P.years_experience, P.rating_sum, P.rating_count, P.red_seal, P.completed_sessions,
                      db.func.length(db.func.trim(P.bio)) > 0, P.time_zone).join(
        P, P.user_id == User.id).where(User.role == "mechanic", User.is_active_account, P.approved)
    if online_only:
        query = query.where(P.presence == "online")
    if available_only:
        query = query.where(_available())
    if ids is not None:
        query = query.where(User.id.in_(list(ids)))
    # Core rows (no ORM row processing): 10,000 mechanics load in a fraction of the time.
    return [_from_row(*row) for row in db.session.connection().execute(query.order_by(User.id))]


def _from_row(user_id, name, city, country, presence, specialties, brands, years, rating_sum, rating_count,
              red_seal, completed, has_bio, time_zone):
    labels = _brand_labels(brands or "")
    filled = sum(map(bool, (has_bio, (specialties or "").strip(), (brands or "").strip(), years, city, country,
                            time_zone)))
    return Candidate(
        id=user_id, name=name, online=presence == "online", specialties=_specialties(specialties or ""),
        brands=frozenset(labels), brand_labels=labels, years=years or 0,
        rating=round(rating_sum / rating_count, 2) if rating_count else None, rating_count=rating_count or 0,
        red_seal=bool(red_seal), complete=filled / PROFILE_FIELDS >= 0.95, completed=completed or 0,
        city=_place(city), city_label=(city or "").strip(), country=(country or "").strip().upper())


@lru_cache(maxsize=4096)
def _specialties(text):
    return keywords(text)


@lru_cache(maxsize=4096)
def _brand_labels_cached(text):
    return tuple((brand(b), b.strip()) for b in text.split(",") if b.strip())


def _brand_labels(text):
    return dict(_brand_labels_cached(text))


def candidate(user_id, name, city, country, profile):
    """One mechanic as a Candidate, from their MechanicProfile (or anything with its fields)."""
    labels = _brand_labels(profile.brands or "")
    return Candidate(
        id=user_id, name=name, online=profile.presence == "online", specialties=_specialties(profile.specialties or ""),
        brands=frozenset(labels), brand_labels=labels, years=profile.years_experience or 0,
        rating=profile.rating, rating_count=profile.rating_count or 0, red_seal=bool(profile.red_seal),
        complete=completeness(profile, city, country) >= 0.95, completed=profile.completed_sessions or 0,
        city=_place(city), city_label=(city or "").strip(), country=(country or "").strip().upper())


def base_points(c):
    """The points of `c` that do not depend on the request."""
    w_ = WEIGHTS
    total = w_["online"] if c.online else 0
    total += w_["years_10"] if c.years >= 10 else w_["years_5"] if c.years >= 5 else 0
    if c.rating is not None:
        total += w_["rating_45"] if c.rating >= 4.5 else w_["rating_40"] if c.rating >= 4.0 else 0
    total += w_["red_seal"] if c.red_seal else 0
    total += w_["complete"] if c.complete else 0
    total += w_["sessions_50"] if c.completed >= 50 else w_["sessions_20"] if c.completed >= 20 else 0
    return total


def points(c, w):
    """The score of candidate `c` for request `w` (the arithmetic only)."""
    total = c.base + WEIGHTS["keyword"] * len(w.keywords & c.specialties)
    if w.make and w.make in c.brands:
        total += WEIGHTS["brand"]
    if w.country and c.country == w.country:
        total += WEIGHTS["country"]
        if w.city and c.city == w.city:
            total += WEIGHTS["city"]
    return total


def reasons(c, w):
    """Why `c` scored what it did, one (phrase, points) per rule that gave points (they add up
    to points())."""
    found = []
    if c.online:
        found.append(("online now", WEIGHTS["online"]))
    for system in sorted(w.keywords & c.specialties):
        found.append((f"knows {system}", WEIGHTS["keyword"]))
    if w.make and w.make in c.brands:
        found.append((f"brand specialist: {c.brand_labels.get(w.make) or w.make_label}", WEIGHTS["brand"]))
    if c.years >= 10:
        found.append((f"{c.years} years' experience", WEIGHTS["years_10"]))
    elif c.years >= 5:
        found.append((f"{c.years} years' experience", WEIGHTS["years_5"]))
    if c.rating is not None and c.rating >= 4.0:
        found.append((f"rated {c.rating:.1f}", WEIGHTS["rating_45"] if c.rating >= 4.5 else WEIGHTS["rating_40"]))
    if c.red_seal:
        found.append(("Red Seal certified", WEIGHTS["red_seal"]))
    if c.complete:
        found.append(("complete profile", WEIGHTS["complete"]))
    if c.completed >= 20:
        found.append((f"{c.completed} sessions completed",
                      WEIGHTS["sessions_50"] if c.completed >= 50 else WEIGHTS["sessions_20"]))
    if w.country and c.country == w.country:
        if w.city and c.city == w.city:
            found.append((f"same city: {c.city_label}", WEIGHTS["city"]))
        found.append(("same country", WEIGHTS["country"]))
    return tuple(found)


def rank(w, pool, limit=None):
    """The best `limit` (all when None) candidates of `pool` for `w`, best first, as Matches
    whose reasons (phrase, points) add up to the score. Ties: better rating, more completed
    sessions, lower id."""
    keywords_, make, country, city = w.keywords, w.make, w.country, w.city
    kw, br, co, ci = WEIGHTS["keyword"], WEIGHTS["brand"], WEIGHTS["country"], WEIGHTS["city"]

    def key(c):  # points() inlined: this runs once per candidate
        total = c.base
        if keywords_:
            total += kw * len(keywords_ & c.specialties)
        if make and make in c.brands:
            total += br
        if country and c.country == country:
            total += co + ci if city and c.city == city else co
        return (total, c.rating or 0, c.completed, -c.id)

    if limit is not None and limit <= 0:
        return []
    best = heapq.nlargest(limit, pool, key=key) if limit is not None else sorted(pool, key=key, reverse=True)
    return [Match(c.id, key(c)[0], reasons(c, w)) for c in best]
