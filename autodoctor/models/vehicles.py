from autodoctor import clock
from autodoctor.extensions import db


class Vehicle(db.Model):
    __tablename__ = "vehicles"
    __table_args__ = (db.CheckConstraint("year BETWEEN 1900 AND 2100", name="year_range"),)

    id = db.Column(db.Integer, primary_key=True)
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    year = db.Column(db.Integer, nullable=False)
    make = db.Column(db.String(60), nullable=False)
    model = db.Column(db.String(60), nullable=False)
    vin = db.Column(db.String(17))
    vin_decoded = db.Column(db.String(255))
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    def __str__(self):
        return f"{self.year} {self.make} {self.model}"


class Intake(db.Model):
    """What the customer told us before paying: vehicle (optional), concern, location, photos."""

    __tablename__ = "intakes"

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    vehicle_id = db.Column(db.Integer, db.ForeignKey("vehicles.id", ondelete="SET NULL"))
    plan_id = db.Column(db.Integer, db.ForeignKey("plans.id"), nullable=False)
    concern = db.Column(db.Text, nullable=False)
    city = db.Column(db.String(80), nullable=False)
    country = db.Column(db.String(2), nullable=False)
    advice_only = db.Column(db.Boolean, nullable=False, default=False)
    # Book now: the online mechanic the customer picked, offered the request first.
    preferred_mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now, index=True)

    vehicle = db.relationship("Vehicle")
    plan = db.relationship("Plan")
    customer = db.relationship("User", foreign_keys=[customer_id])
    photos = db.relationship("StoredFile", order_by="StoredFile.id",
                             primaryjoin="StoredFile.intake_id == Intake.id")
    waiver = db.relationship("Waiver", uselist=False, back_populates="intake")


class Waiver(db.Model):
    """A signed acceptance of the waiver text of a given version."""

    __tablename__ = "waivers"

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    intake_id = db.Column(db.Integer, db.ForeignKey("intakes.id", ondelete="CASCADE"), unique=True)
    version = db.Column(db.String(20), nullable=False)
    accepted_at = db.Column(db.DateTime, nullable=False, default=clock.now)
    ip_address = db.Column(db.String(45), nullable=False)
    user_agent = db.Column(db.String(400), nullable=False)
    # Signed on the day of an appointment: the typed name and the drawn signature (PNG), on the
    # customer's own device or on the shop's tablet.
    signed_name = db.Column(db.String(120))
    signature_png = db.Column(db.LargeBinary)
    signed_on = db.Column(db.String(12))

    intake = db.relationship("Intake", back_populates="waiver")
