"""Role guards and ownership checks, in one place."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor.extensions import db, login_manager


def init_app(app):
    login_manager.login_view = "auth.login_show"
    login_manager.login_message = "Please log in to continue."

    @login_manager.user_loader
    def load_user(cookie_id):
        """The cookie holds "<id>:<auth version>"; a raised version (suspended, banned, logged
        out everywhere) or an inactive account is no longer logged in."""
        from autodoctor.models import User

        user_id, _, version = cookie_id.partition(":")
        if not user_id.isdigit() or not version.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        if user is None or user.auth_version != int(version) or not user.is_active:
            return None
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        if _wants_stream():
            abort(401)
        flash(login_manager.login_message, "info")
        return redirect(url_for("auth.login_show", next=request.full_path.rstrip("?")))

    for code in (400, 401, 403, 404, 405, 409, 413, 422, 429, 500):
        app.register_error_handler(code, _error_page)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.endpoint == "static":
            # A versioned asset cached for a year: only what caching and sniffing need (every
            # byte counts on the room page's first load over a slow phone connection).
            for name in ("Content-Disposition", "Expires", "ETag", "Last-Modified", "Accept-Ranges"):
                response.headers.pop(name, None)
            response.cache_control.immutable = True  # the file name changes with its content
            response.vary = {"Accept-Encoding"} if "Accept-Encoding" in response.vary else set()
            return response
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


def _wants_stream():
    return (request.headers.get("Upgrade", "").lower() == "websocket"
            or "text/event-stream" in request.headers.get("Accept", "")
            or request.path.endswith("/stream") or request.path.endswith("/ws"))


def _error_page(error):
    code = getattr(error, "code", 500) or 500
    description = getattr(error, "description", None)
    if code == 429:
        description = "Too many attempts. Please wait a minute and try again."
    elif code == 413:
        description = "That upload is too large. Photos are limited to 10 MB, videos to 100 MB, PDFs to 25 MB."
    elif code == 500:
        description = "Something went wrong on our side. Nothing you entered was lost; please try again."
    if _wants_stream() or request.path.startswith("/webhooks/"):
        return {"error": description}, code
    return render_template("errors/error.html", code=code, description=description), code


def role_required(*roles):
    """A blueprint before_request guard: logged in, with one of `roles`."""

    def guard():
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.role not in roles:
            abort(403, "This page is not available for your account.")

    return guard


def session_for_participant(session_id, allow_admin=False):
    """The session if the current user is one of its two participants (or an admin, when
    allowed); 404 otherwise, so ids cannot be probed."""
    from autodoctor.models import ConsultSession

    session = db.session.get(ConsultSession, session_id)
    if session is None:
        abort(404)
    if session.is_participant(current_user) or (allow_admin and current_user.role == "admin"):
        return session
    abort(404)


def owned_by_customer(obj):
    if obj is None or obj.customer_id != current_user.id:
        abort(404)
    return obj
