"""The admin console benchmark's data generator and harness (bench/admin.py), at a tiny size on
Postgres: the data respects the schema's rules, the money balances, and every page the bench
times answers, with the CSV exports streaming every row."""
import sqlalchemy as sa

from autodoctor.extensions import db
from bench import admin

TINY = {"admins": 2, "mechanics": 110, "customers": 120, "sessions": 400, "chat": 3000, "audit": 160, "days": 30}


def _scalar(sql, **params):
    return db.session.execute(sa.text(sql), params).scalar()


def test_generator_makes_consistent_data_and_every_timed_page_answers(pg_app, pg_url):
    with db.engine.begin() as conn:
        generated = admin.generate(conn, TINY)

    assert _scalar("SELECT count(*) FROM users") == 2 + 110 + 120
    assert _scalar("SELECT count(*) FROM sessions") == 400
    assert _scalar("SELECT count(*) FROM intakes") == 400
    assert _scalar("SELECT count(*) FROM payments") == 400
    assert _scalar("SELECT count(*) FROM chat_messages") == 3000
    assert _scalar("SELECT count(*) FROM audit_log") == 160
    assert _scalar("SELECT count(*) FROM chat_messages WHERE session_id = :s",
                   s=generated["ids"]["detail_session"]) == 50
    statuses = dict(db.session.execute(sa.text("SELECT status, count(*) FROM sessions GROUP BY status")).all())
    assert statuses["pending"] == 20 and statuses["live"] == 10 and statuses["waiting"] == 10
    assert statuses["completed"] > statuses["cancelled"] > 0
    # Money: every transaction balances; escrow is empty once a session is over, holds the price while active.
    assert _scalar("SELECT count(*) FROM (SELECT txn_id FROM ledger_entries GROUP BY txn_id "
                   "HAVING sum(amount_cents) <> 0) AS t") == 0
    assert _scalar("""SELECT count(*) FROM sessions s JOIN payments p ON p.session_id = s.id
                      WHERE (SELECT coalesce(sum(amount_cents), 0) FROM ledger_entries l
                             WHERE l.session_id = s.id AND l.account = 'escrow')
                            <> CASE WHEN s.status IN ('completed', 'cancelled') THEN 0 ELSE p.amount_cents END""") == 0
    assert _scalar("SELECT count(*) FROM session_requests WHERE status = 'unattended'") == 19
    # New rows after the generated ones get ids from the sequences.
    assert _scalar("SELECT nextval(pg_get_serial_sequence('sessions', 'id'))") == 401
    db.session.rollback()

    meta = {"t0": generated["t0"], "ids": generated["ids"]}
    results = admin.measure(pg_url, meta, samples=2, warmup=1, log=lambda msg: None, explain=False)

    assert results["errors"] == []
    labels = {(r["group"], r["label"]) for r in results["rows"]}
    for name in admin.TABLES:
        assert (name, "page (default)") in labels
        assert (name, "fragment, page 2, 3, … (next cursor)") in labels
    assert {("pages", "dashboard"), ("pages", "unattended queue")} <= labels
    assert all(len(r["samples"]) == 2 and r["queries"] > 0 for r in results["rows"])
    exports = {x["url"]: x for x in results["csv"]}
    assert exports["/admin/sessions.csv"]["rows"] == 400
    assert exports["/admin/payments.csv"]["rows"] == 400
    assert exports["/admin/sessions.csv"]["chunks"] >= 2 and exports["/admin/sessions.csv"]["tracemalloc_peak"] > 0
