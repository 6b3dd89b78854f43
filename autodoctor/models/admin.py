from autodoctor import clock
from autodoctor.extensions import db


class AuditEntry(db.Model):
    """One admin action: who did what to which object, when, with the values before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        db.Index("ix_audit_log_target", "target_type", "target_id"),
        db.Index("ix_audit_log_created_at", "created_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    actor_id = db.Column(db.Integer, db.ForeignKey("users.id"), index=True)  # NULL: the system
    action = db.Column(db.String(60), nullable=False, index=True)  # "session.refund", "user.suspend", ...
    target_type = db.Column(db.String(30), nullable=False)  # "session", "user", "plan", ...
    target_id = db.Column(db.Integer)
    summary = db.Column(db.String(300), nullable=False, default="")
    reason = db.Column(db.String(500))
    before = db.Column(db.JSON)
    after = db.Column(db.JSON)
    ip_address = db.Column(db.String(45))
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    actor = db.relationship("User")


class FeeRule(db.Model):
    """The platform fee, as a history: the newest row is the rule for new sessions."""

    __tablename__ = "fee_rules"
    __table_args__ = (db.CheckConstraint("platform_percent BETWEEN 15 AND 25", name="platform_percent_range"),)

    id = db.Column(db.Integer, primary_key=True)
    platform_percent = db.Column(db.Integer, nullable=False)
    note = db.Column(db.String(200), nullable=False, default="")
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    created_by = db.relationship("User")
