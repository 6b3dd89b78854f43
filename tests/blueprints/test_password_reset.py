"""Password reset: "Forgot your password?" on the login page (the same answer whether the
account exists or not, rate limited), the e-mailed link (works once, for one hour), the new
password (logs out every other login)."""
import re
import time
from datetime import timedelta

import sqlalchemy as sa

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import OutboxEmail
from autodoctor.services import accounts
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "a-brand-new-secret"
SENT = "If an account uses that e-mail, we have sent it a link to choose a new password."


def text(response):
    return response.get_data(as_text=True)


def wait_for(mailbox, to, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for message in mailbox:
            if message["To"] == to and "Reset your AutoDoctor password" in message["Subject"]:
                return message
        time.sleep(0.05)
    raise AssertionError(f"no reset e-mail; got {[m['Subject'] for m in mailbox]}")


def link_in(body):
    return re.search(r"https?://[^/\s]+(/reset-password/\S+)", body).group(1)


def body_of(message):
    return next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()


def ask(client, email):
    return client.post("/reset-password", data={"email": email}, follow_redirects=True)


def test_forgot_password_end_to_end_with_a_real_mail_server(app, client, login, smtp_server):
    customer = UserFactory("customer")
    db.session.commit()
    other_device = login(customer)
    login_page = text(client.get("/login"))
    assert 'href="/reset-password"' in login_page and "Forgot your password?" in login_page
    assert "Reset your password" in text(client.get("/reset-password"))

    response = ask(client, customer.email.upper())
    assert SENT in text(response) and "Log in" in text(response)
    path = link_in(body_of(wait_for(smtp_server, customer.email)))

    form = client.get(path)
    assert form.status_code == 200 and "Choose a new password" in text(form)
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm": "something-else"})
    assert response.status_code == 422 and "The passwords do not match." in text(response)
    response = client.post(path, data={"password": "short", "confirm": "short"})
    assert response.status_code == 422 and f"Use at least {accounts.MIN_PASSWORD} characters." in text(response)
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert "Your password is changed." in text(client.get("/login"))

    # Every other login ended; the old password no longer works, the new one does.
    assert other_device.get("/customer/").status_code == 302
    fresh = app.test_client()
    assert "do not match an account" in text(fresh.post("/login", data={"email": customer.email,
                                                                         "password": PASSWORD}))
    assert fresh.post("/login", data={"email": customer.email, "password": NEW_PASSWORD}).status_code == 303

    # The link worked once.
    again = app.test_client().get(path)
    assert again.status_code == 410 and "expired or was already used" in text(again)
    assert 'href="/reset-password"' in text(again)
    response = app.test_client().post(path, data={"password": "another-password-1", "confirm": "another-password-1"})
    assert response.status_code == 410
    assert app.test_client().post("/login", data={"email": customer.email,
                                                  "password": NEW_PASSWORD}).status_code == 303


def test_the_same_answer_for_an_unknown_email(app, client):
    customer = UserFactory("customer")
    db.session.commit()
    unknown = ask(client, "nobody@example.com")
    known = ask(app.test_client(), customer.email)
    assert unknown.status_code == known.status_code == 200
    assert SENT in text(unknown) and SENT in text(known)
    sent = db.session.scalars(sa.select(OutboxEmail.to_address)).all()
    assert sent == [customer.email]
    empty = client.post("/reset-password", data={})
    assert empty.status_code == 422 and "Enter your e-mail." in text(empty)


def test_the_link_expires_after_one_hour(app, client):
    customer = UserFactory("customer")
    db.session.commit()
    start = clock.now()
    clock.set(start)
    path = f"/reset-password/{accounts.reset_token(customer)}"
    clock.set(start + timedelta(minutes=59))
    assert client.get(path).status_code == 200
    clock.set(start + timedelta(hours=1, seconds=1))
    response = client.get(path)
    assert response.status_code == 410 and "expired or was already used" in text(response)
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 410
    db.session.expire_all()
    assert accounts.authenticate(customer.email, PASSWORD) is not None


def test_a_wrong_or_forged_token_is_refused(app, client):
    customer = UserFactory("customer")
    db.session.commit()
    token = accounts.reset_token(customer)
    for bad in ("not-a-token", token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        response = client.get(f"/reset-password/{bad}")
        assert response.status_code == 410 and "Ask for a new link" in text(response)
    forged = accounts.URLSafeTimedSerializer("another-secret", salt="password-reset").dumps([customer.id, "x"])
    assert client.get(f"/reset-password/{forged}").status_code == 410


def test_asking_is_rate_limited(app, client):
    for _ in range(5):
        assert client.post("/reset-password", data={"email": "someone@example.com"}).status_code == 303
    assert client.post("/reset-password", data={"email": "someone@example.com"}).status_code == 429
