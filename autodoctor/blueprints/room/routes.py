import json
import threading
import time

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from simple_websocket import ConnectionClosed

from autodoctor import htmx
from autodoctor.blueprints.room import bp
from autodoctor.blueprints.room.files import session_files
from autodoctor.blueprints.room.forms import EndSessionForm, RatingForm
from autodoctor.blueprints.room.presenters import chat_message, room_status, seen_mark, typing
from autodoctor.extensions import db, sock
from autodoctor.models import ConsultSession
from autodoctor.realtime import ACCOUNT_CLOSED, ROOM_REMOVED, Message, account_channel
from autodoctor.services import chat, lifecycle, timeline
from autodoctor.services.errors import ServiceError

FORWARD_CHECK_SECONDS = 20
TYPING_MIN_INTERVAL = 1.5  # seconds between "is typing" pushes from one socket


def _session(session_id):
    return db.session.get(ConsultSession, session_id)


@bp.get("/<int:session_id>")
def room_show(session_id):
    session = _session(session_id)
    if session.status == "completed":
        return redirect(url_for("room.summary_show", session_id=session_id))
    if session.status in ("pending", "cancelled") and current_user.id == session.customer_id:
        return redirect(url_for("customer.session_show", session_id=session_id))
    messages = chat.messages_after(session_id)
    return render_template("room/show.html", session=session, messages=messages, end_form=EndSessionForm(),
                           present=lifecycle.present_user_ids(session_id), seen=chat.seen_marks(session_id))


@sock.route("/<int:session_id>/ws", bp=bp)
def room_socket(ws, session_id):
    """The room for one participant. Chat lines are committed, then broadcast; on (re)connect
    the lines after ?after=<id> are replayed (with an overlap the page de-duplicates), with
    the current status and "seen" marks. Typing goes straight to the other person."""
    user_id = current_user.id
    name = current_user.first_name
    after = request.args.get("after", 0, type=int)
    broker = current_app.extensions["broker"]
    subscription = broker.subscribe([f"room:{session_id}", account_channel(user_id)])  # suspended/banned: closes
    last_typing = 0.0
    try:
        lifecycle.join_room(session_id, user_id)
        db.session.commit()
        lifecycle.maybe_go_live(session_id)
        db.session.commit()
        replay = [chat_message(m) for m in chat.messages_after(session_id, after)] + [room_status(session_id)] + [
            seen_mark(session_id, reader, seen) for reader, seen in chat.seen_marks(session_id).items()]
        db.session.remove()
        forwarder = threading.Thread(target=_forward, args=(ws, subscription, replay, user_id), daemon=True)
        forwarder.start()
        while True:
            data = _parse(ws.receive())
            if data is None:
                continue
            kind = data.get("type", "chat")
            if kind == "typing":
                if time.monotonic() - last_typing >= TYPING_MIN_INTERVAL:
                    last_typing = time.monotonic()
                    broker.publish(typing(session_id, user_id, name))
                continue
            try:
                if kind == "seen":
                    chat.mark_seen(session_id, user_id, data.get("message_id"))
                else:
                    chat.post_message(session_id, user_id, data.get("body"), data.get("client_token"))
                db.session.commit()
            except ServiceError as exc:
                db.session.rollback()
                subscription.deliver(Message(channel="", event="error", data=render_template(
                    "room/_chat_error.html", message=exc.message)))
            finally:
                db.session.remove()
    except ConnectionClosed:
        pass
    finally:
        subscription.close()
        subscription.deliver(None)  # wakes the forwarder at once: it sees the socket closed and ends
        lifecycle.leave_room(session_id, user_id)
        db.session.commit()
        db.session.remove()


def _parse(raw):
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _forward(ws, subscription, replay, user_id):
    """The only writer to this socket: replay first, then live messages, each chat line once.
    It waits long between checks of the socket (the handler wakes it when the socket ends):
    waking every forwarder every second cost ~0.15 ms of CPU each time, in bursts per worker."""
    sent = set()
    pending = list(replay)
    try:
        while ws.connected:
            message = pending.pop(0) if pending else subscription.get(timeout=FORWARD_CHECK_SECONDS)
            if message is None or message.skip_user == user_id:
                continue
            if message.event == ACCOUNT_CLOSED:  # suspended or banned: the socket ends
                ws.close(1008, "account closed")
                return
            if message.event == ROOM_REMOVED:  # an admin gave the session to another mechanic
                if message.data == str(user_id):
                    ws.close(1008, "no longer a participant")
                    return
                continue
            if message.id and message.id.startswith("msg-"):
                if message.id in sent:
                    continue
                sent.add(message.id)
            ws.send(message.data)
    except ConnectionClosed:
        pass


@bp.post("/<int:session_id>/end")
def session_end(session_id):
    session = _session(session_id)
    form = EndSessionForm()
    if session.mechanic_id != current_user.id:
        abort(403, "Only the mechanic can end the session.")
    if form.validate_on_submit():
        try:
            lifecycle.end_session(session_id, current_user.id, form.notes.data)
        except ServiceError as exc:
            db.session.rollback()
            form.notes.errors.append(exc.message)
        else:
            db.session.commit()
            return htmx.redirect(url_for("room.summary_show", session_id=session_id))
    return htmx.render("room/_end_form.html", "room/_end_form.html", status=422, session=session, end_form=form)


@bp.get("/<int:session_id>/summary")
def summary_show(session_id):
    session = _session(session_id)
    if session.status in ("waiting", "live") and session.is_participant(current_user):
        return redirect(url_for("room.room_show", session_id=session_id))
    return _render_summary(session, RatingForm())


def _render_summary(session, rating_form, status=200):
    return render_template("room/summary.html", session=session, rating_form=rating_form,
                           notes_form=EndSessionForm(), messages=chat.messages_after(session.id),
                           events=timeline.for_session(session.id), files=session_files(session)), status


@bp.post("/<int:session_id>/rating")
def rating_create(session_id):
    session = _session(session_id)
    form = RatingForm()
    if session.customer_id != current_user.id:
        abort(403, "Only the customer can rate this session.")
    if form.validate_on_submit():
        try:
            lifecycle.rate_session(session_id, current_user.id, int(form.rating.data), form.review.data)
        except ServiceError as exc:
            db.session.rollback()
            form.rating.errors.append(exc.message)
        else:
            db.session.commit()
            flash("Thanks for rating your session!", "success")
            return redirect(url_for("room.summary_show", session_id=session_id), code=303)
    return _render_summary(session, form, 422)


@bp.post("/<int:session_id>/notes")
def notes_update(session_id):
    form = EndSessionForm()
    if form.validate_on_submit():
        try:
            lifecycle.save_notes(session_id, current_user.id, form.notes.data)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash("Notes saved.", "success")
    else:
        flash(" ".join(form.notes.errors), "error")
    return redirect(url_for("room.summary_show", session_id=session_id), code=303)
