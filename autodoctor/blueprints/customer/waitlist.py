"""The customer's waitlist page: join (only while no mechanic is online), the place in line and
an honest estimate, leave; live over the customer's own channel (`user:<id>`): the position
as people ahead leave or are served, and "a mechanic is online" when one comes online (the
stream carries the notices area too, so this page needs no other stream).

Join and leave work as HTMX swaps of the status block and as plain form posts."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from autodoctor import htmx
from autodoctor.blueprints.customer import bp
from autodoctor.blueprints.public.notifications import notices_message
from autodoctor.extensions import db
from autodoctor.models import BookingDraft
from autodoctor.realtime import Message, presenter, sse_response
from autodoctor.services import booking, waitlist
from autodoctor.services.errors import ServiceError

STATUS = "customer/waitlist/_status.html"


def _context(customer_id, live=False, error=None, place=None, estimate=None):
    return {"place": place or waitlist.status_for(customer_id), "estimate": estimate or waitlist.estimate(),
            "live": live, "error": error}


def _schedule_url():
    """The scheduling page with what the customer's book-now draft holds (vehicle, plan, concern)."""
    draft = db.session.scalar(select(BookingDraft).where(BookingDraft.customer_id == current_user.id))
    query = booking.schedule_query(booking.Booking(draft, current_user)) if draft is not None else {}
    return url_for("customer.schedule_index", **query)


def _page_or_status(code=200, error=None):
    page = {} if htmx.is_htmx() else {"schedule_url": _schedule_url()}
    return htmx.render("customer/waitlist/show.html", STATUS, status=code,
                       **_context(current_user.id, error=error), **page)


@bp.get("/waitlist")
def waitlist_show():
    return _page_or_status()


@bp.post("/waitlist")
def waitlist_join():
    try:
        waitlist.join(current_user.id, request.form.get("draft_id", type=int))
    except waitlist.MechanicOnline as exc:
        db.session.rollback()
        return _page_or_status(exc.status_code)  # the status says so, with the link to continue
    except ServiceError as exc:
        db.session.rollback()
        return _page_or_status(exc.status_code, exc.message)
    db.session.commit()
    if htmx.is_htmx():
        return _page_or_status()
    return redirect(url_for("customer.waitlist_show"), code=303)


@bp.post("/waitlist/leave")
def waitlist_leave():
    left = waitlist.leave(current_user.id)
    db.session.commit()
    if htmx.is_htmx():
        return _page_or_status()
    flash("You left the waitlist." if left else "You were not on the waitlist.", "success" if left else "info")
    return redirect(url_for("customer.waitlist_show"), code=303)


@bp.get("/waitlist/stream")
def waitlist_stream():
    """The customer's own channel: the status block and the notices area first on every
    (re)connect, then every change."""
    customer_id = current_user.id
    return sse_response([f"user:{customer_id}"],
                        lambda: [waitlist_message(customer_id), notices_message(customer_id)])


def waitlist_message(customer_id, **context):
    html = render_template(STATUS, **_context(customer_id, live=True, **context))
    return Message(channel=f"user:{customer_id}", event="waitlist", data=html)


@presenter("waitlist.changed")
def present_waitlist(customer_ids=(), **_):
    """Everyone still waiting (their place may have moved) and the customers named (joined,
    left, told, expired) get their status block again. One query for all the positions."""
    online = bool(waitlist.online_mechanic_ids())
    estimate = waitlist.estimate()
    messages, done = [], set()
    for number, entry in enumerate(waitlist.waiting_in_order(waitlist.LIVE_POSITIONS), start=1):
        place = waitlist.Status("waiting", entry, number, online, link=waitlist.resume_url(entry.customer_id))
        messages.append(waitlist_message(entry.customer_id, place=place, estimate=estimate))
        done.add(entry.customer_id)
    for customer_id in customer_ids:
        if customer_id not in done:
            done.add(customer_id)
            messages.append(waitlist_message(customer_id, place=waitlist.status_for(customer_id, online=online),
                                             estimate=estimate))
    return messages

