from sqlalchemy import text

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models._types import one_of

SESSION_STATUSES = ("scheduled", "pending", "waiting", "live", "completed", "cancelled")
ACTIVE_SESSION_STATUSES = ("pending", "waiting", "live")
_customer_active = text("status IN ('pending', 'waiting', 'live')")
_mechanic_active = text("status IN ('waiting', 'live')")


class ConsultSession(db.Model):
    """One paid consultation (table `sessions`)."""

    __tablename__ = "sessions"
    __table_args__ = (
        one_of("status", SESSION_STATUSES),
        db.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
        # One active session per customer; one waiting/live session per mechanic.
        db.Index("uq_sessions_customer_active", "customer_id", unique=True,
                 postgresql_where=_customer_active, sqlite_where=_customer_active),
        db.Index("uq_sessions_mechanic_active", "mechanic_id", unique=True,
                 postgresql_where=_mechanic_active, sqlite_where=_mechanic_active),
        db.Index("ix_sessions_created_at", "created_at"),
        db.Index("ix_sessions_status_created_at", "status", "created_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id"), index=True)
    plan_id = db.Column(db.Integer, db.ForeignKey("plans.id"), nullable=False)
    intake_id = db.Column(db.Integer, db.ForeignKey("intakes.id"), nullable=False, unique=True)
    status = db.Column(db.String(12), nullable=False)
    minutes = db.Column(db.Integer, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    accepted_at = db.Column(db.DateTime)
    started_at = db.Column(db.DateTime)
    ends_at = db.Column(db.DateTime)
    extended_minutes = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    warned_minutes = db.Column(db.Integer)  # the last time-left warning sent (5, then 1)
    ended_at = db.Column(db.DateTime)
    end_reason = db.Column(db.String(40))
    mechanic_notes = db.Column(db.Text)
    rating = db.Column(db.Integer)
    review = db.Column(db.Text)
    rated_at = db.Column(db.DateTime)
    # The platform fee rule in force when the session was created (services.fees); NULL for
    # sessions from before fee rules: the configured default.
    fee_percent = db.Column(db.Integer)

    customer = db.relationship("User", foreign_keys=[customer_id])
    mechanic = db.relationship("User", foreign_keys=[mechanic_id])
    plan = db.relationship("Plan")
    intake = db.relationship("Intake")
    requests = db.relationship("SessionRequest", back_populates="session", order_by="SessionRequest.id")
    report = db.relationship("DiagnosticReport", uselist=False, back_populates="session")

    @property
    def is_active(self):
        return self.status in ACTIVE_SESSION_STATUSES

    @property
    def current_request(self):
        return self.requests[-1] if self.requests else None

    def is_participant(self, user):
        return user.id in (self.customer_id, self.mechanic_id)

    def other_party(self, user):
        return self.mechanic if user.id == self.customer_id else self.customer

    def seconds_left(self, now=None):
        """Seconds until a live session's clock runs out (None when not live)."""
        if self.status != "live" or self.ends_at is None:
            return None
        return max(0, int((self.ends_at - (now or clock.now())).total_seconds()))

    def duration_minutes(self):
        if self.started_at and self.ended_at:
            return max(0, round((self.ended_at - self.started_at).total_seconds() / 60))
        return None


class SessionParticipant(db.Model):
    """Who has been in the room, and whether they are there now."""

    __tablename__ = "session_participants"
    __table_args__ = (
        db.UniqueConstraint("session_id", "user_id", name="uq_session_participants_session_user"),
        one_of("role", ("customer", "mechanic")),
    )

    id = db.Column(db.Integer, primary_key=True)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    role = db.Column(db.String(10), nullable=False)
    first_joined_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    last_joined_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    last_left_at = db.Column(db.DateTime)
    connections = db.Column(db.Integer, nullable=False, default=0)
    last_seen_message_id = db.Column(db.Integer)  # the last chat line this person has seen


class SessionEvent(db.Model):
    """The session timeline: one row per transition or notable thing."""

    __tablename__ = "session_events"

    id = db.Column(db.Integer, primary_key=True)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True)
    request_id = db.Column(db.Integer, db.ForeignKey("session_requests.id", ondelete="CASCADE"))
    actor_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    kind = db.Column(db.String(40), nullable=False)
    detail = db.Column(db.String(500), nullable=False, default="")
    external_id = db.Column(db.String(100), unique=True)  # a webhook's event id: a replay is a no-op
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    actor = db.relationship("User")
