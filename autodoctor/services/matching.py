"""Which mechanics fit a request best: the score from DESIGN.md, with the reasons behind it.

  online now 50 · each keyword match 15 · brand specialist for the customer's make 30 ·
  experience 10+ years 20 / 5+ years 10 · rating >= 4.5 15 / >= 4.0 10 · Red Seal 10 ·
  profile >= 95% complete 8 · completed sessions >= 50 12 / >= 20 8 · same country 25 ·
  same city 35

Keywords are the vehicle systems a text talks about ("brakes", "check engine", ...), found by
words and phrases and by OBD-II codes (P0301 -> engine, misfire; P0700 -> transmission). A
mechanic's specialties are read the same way, so "brake jobs, ABS" matches "grinding when
braking". Ties go to the better rating, then more completed sessions, then the longer-standing
account (lower id), so the order never depends on the database's mood.

Scoring is arithmetic on preloaded candidates (one query loads them all); the reasons are
written only for the matches returned."""
import heapq
import re
from dataclasses import dataclass

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
    "transmission": ("transmission", "gearbox", "shifting", "shifts", "slipping", "clutch", "cvt", "gear", "gears"),
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
_PHRASE_RE = re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(p) for p, _ in _PHRASES) + r")(?![a-z0-9])")
_PHRASE_SYSTEM = dict(_PHRASES)
OBD_CODE = re.compile(r"\b([PBCU])([0-3])([0-9A-F])([0-9A-F]{2})\b", re.I)
# OBD-II code families -> systems (SAE J2012 groups for powertrain codes).
_OBD_P = {"0": ("fuel",), "1": ("fuel",), "2": ("fuel",), "3": ("engine",), "4": ("exhaust",), "5": ("engine",),
          "6": ("electrical",), "7": ("transmission",), "8": ("transmission",), "9": ("transmission",),
          "A": ("hybrid/ev",), "B": ("hybrid/ev",), "C": ("hybrid/ev",)}
_OBD_FAMILY = {"B": ("electrical",), "C": ("brakes", "suspension"), "U": ("electrical",)}

BRAND_ALIASES = {"vw": "volkswagen", "chevy": "chevrolet", "mercedes": "mercedes-benz", "benz": "mercedes-benz",
                 "merc": "mercedes-benz", "bmw": "bmw", "landrover": "land rover", "alfa": "alfa romeo"}


def keywords(text):
    """The systems a piece of text talks about, as a frozenset of names from SYSTEMS."""
    text = (text or "").lower()
    found = {_PHRASE_SYSTEM[m.group(1)] for m in _PHRASE_RE.finditer(text)}
    for letter, _digit, family, _ in OBD_CODE.findall(text.upper()):
        if letter == "P":
            found.update(("check engine", "diagnostics", *_OBD_P.get(family, ())))
        else:
            found.update(("diagnostics", *_OBD_FAMILY[letter]))
    return frozenset(found)


def brand(name):
    """A make as compared: lower case, single spaces, common short names expanded."""
    name = " ".join((name or "").lower().split())
    return BRAND_ALIASES.get(name, name)


def _place(value):
    return " ".join((value or "").lower().split())


@dataclass(frozen=True)
class Wanted:
    """What a request asks for: systems from its concern, the vehicle's make, where the customer is."""

    keywords: frozenset = frozenset()
    make: str = ""  # brand() form
    city: str = ""  # _place() form
    country: str = ""  # ISO code, upper case
    make_label: str = ""  # as the customer wrote it, for the reasons


def wanted(concern="", make=None, city=None, country=None):
    return Wanted(keywords(concern), brand(make), _place(city), (country or "").upper(), (make or "").strip())


def wanted_for_intake(intake):
    vehicle = intake.vehicle
    return wanted(intake.concern, vehicle.make if vehicle else None, intake.city, intake.country)


@dataclass(frozen=True)
class Candidate:
    """A mechanic as scored (built once per request from one query)."""

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


@dataclass(frozen=True)
class Match:
    mechanic_id: int
    score: int
    reasons: tuple  # ("online now", "brand specialist: Honda", ...) in weight order


PROFILE_FIELDS = 7  # bio, specialties, brands, years, city, country, time zone


def completeness(profile, city, country):
    """The share of a mechanic's profile filled in (0..1); `city` and `country` are the user's."""
    filled = sum(bool(v) for v in ((profile.bio or "").strip(), (profile.specialties or "").strip(),
                                   (profile.brands or "").strip(), profile.years_experience, city, country,
                                   profile.time_zone))
    return filled / PROFILE_FIELDS


def candidates(online_only=False):
    """Every approved, active mechanic as a Candidate, in one query."""
    from autodoctor.models import MechanicProfile, User

    query = db.select(User.id, User.full_name, User.city, User.country, MechanicProfile).join(
        MechanicProfile, MechanicProfile.user_id == User.id).where(
        User.role == "mechanic", User.is_active_account, MechanicProfile.approved)
    if online_only:
        query = query.where(MechanicProfile.presence == "online")
    return [candidate(row.id, row.full_name, row.city, row.country, row.MechanicProfile)
            for row in db.session.execute(query)]


def candidate(user_id, name, city, country, profile):
    labels = {brand(b): b.strip() for b in (profile.brands or "").split(",") if b.strip()}
    return Candidate(
        id=user_id, name=name, online=profile.presence == "online", specialties=keywords(profile.specialties),
        brands=frozenset(labels), brand_labels=labels, years=profile.years_experience or 0,
        rating=profile.rating, rating_count=profile.rating_count or 0, red_seal=bool(profile.red_seal),
        complete=completeness(profile, city, country) >= 0.95, completed=profile.completed_sessions or 0,
        city=_place(city), city_label=(city or "").strip(), country=(country or "").upper())


def points(c, w):
    """The score of candidate `c` for request `w` (the arithmetic only)."""
    w_ = WEIGHTS
    total = w_["online"] if c.online else 0
    total += w_["keyword"] * len(w.keywords & c.specialties)
    if w.make and w.make in c.brands:
        total += w_["brand"]
    total += w_["years_10"] if c.years >= 10 else w_["years_5"] if c.years >= 5 else 0
    if c.rating is not None:
        total += w_["rating_45"] if c.rating >= 4.5 else w_["rating_40"] if c.rating >= 4.0 else 0
    total += w_["red_seal"] if c.red_seal else 0
    total += w_["complete"] if c.complete else 0
    total += w_["sessions_50"] if c.completed >= 50 else w_["sessions_20"] if c.completed >= 20 else 0
    if w.country and c.country == w.country:
        total += w_["country"]
        if w.city and c.city == w.city:
            total += w_["city"]
    return total


def reasons(c, w):
    """Why `c` scored what it did, one phrase per rule that gave points (they add up to points())."""
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


def _order(c, w):
    return (points(c, w), c.rating or 0, c.completed, -c.id)


def rank(w, pool, limit=None):
    """The best `limit` (all when None) candidates of `pool` for `w`, best first, as Matches
    whose reasons (phrase, points) add up to the score."""
    keyed = ((_order(c, w), c) for c in pool)
    best = heapq.nlargest(limit, keyed, key=lambda item: item[0]) if limit is not None else sorted(
        keyed, key=lambda item: item[0], reverse=True)
    return [Match(c.id, key[0], reasons(c, w)) for key, c in best]
