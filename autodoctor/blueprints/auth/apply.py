"""Mechanic sign-up: the application with credentials. Every document is checked by its bytes
before anything is written; the user, their profile (not approved yet) and their documents
are then created in one transaction, so a refused file leaves no account and no stored bytes."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from autodoctor.blueprints.auth import bp
from autodoctor.blueprints.auth.apply_forms import MechanicApplicationForm
from autodoctor.extensions import db
from autodoctor.services import applications
from autodoctor.services.applications import ApplicationErrors
from autodoctor.services.errors import ServiceError

ACCEPT = "image/jpeg,image/png,image/webp,application/pdf,.jpg,.jpeg,.png,.webp,.pdf"
DOCUMENT_HINT = "A photo (JPEG, PNG or WebP, up to 10 MB) or a PDF (up to 25 MB)."


def uploaded(form_field):
    """(name, stream) of a file field, or None when nothing was chosen."""
    upload = request.files.get(form_field.name)
    return (upload.filename, upload.stream) if upload and upload.filename else None


def uploaded_many(form_field):
    return [(f.filename, f.stream) for f in request.files.getlist(form_field.name) if f and f.filename]


def add_errors(form, errors):
    for name, message in errors.items():
        target = form[name] if name in form else form.certificate
        target.errors = list(target.errors) + [message]


def _page(form, status=200):
    return render_template("auth/apply.html", form=form, accept=ACCEPT, document_hint=DOCUMENT_HINT,
                           max_other=applications.MAX_OTHER), status


@bp.get("/signup/mechanic")
def mechanic_signup_show():
    if current_user.is_authenticated:
        flash("You are logged in already. Log out first to apply as a mechanic.", "info")
        return redirect(url_for("public.index"))
    return _page(MechanicApplicationForm())


@bp.post("/signup/mechanic")
def mechanic_signup():
    form = MechanicApplicationForm()
    if current_user.is_authenticated:
        flash("You are logged in already. Log out first to apply as a mechanic.", "info")
        return redirect(url_for("public.index"), code=303)
    if form.validate_on_submit():
        try:
            docs = applications.check_documents(uploaded(form.certificate), uploaded(form.insurance),
                                                uploaded_many(form.others))
            profile = {"years_experience": form.years_experience.data, "red_seal": form.red_seal.data == "yes",
                       "specialties": form.specialties.data or "", "brands": form.brands.data or "",
                       "bio": form.bio.data or ""}
            user = applications.apply(form.email.data, form.password.data, form.full_name.data, form.city.data,
                                      form.country.data, profile, docs)
        except ApplicationErrors as exc:
            db.session.rollback()  # also removes any bytes already stored
            add_errors(form, exc.errors)
        except ServiceError as exc:
            db.session.rollback()
            add_errors(form, {exc.field or "email": exc.message})
        else:
            db.session.commit()
            login_user(user)
            flash("Thanks for applying! We review every application by hand, usually within two business days; "
                  "we will e-mail you the outcome.", "success")
            return redirect(url_for("mechanic.dashboard_index"), code=303)
    return _page(form, 422)
