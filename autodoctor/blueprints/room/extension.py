"""Buying more time from the room: the same checkout as the session itself, in a new tab,
so the room stays open; the clock moves on both screens once the payment is fulfilled."""
from flask import abort, flash, redirect, url_for
from flask_login import current_user

from autodoctor.blueprints.room import bp
from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.services import payments
from autodoctor.services.errors import ServiceError


@bp.post("/<int:session_id>/extension")
def extension_create(session_id):
    if db.session.get(ConsultSession, session_id).customer_id != current_user.id:
        abort(403, "Only the customer can buy more time.")
    try:
        url = payments.start_extension_checkout(
            session_id, current_user.id,
            lambda payment_id: url_for("customer.checkout_success", payment_id=payment_id, _external=True),
            url_for("room.room_show", session_id=session_id, _external=True))
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("room.room_show", session_id=session_id), code=303)
    db.session.commit()
    return redirect(url, code=303)
