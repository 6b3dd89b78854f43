import sqlalchemy as sa
from flask_login import UserMixin

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models._types import one_of

ROLES = ("customer", "mechanic", "workshop_admin", "corporate_admin", "admin")


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (one_of("role", ROLES),)

    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(254), nullable=False, unique=True)
    password_hash = db.Column(db.String(255), nullable=False)
    full_name = db.Column(db.String(120), nullable=False)
    role = db.Column(db.String(20), nullable=False, default="customer")
    city = db.Column(db.String(80))
    country = db.Column(db.String(2))
    is_active_account = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    mechanic_profile = db.relationship("MechanicProfile", back_populates="user", uselist=False)

    @property
    def is_active(self):
        return self.is_active_account

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
    approved = db.Column(db.Boolean, nullable=False, default=True)
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

    user = db.relationship("User", back_populates="mechanic_profile")

    @property
    def rating(self):
        return round(self.rating_sum / self.rating_count, 2) if self.rating_count else None
