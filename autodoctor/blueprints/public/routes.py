from flask import redirect, render_template, url_for
from flask_login import current_user

from autodoctor.blueprints.public import bp
from autodoctor.extensions import db
from autodoctor.services import plans

HOME_BY_ROLE = {"customer": "customer.dashboard_index", "mechanic": "mechanic.dashboard_index",
                "admin": "admin.dashboard_index"}


@bp.get("/")
def index():
    if current_user.is_authenticated and current_user.role in HOME_BY_ROLE:
        return redirect(url_for(HOME_BY_ROLE[current_user.role]))
    return render_template("public/index.html", plans=plans.list_plans())


@bp.get("/pricing")
def pricing_index():
    return render_template("public/pricing.html", plans=plans.list_plans())


@bp.get("/healthz")
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}
