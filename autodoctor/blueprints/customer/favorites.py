"""Add or remove a favorite mechanic: HTMX swaps the button; without JavaScript the form post
goes back to the page it came from."""
from urllib.parse import urlsplit

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor import htmx
from autodoctor.blueprints.customer import bp
from autodoctor.extensions import db
from autodoctor.services import favorites
from autodoctor.services.errors import NotFound


def _local(target):
    """`target` when it is a path on this site (never another host), else None."""
    target = target or ""
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and not parts.netloc:
        return target
    return None


@bp.post("/favorites/<int:mechanic_id>")
def favorite_toggle(mechanic_id):
    try:
        favorite = favorites.toggle(current_user.id, mechanic_id)
    except NotFound as exc:
        db.session.rollback()
        abort(404, exc.message)
    db.session.commit()
    next_url = _local(request.form.get("next")) or url_for("public.mechanics_index")
    if htmx.is_htmx():
        return render_template("public/mechanics/_favorite.html", mechanic_id=mechanic_id, favorite=favorite,
                               next_url=next_url)
    flash("Added to your favorites." if favorite else "Removed from your favorites.", "success")
    return redirect(next_url, code=303)
