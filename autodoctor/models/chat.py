from autodoctor import clock
from autodoctor.extensions import db


class ChatMessage(db.Model):
    __tablename__ = "chat_messages"
    __table_args__ = (
        db.Index("ix_chat_messages_session_id_id", "session_id", "id"),
        # The client's own id for a line makes a resend after a dropped socket a no-op.
        db.UniqueConstraint("session_id", "sender_id", "client_token", name="uq_chat_messages_client_token"),
    )

    id = db.Column(db.Integer, primary_key=True)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False)
    sender_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    body = db.Column(db.Text, nullable=False)  # may be empty when a file is attached
    file_id = db.Column(db.Integer, db.ForeignKey("files.id", ondelete="SET NULL"))
    client_token = db.Column(db.String(40))
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    sender = db.relationship("User")
    file = db.relationship("StoredFile")
