"""In-process actor: a separate process that calls the app's own service functions against the
bench database (same DATABASE_URL and REDIS_URL as the servers), commits, and so publishes
through Redis exactly as the web process would. It runs apart from the measuring process so
its blocking work never delays the timestamps taken on the client sockets.

The commit time of the unit of work that opens a request is taken by a SQLAlchemy
`after_commit` listener: it fires when COMMIT has returned from Postgres, before the app's
after-commit hooks render the fragment and publish it."""
import multiprocessing as mp
import threading
import time
import traceback

PASSWORD = "autodoctor-demo"


def _serve(conn):
    from flask import url_for
    from sqlalchemy import event

    from autodoctor import create_app
    from autodoctor.extensions import Session, db
    from autodoctor.models import ConsultSession, Payment, SessionRequest, User
    from autodoctor.services import accounts, intakes, lifecycle, payments, plans

    app = create_app()
    commits = []

    @event.listens_for(Session, "after_commit")
    def _committed(_session):
        commits.append(time.monotonic())

    def timed_commit():
        start = len(commits)
        db.session.commit()
        return commits[start]

    def user_by_email(email):
        return db.session.scalar(db.select(User).where(User.email == email))

    def create_users(prefix, role, count):
        """Accounts through services.accounts.create_user. Argon2id costs ~0.25 CPU-s per
        hash, so the (identical) password is hashed once and that real hash reused."""
        real = accounts._hasher

        class OnceHasher:
            cache = {}

            def hash(self, password):
                if password not in self.cache:
                    self.cache[password] = real.hash(password)
                return self.cache[password]

        accounts._hasher = OnceHasher()
        try:
            emails = []
            for i in range(count):
                email = f"{prefix}{i:03d}@bench.example"
                if not db.session.scalar(db.select(User.id).where(User.email == email)):
                    accounts.create_user(email, PASSWORD, f"{role.title()} Bench{i:03d}", role=role,
                                         city="Toronto", country="CA")
                emails.append(email)
            db.session.commit()
            return emails
        finally:
            accounts._hasher = real

    def open_request(email, concern="Check engine light and rough idle when cold", plan_code="chat10"):
        """What the intake form + paid checkout do: intake, payment, then fulfilment (the
        function the Stripe webhook calls) in its own transaction. Returns ids and the
        monotonic time at which the fulfilment's COMMIT returned."""
        customer = user_by_email(email)
        data = {"year": 2015, "make": "Honda", "model": "Civic", "vin": "", "concern": concern,
                "city": "Toronto", "country": "CA", "accept_waiver": True, "advice_only": False}
        intake = intakes.create_intake(customer, plans.get_plan(plan_code), data, [],
                                       {"ip": "127.0.0.1", "user_agent": "bench"})
        payments.start_checkout(
            intake, lambda pid: url_for("customer.checkout_success", payment_id=pid, _external=True),
            url_for("customer.intake_new", _external=True))
        db.session.commit()
        payment_id = db.session.scalar(db.select(Payment.id).where(Payment.intake_id == intake.id))
        session = payments.fulfil_payment(payment_id, f"pi_bench_{payment_id}")
        session_id = session.id
        request_id = db.session.scalar(db.select(SessionRequest.id).where(SessionRequest.session_id == session_id))
        t_commit = timed_commit()
        return {"request_id": request_id, "session_id": session_id, "t_commit": t_commit,
                "t_hooks_done": time.monotonic()}

    def active_request(email):
        customer = user_by_email(email)
        session = lifecycle.active_session_for_customer(customer.id)
        if session is None:
            return None
        request_id = db.session.scalar(db.select(SessionRequest.id).where(SessionRequest.session_id == session.id)
                                       .order_by(SessionRequest.id.desc()))
        return {"request_id": request_id, "session_id": session.id}

    def cancel_active(email):
        customer = user_by_email(email)
        session = lifecycle.active_session_for_customer(customer.id)
        if session is None:
            return None
        lifecycle.cancel_by_customer(session.id, customer.id)
        return timed_commit()

    def accept(request_id, mechanic_email):
        mechanic = user_by_email(mechanic_email)
        session = lifecycle.accept_request(request_id, mechanic.id)
        db.session.commit()
        return session.id

    def make_sessions(pairs, plan_code="chat10"):
        """(customer_email, mechanic_email) -> a waiting session (paid, accepted) per pair."""
        ids = []
        for customer_email, mechanic_email in pairs:
            opened = open_request(customer_email, "Brakes squeal at low speed, bench chat", plan_code)
            ids.append(accept(opened["request_id"], mechanic_email))
            db.session.remove()
        return ids

    def go_live(session_ids):
        """What both people opening the room does to a waiting session (join_room for each, then
        maybe_go_live), after which both leave again: the session stays live, its clock running."""
        statuses = {}
        for session_id in session_ids:
            session = db.session.get(ConsultSession, session_id)
            people = (session.customer_id, session.mechanic_id)
            for user_id in people:
                lifecycle.join_room(session_id, user_id)
                db.session.commit()
            lifecycle.maybe_go_live(session_id)
            db.session.commit()
            for user_id in people:
                lifecycle.leave_room(session_id, user_id)
                db.session.commit()
            statuses[session_id] = db.session.get(ConsultSession, session_id).status
            db.session.remove()
        return statuses

    def session_statuses(session_ids):
        rows = db.session.execute(db.select(ConsultSession.status, db.func.count())
                                  .where(ConsultSession.id.in_(session_ids)).group_by(ConsultSession.status))
        return dict(rows.all())

    def end_sessions(session_ids):
        done = 0
        for session_id in session_ids:
            session = db.session.get(ConsultSession, session_id)
            try:
                lifecycle.end_session(session_id, session.mechanic_id, "Bench session ended.")
                db.session.commit()
                done += 1
            except Exception:
                db.session.rollback()
        return done

    def mint_sessions(emails, user_agent):
        """The session cookie POST /login would set for each user, produced by the app's own
        code (flask_login.login_user in a request from 127.0.0.1 with the client's User-Agent,
        then the app's session interface), without the Argon2id check (~0.25 CPU-s each)."""
        from flask import session as flask_session
        from flask_login import login_user

        cookies = {}
        for email in emails:
            user = user_by_email(email)
            with app.test_request_context("/login", method="POST", headers={"User-Agent": user_agent},
                                          environ_base={"REMOTE_ADDR": "127.0.0.1"}):
                login_user(user)
                response = app.response_class()
                app.session_interface.save_session(app, flask_session, response)
                name, _, rest = response.headers["Set-Cookie"].partition("=")
                cookies[email] = (name, rest.split(";", 1)[0])
        return cookies

    def time_slots(mechanic_emails, repeats_month, repeats_day):
        """Give each mechanic a working week (Mon–Sat 09:00–12:00 and 13:00–17:00 in one of four
        zones, 15 min buffer, 60-day window), three appointments and a day off in the next month;
        then time services.availability: 30 days for one mechanic, and one day for all of them."""
        from datetime import timedelta

        from autodoctor import clock
        from autodoctor.models import Appointment, MechanicProfile, Plan, TimeOff, WeeklyHours
        from autodoctor.services import availability

        zones = ("America/Toronto", "America/Vancouver", "Europe/London", "America/Halifax")
        plan_id = db.session.scalar(db.select(Plan.id).where(Plan.code == "video15"))
        customer_id = db.session.scalar(db.select(User.id).where(User.role == "customer"))
        ids = [user_by_email(e).id for e in mechanic_emails]
        now = clock.now().replace(minute=0, second=0, microsecond=0)
        for n, mechanic_id in enumerate(ids):
            profile = db.session.get(MechanicProfile, mechanic_id)
            profile.time_zone, profile.buffer_minutes, profile.booking_window_days = zones[n % 4], 15, 60
            db.session.add_all(WeeklyHours(mechanic_id=mechanic_id, weekday=d, start_minute=lo, end_minute=hi)
                               for d in range(6) for lo, hi in ((540, 720), (780, 1020)))
            for k in range(3):
                start = now + timedelta(days=3 + 7 * k, hours=n % 8)
                db.session.add(Appointment(customer_id=customer_id, mechanic_id=mechanic_id, plan_id=plan_id,
                                           status="booked", starts_at=start, ends_at=start + timedelta(minutes=45)))
            db.session.add(TimeOff(mechanic_id=mechanic_id, starts_at=now + timedelta(days=10),
                                   ends_at=now + timedelta(days=11)))
        db.session.commit()

        def timed(fn, repeats):
            samples, result = [], None
            for _ in range(repeats):
                db.session.expire_all()
                t = time.perf_counter()
                result = fn()
                samples.append(time.perf_counter() - t)
                db.session.rollback()
            return samples, result

        month, month_slots = timed(lambda: availability.slots(ids[0], now, now + timedelta(days=30), 45),
                                   repeats_month)
        day_start, day_end = availability.day_window((now + timedelta(days=2)).date(), "America/Toronto")
        day, day_slots = timed(lambda: availability.slots_for_mechanics(ids, day_start, day_end, 45), repeats_day)
        return {"month": month, "month_slots": len(month_slots), "day": day, "mechanics": len(ids),
                "day_slots": sum(len(v) for v in day_slots.values())}

    handlers = {f.__name__: f for f in (mint_sessions, create_users, open_request, active_request, cancel_active, accept,
                                         make_sessions, go_live, session_statuses, end_sessions, time_slots)}
    with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
        while True:
            try:
                cmd, args = conn.recv()
            except EOFError:
                break
            if cmd == "stop":
                break
            try:
                conn.send(("ok", handlers[cmd](*args)))
            except Exception:
                db.session.rollback()
                conn.send(("error", traceback.format_exc()))
            finally:
                db.session.remove()
    conn.close()


class Actor:
    """Synchronous proxy; call it from a thread (asyncio.to_thread) in the measuring process."""

    def __init__(self):
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="bench-actor", daemon=True)
        self._proc.start()
        self._lock = threading.Lock()

    @property
    def pid(self):
        return self._proc.pid

    def call(self, cmd, *args):
        with self._lock:
            self._conn.send((cmd, args))
            status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"actor {cmd} failed:\n{value}")
        return value

    def stop(self):
        try:
            with self._lock:
                self._conn.send(("stop", ()))
        except OSError:
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
