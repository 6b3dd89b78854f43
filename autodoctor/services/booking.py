"""The book-now wizard's draft: the customer's answers so far, kept on the server (one
BookingDraft per customer), step by step:

  vehicle -> plan -> mechanic -> concern -> waiver -> pay

Each step's answer is checked with the intake rules (services.intakes) when it is saved, so a
later step can trust the earlier ones; a step asked for before the ones it needs sends the
customer to the first missing one. Nothing but the draft is stored until "Pay": then the
intake (with its waiver and photos, and the picked online mechanic as
`intakes.preferred_mechanic_id`) and the checkout are made in one transaction.

Photos are taken on the pay step's form, so no upload ever exists without an intake and an
abandoned draft leaves no files behind. A draft is started over once the booking it led to
was paid, or when it has not been touched for DRAFT_TTL.

`draft.data` keys: vehicle ("<saved id>" | "new" | "none"), new_vehicle {year, make, model,
vin, vin_decoded}, plan (code), search {city, country, filter}, mechanic ("any" | "<id>"),
concern, city, country, waiver {ip, user_agent, at}, reached (the furthest step saved),
intake_id (the intake of the last "Pay")."""
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from autodoctor import clock, urls
from autodoctor.extensions import db
from autodoctor.models import BookingDraft, Intake, Payment, User, Vehicle
from autodoctor.services import favorites, intakes, matching, payments, plans, presence
from autodoctor.services.errors import NotFound, ValidationError

STEPS = ("vehicle", "plan", "mechanic", "concern", "waiver", "pay")
STEP_TITLES = {"vehicle": "Vehicle", "plan": "Plan", "mechanic": "Mechanic", "concern": "Your concern",
               "waiver": "Waiver", "pay": "Pay"}
NEW_VEHICLE, NO_VEHICLE, ANY = "new", "none", "any"
FILTERS = (("all", "All"), ("brand", "Brand specialists"), ("favorites", "My favorites"))
RESULTS_LIMIT = 20
SAVED_VEHICLES = 10
DRAFT_TTL = timedelta(days=7)
# Which step asks for each intake field (an error found at "Pay" is shown there).
FIELD_STEPS = {"vehicle": "vehicle", "year": "vehicle", "make": "vehicle", "model": "vehicle", "vin": "vehicle",
               "plan": "plan", "mechanic": "mechanic", "concern": "concern", "city": "concern",
               "country": "concern", "accept_waiver": "waiver", "photos": "pay"}


class StepErrors(intakes.IntakeErrors):
    """Field errors of one step's answer (a subclass, so callers may catch IntakeErrors)."""


def _errors(**errors):
    return StepErrors(errors)


# --- the draft -------------------------------------------------------------------------------

def draft_for(customer_id):
    """The customer's draft, made (and flushed) when they have none."""
    draft = _find(customer_id)
    if draft is None:
        try:
            with db.session.begin_nested():
                draft = BookingDraft(customer_id=customer_id, data={}, created_at=clock.now(),
                                     updated_at=clock.now())
                db.session.add(draft)
        except IntegrityError:  # made at the same moment in another tab
            draft = _find(customer_id)
    return draft


def _find(customer_id):
    return db.session.scalar(db.select(BookingDraft).where(BookingDraft.customer_id == customer_id))


def _stale(draft):
    """Start over: a draft whose booking was paid (or refunded), or one left for DRAFT_TTL."""
    data = draft.data or {}
    if not data:
        return False
    if draft.updated_at and clock.now() - draft.updated_at > DRAFT_TTL:
        return True
    intake_id = data.get("intake_id")
    return bool(intake_id) and db.session.scalar(db.select(db.func.count(Payment.id)).where(
        Payment.intake_id == intake_id, Payment.status.in_(("paid", "refunded")))) > 0


def _store(draft, data):
    draft.data = data  # a new dict: JSON columns do not see changes inside one
    draft.updated_at = clock.now()
    db.session.flush()


def reset(draft):
    _store(draft, {})


def load(customer):
    """The customer's Booking (their draft made when missing, started over when stale)."""
    draft = draft_for(customer.id)
    if _stale(draft):
        reset(draft)
    return Booking(draft, customer)


def current_step(booking):
    """The furthest step the customer reached whose earlier steps are all still answered."""
    reached = booking.data.get("reached")
    step = reached if reached in STEPS else STEPS[0]
    return booking.missing_before(step) or step


def resume_url(customer_id, **url_options):
    """The URL of the customer's draft at its current step (the first step when they have
    none). `url_options` go to url_for, e.g. _external=True for an e-mail."""
    customer = db.session.get(User, customer_id)
    draft = _find(customer_id)
    step = STEPS[0]
    if customer is not None and draft is not None and not _stale(draft):
        step = current_step(Booking(draft, customer))
    return urls.url("customer.book_step", step=step, **url_options)


def preselect_plan(booking, code):
    """A plan chosen on the pricing page: kept when it exists, ignored otherwise."""
    try:
        plan = plans.get_plan(code)
    except NotFound:
        return
    _save(booking, None, plan=plan.code)


def _save(booking, reached, **changes):
    data = {**booking.data, **changes}
    known = data.get("reached") if data.get("reached") in STEPS else STEPS[0]
    if reached is not None and STEPS.index(reached) > STEPS.index(known):
        known = reached
    data["reached"] = known
    _store(booking.draft, data)
    booking.data = data


def next_step(step):
    return STEPS[min(STEPS.index(step) + 1, len(STEPS) - 1)]


def previous_step(step):
    index = STEPS.index(step)
    return STEPS[index - 1] if index else None


# --- what the draft says ---------------------------------------------------------------------

@dataclass
class Booking:
    draft: BookingDraft
    customer: User
    data: dict = field(init=False)

    def __post_init__(self):
        self.data = dict(self.draft.data or {})

    @property
    def vehicles(self):
        if "_vehicles" not in self.__dict__:
            self.__dict__["_vehicles"] = saved_vehicles(self.customer.id)
        return self.__dict__["_vehicles"]

    @property
    def vehicle_choice(self):
        return self.data.get("vehicle")

    @property
    def advice_only(self):
        return self.vehicle_choice == NO_VEHICLE

    @property
    def new_vehicle(self):
        return self.data.get("new_vehicle") if self.vehicle_choice == NEW_VEHICLE else None

    @property
    def saved_vehicle(self):
        choice = self.vehicle_choice
        if not choice or not str(choice).isdigit():
            return None
        vehicle = db.session.get(Vehicle, int(choice))
        return vehicle if vehicle is not None and vehicle.owner_id == self.customer.id else None

    @property
    def vehicle_label(self):
        if self.advice_only:
            return None
        if self.new_vehicle:
            v = self.new_vehicle
            return f"{v['year']} {v['make']} {v['model']}"
        vehicle = self.saved_vehicle
        return str(vehicle) if vehicle else None

    @property
    def make(self):
        if self.new_vehicle:
            return self.new_vehicle.get("make") or ""
        vehicle = self.saved_vehicle
        return vehicle.make if vehicle else ""

    @property
    def plan(self):
        code = self.data.get("plan")
        if not code:
            return None
        try:
            return plans.get_plan(code)
        except NotFound:
            return None

    @property
    def mechanic_choice(self):
        return self.data.get("mechanic")

    @property
    def mechanic_user(self):
        choice = self.mechanic_choice
        if not choice or not str(choice).isdigit():
            return None
        return _mechanic(int(choice))

    @property
    def concern(self):
        return self.data.get("concern") or ""

    @property
    def search(self):
        return self.data.get("search")

    @property
    def waiver(self):
        return self.data.get("waiver")

    def done(self, step):
        """Whether `step` has a (still valid) answer."""
        if step == "vehicle":
            choice = self.vehicle_choice
            return choice == NO_VEHICLE or bool(self.new_vehicle) or self.saved_vehicle is not None
        if step == "plan":
            return self.plan is not None
        if step == "mechanic":
            return self.mechanic_choice == ANY or self.mechanic_user is not None
        if step == "concern":
            try:
                intakes.check_concern(self.data)
            except intakes.IntakeErrors:
                return False
            return True
        if step == "waiver":
            return bool(self.waiver)
        return False

    def missing_before(self, step):
        """The first step before `step` without an answer, or None."""
        for earlier in STEPS[:STEPS.index(step)]:
            if not self.done(earlier):
                return earlier
        return None

    def place(self, for_step):
        """City and country to start from: what this step saved, else the mechanic search's (for
        the concern step), else the profile, else the last intake."""
        if for_step == "concern" and self.data.get("city"):
            return self.data["city"], self.data.get("country") or ""
        search = self.search or {}
        if search.get("city") or search.get("country"):
            return search.get("city") or "", search.get("country") or ""
        if self.customer.city or self.customer.country:
            return self.customer.city or "", (self.customer.country or "").upper()
        last = db.session.scalar(db.select(Intake).where(Intake.customer_id == self.customer.id)
                                 .order_by(Intake.id.desc()).limit(1))
        return (last.city, last.country) if last else ("", "")

    def intake_data(self):
        """The draft as the intake rules read it."""
        data = {"advice_only": self.advice_only, "vehicle_id": None, "concern": self.concern,
                "city": self.data.get("city"), "country": self.data.get("country"),
                "accept_waiver": bool(self.waiver)}
        if self.new_vehicle:
            v = self.new_vehicle
            data.update(year=v.get("year"), make=v.get("make"), model=v.get("model"), vin=v.get("vin") or "")
        elif not self.advice_only:
            vehicle = self.saved_vehicle
            data["vehicle_id"] = vehicle.id if vehicle else None
        return data


def saved_vehicles(customer_id):
    return intakes.saved_vehicles(customer_id, SAVED_VEHICLES)


def _mechanic(mechanic_id):
    user = db.session.get(User, mechanic_id)
    if user is None or user.role != "mechanic" or not user.is_active_account or user.mechanic_profile is None \
            or not user.mechanic_profile.approved:
        return None
    return user


# --- saving each step ------------------------------------------------------------------------

def _text(form, name, limit=400):
    return (form.get(name) or "").strip()[:limit]


def save_vehicle(booking, form):
    """A saved vehicle, a new one (year, make, model, optional VIN) or just advice."""
    choice = form.get("vehicle")
    if choice == NO_VEHICLE:
        _save(booking, "plan", vehicle=NO_VEHICLE)
        return
    if choice == NEW_VEHICLE:
        year = _text(form, "year", 10)
        data = {"year": int(year) if year.isdigit() and len(year) <= 4 else None, "make": _text(form, "make"),
                "model": _text(form, "model"), "vin": _text(form, "vin", 40)}
        _, _, new_vehicle = intakes.check_vehicle(booking.customer, data)
        _save(booking, "plan", vehicle=NEW_VEHICLE, new_vehicle=new_vehicle)
        return
    if choice and choice.isdigit() and any(v.id == int(choice) for v in booking.vehicles):
        _save(booking, "plan", vehicle=choice)
        return
    raise _errors(vehicle="Choose a vehicle, add one, or choose “Just advice”.")


def save_plan(booking, code):
    if not code:
        raise _errors(plan="Choose a plan.")
    try:
        plan = plans.get_plan(code)
    except NotFound as exc:
        raise _errors(plan=exc.message) from None
    _save(booking, "mechanic", plan=plan.code)


def clean_search(form):
    """The mechanic search as typed: city (at most 80 characters), a known country code or
    nothing, and one of FILTERS."""
    from autodoctor.blueprints.customer.forms import COUNTRIES

    country = _text(form, "country", 2).upper()
    wanted_filter = form.get("filter")
    return {"city": _text(form, "city", 80), "country": country if country in {c for c, _ in COUNTRIES if c} else "",
            "filter": wanted_filter if wanted_filter in {f for f, _ in FILTERS} else "all"}


def save_search(booking, form):
    """Remember the search (so coming back to the step shows its results again)."""
    search = clean_search(form)
    _save(booking, None, search=search)
    return search


def save_mechanic(booking, choice):
    """"Any available mechanic", or one who is online now."""
    if choice == ANY:
        _save(booking, "concern", mechanic=ANY)
        return
    user = _mechanic(int(choice)) if choice and choice.isdigit() else None
    if user is None:
        raise _errors(mechanic="Choose a mechanic, or “Any available mechanic”.")
    if presence.status(user.id) != "online":
        raise _errors(mechanic=f"{user.full_name} is not online right now. Choose an online mechanic, "
                               "or “Any available mechanic”.")
    _save(booking, "concern", mechanic=str(user.id))


def save_concern(booking, form):
    concern, city, country = intakes.check_concern(
        {"concern": _text(form, "concern", 5000), "city": _text(form, "city", 200),
         "country": _text(form, "country", 10)})
    _save(booking, "waiver", concern=concern, city=city, country=country)


def accept_waiver(booking, accepted, ip=None, user_agent=None):
    if not accepted:
        raise _errors(accept_waiver="You must accept the waiver to continue.")
    _save(booking, "pay", waiver={"version": intakes.WAIVER_VERSION, "ip": (ip or "unknown")[:45],
                                  "user_agent": (user_agent or "unknown")[:400], "at": clock.now().isoformat()})


# --- the mechanic step's search ----------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    mechanic_id: int
    name: str
    score: int
    reasons: tuple  # (phrase, points)
    presence: str  # online | busy | offline

    @property
    def pickable(self):
        return self.presence == "online"


def find_mechanics(booking, search):
    """The best RESULTS_LIMIT mechanics for the draft under `search` (city, country, filter),
    with the reasons for each score and their presence now."""
    wanted = matching.wanted(booking.concern, booking.make or None, search.get("city"), search.get("country"))
    pool = matching.candidates()
    if search.get("filter") == "brand":
        pool = [c for c in pool if wanted.make and wanted.make in c.brands]
    elif search.get("filter") == "favorites":
        liked = favorites.favorite_ids(booking.customer.id)
        pool = [c for c in pool if c.id in liked]
    names = {c.id: c.name for c in pool}
    best = matching.rank(wanted, pool, limit=RESULTS_LIMIT)
    status = presence.statuses([m.mechanic_id for m in best])
    return [Result(m.mechanic_id, names[m.mechanic_id], m.score, m.reasons, status.get(m.mechanic_id, "offline"))
            for m in best]


# --- pay -------------------------------------------------------------------------------------

class StepMissing(ValidationError):
    def __init__(self, step):
        super().__init__(f"Please complete the “{STEP_TITLES[step]}” step first.", field=step)
        self.step = step


def book(booking, photos, success_url_for, cancel_url):
    """Make the intake (waiver, photos, preferred mechanic) and start its checkout, in the
    caller's transaction. Returns (checkout URL, None) or (None, session) as
    payments.start_checkout does; raises StepMissing, IntakeErrors or a ServiceError."""
    missing = booking.missing_before("pay")
    if missing:
        raise StepMissing(missing)
    plan = booking.plan
    checked = intakes.check_intake(booking.customer, plan, booking.intake_data(), photos, waiver_now=True)
    preferred = None
    if booking.mechanic_choice != ANY:
        user = booking.mechanic_user
        if presence.status(user.id) != "online":
            raise _errors(mechanic=f"{user.full_name} is no longer online. Choose another mechanic, or "
                                   "“Any available mechanic”.")
        preferred = user.id
    waiver = booking.waiver or {}
    intake = intakes.add_intake(booking.customer, plan, checked,
                                {"ip": waiver.get("ip"), "user_agent": waiver.get("user_agent")})
    intake.preferred_mechanic_id = preferred
    intakes.store_photos(intake, checked)
    url, session = payments.start_checkout(intake, success_url_for, cancel_url)
    if session is not None:  # free, or paid from account credit: booked already
        reset(booking.draft)
    else:
        _save(booking, None, intake_id=intake.id)
    return url, session


def step_of_errors(errors):
    """The earliest step any of `errors` (field -> message) belongs to."""
    found = [FIELD_STEPS.get(name, "pay") for name in errors]
    return min(found, key=STEPS.index) if found else "pay"


# --- "schedule for later instead" ------------------------------------------------------------

def schedule_query(booking):
    """The draft as the scheduling page's query (its names: scheduling.QUERY_NAMES)."""
    query = {"from": "intake"}
    if booking.advice_only:
        query["vehicle"] = NO_VEHICLE
    elif booking.new_vehicle:
        v = booking.new_vehicle
        query.update(vehicle=NEW_VEHICLE, year=str(v.get("year") or ""), make=v.get("make") or "",
                     model=v.get("model") or "", vin=v.get("vin") or "")
    elif booking.saved_vehicle is not None:
        query["vehicle"] = str(booking.saved_vehicle.id)
    plan = booking.plan
    if plan is not None and plan.price_cents > 0:
        query["plan"] = plan.code
    if booking.concern:
        query["concern"] = booking.concern[:4000]
    city, country = booking.place("concern")
    if city or country:
        query.update(city=city[:80], country=country[:2])
    return {k: v for k, v in query.items() if v}
