from sqlalchemy import text

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models._types import one_of

REQUEST_STATUSES = ("pending", "accepted", "unattended", "expired", "cancelled")
OPEN_REQUEST_STATUSES = ("pending", "unattended")
_open = text("status IN ('pending', 'unattended')")


class SessionRequest(db.Model):
    """The offer of a paid session to mechanics; the first to accept it wins."""

    __tablename__ = "session_requests"
    __table_args__ = (
        one_of("status", REQUEST_STATUSES),
        db.CheckConstraint("status != 'accepted' OR mechanic_id IS NOT NULL", name="accepted_has_mechanic"),
        db.Index("uq_session_requests_session_open", "session_id", unique=True,
                 postgresql_where=_open, sqlite_where=_open),
        db.Index("ix_session_requests_status_created", "status", "created_at"),
        db.Index("ix_session_requests_created_at", "created_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id"), index=True)
    status = db.Column(db.String(12), nullable=False, default="pending")
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    accepted_at = db.Column(db.DateTime)
    closed_at = db.Column(db.DateTime)
    close_reason = db.Column(db.String(60))
    # Routing: offered first to its targeted mechanics (`request_offers`), to every online
    # mechanic from `broadcast_at` (NULL: everyone from the start). `preferred_mechanic_id`: the
    # online mechanic the customer picked, offered first.
    broadcast_at = db.Column(db.DateTime)
    preferred_mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    # An admin gave it more time: it expires at this time instead of 2 hours after it was made.
    extended_until = db.Column(db.DateTime)

    session = db.relationship("ConsultSession", back_populates="requests")
    customer = db.relationship("User", foreign_keys=[customer_id])
    mechanic = db.relationship("User", foreign_keys=[mechanic_id])
    offers = db.relationship("RequestOffer", order_by="RequestOffer.rank", back_populates="request")


class RequestOffer(db.Model):
    """A targeted offer of a request to one mechanic, with the match score and its reasons."""

    __tablename__ = "request_offers"
    __table_args__ = (
        db.UniqueConstraint("request_id", "mechanic_id", name="uq_request_offers_request_mechanic"),
        db.Index("ix_request_offers_mechanic", "mechanic_id"),
    )

    id = db.Column(db.Integer, primary_key=True)
    request_id = db.Column(db.Integer, db.ForeignKey("session_requests.id", ondelete="CASCADE"), nullable=False)
    mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    rank = db.Column(db.Integer, nullable=False)  # 1 = best
    score = db.Column(db.Integer, nullable=False)
    reasons = db.Column(db.JSON, nullable=False, default=list)  # ["brand specialist: Honda", ...]
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    request = db.relationship("SessionRequest", back_populates="offers")
    mechanic = db.relationship("User")
