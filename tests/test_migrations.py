"""The Alembic chain builds the schema the models describe, from an empty database, on SQLite
and on Postgres, including the partial unique indexes the lifecycle relies on."""
import logging
import os
import uuid

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from autodoctor.extensions import db
from autodoctor.models import include_object
from tests.conftest import _make_app, create_pg_database, drop_pg_database, require_services

PARTIAL_UNIQUE = {
    "uq_sessions_customer_active": ("sessions", "'pending'", "'waiting'", "'live'"),
    "uq_sessions_mechanic_active": ("sessions", "'waiting'", "'live'"),
    "uq_session_requests_session_open": ("session_requests", "'pending'", "'unattended'"),
}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    require_services()
    name = f"autodoctor_mig_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = create_pg_database(name)
    yield url
    drop_pg_database(name)


@pytest.fixture
def _keep_logging():
    """migrations/env.py runs logging.config.fileConfig(alembic.ini), which disables every
    logger that already exists and replaces the root handlers; put things back afterwards so
    later tests (caplog) still see the app's log records."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved = {name: (lg.disabled, lg.level) for name, lg in logging.root.manager.loggerDict.items()
             if isinstance(lg, logging.Logger)}
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, (disabled, level) in saved.items():
        lg = logging.getLogger(name)
        lg.disabled, lg.level = disabled, level


@pytest.fixture
def migrated_app(empty_database_url, tmp_path, _keep_logging):
    app = _make_app(tmp_path, SQLALCHEMY_DATABASE_URI=empty_database_url)
    with app.app_context():
        assert sa.inspect(db.engine).get_table_names() == []
        flask_migrate.upgrade()  # what `flask db upgrade` runs
        yield app
        db.session.remove()
        db.engine.dispose()


def schema_differences():
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        return compare_metadata(context, db.metadata)


def test_upgrade_from_empty_matches_the_models(migrated_app):
    tables = set(sa.inspect(db.engine).get_table_names())
    assert {t.name for t in db.metadata.sorted_tables} | {"alembic_version"} == tables
    assert schema_differences() == []
    with db.engine.connect() as conn:
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert head is not None


def test_partial_unique_indexes_exist(migrated_app):
    dialect = db.engine.dialect.name
    with db.engine.connect() as conn:
        if dialect == "sqlite":
            rows = dict(conn.execute(sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")).all())
        else:
            rows = dict(conn.execute(sa.text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")).all())
    for name, (table, *statuses) in PARTIAL_UNIQUE.items():
        definition = rows.get(name)
        assert definition, f"index {name} missing"
        upper = definition.upper()
        assert "UNIQUE" in upper and " WHERE " in upper and table in definition, definition
        for status in statuses:
            assert status in definition, definition


def test_migrated_database_enforces_one_active_session_per_customer_and_mechanic(migrated_app):
    """The indexes are not only there: they bite, and only for active states."""
    with db.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO users (id, email, password_hash, full_name, role, created_at) VALUES "
            "(1, 'c1@x.test', 'h', 'C1', 'customer', '2026-11-24 10:00:00'),"
            "(2, 'c2@x.test', 'h', 'C2', 'customer', '2026-11-24 10:00:00'),"
            "(3, 'm@x.test', 'h', 'M', 'mechanic', '2026-11-24 10:00:00')"))
        conn.execute(sa.text(
            "INSERT INTO plans (id, code, name, price_cents, minutes, kind, features, max_photos, position, active)"
            " VALUES (1, 'chat10', 'Quick Chat', 999, 30, 'chat', '', 5, 0, true)"))
        conn.execute(sa.text(
            "INSERT INTO intakes (id, customer_id, plan_id, concern, city, country, advice_only, created_at) VALUES "
            + ", ".join(f"({i}, {1 if i <= 3 else 2}, 1, 'Noise when braking', 'Toronto', 'CA', false, "
                        f"'2026-11-24 10:00:00')" for i in range(1, 7))))

    def insert_session(intake_id, customer_id, status, mechanic_id="NULL"):
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO sessions (customer_id, mechanic_id, plan_id, intake_id, status, minutes, created_at) "
                f"VALUES ({customer_id}, {mechanic_id}, 1, {intake_id}, '{status}', 30, '2026-11-24 10:00:00')"))

    insert_session(1, 1, "waiting", mechanic_id=3)
    with pytest.raises(sa.exc.IntegrityError):
        insert_session(2, 1, "pending")  # the same customer, a second active session
    insert_session(2, 1, "completed")  # finished sessions are not counted
    with pytest.raises(sa.exc.IntegrityError):
        insert_session(4, 2, "live", mechanic_id=3)  # the same mechanic, a second waiting/live session
    insert_session(4, 2, "pending")  # a pending session has no mechanic yet: fine


def test_downgrade_to_base_and_back(migrated_app):
    flask_migrate.downgrade(revision="base")
    assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
    flask_migrate.upgrade()
    assert schema_differences() == []
