from sqlalchemy import text

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models._types import one_of

PAYMENT_STATUSES = ("open", "paid", "failed", "refunded")
PAYMENT_PURPOSES = ("session", "extension", "appointment")
LEDGER_KINDS = ("payment", "refund", "platform_fee", "mechanic_earning", "credit")


class Payment(db.Model):
    """One checkout: for an intake (purpose `session`, which opens the session), for more
    time in a live session (`extension`) or for a scheduled appointment (`appointment`: the
    plan's price online, a deposit for an in-person visit). Its amount is copied from the
    plan on the server."""

    __tablename__ = "payments"
    __table_args__ = (
        one_of("status", PAYMENT_STATUSES),
        one_of("purpose", PAYMENT_PURPOSES),
        db.CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
        db.CheckConstraint("credit_cents >= 0", name="credit_not_negative"),
        db.CheckConstraint("purpose <> 'session' OR intake_id IS NOT NULL", name="session_payment_has_intake"),
        db.CheckConstraint("purpose <> 'extension' OR (session_id IS NOT NULL AND minutes > 0)",
                           name="extension_payment_has_session"),
        db.CheckConstraint("purpose <> 'appointment' OR appointment_id IS NOT NULL",
                           name="appointment_payment_has_appointment"),
        # One payment opens a session; any number of extensions may follow it.
        db.Index("uq_payments_session_purpose_session", "session_id", unique=True,
                 postgresql_where=text("purpose = 'session'"), sqlite_where=text("purpose = 'session'")),
        db.Index("ix_payments_created_at", "created_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    purpose = db.Column(db.String(16), nullable=False, default="session", server_default="session")
    intake_id = db.Column(db.Integer, db.ForeignKey("intakes.id"), unique=True)
    plan_id = db.Column(db.Integer, db.ForeignKey("plans.id"), nullable=False)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id"), index=True)
    minutes = db.Column(db.Integer)  # extension payments: the minutes bought
    appointment_id = db.Column(db.Integer, db.ForeignKey("appointments.id"), index=True)
    amount_cents = db.Column(db.Integer, nullable=False)  # charged to the card
    credit_cents = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # paid from account credit
    currency = db.Column(db.String(3), nullable=False, default="usd")
    status = db.Column(db.String(10), nullable=False, default="open")
    provider = db.Column(db.String(20), nullable=False)
    checkout_id = db.Column(db.String(255), unique=True)
    payment_intent_id = db.Column(db.String(255))
    failure_message = db.Column(db.String(255))
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    paid_at = db.Column(db.DateTime)

    plan = db.relationship("Plan")
    intake = db.relationship("Intake")
    session = db.relationship("ConsultSession")
    customer = db.relationship("User")
    appointment = db.relationship("Appointment")

    @property
    def description(self):
        if self.purpose == "extension":
            return f"+{self.minutes} minutes — {self.plan.name}"
        if self.purpose == "appointment":
            kind = "in-person visit deposit" if self.appointment.kind == "in_person" else "appointment"
            return f"{self.plan.name} {kind}"
        return self.plan.name


class LedgerEntry(db.Model):
    """Double entry: the rows of one transaction sum to zero; a session's `escrow` account
    returns to zero once it is settled (paid out or refunded)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        one_of("kind", LEDGER_KINDS),
        db.Index("ix_ledger_entries_account_created_at", "account", "created_at"),  # the dashboard's fees today
    )

    id = db.Column(db.Integer, primary_key=True)
    txn_id = db.Column(db.String(36), nullable=False, index=True)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id"), index=True)
    payment_id = db.Column(db.Integer, db.ForeignKey("payments.id"), index=True)
    account = db.Column(db.String(40), nullable=False, index=True)
    kind = db.Column(db.String(20), nullable=False)
    amount_cents = db.Column(db.Integer, nullable=False)
    memo = db.Column(db.String(200), nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)


class StripeEvent(db.Model):
    """Webhook events already handled; the primary key makes a replay a no-op."""

    __tablename__ = "stripe_events"

    id = db.Column(db.String(255), primary_key=True)
    type = db.Column(db.String(80), nullable=False)
    received_at = db.Column(db.DateTime, nullable=False, default=clock.now)
