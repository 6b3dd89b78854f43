"""Favorites, the waitlist and the book-now wizard's saved progress."""
from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models._types import one_of

WAITLIST_STATUSES = ("waiting", "notified", "left", "expired", "booked")


class Favorite(db.Model):
    """A customer's favorite mechanic."""

    __tablename__ = "favorites"
    __table_args__ = (db.UniqueConstraint("customer_id", "mechanic_id", name="uq_favorites_customer_mechanic"),)

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    mechanic = db.relationship("User", foreign_keys=[mechanic_id])


class BookingDraft(db.Model):
    """The book-now wizard's progress, kept on the server (one per customer): each step's
    answers in `data`, so back/forward, a reload or a waitlist link resumes it."""

    __tablename__ = "booking_drafts"

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True)
    data = db.Column(db.JSON, nullable=False, default=dict)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    updated_at = db.Column(db.DateTime, nullable=False, default=clock.now)


class WaitlistEntry(db.Model):
    """A customer waiting for a mechanic to come online; served in order of joining. At most
    one waiting entry per customer."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        one_of("status", WAITLIST_STATUSES),
        db.Index("uq_waitlist_customer_waiting", "customer_id", unique=True,
                 postgresql_where=db.text("status = 'waiting'"), sqlite_where=db.text("status = 'waiting'")),
        db.Index("ix_waitlist_status_created", "status", "created_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    draft_id = db.Column(db.Integer, db.ForeignKey("booking_drafts.id", ondelete="SET NULL"))
    status = db.Column(db.String(10), nullable=False, default="waiting")
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    expires_at = db.Column(db.DateTime, nullable=False)
    notified_at = db.Column(db.DateTime)
    closed_at = db.Column(db.DateTime)

    customer = db.relationship("User")
