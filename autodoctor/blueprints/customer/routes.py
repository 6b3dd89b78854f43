from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor import htmx
from autodoctor.blueprints.customer import book, bp  # noqa: F401 (book: the wizard's routes)
from autodoctor.blueprints.customer.forms import IntakeForm, TestCardForm
from autodoctor.blueprints.customer.presenters import session_status_message
from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.realtime import sse_response
from autodoctor.security import owned_by_customer
from autodoctor.services import history, intakes, lifecycle, money, payments, plans
from autodoctor.services.errors import NotFound, ServiceError
from autodoctor.services.uploads import ACCEPT_ATTR


@bp.get("/")
def dashboard_index():
    active = lifecycle.active_session_for_customer(current_user.id)
    history = db.session.scalars(db.select(ConsultSession).where(
        ConsultSession.customer_id == current_user.id, ConsultSession.status.in_(("completed", "cancelled")))
        .order_by(ConsultSession.id.desc()).limit(50)).all()
    return render_template("customer/dashboard/index.html", active=active, history=history,
                           credit_cents=money.credit_balance(current_user.id))


def _intake_form(**kwargs):
    form = IntakeForm(**kwargs)
    form.plan.choices = [(p.code, f"{p.name} — {plans.format_price(p.price_cents)} · {p.minutes} min")
                         for p in plans.list_plans()]
    return form


@bp.get("/intake")
def intake_new():
    """The single book-now form became the wizard: go there (a ?plan= choice is kept)."""
    plan = request.args.get("plan")
    return redirect(url_for("customer.book_index", **({"plan": plan} if plan else {})), code=303)


@bp.post("/intake")
def intake_create():
    """The single-form book-now (kept for forms still open in a browser and for API-like
    clients): everything in one multipart POST; errors come back on the old form."""
    form = _intake_form()
    active = lifecycle.active_session_for_customer(current_user.id)
    field_errors = {}
    if active:
        flash("You already have an active session. Finish or cancel it before starting another.", "error")
        return redirect(url_for("customer.session_show", session_id=active.id), code=303)
    if form.validate_on_submit():
        photos = [(f.filename, f.read()) for f in request.files.getlist(form.photos.name) if f and f.filename]
        try:
            plan = plans.get_plan(form.plan.data)
            intake = intakes.create_intake(current_user, plan, form.data, photos,
                                           {"ip": request.remote_addr, "user_agent": request.user_agent.string})
            url, session = payments.start_checkout(
                intake, lambda payment_id: url_for("customer.checkout_success", payment_id=payment_id, _external=True),
                url_for("customer.intake_new", _external=True))
        except intakes.IntakeErrors as exc:
            db.session.rollback()
            field_errors = exc.errors
        except ServiceError as exc:
            db.session.rollback()
            field_errors = {exc.field or "form": exc.message}
        else:
            db.session.commit()
            if session is not None:
                return redirect(url_for("customer.session_show", session_id=session.id), code=303)
            return redirect(url, code=303)
    for name, message in field_errors.items():
        if name in form:
            form[name].errors = list(form[name].errors) + [message]
    return render_template("customer/intake/new.html", form=form, active=None, accept=ACCEPT_ATTR,
                           form_error=field_errors.get("form") or (
                               "Please correct the highlighted fields." if field_errors or form.errors else None)), 422


@bp.post("/intake/vin")
def intake_vin_check():
    """Inline VIN feedback while the customer types (HTMX)."""
    vin = request.form.get("vin", "")
    result = error = None
    if vin.strip():
        try:
            result = intakes.decode_vin(vin)
        except ServiceError as exc:
            error = exc.message
    return render_template("customer/intake/_vin.html", result=result, error=error)


@bp.get("/checkout/<int:payment_id>/test")
def checkout_test_show(payment_id):
    payment = _payment_or_404(payment_id)
    if payment.status != "open" or payment.provider != "test_checkout":
        return _after_payment(payment)
    return render_template("customer/checkout/test.html", payment=payment, form=TestCardForm())


@bp.post("/checkout/<int:payment_id>/test")
def checkout_test_pay(payment_id):
    payment = _payment_or_404(payment_id)
    form = TestCardForm()
    if form.validate_on_submit():
        try:
            paid = payments.pay_with_test_card(payment, form.card_number.data)
        except ServiceError as exc:
            db.session.rollback()
            form.card_number.errors.append(exc.message)
        else:
            db.session.commit()
            if paid:
                return redirect(url_for("customer.checkout_success", payment_id=payment_id), code=303)
            form.card_number.errors.append(payment.failure_message)
    return render_template("customer/checkout/test.html", payment=payment, form=form), 402


@bp.get("/checkout/<int:payment_id>/success")
def checkout_success(payment_id):
    payment = _payment_or_404(payment_id)
    payments.confirm_return(payment, request.args.get("checkout_session_id"))
    db.session.commit()
    return _after_payment(payment)


def _after_payment(payment):
    if payment.purpose == "extension":
        if payment.status == "open":
            return render_template("customer/checkout/processing.html", payment=payment)
        return render_template("customer/checkout/extension_done.html", payment=payment)
    if payment.status == "refunded" and payment.failure_message == payments.CREDIT_GONE:
        flash(payment.failure_message, "error")
        return redirect(url_for("customer.dashboard_index"), code=303)
    if payment.purpose == "appointment" and payment.status in ("paid", "refunded"):
        if payment.status == "paid":
            flash("Your appointment is booked. A confirmation email with a calendar invite is on its way.", "success")
        else:
            flash("Sorry, that time was taken while you paid, so your payment was refunded in full. "
                  "Please pick another time.", "error")
        return redirect(url_for("customer.appointments_index"), code=303)
    if payment.session_id:
        return redirect(url_for("customer.session_show", session_id=payment.session_id), code=303)
    if payment.status == "refunded":
        flash("You already had an active session, so this payment was refunded in full.", "info")
        return redirect(url_for("customer.dashboard_index"), code=303)
    return render_template("customer/checkout/processing.html", payment=payment)


def _payment_or_404(payment_id):
    try:
        return payments.get_payment(payment_id, current_user.id)
    except NotFound:
        abort(404)


@bp.get("/sessions")
def session_index():
    """Every session the customer booked, newest first; HTMX page links swap only the list."""
    listing = history.list_sessions(current_user.id, "customer", request.args.get("page", 1, type=int))
    return htmx.render("customer/sessions/index.html", "shared/_session_history.html", listing=listing,
                       viewer="customer")


@bp.get("/sessions/<int:session_id>")
def session_show(session_id):
    session = owned_by_customer(db.session.get(ConsultSession, session_id))
    if session.status in ("waiting", "live"):
        return redirect(url_for("room.room_show", session_id=session_id))
    if session.status == "completed":
        return redirect(url_for("room.summary_show", session_id=session_id))
    return render_template("customer/sessions/show.html", session=session)


@bp.get("/sessions/<int:session_id>/stream")
def session_stream(session_id):
    """Live status of the customer's session: current state first, then every change."""
    owned_by_customer(db.session.get(ConsultSession, session_id))
    return sse_response([f"session:{session_id}"], lambda: [session_status_message(session_id)])


@bp.post("/sessions/<int:session_id>/cancel")
def session_cancel(session_id):
    owned_by_customer(db.session.get(ConsultSession, session_id))
    try:
        lifecycle.cancel_by_customer(session_id, current_user.id)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash("Your request was cancelled and your payment refunded in full.", "success")
    return redirect(url_for("customer.session_show", session_id=session_id), code=303)
