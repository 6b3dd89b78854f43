from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from autodoctor.blueprints.auth import bp
from autodoctor.blueprints.auth.forms import ForgotPasswordForm, LoginForm, ResetPasswordForm, SignupForm
from autodoctor.extensions import db, limiter
from autodoctor.services import accounts
from autodoctor.services.errors import ServiceError


def _safe_next(default):
    target = request.args.get("next") or ""
    parts = urlsplit(target)
    return target if target.startswith("/") and not target.startswith("//") and not parts.netloc else default


def _login_key():
    return f"{request.remote_addr}|{accounts.normalize_email(request.form.get('email'))}"


@bp.get("/login")
def login_show():
    if current_user.is_authenticated:
        return redirect(url_for("public.index"))
    return render_template("auth/login.html", form=LoginForm())


@bp.post("/login")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=_login_key,
               deduct_when=lambda response: response.status_code != 303)
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data, form.password.data)
        except accounts.AccountClosed as exc:
            db.session.rollback()
            return render_template("auth/login.html", form=form, closed=exc.message), 422
        if user:
            db.session.commit()
            login_user(user)
            return redirect(_safe_next(url_for("public.index")), code=303)
        form.password.errors.append("That e-mail and password do not match an account.")
    return render_template("auth/login.html", form=form), 422


@bp.get("/signup")
def signup_show():
    return render_template("auth/signup.html", form=SignupForm())


@bp.post("/signup")
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(form.email.data, form.password.data, form.full_name.data)
        except ServiceError as exc:
            db.session.rollback()
            getattr(form, exc.field or "email").errors.append(exc.message)
        else:
            db.session.commit()
            login_user(user)
            flash("Welcome to AutoDoctor! Tell us what is going on with your vehicle.", "success")
            return redirect(_safe_next(url_for("customer.intake_new")), code=303)
    return render_template("auth/signup.html", form=form), 422


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("public.index"), code=303)


# Password reset: "Forgot your password?" and the link an admin can send.
RESET_SENT = ("If an account uses that e-mail, we have sent it a link to choose a new password. "
              "The link works for one hour.")


def _reset_key():
    return f"{request.remote_addr}|reset"


@bp.get("/reset-password")
def reset_request_show():
    return render_template("auth/reset_request.html", form=ForgotPasswordForm())


@bp.post("/reset-password")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=_reset_key)
def reset_request():
    form = ForgotPasswordForm()
    if not form.validate_on_submit():
        return render_template("auth/reset_request.html", form=form), 422
    accounts.request_password_reset(form.email.data)
    db.session.commit()
    flash(RESET_SENT, "info")
    return redirect(url_for("auth.login_show"), code=303)


@bp.get("/reset-password/<token>")
def reset_password_show(token):
    try:
        accounts.user_for_reset_token(token)
    except ServiceError as exc:
        return render_template("auth/reset_password.html", form=None, error=exc.message), 410
    return render_template("auth/reset_password.html", form=ResetPasswordForm(), token=token)


@bp.post("/reset-password/<token>")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=_reset_key)
def reset_password(token):
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(token, form.password.data)
        except ServiceError as exc:
            db.session.rollback()
            if exc.field != "password":
                return render_template("auth/reset_password.html", form=None, error=exc.message), 410
            form.password.errors.append(exc.message)
        else:
            db.session.commit()
            if current_user.is_authenticated:
                logout_user()
            flash("Your password is changed. Log in with the new one.", "success")
            return redirect(url_for("auth.login_show"), code=303)
    else:
        try:
            accounts.user_for_reset_token(token)
        except ServiceError as exc:
            return render_template("auth/reset_password.html", form=None, error=exc.message), 410
    return render_template("auth/reset_password.html", form=form, token=token), 422
