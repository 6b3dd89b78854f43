"""Files in the room: shared from the chat (checked, stored, posted as a chat line both people
see live) and served only to the session's participants (and admins) through authorised
routes that stream the bytes; storage keys are never exposed."""
from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from autodoctor import htmx
from autodoctor.blueprints.room import bp
from autodoctor.extensions import db
from autodoctor.integrations import storage
from autodoctor.models import ConsultSession, StoredFile
from autodoctor.services import chat, uploads
from autodoctor.services.errors import ServiceError


def _session(session_id):
    return db.session.get(ConsultSession, session_id)


def session_files(session):
    return db.session.scalars(db.select(StoredFile).where(
        (StoredFile.session_id == session.id) | (StoredFile.intake_id == session.intake_id))
        .order_by(StoredFile.id)).all()


@bp.context_processor
def _upload_helpers():
    return {"room_file_policy": uploads.room_file_policy}


@bp.post("/<int:session_id>/files")
def file_create(session_id):
    session = _session(session_id)
    upload = next((f for f in request.files.getlist("file") if f and f.filename), None)
    try:
        message = chat.post_file(session_id, current_user.id, upload.filename if upload else None,
                                 upload.stream if upload else None, request.form.get("caption"))
    except ServiceError as exc:
        db.session.rollback()  # also removes any bytes already saved
        return _upload_answer(session, error=exc.message, status=exc.status_code)
    db.session.commit()
    return _upload_answer(session, shared=message.file)


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(error):
    """Werkzeug refuses a body over MAX_CONTENT_LENGTH unread, as soon as the form is touched (by
    the CSRF check or the view): the upload form still gets a clear message, not an error page."""
    session_id = (request.view_args or {}).get("session_id")
    session = _session(session_id) if session_id else None
    if (request.endpoint == "room.file_create" and session is not None and current_user.is_authenticated
            and session.is_participant(current_user)):
        return _upload_answer(session, error=uploads.too_large_message(), status=413)
    return render_template("errors/error.html", code=413, description=uploads.too_large_message()), 413


def _upload_answer(session, error=None, shared=None, status=200):
    if htmx.is_htmx():
        return render_template("room/_upload_form.html", session=session, error=error, shared=shared), status
    flash(error or f"Shared “{shared.original_name}”.", "error" if error else "success")
    return redirect(url_for("room.room_show", session_id=session.id), code=303)


def _file(session_id, file_id):
    session = _session(session_id)
    record = db.session.get(StoredFile, file_id)
    if record is None or not ((record.session_id is not None and record.session_id == session.id)
                              or (record.intake_id is not None and record.intake_id == session.intake_id)):
        abort(404)
    return record


@bp.get("/<int:session_id>/files/<int:file_id>")
def file_show(session_id, file_id):
    record = _file(session_id, file_id)
    # Only images open in the browser; a PDF or video downloads (a sandboxed page cannot show a PDF).
    return _stream(record.storage_key, record.mime_type, record.original_name, as_attachment=record.kind != "image")


@bp.get("/<int:session_id>/files/<int:file_id>/thumb")
def thumbnail_show(session_id, file_id):
    record = _file(session_id, file_id)
    if not record.thumbnail_key:
        abort(404)
    name = record.original_name.rsplit(".", 1)[0] + "-small.jpg"
    return _stream(record.thumbnail_key, "image/jpeg", name, as_attachment=False)


def _stream(key, mimetype, name, as_attachment):
    try:
        stored = storage.open(key)
    except FileNotFoundError:
        abort(404, "That file is no longer available.")
    response = send_file(stored.stream, mimetype=mimetype, download_name=name, as_attachment=as_attachment,
                         conditional=False, etag=False, max_age=0)
    response.content_length = stored.size
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
