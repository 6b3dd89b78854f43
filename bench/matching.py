"""Bench section: the matching score for one request over N mechanics (services/matching.py),
in one process against Postgres, as the routing job runs it.

N mechanics with varied profiles (specialties, brands, years, ratings, Red Seal, sessions,
cities; about 40% online) are bulk-inserted, then for one request
(a Honda in Toronto with a check-engine light and a brake noise) each timing is repeated:

- score: `matching.rank(wanted, pool, limit=3)` on candidates already loaded (the arithmetic)
- load: `matching.candidates()` — every approved mechanic from Postgres in one query
- load + score: both, i.e. what the wizard's "Find mechanics" costs for N mechanics
- routing: `matching.candidates(online_only=True, available_only=True)` + rank, which is what
  `routing.route_request` does (only online mechanics not in a session)

Run alone: `.venv/bin/python -m bench.matching [--mechanics 10000] [--repeats 50]` creates a
scratch Postgres database (migrated with the app's migrations), measures, prints, and drops it.
bench/run.py's "matching" phase runs it against the bench database with --json.
"""
import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONCERN = "Check engine light is on (P0301) and a grinding noise when braking"
SPECIALTIES = ("brakes, ABS", "engine, check engine, diagnostics", "transmission, clutch", "electrical, hybrid",
               "suspension, steering, tires", "air conditioning, heating", "cooling, engine", "exhaust, emissions",
               "diagnostics", "")
BRANDS = ("Honda", "Honda, Acura", "Toyota, Lexus", "Ford", "BMW, Mini", "VW, Audi", "Chevy, GMC", "Hyundai, Kia",
          "Subaru", "")
PLACES = (("Toronto", "CA"), ("Ottawa", "CA"), ("Vancouver", "CA"), ("Montréal", "CA"), ("Calgary", "CA"),
          ("Boston", "US"), ("Seattle", "US"), ("London", "GB"), (None, None))


def generate(count, seed=7, prefix="bench-match-"):
    """Bulk-insert `count` mechanics (users + profiles) in one transaction. Idempotent per
    prefix: existing ones are kept. Returns how many mechanics are online."""
    from sqlalchemy import func, insert

    from autodoctor.extensions import db
    from autodoctor.models import MechanicProfile, User

    existing = db.session.scalar(db.select(func.count()).select_from(User).where(User.email.like(f"{prefix}%")))
    rng = random.Random(seed)
    if not existing:
        users = []
        for i in range(count):
            city, country = PLACES[rng.randrange(len(PLACES))]
            users.append({"email": f"{prefix}{i:05d}@bench.example", "password_hash": "!", "role": "mechanic",
                          "full_name": f"Match Bench{i:05d}", "city": city, "country": country,
                          "status": "active"})
        ids = db.session.scalars(insert(User).returning(User.id), users).all()
        profiles = []
        for user_id in ids:
            rated = rng.random() < 0.7
            count_ = rng.randint(1, 40) if rated else 0
            profiles.append({
                "user_id": user_id, "years_experience": rng.randint(0, 30), "red_seal": rng.random() < 0.3,
                "specialties": rng.choice(SPECIALTIES), "brands": rng.choice(BRANDS),
                "bio": "Licensed technician." if rng.random() < 0.6 else "", "approved": True,
                "rating_sum": sum(rng.randint(3, 5) for _ in range(count_)), "rating_count": count_,
                "completed_sessions": rng.randint(0, 120), "online": (on := rng.random() < 0.4),
                "presence": "online" if on else "offline", "time_zone": "America/Toronto",
                "buffer_minutes": 0, "booking_window_days": 30})
        db.session.execute(insert(MechanicProfile), profiles)
        db.session.commit()
    return db.session.scalar(db.select(func.count()).select_from(MechanicProfile).where(
        MechanicProfile.presence == "online"))


def measure(count=10000, repeats=50):
    """Timings in seconds (lists) for the four calls described in the module docstring."""
    from autodoctor.extensions import db
    from autodoctor.services import matching

    online = generate(count)
    wanted = matching.wanted(CONCERN, "Honda", "Toronto", "CA")

    def timed(fn):
        samples, result = [], None
        fn()  # warm: first query plans, caches of parsed specialties
        db.session.rollback()
        for _ in range(repeats):
            t = time.perf_counter()
            result = fn()
            samples.append(time.perf_counter() - t)
            db.session.rollback()
        return samples, result

    pool = matching.candidates()
    score, best = timed(lambda: matching.rank(wanted, pool, limit=3))
    load, _ = timed(matching.candidates)
    both, _ = timed(lambda: matching.rank(wanted, matching.candidates(), limit=3))
    routed, routed_best = timed(lambda: matching.rank(
        wanted, matching.candidates(online_only=True, available_only=True), limit=3))
    return {"mechanics": len(pool), "online": online, "repeats": repeats, "score": score, "load": load,
            "load_and_score": both, "routing": routed, "best": [(m.mechanic_id, m.score, m.phrases) for m in best],
            "routing_best": [m.score for m in routed_best]}


def _pct(values, p):
    import math

    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


def summary(results):
    lines = [f"{results['mechanics']} mechanics ({results['online']} online), {results['repeats']} runs each:"]
    for key, label in (("score", "rank(limit=3), candidates preloaded"), ("load", "candidates() from Postgres"),
                       ("load_and_score", "candidates() + rank"), ("routing", "online, free candidates + rank")):
        lines.append(f"  {label:<40} p50 {_pct(results[key], 50):6.1f} ms   p99 {_pct(results[key], 99):6.1f} ms")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mechanics", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                   help="an already migrated database (default: a scratch one, dropped afterwards)")
    p.add_argument("--json", action="store_true", help="print the raw results as JSON (for bench/run.py)")
    args = p.parse_args(argv)
    scratch = None
    if not args.database_url:
        from bench.stack import create_database

        scratch = f"autodoctor_bench_match_{os.getpid()}"
        args.database_url = create_database(scratch)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("REDIS_URL", "")
    try:
        from autodoctor import create_app
        from autodoctor.extensions import db

        app = create_app()
        with app.app_context():
            if scratch:
                from flask_migrate import upgrade

                upgrade(directory=str(ROOT / "migrations"))
            results = measure(args.mechanics, args.repeats)
            db.session.remove()
            db.engine.dispose()
    finally:
        if scratch:
            from bench.stack import drop_database

            drop_database(scratch)
    print(json.dumps(results) if args.json else summary(results))


if __name__ == "__main__":
    main()
