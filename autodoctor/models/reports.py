from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models._types import one_of

VERDICTS = ("safe", "caution", "unsafe")


class DiagnosticReport(db.Model):
    """The written report of a `diagnostic` session. Trouble codes keep the description they
    were looked up with; repairs carry a cost range in cents."""

    __tablename__ = "diagnostic_reports"
    __table_args__ = (one_of("verdict", VERDICTS),)

    id = db.Column(db.Integer, primary_key=True)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False,
                           unique=True)
    author_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    findings = db.Column(db.Text, nullable=False)
    verdict = db.Column(db.String(10), nullable=False)
    # [{"code": "P0301", "description": "Cylinder 1 Misfire Detected"}, ...]
    trouble_codes = db.Column(db.JSON, nullable=False, default=list)
    # [{"description": "Replace spark plugs", "low_cents": 12000, "high_cents": 25000}, ...]
    repairs = db.Column(db.JSON, nullable=False, default=list)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    updated_at = db.Column(db.DateTime, nullable=False, default=clock.now, onupdate=clock.now)
    emailed_at = db.Column(db.DateTime)

    session = db.relationship("ConsultSession", back_populates="report")
    author = db.relationship("User")
