"""AutoDoctor: live consultations between vehicle owners and certified mechanics."""
import logging

from flask import Flask

from autodoctor.extensions import compress, csrf, db, limiter, login_manager, migrate, sock


def create_app(config=None):
    app = Flask(__name__)
    if config is None:
        import os

        import config as config_module

        config = config_module.ProductionConfig if os.environ.get("FLASK_ENV") == "production" \
            else config_module.Config
    app.config.from_object(config)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        from pathlib import Path

        Path(app.config["SQLALCHEMY_DATABASE_URI"][len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from autodoctor import models  # noqa: F401 - register the models with SQLAlchemy

    db.init_app(app)
    migrate.init_app(app, db, directory=str(__import__("pathlib").Path(app.root_path).parent / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    sock.init_app(app)
    compress.init_app(app)
    limiter.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _tune_sqlite(app)

    from autodoctor import realtime

    app.extensions["broker"] = realtime.make_broker(app)

    from autodoctor import security
    from autodoctor.blueprints import register_blueprints
    from autodoctor.htmx import init_htmx

    security.init_app(app)
    init_htmx(app)
    register_blueprints(app)
    _register_template_helpers(app)
    _register_commands(app)
    return app


def _tune_sqlite(app):
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            if app.config["SQLALCHEMY_DATABASE_URI"] != "sqlite://":
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()


def _register_template_helpers(app):
    from autodoctor.services.plans import format_price

    app.jinja_env.filters["price"] = format_price
    app.jinja_env.filters["when"] = lambda dt: dt.strftime("%b %d, %Y %H:%M UTC") if dt else "—"


def _register_commands(app):
    import click

    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create plans and the demo admin, mechanics and customers."""
        from autodoctor.services import demo

        users = demo.seed_demo()
        db.session.commit()
        click.echo(f"Demo logins (password: {demo.DEMO_PASSWORD}):")
        for email, role in users:
            click.echo(f"  {role:<9} {email}")

    @app.cli.command("seed-plans")
    def seed_plans_command():
        """Insert the default plans that are missing."""
        from autodoctor.services import plans

        plans.seed_plans()
        db.session.commit()

    @app.cli.command("sweep")
    def sweep_command():
        """Apply overdue transitions once."""
        from autodoctor.services import sweep

        click.echo(f"{sweep.run_sweep()} transitions applied")
