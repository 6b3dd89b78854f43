from autodoctor import clock
from autodoctor.extensions import db


class Notification(db.Model):
    """An in-app notice for one person (an appointment reminder, say), shown until dismissed."""

    __tablename__ = "notifications"
    __table_args__ = (db.Index("ix_notifications_user_unread", "user_id", "read_at"),)

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind = db.Column(db.String(30), nullable=False)
    text = db.Column(db.String(300), nullable=False)
    link = db.Column(db.String(300))
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    read_at = db.Column(db.DateTime)
