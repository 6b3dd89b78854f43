def register_blueprints(app):
    from autodoctor.blueprints.admin import bp as admin_bp
    from autodoctor.blueprints.auth import bp as auth_bp
    from autodoctor.blueprints.customer import bp as customer_bp
    from autodoctor.blueprints.mechanic import bp as mechanic_bp
    from autodoctor.blueprints.public import bp as public_bp
    from autodoctor.blueprints.room import bp as room_bp
    from autodoctor.blueprints.webhooks import bp as webhooks_bp

    for bp in (public_bp, auth_bp, customer_bp, mechanic_bp, admin_bp, room_bp, webhooks_bp):
        app.register_blueprint(bp)
