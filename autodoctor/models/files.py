from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models._types import one_of

FILE_KINDS = ("image", "video", "document")


class StoredFile(db.Model):
    """An upload whose bytes live in storage under an unguessable key; served only through
    an authorised route."""

    __tablename__ = "files"
    __table_args__ = (one_of("kind", FILE_KINDS),)

    id = db.Column(db.Integer, primary_key=True)
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    intake_id = db.Column(db.Integer, db.ForeignKey("intakes.id", ondelete="CASCADE"), index=True)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    storage_key = db.Column(db.String(80), nullable=False, unique=True)
    thumbnail_key = db.Column(db.String(80), unique=True)  # images: a small JPEG made on upload
    original_name = db.Column(db.String(255), nullable=False)
    mime_type = db.Column(db.String(80), nullable=False)
    kind = db.Column(db.String(10), nullable=False)
    size_bytes = db.Column(db.Integer, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)
