import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.ext.hybrid import hybrid_property

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models._types import one_of

ROLES = ("customer", "mechanic", "workshop_admin", "corporate_admin", "admin")
USER_STATUSES = ("active", "suspended", "banned")
CREDENTIAL_KINDS = ("certificate", "insurance", "licence", "other")


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        one_of("role", ROLES),
        one_of("status", USER_STATUSES),
        db.Index("ix_users_role_created_at", "role", "created_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(254), nullable=False, unique=True)
    password_hash = db.Column(db.String(255), nullable=False)
    full_name = db.Column(db.String(120), nullable=False)
    role = db.Column(db.String(20), nullable=False, default="customer")
    city = db.Column(db.String(80))
    country = db.Column(db.String(2))
    # active, or suspended / banned by an admin (with the reason shown to the person).
    status = db.Column(db.String(10), nullable=False, default="active", server_default="active")
    status_reason = db.Column(db.String(300))
    # Part of the login cookie's id: raising it logs the person out everywhere.
    auth_version = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    email_verified_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    mechanic_profile = db.relationship("MechanicProfile", back_populates="user", uselist=False,
                                       foreign_keys="MechanicProfile.user_id")

    @hybrid_property
    def is_active_account(self):
        return self.status == "active"

    @is_active_account.inplace.setter
    def _is_active_account_setter(self, value):
        self.status = "active" if value else "suspended"

    @property
    def is_active(self):
        return self.is_active_account

    def get_id(self):
        """The login cookie holds the id and the auth version: a raised version logs out everywhere."""
        return f"{self.id}:{self.auth_version or 0}"

    @property
    def first_name(self):
        return self.full_name.split(" ")[0]

    def __repr__(self):
        return f"<User {self.id} {self.role} {self.email}>"


class MechanicProfile(db.Model):
    __tablename__ = "mechanic_profiles"
    __table_args__ = (
        db.CheckConstraint("buffer_minutes BETWEEN 0 AND 120", name="buffer_range"),
        db.CheckConstraint("daily_cap IS NULL OR daily_cap BETWEEN 1 AND 48", name="daily_cap_range"),
        db.CheckConstraint("booking_window_days BETWEEN 1 AND 365", name="booking_window_range"),
        one_of("presence", ("online", "offline")),
        db.Index("ix_mechanic_profiles_presence", "presence"),
    )

    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    years_experience = db.Column(db.Integer, nullable=False, default=0)
    red_seal = db.Column(db.Boolean, nullable=False, default=False)
    specialties = db.Column(db.String(255), nullable=False, default="")
    brands = db.Column(db.String(255), nullable=False, default="")
    bio = db.Column(db.Text, nullable=False, default="")
    # The gate for seeing and accepting requests. An application is pending while not approved
    # and without a rejection reason; `applied_at` is set for mechanics who applied by sign-up.
    approved = db.Column(db.Boolean, nullable=False, default=True)
    applied_at = db.Column(db.DateTime)
    reviewed_at = db.Column(db.DateTime)
    reviewed_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    rejection_reason = db.Column(db.String(500))
    rating_sum = db.Column(db.Integer, nullable=False, default=0)
    rating_count = db.Column(db.Integer, nullable=False, default=0)
    completed_sessions = db.Column(db.Integer, nullable=False, default=0)
    last_seen_at = db.Column(db.DateTime)  # the dashboard stream's last sign of life
    # Presence: `online` is the dashboard toggle ("taking requests"); `presence` is what others
    # see, online or offline (busy is derived from an active session): online only while the
    # toggle is on and the dashboard stream has been seen in the last 60 seconds.
    online = db.Column(db.Boolean, nullable=False, default=False, server_default=sa.false())
    presence = db.Column(db.String(8), nullable=False, default="offline", server_default="offline")
    presence_changed_at = db.Column(db.DateTime)
    # Scheduling: the zone the weekly hours are in, a gap kept free after each appointment,
    # at most this many appointments a day (NULL: no cap), how far ahead customers may book.
    time_zone = db.Column(db.String(64), nullable=False, default="America/Toronto", server_default="America/Toronto")
    buffer_minutes = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    daily_cap = db.Column(db.Integer)
    booking_window_days = db.Column(db.Integer, nullable=False, default=30, server_default="30")

    user = db.relationship("User", back_populates="mechanic_profile", foreign_keys=[user_id])
    credentials = db.relationship("MechanicCredential", order_by="MechanicCredential.id",
                                  primaryjoin="MechanicProfile.user_id == foreign(MechanicCredential.mechanic_id)",
                                  viewonly=True)

    @property
    def application_status(self):
        if self.approved:
            return "approved"
        return "rejected" if self.rejection_reason else "pending"

    @property
    def rating(self):
        return round(self.rating_sum / self.rating_count, 2) if self.rating_count else None


class MechanicCredential(db.Model):
    """A document a mechanic uploaded with their application (certificate, insurance, ...)."""

    __tablename__ = "mechanic_credentials"
    __table_args__ = (one_of("kind", CREDENTIAL_KINDS),)

    id = db.Column(db.Integer, primary_key=True)
    mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    kind = db.Column(db.String(12), nullable=False)
    file_id = db.Column(db.Integer, db.ForeignKey("files.id", ondelete="CASCADE"), nullable=False, unique=True)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    file = db.relationship("StoredFile")


class UserNote(db.Model):
    """An admin's internal note about a person (never shown to them)."""

    __tablename__ = "user_notes"

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    author_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    body = db.Column(db.Text, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    author = db.relationship("User", foreign_keys=[author_id])
