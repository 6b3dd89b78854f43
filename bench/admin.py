"""Bench section: the admin console on a large Postgres database, measured in one process.

Data (generated once into the database `autodoctor_bench_admin`, kept and reused by later runs:
a marker table `bench_admin_meta` records the sizes and the generator's version), made with
server-side SQL (INSERT ... SELECT over generate_series, a few temporary tables), never one ORM
object per row:

- 3 admins, 5,000 mechanics (profiles: 96% approved, some pending or rejected applications,
  about 30% of the approved online), 20,000 customers (a few suspended or banned), a vehicle each
- 100,000 intakes and 100,000 sessions over 180 days, one every ~2.6 minutes: 86% completed,
  14% cancelled (expired, cancelled by the customer before anyone accepted, no-show), and
  among the newest 40 a few pending (mostly unattended), waiting and live sessions, each with
  its own customer and mechanic (the partial unique indexes allow one active session each);
  customers and mechanics are skewed (a few regulars have hundreds of sessions)
- their session_requests, timeline events, room participants, one payment each (free plans:
  0 cents), balanced ledger rows (payment; platform_fee + mechanic_earning when completed;
  refund when cancelled)
- 1,000,000 chat lines over the sessions that went live (exponentially skewed, mean ~12;
  one chosen session has exactly 50 for the detail page), 10,000 audit_log rows

Then VACUUM ANALYZE. Measurement: an app configured on that database, logged in as an admin
through POST /login, the app's clock frozen at the moment the data was generated (so "today",
"live now" and the unattended queue look as they did); each URL is requested with the Flask
test client (server time = wall time of client.get, no network) after warm-up requests.
CSV exports are consumed chunk by chunk from the response iterator; memory is measured twice:
the kernel's peak RSS (VmHWM, reset first) during a timed run, and tracemalloc's peak during a
second run (tracemalloc slows Python down, so that run is not timed).

Run alone: `.venv/bin/python -m bench.admin` (creates/loads the database if needed, measures,
prints). `--prepare` only loads; `--json` prints raw results (bench/run.py's "admin" phase);
`--reload` drops and regenerates the data.
"""
import argparse
import csv
import gc
import html
import json
import math
import os
import re
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DB_NAME = os.environ.get("BENCH_ADMIN_DB", "autodoctor_bench_admin")
GENERATOR_VERSION = 1
SIZES = {"admins": 3, "mechanics": 5000, "customers": 20000, "sessions": 100000, "chat": 1000000,
         "audit": 10000, "days": 180}
TARGET_MS = 100
PASSWORD = "bench-admin-password"  # the admin's; only this database uses it
ADMIN_EMAIL = "bench.admin1@autodoctor.example"
TABLES = ("requests", "sessions", "intakes", "customers", "mechanics", "payments", "audit")

FIRST = ("olivia", "liam", "emma", "noah", "amelia", "oliver", "sophia", "elijah", "charlotte", "james",
         "ava", "william", "mia", "benjamin", "harper", "lucas", "evelyn", "henry", "abigail", "theo",
         "chloe", "jack", "aria", "leo", "zoe", "mateo", "nora", "ethan", "lily", "samuel", "priya", "arjun",
         "mei", "wei", "fatima", "omar", "sofia", "diego", "hannah", "lucas")
LAST = ("smith", "johnson", "tremblay", "martin", "roy", "gagnon", "lee", "wilson", "brown", "taylor",
        "campbell", "anderson", "macdonald", "nguyen", "patel", "singh", "chen", "wong", "garcia",
        "rodriguez", "kim", "clark", "lewis", "walker", "young", "king", "wright", "scott", "green",
        "baker", "adams", "nelson", "hill", "morin", "bouchard", "cote", "fortin", "white", "thompson",
        "moore")
DOMAINS = ("gmail.com", "outlook.com", "yahoo.ca", "icloud.com", "hotmail.com", "proton.me", "shaw.ca",
           "rogers.com")
PLACES = (("Toronto", "CA"), ("Ottawa", "CA"), ("Vancouver", "CA"), ("Montréal", "CA"), ("Calgary", "CA"),
          ("Edmonton", "CA"), ("Halifax", "CA"), ("Boston", "US"), ("Seattle", "US"), ("Chicago", "US"),
          ("Denver", "US"), ("London", "GB"))
VEHICLES = (("Honda", "Civic"), ("Honda", "CR-V"), ("Toyota", "Corolla"), ("Toyota", "RAV4"), ("Ford", "F-150"),
            ("Ford", "Escape"), ("Chevrolet", "Silverado"), ("Hyundai", "Elantra"), ("Kia", "Sorento"),
            ("Mazda", "CX-5"), ("Subaru", "Outback"), ("Volkswagen", "Jetta"), ("BMW", "3 Series"),
            ("Nissan", "Rogue"), ("Jeep", "Wrangler"), ("Tesla", "Model 3"))
CONCERNS = ("Check engine light is on and the car hesitates when accelerating",
            "Grinding noise from the front wheels when braking",
            "Car pulls to the right on the highway",
            "Battery dies overnight, new battery installed last month",
            "Transmission slips between second and third gear",
            "AC blows warm air after ten minutes of driving",
            "Coolant level keeps dropping, no visible leak",
            "Squealing belt noise on cold starts",
            "Steering wheel shakes above 100 km/h",
            "Rough idle and a P0301 code (cylinder 1 misfire)",
            "Should I buy this used car? 120,000 km, timing belt never done",
            "Clunk from the rear suspension over bumps",
            "ABS and traction control lights came on together",
            "Smell of burning oil after long drives")
CUSTOMER_LINES = ("Hi, thanks for taking this.", "It started last week, mostly when the engine is cold.",
                  "I can send a video of the noise.", "Sent you a photo of the dashboard.",
                  "The code reader says P0301.", "It happens more when I turn left.",
                  "Is it safe to drive to work tomorrow?", "How much would a shop charge for that?",
                  "The last oil change was 8,000 km ago.", "OK, I'll check the tire pressure now.",
                  "No, the light is steady, not flashing.", "Great, that makes sense. Thank you!")
MECHANIC_LINES = ("Hi! Let's figure this out. When did you first notice it?",
                  "Can you tell me the year, make and mileage?",
                  "That sounds like worn front brake pads; the grinding is the wear indicator.",
                  "A steady check engine light is not an emergency, but get it scanned soon.",
                  "Please open the hood and look at the coolant reservoir for me.",
                  "Expect about 250 to 400 dollars for pads and rotors on that car.",
                  "A cylinder 1 misfire is usually a coil or a plug; swap the coil with cylinder 2 to test.",
                  "Check the tire pressure first; low pressure causes a pull like that.",
                  "I'd avoid long highway drives until this is fixed.",
                  "Anything else I can help you with today?")
AUDIT_ACTIONS = (  # (action, target type, summary)
    ("session.refund", "session", "Refunded session"), ("session.force_end", "session", "Ended session"),
    ("session.cancel", "session", "Cancelled session"), ("session.reassign", "session", "Reassigned session"),
    ("request.assign", "request", "Assigned request"), ("request.extend", "request", "Extended request"),
    ("user.suspend", "user", "Suspended user"), ("user.reactivate", "user", "Reactivated user"),
    ("user.ban", "user", "Banned user"), ("user.verify_email", "user", "Verified e-mail of user"),
    ("user.note", "user", "Added a note to user"), ("user.password_reset", "user", "Sent a password reset to user"),
    ("mechanic.approve", "user", "Approved mechanic"), ("mechanic.reject", "user", "Rejected mechanic"),
    ("plan.update", "plan", "Updated plan"), ("fee_rule.create", "fee_rule", "New platform fee rule"),
    ("maintenance.cleanup", "maintenance", "Cleanup applied"))
REASONS = ("Customer reported the mechanic never answered", "Duplicate payment", "Requested by the customer",
           "Abusive messages in chat", "Documents verified", "Insurance certificate expired",
           "Quality check", "Chargeback filed", "Mechanic had a family emergency", "Spam sign-up")


def _pg_array(values):
    """A Postgres text[] literal for constant arrays inlined in the generator's SQL."""
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _pick(values, r):
    """SQL: element of a constant text array chosen by a random expression r in [0, 1)."""
    return f"({_pg_array(values)})[1 + floor(({r}) * {len(values)})::int]"


def _step(conn, steps, label, sql, params=None):
    import sqlalchemy as sa

    t = time.perf_counter()
    result = conn.execute(sa.text(sql), params or {})
    steps.append((label, time.perf_counter() - t, result.rowcount if result.rowcount >= 0 else None))
    return result


def generate(conn, sizes=None, t0=None, seed=0.42):
    """Fill an empty-ish, migrated database (plans seeded) with the data described in the module
    docstring, inside the caller's transaction on `conn` (a SQLAlchemy Connection). Ids continue
    after whatever rows exist. Returns {"t0", "steps": [(label, seconds, rows)], "ids": {...}}."""
    import sqlalchemy as sa

    sizes = {**SIZES, **(sizes or {})}
    t0 = t0 or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    steps = []
    q = lambda sql, **p: conn.execute(sa.text(sql), p)  # noqa: E731
    plans = {code: (pid, price, minutes) for code, pid, price, minutes in
             q("SELECT code, id, price_cents, minutes FROM plans")}
    for code in ("free", "quick_advice", "chat10", "video15", "diagnostic"):
        if code not in plans:
            raise RuntimeError(f"plan {code!r} missing: seed the plans first")
    base = {t: q(f"SELECT coalesce(max(id), 0) FROM {t}").scalar() for t in
            ("users", "vehicles", "intakes", "sessions", "session_requests", "payments")}
    A, M, C, N = sizes["admins"], sizes["mechanics"], sizes["customers"], sizes["sessions"]
    ub = base["users"]
    admin_lo, mech_lo, cust_lo = ub + 1, ub + A + 1, ub + A + M + 1
    step = sizes["days"] * 86400 / N  # seconds between two sessions
    p = {"t0": t0, "ub": ub, "A": A, "M": M, "C": C, "N": N, "step": step, "mech_lo": mech_lo,
         "cust_lo": cust_lo, "vb": base["vehicles"], "ib": base["intakes"], "sb": base["sessions"],
         "rb": base["session_requests"], "pb": base["payments"], "days": sizes["days"]}
    _step(conn, steps, "set seed", "SELECT setseed(:seed)", {"seed": seed})
    conn.execute(sa.text("SET LOCAL synchronous_commit = off"))

    # -- people ---------------------------------------------------------------------------------
    first, last, domains = _pg_array(FIRST), _pg_array(LAST), _pg_array(DOMAINS)
    given = f"({first})[1 + (u.k * 7) % {len(FIRST)}]"
    family = f"({last})[1 + (u.k / {len(FIRST)}) % {len(LAST)}]"
    _step(conn, steps, "users", f"""
        INSERT INTO users (id, email, password_hash, full_name, role, city, country, status, status_reason,
                           auth_version, email_verified_at, created_at)
        SELECT u.id,
               CASE WHEN u.role = 'admin' THEN 'bench.admin' || u.k || '@autodoctor.example'
                    ELSE {given} || '.' || {family} || u.k || '@' || ({domains})[1 + u.k % {len(DOMAINS)}] END,
               '!',
               CASE WHEN u.role = 'admin' THEN 'Bench Admin ' || u.k ELSE initcap({given}) || ' ' || initcap({family}) END,
               u.role,
               ({_pg_array([c for c, _ in PLACES])})[1 + u.k % {len(PLACES)}],
               ({_pg_array([c for _, c in PLACES])})[1 + u.k % {len(PLACES)}],
               u.status, CASE WHEN u.status <> 'active' THEN {_pick(REASONS, 'random()')} END, 0,
               CASE WHEN random() < 0.8 THEN u.created_at + interval '5 minutes' END, u.created_at
        FROM (
          SELECT g AS id, g - :ub AS k,
                 CASE WHEN g < :mech_lo THEN 'admin' WHEN g < :cust_lo THEN 'mechanic' ELSE 'customer' END AS role,
                 CASE WHEN g >= :cust_lo AND (g - :ub) % 101 = 50 THEN 'suspended'
                      WHEN g >= :cust_lo AND (g - :ub) % 331 = 7 THEN 'banned'
                      WHEN g >= :mech_lo AND g < :cust_lo AND (g - :ub) % 211 = 3 THEN 'suspended'
                      ELSE 'active' END AS status,
                 :t0 - make_interval(days => :days + 30) + make_interval(secs => random() * (:days + 20) * 86400)
                   AS created_at
          FROM generate_series(:ub + 1, :ub + :A + :M + :C) AS g
        ) AS u
        ORDER BY u.id
        """, p)
    _step(conn, steps, "mechanic profiles", f"""
        INSERT INTO mechanic_profiles (user_id, years_experience, red_seal, specialties, brands, bio, approved,
                                       applied_at, reviewed_at, reviewed_by_id, rejection_reason, rating_sum,
                                       rating_count, completed_sessions, last_seen_at, online, presence,
                                       presence_changed_at, time_zone, buffer_minutes, booking_window_days)
        SELECT m.id, floor(random() * 30)::int, random() < 0.3,
               {_pick(('brakes, ABS', 'engine, diagnostics', 'transmission', 'electrical, hybrid',
                       'suspension, steering', 'air conditioning', 'diagnostics', ''), 'random()')},
               {_pick(('Honda', 'Toyota, Lexus', 'Ford', 'BMW, Mini', 'VW, Audi', 'Hyundai, Kia', ''), 'random()')},
               'Licensed technician.', m.state = 'approved',
               CASE WHEN m.k % 3 = 0 OR m.state <> 'approved' THEN u.created_at END,
               CASE WHEN m.state <> 'pending' THEN u.created_at + interval '1 day' END,
               CASE WHEN m.state <> 'pending' THEN :ub + 1 END,
               CASE WHEN m.state = 'rejected' THEN {_pick(REASONS, 'random()')} END,
               0, 0, 0,
               CASE WHEN m.on THEN :t0 - interval '5 seconds' ELSE :t0 - make_interval(hours => m.k % 500) END,
               m.on, CASE WHEN m.on THEN 'online' ELSE 'offline' END, :t0 - make_interval(mins => m.k % 300),
               'America/Toronto', 0, 30
        FROM (SELECT g AS id, g - :mech_lo AS k,
                     CASE WHEN (g - :mech_lo) % 50 = 49 THEN 'rejected' WHEN (g - :mech_lo) % 25 = 24 THEN 'pending'
                          ELSE 'approved' END AS state,
                     (g - :mech_lo) % 25 < 24 AND random() < 0.3 AS on
              FROM generate_series(:mech_lo, :cust_lo - 1) AS g) AS m
        JOIN users u ON u.id = m.id
        """, p)
    _step(conn, steps, "vehicles (one per customer)", f"""
        INSERT INTO vehicles (id, owner_id, year, make, model, vin, created_at)
        SELECT :vb + (g - :cust_lo + 1), g, 2000 + floor(random() * 25)::int, v.make, v.model, NULL,
               u.created_at + interval '10 minutes'
        FROM generate_series(:cust_lo, :cust_lo + :C - 1) AS g
        JOIN users u ON u.id = g
        CROSS JOIN LATERAL (SELECT ({_pg_array([m for m, _ in VEHICLES])})[1 + g % {len(VEHICLES)}] AS make,
                                   ({_pg_array([m for _, m in VEHICLES])})[1 + g % {len(VEHICLES)}] AS model) AS v
        """, p)

    # -- the sessions' shape, decided once --------------------------------------------------------
    _step(conn, steps, "approved mechanics (temp)", """
        CREATE TEMP TABLE bench_appr ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY user_id) - 1 AS rank, user_id
        FROM mechanic_profiles WHERE approved AND user_id BETWEEN :mech_lo AND :cust_lo - 1
        """, p)
    conn.execute(sa.text("CREATE UNIQUE INDEX ON bench_appr (rank)"))
    conn.execute(sa.text("ANALYZE bench_appr"))
    n_appr = q("SELECT count(*) FROM bench_appr").scalar()
    if n_appr < 40 or C < 40:  # the 40 newest sessions include live and waiting ones, each needing their own
        raise ValueError("the generator needs at least 40 approved mechanics (about 42 mechanics) and 40 customers")
    p["NA"] = n_appr
    plan_case = ("CASE WHEN b.r_plan < 0.06 THEN 'free' WHEN b.r_plan < 0.20 THEN 'quick_advice' "
                 "WHEN b.r_plan < 0.60 THEN 'chat10' WHEN b.r_plan < 0.88 THEN 'video15' ELSE 'diagnostic' END")
    _step(conn, steps, "session shapes (temp)", f"""
        CREATE TEMP TABLE bench_s ON COMMIT DROP AS
        WITH b AS (
          SELECT n, :N - n AS idx, random() AS r_plan, random() AS r_status, random() AS r_cust,
                 random() AS r_mech, random() AS r_a, random() AS r_b, random() AS r_c
          FROM generate_series(1, :N) AS n
        ), s AS (
          SELECT b.*, {plan_case} AS plan_code,
                 CASE WHEN b.idx < 40 AND b.idx % 2 = 0 THEN 'pending'
                      WHEN b.idx < 40 AND b.idx % 4 = 1 THEN 'live'
                      WHEN b.idx < 40 THEN 'waiting'
                      WHEN b.r_status < 0.86 THEN 'completed'
                      ELSE 'cancelled' END AS status,
                 CASE WHEN b.idx < 40 THEN NULL
                      WHEN b.r_status < 0.86 THEN NULL
                      WHEN b.r_status < 0.91 THEN 'expired'
                      WHEN b.r_status < 0.97 THEN 'customer_cancelled'
                      ELSE 'customer_no_show' END AS cancel_kind,
                 CASE WHEN b.idx < 40 THEN :cust_lo + (b.idx * 97) % :C
                      ELSE :cust_lo + (floor(:C * power(b.r_cust, 1.6))::bigint * 7919) % :C END AS customer_id,
                 :t0 - make_interval(secs => b.idx * :step + CASE WHEN b.idx < 40 THEN 30
                                                             ELSE floor(b.r_a * :step * 0.8) END) AS created_at
          FROM b
        )
        SELECT s.n, s.idx, s.plan_code, s.status, s.cancel_kind, s.customer_id, s.created_at,
               s.r_a, s.r_b, s.r_c,
               CASE WHEN s.status IN ('live', 'waiting') THEN (SELECT user_id FROM bench_appr WHERE rank = s.idx)
                    WHEN s.status = 'completed' OR s.cancel_kind = 'customer_no_show' THEN
                      (SELECT user_id FROM bench_appr
                       WHERE rank = (floor(:NA * power(s.r_mech, 1.4))::bigint * 7919) % :NA)
               END AS mechanic_id
        FROM s
        """, p)
    conn.execute(sa.text("CREATE INDEX ON bench_s (n)"))
    # Timestamps of each shape: accepted, started, ends, ended.
    _step(conn, steps, "session times (temp)", """
        CREATE TEMP TABLE bench_t ON COMMIT DROP AS
        SELECT s.*, pl.id AS plan_id, pl.price_cents AS price, pl.minutes, pl.name AS plan_name,
               CASE WHEN s.status = 'live' THEN :t0 - make_interval(mins => 2 + s.idx % 5)
                    WHEN s.status = 'waiting' THEN :t0 - make_interval(secs => 40 + 20 * (s.idx % 4))
                    WHEN s.mechanic_id IS NOT NULL THEN s.created_at + make_interval(secs => 20 + s.r_b * 280)
               END AS accepted_at
        FROM bench_s s JOIN plans pl ON pl.code = s.plan_code
        """, p)
    _step(conn, steps, "session times 2 (temp)", """
        CREATE TEMP TABLE bench_u ON COMMIT DROP AS
        SELECT t.*,
               CASE WHEN t.status = 'live' THEN t.accepted_at + interval '1 minute'
                    WHEN t.status = 'completed' THEN t.accepted_at + make_interval(secs => 30 + t.r_c * 150)
               END AS started_at
        FROM bench_t t
        """, p)
    _step(conn, steps, "session times 3 (temp)", """
        CREATE TEMP TABLE bench_v ON COMMIT DROP AS
        SELECT u.*,
               u.started_at + make_interval(mins => u.minutes) AS ends_at,
               CASE WHEN u.status = 'completed' THEN
                      CASE WHEN u.r_c > 0.93 THEN u.started_at + make_interval(mins => u.minutes)
                           ELSE u.started_at + make_interval(secs => u.minutes * 60 * (0.35 + 0.6 * u.r_a)) END
                    WHEN u.cancel_kind = 'expired' THEN u.created_at + interval '2 hours'
                    WHEN u.cancel_kind = 'customer_cancelled' THEN u.created_at + make_interval(secs => 60 + u.r_b * 900)
                    WHEN u.cancel_kind = 'customer_no_show' THEN u.accepted_at + interval '10 minutes'
               END AS ended_at,
               CASE WHEN u.status = 'completed' THEN
                      CASE WHEN u.r_c > 0.93 THEN 'time_limit' WHEN u.r_c < 0.01 THEN 'admin_ended'
                           ELSE 'ended_by_mechanic' END
                    ELSE u.cancel_kind END AS end_reason
        FROM bench_u u
        """, p)
    conn.execute(sa.text("CREATE INDEX ON bench_v (n)"))

    # -- intakes, sessions, requests ---------------------------------------------------------------
    _step(conn, steps, "intakes", f"""
        INSERT INTO intakes (id, customer_id, vehicle_id, plan_id, concern, city, country, advice_only,
                             preferred_mechanic_id, created_at)
        SELECT :ib + v.n, v.customer_id,
               CASE WHEN v.r_b < 0.85 THEN :vb + (v.customer_id - :cust_lo + 1) END, v.plan_id,
               {_pick(CONCERNS, 'v.r_c')},
               ({_pg_array([c for c, _ in PLACES])})[1 + v.customer_id % {len(PLACES)}],
               ({_pg_array([c for _, c in PLACES])})[1 + v.customer_id % {len(PLACES)}],
               v.plan_code = 'quick_advice', NULL, v.created_at - interval '2 minutes'
        FROM bench_v v ORDER BY v.n
        """, p)
    _step(conn, steps, "sessions", """
        INSERT INTO sessions (id, customer_id, mechanic_id, plan_id, intake_id, status, minutes, created_at,
                              accepted_at, started_at, ends_at, extended_minutes, ended_at, end_reason,
                              mechanic_notes, rating, review, rated_at, fee_percent)
        SELECT :sb + v.n, v.customer_id, v.mechanic_id, v.plan_id, :ib + v.n, v.status, v.minutes, v.created_at,
               v.accepted_at, v.started_at, CASE WHEN v.started_at IS NOT NULL THEN v.ends_at END, 0,
               v.ended_at, v.end_reason,
               CASE WHEN v.status = 'completed' AND v.r_b < 0.5 THEN 'Advised the customer; see chat.' END,
               CASE WHEN v.status = 'completed' AND v.r_a < 0.6 THEN
                      CASE WHEN v.r_c < 0.05 THEN 2 ELSE 3 + floor(v.r_b * 3)::int END END,
               CASE WHEN v.status = 'completed' AND v.r_a < 0.2 THEN 'Very helpful, saved me a trip to the shop.' END,
               CASE WHEN v.status = 'completed' AND v.r_a < 0.6 THEN v.ended_at + interval '3 minutes' END,
               20
        FROM bench_v v ORDER BY v.n
        """, p)
    _step(conn, steps, "session requests", """
        INSERT INTO session_requests (id, session_id, customer_id, mechanic_id, status, created_at, accepted_at,
                                      closed_at, close_reason, broadcast_at, preferred_mechanic_id, extended_until)
        SELECT :rb + v.n, :sb + v.n, v.customer_id, v.mechanic_id,
               CASE WHEN v.mechanic_id IS NOT NULL THEN 'accepted'
                    WHEN v.status = 'pending' AND v.created_at > :t0 - interval '5 minutes' THEN 'pending'
                    WHEN v.status = 'pending' THEN 'unattended'
                    WHEN v.cancel_kind = 'expired' THEN 'expired'
                    ELSE 'cancelled' END,
               v.created_at, v.accepted_at,
               CASE WHEN v.mechanic_id IS NOT NULL THEN v.accepted_at WHEN v.status = 'cancelled' THEN v.ended_at END,
               CASE WHEN v.mechanic_id IS NOT NULL THEN 'accepted' WHEN v.status = 'cancelled' THEN v.cancel_kind END,
               NULL, NULL, NULL
        FROM bench_v v ORDER BY v.n
        """, p)

    # -- money ------------------------------------------------------------------------------------
    _step(conn, steps, "payments", """
        INSERT INTO payments (id, customer_id, purpose, intake_id, plan_id, session_id, amount_cents, credit_cents,
                              currency, status, provider, checkout_id, payment_intent_id, created_at, paid_at)
        SELECT :pb + v.n, v.customer_id, 'session', :ib + v.n, v.plan_id, :sb + v.n, v.price, 0, 'usd',
               CASE WHEN v.status = 'cancelled' AND v.price > 0 THEN 'refunded' ELSE 'paid' END,
               CASE WHEN v.price = 0 THEN 'free' ELSE 'stripe' END,
               CASE WHEN v.price = 0 THEN 'free_' || (:pb + v.n) ELSE 'cs_bench_' || (:pb + v.n) END,
               CASE WHEN v.price > 0 THEN 'pi_bench_' || (:pb + v.n) END,
               v.created_at - interval '1 minute', v.created_at - interval '20 seconds'
        FROM bench_v v ORDER BY v.n
        """, p)
    _step(conn, steps, "ledger entries", """
        INSERT INTO ledger_entries (txn_id, session_id, payment_id, account, kind, amount_cents, memo, created_at)
        SELECT x.txn, :sb + v.n, x.payment_id, x.account, x.kind, x.amount, x.memo, x.at
        FROM bench_v v
        CROSS JOIN LATERAL (
          SELECT (:sb + v.n) AS sid, (v.price * 20 + 50) / 100 AS fee
        ) AS k
        CROSS JOIN LATERAL (VALUES
          (md5('pay' || k.sid)::uuid::text, :pb + v.n, 'customer', 'payment', -v.price,
           'Payment for ' || v.plan_name, v.created_at - interval '20 seconds', 1, v.price > 0),
          (md5('pay' || k.sid)::uuid::text, :pb + v.n, 'escrow', 'payment', v.price,
           'Payment for ' || v.plan_name, v.created_at - interval '20 seconds', 2, v.price > 0),
          (md5('set' || k.sid)::uuid::text, NULL, 'escrow', 'platform_fee', -k.fee,
           'Settlement of session #' || k.sid, v.ended_at, 3, v.status = 'completed' AND v.price > 0),
          (md5('set' || k.sid)::uuid::text, NULL, 'platform', 'platform_fee', k.fee,
           'Settlement of session #' || k.sid, v.ended_at, 4, v.status = 'completed' AND v.price > 0),
          (md5('set' || k.sid)::uuid::text, NULL, 'escrow', 'mechanic_earning', k.fee - v.price,
           'Settlement of session #' || k.sid, v.ended_at, 5, v.status = 'completed' AND v.price > 0),
          (md5('set' || k.sid)::uuid::text, NULL, 'mechanic:' || v.mechanic_id, 'mechanic_earning', v.price - k.fee,
           'Settlement of session #' || k.sid, v.ended_at, 6, v.status = 'completed' AND v.price > 0),
          (md5('ref' || k.sid)::uuid::text, :pb + v.n, 'escrow', 'refund', -v.price,
           'Refund: ' || v.end_reason, v.ended_at, 7, v.status = 'cancelled' AND v.price > 0),
          (md5('ref' || k.sid)::uuid::text, :pb + v.n, 'customer', 'refund', v.price,
           'Refund: ' || v.end_reason, v.ended_at, 8, v.status = 'cancelled' AND v.price > 0)
        ) AS x(txn, payment_id, account, kind, amount, memo, at, ord, wanted)
        WHERE x.wanted
        ORDER BY x.at, v.n, x.ord
        """, p)

    # -- timeline and room ------------------------------------------------------------------------
    _step(conn, steps, "session events", """
        INSERT INTO session_events (session_id, request_id, actor_id, kind, detail, created_at)
        SELECT :sb + v.n, x.request_id, x.actor_id, x.kind, x.detail, x.at
        FROM bench_v v
        CROSS JOIN LATERAL (VALUES
          (1, :rb + v.n, v.customer_id, 'created', v.plan_name || ' paid', v.created_at, true),
          (2, :rb + v.n, NULL::int, 'unattended', 'No mechanic within 5 minutes', v.created_at + interval '5 minutes',
           v.status = 'pending' AND v.created_at <= :t0 - interval '5 minutes'),
          (3, :rb + v.n, v.mechanic_id, 'accepted', 'Accepted by the mechanic', v.accepted_at,
           v.accepted_at IS NOT NULL),
          (4, NULL::int, NULL::int, 'live', 'Both participants present; clock started', v.started_at,
           v.started_at IS NOT NULL),
          (5, NULL::int, v.mechanic_id, 'completed',
           CASE v.end_reason WHEN 'time_limit' THEN 'Time limit reached' WHEN 'admin_ended' THEN 'Ended by admin'
                ELSE 'Ended by the mechanic' END, v.ended_at, v.status = 'completed'),
          (6, :rb + v.n, NULL::int, 'cancelled', 'Cancelled: ' || v.cancel_kind, v.ended_at, v.status = 'cancelled'),
          (7, :rb + v.n, NULL::int, 'refunded', v.price || ' cents refunded', v.ended_at,
           v.status = 'cancelled' AND v.price > 0)
        ) AS x(ord, request_id, actor_id, kind, detail, at, wanted)
        WHERE x.wanted
        ORDER BY v.n, x.ord
        """, p)
    _step(conn, steps, "room participants", """
        INSERT INTO session_participants (session_id, user_id, role, first_joined_at, last_joined_at, last_left_at,
                                          connections)
        SELECT :sb + v.n, x.user_id, x.role, v.started_at - interval '30 seconds', v.started_at - interval '30 seconds',
               v.ended_at, CASE WHEN v.status = 'live' THEN 1 ELSE 0 END
        FROM bench_v v
        CROSS JOIN LATERAL (VALUES (v.customer_id, 'customer'), (v.mechanic_id, 'mechanic')) AS x(user_id, role)
        WHERE v.started_at IS NOT NULL
        ORDER BY v.n
        """, p)
    _step(conn, steps, "mechanic profile totals", """
        UPDATE mechanic_profiles mp
        SET completed_sessions = a.done, rating_sum = a.rsum, rating_count = a.rcount
        FROM (SELECT mechanic_id, count(*) AS done, coalesce(sum(rating), 0) AS rsum, count(rating) AS rcount
              FROM sessions WHERE status = 'completed' AND id > :sb GROUP BY mechanic_id) AS a
        WHERE mp.user_id = a.mechanic_id
        """, p)

    # -- chat -------------------------------------------------------------------------------------
    chat_target = sizes["chat"]
    n_chat = q("SELECT count(*) FROM bench_v WHERE started_at IS NOT NULL").scalar()
    detail = q("SELECT n FROM bench_v WHERE status = 'completed' AND idx >= 40 ORDER BY idx LIMIT 1").scalar()
    p.update(mean=chat_target / max(1, n_chat) + 0.5, detail=detail)
    _step(conn, steps, "chat counts (temp)", """
        CREATE TEMP TABLE bench_c ON COMMIT DROP AS
        SELECT v.n, v.customer_id, v.mechanic_id, v.started_at, coalesce(v.ended_at, :t0) AS until_at,
               CASE WHEN v.n = :detail THEN 50 ELSE floor(-ln(1 - random()) * :mean)::int END AS c
        FROM bench_v v WHERE v.started_at IS NOT NULL
        """, p)
    total = q("SELECT coalesce(sum(c), 0) FROM bench_c").scalar()
    diff = chat_target - total
    if diff > 0:  # spread the shortfall over the others, one line each (more if there are few)
        others = n_chat - 1
        q("""UPDATE bench_c c SET c = c.c + :q + CASE WHEN o.rn <= :r THEN 1 ELSE 0 END
             FROM (SELECT n, row_number() OVER (ORDER BY n) AS rn FROM bench_c WHERE n <> :detail) o
             WHERE o.n = c.n""", q=diff // max(1, others), r=diff % max(1, others), detail=detail)
    elif diff < 0:
        q("""UPDATE bench_c c SET c = c.c - 1
             FROM (SELECT n FROM bench_c WHERE n <> :detail AND c > 0 ORDER BY n LIMIT :k) o
             WHERE o.n = c.n""", k=-diff, detail=detail)
    _step(conn, steps, "chat messages", f"""
        INSERT INTO chat_messages (session_id, sender_id, body, file_id, client_token, created_at)
        SELECT :sb + m.n, CASE WHEN m.by_customer THEN m.customer_id ELSE m.mechanic_id END,
               CASE WHEN m.by_customer THEN {_pick(CUSTOMER_LINES, 'm.r')} ELSE {_pick(MECHANIC_LINES, 'm.r')} END,
               NULL, NULL, m.started_at + (m.until_at - m.started_at) * (m.k::float8 / (m.c + 1))
        FROM (SELECT c.*, k, (k % 2 = 1) <> (random() < 0.25) AS by_customer, random() AS r
              FROM bench_c c CROSS JOIN LATERAL generate_series(1, c.c) AS k) AS m
        ORDER BY m.n, m.k
        """, p)

    # -- audit log ----------------------------------------------------------------------------------
    actions = _pg_array([a for a, _, _ in AUDIT_ACTIONS])
    types = _pg_array([t for _, t, _ in AUDIT_ACTIONS])
    summaries = _pg_array([s for _, _, s in AUDIT_ACTIONS])
    _step(conn, steps, "audit log", f"""
        INSERT INTO audit_log (actor_id, action, target_type, target_id, summary, reason, before, after, ip_address,
                               created_at)
        SELECT :ub + 1 + a.g % :A, ({actions})[a.i], ({types})[a.i],
               CASE ({types})[a.i] WHEN 'session' THEN :sb + 1 + floor(random() * :N)::int
                                   WHEN 'request' THEN :rb + 1 + floor(random() * :N)::int
                                   WHEN 'user' THEN :mech_lo + floor(random() * (:M + :C))::int
                                   WHEN 'plan' THEN 1 + a.g % 5 END,
               ({summaries})[a.i] || ' #' || a.g, {_pick(REASONS, 'random()')},
               json_build_object('status', 'active', 'amount_cents', 2999),
               json_build_object('status', 'suspended', 'amount_cents', 1500),
               '10.0.' || (a.g % 250) || '.' || (a.g % 200 + 1),
               :t0 - make_interval(secs => (:audit - a.g) * (:days * 86400.0 / :audit))
        FROM (SELECT g, 1 + floor(random() * {len(AUDIT_ACTIONS)})::int AS i
              FROM generate_series(1, :audit) AS g) AS a
        ORDER BY a.g
        """, {**p, "audit": sizes["audit"]})

    for table in ("users", "vehicles", "intakes", "sessions", "session_requests", "payments"):
        q(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    ids = {"admin_email": q("SELECT email FROM users WHERE id = :i", i=admin_lo).scalar(), "admin_id": admin_lo,
           "detail_session": p["sb"] + detail,
           "busy_customer": q("SELECT customer_id FROM sessions WHERE id > :sb GROUP BY customer_id "
                              "ORDER BY count(*) DESC LIMIT 1", sb=p["sb"]).scalar(),
           "busy_mechanic": q("SELECT mechanic_id FROM sessions WHERE id > :sb AND mechanic_id IS NOT NULL "
                              "GROUP BY mechanic_id ORDER BY count(*) DESC LIMIT 1", sb=p["sb"]).scalar()}
    return {"t0": t0.isoformat(), "steps": steps, "ids": ids}


# -- the database --------------------------------------------------------------------------------
META = "bench_admin_meta"


def _admin_url(name):
    from bench.stack import PG_ADMIN_URL

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def ensure_database(name=DB_NAME):
    """The database's URL, created (empty) if missing. Never dropped by the bench's cleanup of
    stale databases: its name does not end in a process id."""
    import sqlalchemy as sa

    from bench.stack import _admin_engine

    engine = _admin_engine()
    with engine.connect() as conn:
        if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return _admin_url(name)


def _meta(engine):
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {META} (key text PRIMARY KEY, value text NOT NULL)"))
        return {k: json.loads(v) for k, v in conn.execute(sa.text(f"SELECT key, value FROM {META}"))}


def _counts(conn):
    import sqlalchemy as sa

    counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in
              ("users", "mechanic_profiles", "intakes", "sessions", "session_requests", "payments", "ledger_entries",
               "chat_messages", "session_events", "session_participants", "audit_log")}
    counts["session_status"] = dict(conn.execute(sa.text("SELECT status, count(*) FROM sessions GROUP BY status")).all())
    return counts


def prepare(url, sizes=None, reload=False, log=print):
    """Migrate the database (`flask db upgrade` through Flask-Migrate: a no-op at head) and load
    the data unless the marker says it is there with these sizes. Returns the meta dict
    {"sizes", "version", "t0", "load_seconds", "steps", "ids", "counts", "loaded_now"}."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    sizes = {**SIZES, **(sizes or {})}
    app = _app(url)
    with app.app_context():
        from autodoctor.extensions import db
        from autodoctor.services import plans

        t = time.perf_counter()
        upgrade(directory=str(ROOT / "migrations"))
        migrate_seconds = time.perf_counter() - t
        engine = db.engine
        meta = _meta(engine)
        if not reload and meta.get("sizes") == sizes and meta.get("version") == GENERATOR_VERSION:
            with engine.connect() as conn:
                counts = _counts(conn)
            if counts["sessions"] >= sizes["sessions"] and counts["chat_messages"] >= sizes["chat"]:
                meta.update(counts=counts, loaded_now=False, migrate_seconds=migrate_seconds)
                return meta
        log(f"loading the admin bench data into {url.rsplit('/', 1)[-1]} (once; later runs reuse it)")
        t = time.perf_counter()
        tables = ", ".join(f'"{tb.name}"' for tb in db.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {tables}, {META} RESTART IDENTITY CASCADE"))
        plans.seed_plans()
        db.session.commit()
        with engine.begin() as conn:
            generated = generate(conn, sizes)
        load = time.perf_counter() - t
        t = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        vacuum = time.perf_counter() - t
        with engine.connect() as conn:
            counts = _counts(conn)
            db_bytes = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
        meta = {"sizes": sizes, "version": GENERATOR_VERSION, "t0": generated["t0"], "ids": generated["ids"],
                "steps": generated["steps"], "load_seconds": load, "vacuum_seconds": vacuum, "db_bytes": db_bytes,
                "loaded_at": datetime.now(UTC).isoformat(timespec="seconds")}
        with engine.begin() as conn:
            for key, value in meta.items():
                conn.execute(sa.text(f"INSERT INTO {META} (key, value) VALUES (:k, :v)"),
                             {"k": key, "v": json.dumps(value)})
        meta.update(counts=counts, loaded_now=True, migrate_seconds=migrate_seconds)
        db.session.remove()
        engine.dispose()
        return meta


def _app(url):
    import config
    from autodoctor import create_app

    class BenchConfig(config.Config):
        SQLALCHEMY_DATABASE_URI = url
        SQLALCHEMY_ENGINE_OPTIONS = config._engine_options(url)
        REDIS_URL = ""  # embedded: in-process broker; nothing here publishes
        SWEEP_INTERVAL_SECONDS = 0
        WTF_CSRF_ENABLED = False
        RATELIMIT_ENABLED = False
        SERVER_NAME = None
        STRIPE_SECRET_KEY = ""
        SMTP_HOST = ""
        S3_BUCKET = ""

    return create_app(BenchConfig)


# -- measuring -----------------------------------------------------------------------------------
_NEXT = re.compile(r'<a\b[^>]*\brel="next"[^>]*\bhref="([^"]+)"')


def _pct(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else float("nan")


class SqlRecorder:
    """Records the statements (SQL, parameters, seconds) the app runs while `on`."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.on, self.statements = False, []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.statements.append((statement, parameters, time.perf_counter() - conn.info.pop("bench_t", 0)))

    def __enter__(self):
        self.statements, self.on = [], True
        return self

    def __exit__(self, *exc):
        self.on = False


class Harness:
    def __init__(self, url, meta, samples=30, warmup=3, log=print):
        from autodoctor import clock
        from autodoctor.extensions import db
        from autodoctor.services import accounts

        self.meta, self.samples, self.warmup, self.log = meta, samples, warmup, log
        self.app = _app(url)
        clock.set(datetime.fromisoformat(meta["t0"]) + timedelta(minutes=1))
        with self.app.app_context():
            import sqlalchemy as sa

            email = meta["ids"]["admin_email"]
            db.session.execute(sa.text("UPDATE users SET password_hash = :h WHERE email = :e"),
                               {"h": accounts._hasher.hash(PASSWORD), "e": email})
            db.session.commit()
            self.engine = db.engine
            self.recorder = SqlRecorder(db.engine)
        self.client = self.app.test_client()
        response = self.client.post("/login", data={"email": email, "password": PASSWORD})
        if response.status_code != 303:
            raise RuntimeError(f"admin login failed: HTTP {response.status_code}")
        self.rows, self.csv, self.errors = [], [], []

    def get(self, url, fragment=False):
        headers = {"HX-Request": "true"} if fragment else {}
        t = time.perf_counter()
        response = self.client.get(url, headers=headers)
        elapsed = time.perf_counter() - t
        return response, elapsed

    def measure(self, group, label, url, fragment=False, urls=None):
        """`samples` timings of GET url (after warm-up), or of each URL from `urls` (an iterator
        of successive URLs: the pages after page 1). Returns the last response's text."""
        try:
            for _ in range(self.warmup):
                response, _ = self.get(url, fragment)
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code}")
            samples, text, sizes = [], "", []
            for i in range(self.samples):
                target = url if urls is None else urls(i)
                if target is None:
                    break
                response, elapsed = self.get(target, fragment)
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code} for {target}")
                samples.append(elapsed)
                text = response.get_data(as_text=True)
                sizes.append(len(response.data))
            with self.recorder as rec:
                self.get(url if urls is None else urls(0) or url, fragment)
            statements = rec.statements
        except Exception as exc:  # noqa: BLE001 - a failing page is reported, the run goes on
            self.errors.append({"group": group, "label": label, "url": url, "error": repr(exc)[:300]})
            self.log(f"  {group} {label}: FAILED {exc!r}"[:300])
            return None
        slowest = max(statements, key=lambda s: s[2], default=None)
        row = {"group": group, "label": label, "url": url, "fragment": fragment, "samples": samples,
               "bytes": int(sum(sizes) / max(1, len(sizes))), "queries": len(statements),
               "sql_seconds": sum(s[2] for s in statements),
               "slowest_sql": (slowest[0], _jsonable(slowest[1]), slowest[2]) if slowest else None}
        self.rows.append(row)
        self.log(f"  {group:<10} {label:<34} p50 {_pct(samples, 50) * 1000:6.1f} ms  p95 "
                 f"{_pct(samples, 95) * 1000:6.1f} ms  max {max(samples) * 1000:6.1f} ms  "
                 f"{row['queries']} queries, {row['sql_seconds'] * 1000:.1f} ms SQL")
        return text

    def explain(self, row):
        """EXPLAIN (ANALYZE, BUFFERS) of a row's slowest statement."""
        import sqlalchemy as sa

        statement, params, _ = row["slowest_sql"]
        with self.engine.connect() as conn:
            try:
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, _params(params)).all()
                return "\n".join(line for (line,) in plan)
            except sa.exc.SQLAlchemyError as exc:
                return f"EXPLAIN failed: {exc!r}"[:500]

    def stream_csv(self, url, trace=False):
        """GET a CSV export and consume it chunk by chunk. Returns rows, bytes, seconds, first
        byte, RSS (before, and VmHWM since a reset just before) and tracemalloc's peak."""
        from bench.stack import reset_rss_peak, rss_kb, rss_peak_kb

        gc.collect()
        pid = os.getpid()
        rss_before = rss_kb(pid)
        hwm_reset = reset_rss_peak(pid)
        if trace:
            tracemalloc.start()
            tracemalloc.reset_peak()
            traced_before = tracemalloc.get_traced_memory()[0]
        rows = size = chunks = 0
        pending = ""
        t = time.perf_counter()
        response = self.client.get(url, buffered=False)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        first = None
        reader_lines = []
        try:
            for chunk in response.response:
                if first is None:
                    first = time.perf_counter() - t
                chunks += 1
                size += len(chunk)
                text = pending + (chunk.decode() if isinstance(chunk, bytes) else chunk)
                lines = text.split("\n")
                pending = lines.pop()
                reader_lines = [line + "\n" for line in lines]
                rows += sum(1 for _ in csv.reader(reader_lines))
        finally:
            response.close()
        if pending:
            rows += sum(1 for _ in csv.reader([pending]))
        seconds = time.perf_counter() - t
        result = {"url": url, "rows": rows - 1, "bytes": size, "chunks": chunks, "seconds": seconds,
                  "first_byte": first, "rss_before_kb": rss_before,
                  "rss_peak_kb": rss_peak_kb(pid) if hwm_reset else None}
        if trace:
            result["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1] - traced_before
            tracemalloc.stop()
        return result


def _jsonable(params):
    if isinstance(params, dict):
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return [v.isoformat() if isinstance(v, datetime) else v for v in params]
    return params


def _params(params):
    """Parameters as recorded, back to what the driver takes (ISO strings of datetimes stay
    strings: Postgres casts them)."""
    return params if isinstance(params, (dict, list, tuple)) else ()


def _search_terms(harness):
    """(the "given.family" part of the busiest customer's email, which about 15 customers share;
    the whole email of a customer with a single session)."""
    import sqlalchemy as sa

    with harness.engine.connect() as conn:
        email = conn.execute(sa.text("SELECT email FROM users WHERE id = :i"),
                             {"i": harness.meta["ids"]["busy_customer"]}).scalar()
        single = conn.execute(sa.text(
            "SELECT u.email FROM users u JOIN sessions s ON s.customer_id = u.id WHERE u.role = 'customer' "
            "GROUP BY u.id HAVING count(*) = 1 ORDER BY u.id LIMIT 1")).scalar()
    return re.match(r"[a-z]+\.[a-z]+", email).group(0), single


def table_variants(meta, q_email, q_single):
    """Per table: (label, query args) for the filtered fragments, beyond the defaults."""
    t0 = datetime.fromisoformat(meta["t0"])
    week = ("date range (a week)", {"from": (t0 - timedelta(days=37)).date().isoformat(),
                                    "to": (t0 - timedelta(days=31)).date().isoformat()})
    shared = (f"q={q_email}", {"q": q_email})
    single = ("q=<one customer's whole email>", {"q": q_single})
    return {
        "requests": [("status=cancelled", {"status": "cancelled"}), shared, single, week,
                     ("sort=-accepted", {"sort": "-accepted"})],
        "sessions": [("status=cancelled", {"status": "cancelled"}), shared, single, week,
                     ("sort=-rating", {"sort": "-rating"})],
        "intakes": [("plan=diagnostic", {"plan": "diagnostic"}), shared, single, week,
                    ("sort=id (oldest first)", {"sort": "id"})],
        "customers": [("status=suspended", {"status": "suspended"}), shared, single, week,
                      ("sort=status", {"sort": "status"})],
        "mechanics": [("status=active", {"status": "active"}), ("application=pending", {"application": "pending"}),
                      shared, week, ("sort=-rating", {"sort": "-rating"})],
        "payments": [("status=refunded", {"status": "refunded"}), shared, single, week,
                     ("sort=-amount", {"sort": "-amount"})],
        "audit": [("action=user.suspend", {"action": "user.suspend"}), ("q=chargeback", {"q": "chargeback"}), week,
                  ("sort=action", {"sort": "action"})],
    }


def measure(url, meta, samples=30, log=print, explain=True, warmup=3):
    from urllib.parse import urlencode

    h = Harness(url, meta, samples=samples, warmup=warmup, log=log)
    ids = meta["ids"]
    q_email, q_single = _search_terms(h)
    for name, variants in table_variants(meta, q_email, q_single).items():
        base = f"/admin/{name}"
        first = h.measure(name, "page (default)", base)
        if first is None:
            continue
        h.measure(name, "fragment (default)", base, fragment=True)
        for label, args in variants:
            h.measure(name, f"fragment, {label}", f"{base}?{urlencode(args)}", fragment=True)
        chain = [html.unescape(m) for m in _NEXT.findall(first)[:1]]

        def follow(i, chain=chain):
            while len(chain) <= i:
                response, _ = h.get(chain[-1], True)
                found = _NEXT.findall(response.get_data(as_text=True))
                if not found:
                    return None
                chain.append(html.unescape(found[0]))
            return chain[i]

        if chain:
            h.measure(name, "fragment, page 2, 3, … (next cursor)", chain[0], fragment=True, urls=follow)
        else:
            h.errors.append({"group": name, "label": "next page", "url": base, "error": "no next link on page 1"})
    h.measure("pages", "dashboard", "/admin/")
    h.measure("pages", "unattended queue", "/admin/queue")
    h.measure("pages", f"session detail (#{ids['detail_session']}, 50 chat lines)",
              f"/admin/sessions/{ids['detail_session']}")
    h.measure("pages", "user page, busiest customer", f"/admin/users/{ids['busy_customer']}")
    h.measure("pages", "user page, busiest mechanic", f"/admin/users/{ids['busy_mechanic']}")
    for name in ("sessions", "payments"):
        path = f"/admin/{name}.csv"
        try:
            timed = h.stream_csv(path)
            traced = h.stream_csv(path, trace=True)
        except Exception as exc:  # noqa: BLE001
            h.errors.append({"group": "csv", "label": name, "url": path, "error": repr(exc)[:300]})
            log(f"  CSV {path}: FAILED {exc!r}"[:300])
            continue
        timed["tracemalloc_peak"] = traced["tracemalloc_peak"]
        timed["traced_seconds"] = traced["seconds"]
        h.csv.append(timed)
        log(f"  CSV {path}: {timed['rows']} rows, {timed['bytes'] / 1e6:.1f} MB in {timed['seconds']:.1f} s, first "
            f"byte {timed['first_byte'] * 1000:.0f} ms; RSS {timed['rss_before_kb'] / 1024:.0f} MB → peak "
            f"{(timed['rss_peak_kb'] or 0) / 1024:.0f} MB; tracemalloc peak {timed['tracemalloc_peak'] / 1e6:.1f} MB")
    explains = {}
    if explain:
        for row in h.rows:
            if _pct(row["samples"], 95) * 1000 > TARGET_MS and row["slowest_sql"] and row["slowest_sql"][2] >= 0.01:
                explains[f"{row['group']} — {row['label']}"] = {"sql": row["slowest_sql"][0],
                                                                "params": row["slowest_sql"][1],
                                                                "plan": h.explain(row)}
    return {"rows": h.rows, "csv": h.csv, "errors": h.errors, "explain": explains, "samples": samples,
            "q_email": q_email, "q_single": q_single}


def summary(meta, results):
    lines = [f"admin console on {meta['counts']['sessions']} sessions, {meta['counts']['chat_messages']} chat lines, "
             f"{meta['counts']['mechanic_profiles']} mechanics (loaded in {meta['load_seconds']:.0f} s"
             f"{', now' if meta.get('loaded_now') else ', reused'})"]
    for row in results["rows"]:
        s = row["samples"]
        p95 = _pct(s, 95) * 1000
        lines.append(f"  {row['group']:<10} {row['label']:<44} p50 {_pct(s, 50) * 1000:6.1f}  p95 {p95:6.1f}  "
                     f"max {max(s) * 1000:6.1f} ms  {'OK' if p95 <= TARGET_MS else 'OVER'}")
    for c in results["csv"]:
        lines.append(f"  CSV {c['url']}: {c['rows']} rows in {c['seconds']:.1f} s, first byte "
                     f"{c['first_byte'] * 1000:.0f} ms, tracemalloc peak {c['tracemalloc_peak'] / 1e6:.1f} MB, RSS "
                     f"+{((c['rss_peak_kb'] or 0) - c['rss_before_kb']) / 1024:.1f} MB")
    for e in results["errors"]:
        lines.append(f"  FAILED {e['group']} {e['label']} {e['url']}: {e['error']}")
    for key, ex in results["explain"].items():
        lines += [f"-- {key}", ex["sql"], str(ex["params"]), ex["plan"]]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", help="default: the database autodoctor_bench_admin (created if missing)")
    p.add_argument("--prepare", action="store_true", help="only make sure the data is loaded")
    p.add_argument("--reload", action="store_true", help="regenerate the data even if it is there")
    p.add_argument("--samples", type=int, default=30)
    p.add_argument("--json", action="store_true", help="print the raw results as JSON (for bench/run.py)")
    args = p.parse_args(argv)
    url = args.database_url or ensure_database()

    def log(msg):
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    import logging

    logging.disable(logging.INFO)
    meta = prepare(url, reload=args.reload, log=log)
    out = {"meta": meta}
    if not args.prepare:
        out["results"] = measure(url, meta, samples=args.samples, log=log)
    if args.json:
        print(json.dumps(out, default=str))
    elif "results" in out:
        print(summary(meta, out["results"]))
    else:
        print(json.dumps({k: v for k, v in meta.items() if k != "steps"}, default=str, indent=1))


if __name__ == "__main__":
    main()
