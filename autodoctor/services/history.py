"""Session history: a participant's past and current sessions, one page at a time.

A page is two statements whatever its size: a count, and one SELECT that brings each
session with its plan, the other party and its message/file/report counts (correlated
subqueries), so a long history never turns into one query per row."""
from dataclasses import dataclass
from math import ceil

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import aliased

from autodoctor.extensions import db
from autodoctor.models import ChatMessage, ConsultSession, DiagnosticReport, Plan, StoredFile, User
from autodoctor.services.errors import ValidationError

PER_PAGE = 20
VIEWER_ROLES = ("customer", "mechanic")


@dataclass(frozen=True)
class HistoryRow:
    session: ConsultSession
    plan: Plan
    other_party: User | None  # None: no mechanic has taken the session yet
    message_count: int
    file_count: int
    has_report: bool

    @property
    def has_notes(self):
        return bool(self.session.mechanic_notes)


class Paging:
    """Page arithmetic for a dataclass with `page`, `per_page` and `total` fields."""

    @property
    def pages(self):
        return max(1, ceil(self.total / self.per_page))

    @property
    def has_prev(self):
        return self.page > 1

    @property
    def has_next(self):
        return self.page < self.pages


@dataclass(frozen=True)
class HistoryPage(Paging):
    rows: list
    page: int
    per_page: int
    total: int

    @property
    def first_index(self):
        return (self.page - 1) * self.per_page + 1 if self.total else 0

    @property
    def last_index(self):
        return min(self.total, self.page * self.per_page)


def list_sessions(user_id, viewer_role, page=1, per_page=PER_PAGE):
    """The sessions a customer booked or a mechanic took, newest first; a page past the end
    shows the last page."""
    if viewer_role not in VIEWER_ROLES:
        raise ValidationError("Session history is kept for customers and mechanics.")
    own, other_id = ((ConsultSession.customer_id, ConsultSession.mechanic_id) if viewer_role == "customer"
                     else (ConsultSession.mechanic_id, ConsultSession.customer_id))
    total = db.session.scalar(select(func.count(ConsultSession.id)).where(own == user_id))
    page = min(max(1, page), max(1, ceil(total / per_page)))

    other = aliased(User)
    messages = (select(func.count(ChatMessage.id)).where(ChatMessage.session_id == ConsultSession.id)
                .correlate(ConsultSession).scalar_subquery())
    # Intake photos belong to the session too: the room and the summary show them.
    files = (select(func.count(StoredFile.id))
             .where(or_(StoredFile.session_id == ConsultSession.id, StoredFile.intake_id == ConsultSession.intake_id))
             .correlate(ConsultSession).scalar_subquery())
    report = exists().where(DiagnosticReport.session_id == ConsultSession.id).correlate(ConsultSession)
    statement = (select(ConsultSession, Plan, other, messages.label("messages"), files.label("files"),
                        report.label("report"))
                 .join(Plan, Plan.id == ConsultSession.plan_id)
                 .outerjoin(other, other.id == other_id)
                 .where(own == user_id)
                 .order_by(ConsultSession.created_at.desc(), ConsultSession.id.desc())
                 .limit(per_page).offset((page - 1) * per_page))
    rows = [HistoryRow(session, plan, other_party, message_count, file_count, bool(has_report))
            for session, plan, other_party, message_count, file_count, has_report in db.session.execute(statement)]
    return HistoryPage(rows=rows, page=page, per_page=per_page, total=total)
