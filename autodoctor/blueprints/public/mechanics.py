"""Public mechanic profiles and the directory (anyone may look). Offline and busy mechanics
have no booking buttons; an online one's card links "Get help now" to the book-now wizard. A
logged-in customer sees their favorites first and a favorite button on every card."""
from flask import abort, render_template, request
from flask_login import current_user

from autodoctor import htmx
from autodoctor.blueprints.public import bp
from autodoctor.services import directory, waitlist
from autodoctor.services.errors import NotFound


def _customer_id():
    return current_user.id if current_user.is_authenticated and current_user.role == "customer" else None


def _common():
    return {"customer_id": _customer_id(),
            "book_url": waitlist.book_path(),
            "show_book": not current_user.is_authenticated or current_user.role == "customer",
            "next_url": request.full_path.rstrip("?")}


@bp.get("/mechanics")
def mechanics_index():
    text = (request.args.get("q") or "").strip()[:directory.TEXT_LIMIT]
    online_only = request.args.get("online") == "1"
    listing = directory.browse(text, online_only, request.args.get("page", 1, type=int), _customer_id())
    return htmx.render("public/mechanics/index.html", "public/mechanics/_results.html", listing=listing, q=text,
                       online_only=online_only, **_common())


@bp.get("/mechanics/<int:mechanic_id>")
def mechanic_show(mechanic_id):
    try:
        profile = directory.profile(mechanic_id, _customer_id())
    except NotFound as exc:
        abort(404, exc.message)
    return render_template("public/mechanics/show.html", profile=profile, card=profile.card, **_common())
