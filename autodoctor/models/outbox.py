from autodoctor import clock
from autodoctor.extensions import db


class OutboxEmail(db.Model):
    """Every e-mail sent: kept as the embedded-mode outbox and as a record when SMTP is set.
    Attachments are not stored: an e-mail with `report_id` carries that diagnostic report as
    a PDF, rendered when it is delivered."""

    __tablename__ = "outbox_emails"

    id = db.Column(db.Integer, primary_key=True)
    to_address = db.Column(db.String(254), nullable=False, index=True)
    subject = db.Column(db.String(200), nullable=False)
    body_text = db.Column(db.Text, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now, index=True)
    sent_at = db.Column(db.DateTime)
    error = db.Column(db.String(500))
    report_id = db.Column(db.Integer, db.ForeignKey("diagnostic_reports.id", ondelete="SET NULL"), index=True)
    # A small attachment fixed when the e-mail was written (an appointment's .ics invite).
    attachment_name = db.Column(db.String(100))
    attachment_type = db.Column(db.String(80))
    attachment_body = db.Column(db.LargeBinary)
