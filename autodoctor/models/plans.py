from autodoctor.extensions import db
from autodoctor.models._types import one_of

PLAN_KINDS = ("chat", "video", "diagnostic")


class Plan(db.Model):
    """A priced session type. Prices are integer cents; the only source of any amount charged."""

    __tablename__ = "plans"
    __table_args__ = (
        one_of("kind", PLAN_KINDS),
        db.CheckConstraint("price_cents >= 0", name="price_not_negative"),
        db.CheckConstraint("minutes > 0", name="minutes_positive"),
        db.CheckConstraint("extension_price_cents IS NULL OR extension_price_cents > 0",
                           name="extension_price_positive"),
    )

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(32), nullable=False, unique=True)
    name = db.Column(db.String(80), nullable=False)
    price_cents = db.Column(db.Integer, nullable=False)
    minutes = db.Column(db.Integer, nullable=False)
    kind = db.Column(db.String(20), nullable=False)
    features = db.Column(db.String(255), nullable=False, default="")
    max_photos = db.Column(db.Integer, nullable=False, default=5)
    position = db.Column(db.Integer, nullable=False, default=0)
    active = db.Column(db.Boolean, nullable=False, default=True)
    # Price of +15 minutes bought from the room; NULL: this plan cannot be extended.
    extension_price_cents = db.Column(db.Integer)

    @property
    def is_free(self):
        return self.price_cents == 0

    @property
    def can_extend(self):
        return self.extension_price_cents is not None

    @property
    def has_video(self):
        return self.kind in ("video", "diagnostic")

    @property
    def has_report(self):
        return self.kind == "diagnostic"
