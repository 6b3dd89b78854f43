"""The book-now wizard: /customer/book resumes the customer's draft at its current step;
/customer/book/<step> shows one step (vehicle, plan, mechanic, concern, waiver, pay), as a
full page or, for HTMX, as the fragment swapped into #book. Each step's form POSTs to its own
URL: the answer is checked and saved in the draft (services.booking), and the next step comes
back with HX-Push-Url, so the browser's back and forward buttons walk the steps (#book has
hx-history="false": going back asks the server for the step again, never a stale copy).
Without JavaScript the same forms work with ordinary redirects.

A step asked for before its earlier steps are answered shows the first missing one instead.
"Pay" makes the intake and starts the checkout (a free plan opens the session at once)."""
from flask import abort, redirect, request, url_for
from flask_login import current_user

from autodoctor import htmx
from autodoctor.blueprints.customer import bp
from autodoctor.blueprints.customer.forms import COUNTRIES
from autodoctor.extensions import db
from autodoctor.services import booking, intakes, lifecycle, money, plans, presence
from autodoctor.services.errors import ServiceError

IMAGE_ACCEPT = "image/jpeg,image/png,image/webp,.jpg,.jpeg,.png,.webp"


def step_url(step):
    return url_for("customer.book_step", step=step)


@bp.get("/book")
def book_index():
    """Resume the draft where the customer left it (?plan= from the pricing page preselects a plan)."""
    b = booking.load(current_user)
    if request.args.get("plan"):
        booking.preselect_plan(b, request.args["plan"])
    db.session.commit()
    return redirect(step_url(booking.current_step(b)), code=303)


@bp.get("/book/<step>")
def book_step(step):
    b = _load(step)
    active = lifecycle.active_session_for_customer(current_user.id)
    if active is None:
        missing = b.missing_before(step)
        if missing:
            return _go(b, missing)
    return _render(b, step, active=active, push=True)


@bp.post("/book/<step>")
def book_save(step):
    b = _load(step)
    active = lifecycle.active_session_for_customer(current_user.id)
    if active is not None:
        return _render(b, step, status=409, active=active)
    missing = b.missing_before(step)
    if missing:
        return _go(b, missing)
    if step == "pay":
        return _pay(b)
    form = request.form
    try:
        if step == "vehicle":
            booking.save_vehicle(b, form)
        elif step == "plan":
            booking.save_plan(b, form.get("plan"))
        elif step == "mechanic" and form.get("action") == "find":
            booking.save_search(b, form)
            db.session.commit()
            return _render(b, step)
        elif step == "mechanic":
            booking.save_mechanic(b, form.get("mechanic"))
        elif step == "concern":
            booking.save_concern(b, form)
        elif step == "waiver":
            booking.accept_waiver(b, form.get("accept_waiver"), request.remote_addr, request.user_agent.string)
    except intakes.IntakeErrors as exc:
        db.session.rollback()
        return _render(b, step, status=422, errors=exc.errors, typed=form)
    db.session.commit()
    return _go(b, booking.next_step(step))


def _load(step):
    if step not in booking.STEPS:
        abort(404)
    b = booking.load(current_user)
    db.session.commit()  # the draft exists from now on, whatever this request does next
    return b


def _pay(b):
    photos = [(f.filename, f.stream) for f in request.files.getlist("photos") if f and f.filename]
    try:
        url, session = booking.book(
            b, photos, lambda payment_id: url_for("customer.checkout_success", payment_id=payment_id, _external=True),
            url_for("customer.book_step", step="pay", _external=True))
    except booking.StepMissing as exc:
        db.session.rollback()
        return _go(b, exc.step)
    except intakes.IntakeErrors as exc:
        db.session.rollback()
        step = booking.step_of_errors(exc.errors)
        return _render(b, step, status=422, errors=exc.errors, push=step != "pay")
    except ServiceError as exc:
        db.session.rollback()
        return _render(b, "pay", status=422, form_error=exc.message)
    db.session.commit()
    if session is not None:
        return htmx.redirect(url_for("customer.session_show", session_id=session.id))
    return htmx.redirect(url)


def _go(b, step):
    """Show `step` next: its fragment with its URL pushed (HTMX), else a redirect to it."""
    if htmx.is_htmx():
        return _render(b, step, push=True)
    return redirect(step_url(step), code=303)


def _values(b, step):
    """The step's fields as saved in the draft (or their defaults)."""
    if step == "vehicle":
        new = b.data.get("new_vehicle") or {}
        return {"vehicle": b.vehicle_choice or "", "year": new.get("year") or "", "make": new.get("make") or "",
                "model": new.get("model") or "", "vin": new.get("vin") or ""}
    if step == "plan":
        return {"plan": b.data.get("plan") or ""}
    if step == "mechanic":
        search = b.search or {}
        city, country = b.place("mechanic")
        return {"mechanic": b.mechanic_choice or booking.ANY, "city": search.get("city", city),
                "country": search.get("country", country), "filter": search.get("filter") or "all"}
    if step == "concern":
        city, country = b.place("concern")
        return {"concern": b.concern, "city": city, "country": country}
    if step == "waiver":
        return {"accept_waiver": bool(b.waiver)}
    return {}


def _render(b, step, status=200, errors=None, typed=None, active=None, push=False, form_error=None):
    values = _values(b, step)
    if typed is not None:  # an answer sent back with errors: show what was sent
        values.update({name: typed[name] for name in values if name in typed and name != "accept_waiver"})
        if step == "waiver":
            values["accept_waiver"] = bool(typed.get("accept_waiver"))
    done = {s: b.done(s) for s in booking.STEPS[:-1]}
    reachable, ok = {}, True
    for s in booking.STEPS:
        reachable[s] = ok
        ok = ok and done.get(s, False)
    context = dict(b=b, step=step, steps=booking.STEPS, titles=booking.STEP_TITLES, reachable=reachable,
                   step_url=step_url, back=booking.previous_step(step), active=active, errors=errors or {},
                   v=values, form_error=form_error or (_summary(errors) if errors else None),
                   countries=COUNTRIES, format_price=plans.format_price, any_choice=booking.ANY,
                   new_vehicle=booking.NEW_VEHICLE, no_vehicle=booking.NO_VEHICLE,
                   schedule_url=url_for("customer.schedule_index", **booking.schedule_query(b)))
    if not active:
        context.update(_step_context(b, step))
    response = htmx.render("customer/book/index.html", "customer/book/_step.html", status=status, **context)
    if htmx.is_htmx() and (status < 400 or push):
        response.headers["HX-Push-Url" if push else "HX-Replace-Url"] = step_url(step)
    return response


def _summary(errors):
    return "Please correct the highlighted fields." if len(errors) != 1 else None


def _step_context(b, step):
    if step == "vehicle":
        return {"vehicles": b.vehicles}
    if step == "plan":
        return {"plans": plans.list_plans()}
    if step == "waiver":
        return {"waiver_version": intakes.WAIVER_VERSION}
    if step == "mechanic":
        online = bool(presence.online_ids(include_busy=True))
        search = b.search
        results = booking.find_mechanics(b, search) if search and online else None
        return {"online": online, "results": results, "filters": booking.FILTERS,
                "make": b.make, "draft_id": b.draft.id}
    if step == "pay":
        plan = b.plan
        credit = money.credit_balance(current_user.id)
        price = plan.price_cents if plan else 0
        return {"plan": plan, "price_cents": price, "credit_cents": min(credit, price),
                "to_pay_cents": max(price - credit, 0), "image_accept": IMAGE_ACCEPT,
                "mechanic": b.mechanic_user}
    return {}
