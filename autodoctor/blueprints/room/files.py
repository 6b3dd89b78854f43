"""Files in the room: served only to the session's participants (and admins) through an
authorised route; storage keys are never exposed."""
from flask import abort, send_file

from autodoctor.blueprints.room import bp
from autodoctor.extensions import db
from autodoctor.integrations import storage
from autodoctor.models import ConsultSession, StoredFile


def _session(session_id):
    return db.session.get(ConsultSession, session_id)


def session_files(session):
    return db.session.scalars(db.select(StoredFile).where(
        (StoredFile.session_id == session.id) | (StoredFile.intake_id == session.intake_id))
        .order_by(StoredFile.id)).all()


@bp.get("/<int:session_id>/files/<int:file_id>")
def file_show(session_id, file_id):
    session = _session(session_id)
    record = db.session.get(StoredFile, file_id)
    if record is None or not (record.session_id == session.id or record.intake_id == session.intake_id):
        abort(404)
    path = storage.open_path(record.storage_key)
    if not path.exists():
        abort(404, "That file is no longer available.")
    response = send_file(path, mimetype=record.mime_type,
                         download_name=record.original_name, as_attachment=record.kind != "image",
                         max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response

