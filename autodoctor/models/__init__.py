"""All models, importable from one place (Alembic autogenerate sees them all)."""
from autodoctor.models.admin import AuditEntry, FeeRule
from autodoctor.models.chat import ChatMessage
from autodoctor.models.files import StoredFile
from autodoctor.models.matching import BookingDraft, Favorite, WaitlistEntry
from autodoctor.models.money import LedgerEntry, Payment, StripeEvent
from autodoctor.models.notifications import Notification
from autodoctor.models.outbox import OutboxEmail
from autodoctor.models.plans import Plan
from autodoctor.models.reports import DiagnosticReport
from autodoctor.models.requests import REQUEST_STATUSES, RequestOffer, SessionRequest
from autodoctor.models.scheduling import Appointment, DateOverride, TimeOff, WeeklyHours
from autodoctor.models.sessions import (
    SESSION_STATUSES,
    ConsultSession,
    SessionEvent,
    SessionParticipant,
)
from autodoctor.models.users import ROLES, MechanicCredential, MechanicProfile, User, UserNote
from autodoctor.models.vehicles import Intake, Vehicle, Waiver

# Postgres-only indexes made by migrations and not declared on the models (trigram search,
# NULLS LAST ordering): autogenerate leaves them alone (migrations/env.py).
MIGRATION_ONLY_INDEXES = frozenset({"ix_users_email_trgm", "ix_users_full_name_trgm", "ix_session_requests_accepted_at"})


def include_object(obj, name, type_, reflected, compare_to):
    return not (type_ == "index" and reflected and name in MIGRATION_ONLY_INDEXES)


__all__ = [
    "ChatMessage", "StoredFile", "LedgerEntry", "Payment", "StripeEvent", "OutboxEmail",
    "Plan", "DiagnosticReport", "REQUEST_STATUSES", "SessionRequest", "SESSION_STATUSES", "ConsultSession",
    "SessionEvent", "SessionParticipant", "ROLES", "MechanicProfile", "User", "Intake",
    "Vehicle", "Waiver", "Appointment", "DateOverride", "TimeOff", "WeeklyHours", "Notification",
    "RequestOffer", "BookingDraft", "Favorite", "WaitlistEntry", "AuditEntry", "FeeRule", "MechanicCredential",
    "UserNote",
]
