"""Demo data for `make run`: an admin, three mechanics (taking requests: online while their
dashboard is open), two customers."""
from autodoctor.extensions import db
from autodoctor.models import User
from autodoctor.services import accounts, plans, working_hours

DEMO_PASSWORD = "autodoctor-demo"
DEMO_USERS = (
    ("admin@autodoctor.example", "Ada Admin", "admin", {}),
    ("mia@autodoctor.example", "Mia Mechanic", "mechanic",
     {"years_experience": 12, "red_seal": True, "brands": "Honda, Toyota", "specialties": "brakes, electrical",
      "online": True}),
    ("raj@autodoctor.example", "Raj Mechanic", "mechanic",
     {"years_experience": 6, "brands": "Ford", "specialties": "engine, transmission", "online": True}),
    ("lena@autodoctor.example", "Lena Mechanic", "mechanic",
     {"years_experience": 3, "brands": "BMW, Audi", "specialties": "diagnostics", "online": True}),
    ("carla@autodoctor.example", "Carla Customer", "customer", {}),
    ("dev@autodoctor.example", "Dev Customer", "customer", {}),
)


def seed_demo():
    """Create the demo users (idempotent). Returns (email, role) pairs."""
    plans.seed_plans()
    for email, name, role, profile in DEMO_USERS:
        if db.session.scalar(db.select(User.id).where(User.email == email)):
            continue
        user = accounts.create_user(email, DEMO_PASSWORD, name, role=role, city="Toronto", country="CA")
        for key, value in profile.items():
            setattr(user.mechanic_profile, key, value)
        if role == "mechanic":
            seed_demo_availability(user)
    db.session.flush()
    return [(email, role) for email, _, role, _ in DEMO_USERS]


DEMO_ZONES = {"lena@autodoctor.example": "America/Vancouver"}


def seed_demo_availability(mechanic):
    """Mon–Fri 09:00–12:00 and 13:00–17:00 in the mechanic's zone (Toronto; Lena: Vancouver)."""
    db.session.flush()
    mechanic.mechanic_profile.time_zone = DEMO_ZONES.get(mechanic.email, "America/Toronto")
    working_hours.replace_week(mechanic.id, {day: [("09:00", "12:00"), ("13:00", "17:00")] for day in range(5)})
