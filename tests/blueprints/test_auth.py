"""Sign-up, log-in per role, log-out, throttling, password hashing, cookies and CSRF."""
import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

import config
from autodoctor import create_app
from autodoctor.extensions import db
from autodoctor.models import User
from autodoctor.services import plans
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "a-long-enough-password"
THROTTLED = "Too many attempts. Please wait a minute and try again."
NO_MATCH = "That e-mail and password do not match an account."


def text(response):
    return response.get_data(as_text=True)


def signup(client, **overrides):
    data = {"full_name": "Sam Driver", "email": "sam@example.com", "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD, **overrides}
    return client.post("/signup", data=data)


def users_named(email):
    return db.session.scalar(sa.select(sa.func.count(User.id)).where(User.email == email))


# --- sign-up ---------------------------------------------------------------------------------

def test_signup_creates_a_logged_in_customer(client):
    response = signup(client, email="Sam@Example.COM")
    assert response.status_code == 303
    assert response.headers["Location"] == "/customer/intake"
    user = db.session.scalar(sa.select(User).where(User.email == "sam@example.com"))
    assert user is not None and user.role == "customer" and user.full_name == "Sam Driver"
    page = client.get("/customer/intake", follow_redirects=True)  # on to the book-now wizard
    assert page.status_code == 200
    assert "Welcome to AutoDoctor" in text(page)


def test_signup_with_a_short_password_says_so(client):
    response = signup(client, password="short9", confirm="short9")
    assert response.status_code == 422
    assert "Use at least 10 characters." in text(response)
    assert users_named("sam@example.com") == 0


def test_signup_with_mismatched_passwords_says_so(client):
    response = signup(client, confirm="something-else-entirely")
    assert response.status_code == 422
    assert "The passwords do not match." in text(response)
    assert users_named("sam@example.com") == 0


@pytest.mark.parametrize("email", ["a@example.com", "A@EXAMPLE.com"])
def test_signup_with_a_taken_email_says_so(client, users, email):
    response = signup(client, email=email)
    assert response.status_code == 422
    assert "An account with this e-mail already exists. Log in instead." in text(response)
    assert users_named("a@example.com") == 1


def test_signup_with_an_invalid_email_says_so(client):
    response = signup(client, email="not-an-email")
    assert response.status_code == 422
    assert "Enter a valid e-mail." in text(response)


# --- log-in, log-out -------------------------------------------------------------------------

@pytest.mark.parametrize("role,path,heading", [
    ("customer_a", "/customer/", "My sessions"),
    ("mechanic_a", "/mechanic/", "Open requests"),
    ("admin", "/admin/", "Today"),
])
def test_login_lands_each_role_on_its_dashboard(app, users, role, path, heading):
    client = app.test_client()
    response = client.post("/login", data={"email": users[role].email, "password": PASSWORD},
                           follow_redirects=True)
    assert response.status_code == 200
    assert response.request.path == path
    assert f"<h1>{heading}" in text(response)


def test_login_is_case_insensitive_on_the_email(app, users):
    response = app.test_client().post("/login", data={"email": " A@Example.com", "password": PASSWORD})
    assert response.status_code == 303


@pytest.mark.parametrize("email,password", [("a@example.com", "wrong-password-here"),
                                            ("nobody@example.com", PASSWORD),
                                            ("a@example.com", "")])
def test_wrong_credentials_get_one_message(app, users, email, password):
    response = app.test_client().post("/login", data={"email": email, "password": password})
    assert response.status_code == 422
    if password:
        assert NO_MATCH in text(response)  # the same words whether or not the e-mail exists
    else:
        assert "Enter your password." in text(response)
    assert "Log out" not in text(response)


def test_login_follows_a_safe_next_and_ignores_an_open_redirect(app, users):
    client = app.test_client()
    ok = client.post("/login?next=/customer/intake", data={"email": "a@example.com", "password": PASSWORD})
    assert ok.headers["Location"] == "/customer/intake"
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = app.test_client().post(f"/login?next={target}",
                                          data={"email": "a@example.com", "password": PASSWORD})
        assert response.status_code == 303
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\"))
        assert urlsplit(location).netloc == ""


def test_logout(login, users):
    client = login(users["customer_a"])
    assert client.get("/customer/").status_code == 200
    response = client.post("/logout", follow_redirects=True)
    assert response.request.path == "/"
    assert "You are logged out." in text(response)
    after = client.get("/customer/")
    assert after.status_code == 302 and after.headers["Location"].startswith("/login")


def test_pages_need_a_login_and_the_right_role(app, login, users):
    anonymous = app.test_client()
    for path in ("/customer/", "/mechanic/", "/admin/"):
        response = anonymous.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    customer = login(users["customer_a"])
    assert customer.get("/mechanic/").status_code == 403
    assert customer.get("/admin/").status_code == 403
    mechanic = login(users["mechanic_a"])
    assert mechanic.get("/customer/").status_code == 403
    assert customer.get("/customer/").status_code == 200


def test_inactive_account_cannot_log_in(app, users):
    users["customer_b"].is_active_account = False
    db.session.commit()
    response = app.test_client().post("/login", data={"email": "b@example.com", "password": PASSWORD})
    assert response.status_code == 422
    assert "Your account is suspended" in text(response)  # told why only after the right password


# --- throttling ------------------------------------------------------------------------------

def test_login_is_throttled_after_repeated_failures(app, users):
    assert app.config["LOGIN_RATE_LIMIT"] == "5 per minute"
    client = app.test_client()
    for _ in range(5):
        response = client.post("/login", data={"email": "a@example.com", "password": "wrong-password-here"})
        assert response.status_code == 422
    throttled = client.post("/login", data={"email": "a@example.com", "password": "wrong-password-here"})
    assert throttled.status_code == 429
    assert THROTTLED in text(throttled)
    # Even the right password waits now: guessing cannot continue.
    right = client.post("/login", data={"email": "a@example.com", "password": PASSWORD})
    assert right.status_code == 429
    # Someone else logging in from the same address is not locked out.
    other = client.post("/login", data={"email": "b@example.com", "password": PASSWORD})
    assert other.status_code == 303


def test_successful_logins_do_not_use_up_the_allowance(app, users):
    client = app.test_client()
    for _ in range(8):
        assert client.post("/login", data={"email": "a@example.com", "password": PASSWORD}).status_code == 303
    assert client.post("/login", data={"email": "a@example.com", "password": "nope-nope-nope"}).status_code == 422


# --- password storage and cookies ------------------------------------------------------------

def test_passwords_are_stored_as_argon2id_hashes(client, monkeypatch):
    monkeypatch.undo()  # the production hasher, not the fast one the other tests use
    assert signup(client).status_code == 303
    user = db.session.scalar(sa.select(User).where(User.email == "sam@example.com"))
    stored = user.password_hash
    assert stored.startswith("$argon2id$v=19$")
    assert NEW_PASSWORD not in stored
    params = dict(p.split("=") for p in stored.split("$")[3].split(","))
    assert int(params["m"]) >= 19456 and int(params["t"]) >= 2  # at least OWASP's minimum
    PasswordHasher().verify(stored, NEW_PASSWORD)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(stored, NEW_PASSWORD + "x")


def test_session_cookie_is_httponly_and_samesite_lax(app, users):
    response = app.test_client().post("/login", data={"email": "a@example.com", "password": PASSWORD})
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1
    assert "HttpOnly" in cookies[0]
    assert "SameSite=Lax" in cookies[0]


# --- CSRF ------------------------------------------------------------------------------------

@pytest.fixture
def csrf_app(tmp_path):
    class CsrfConfig(config.TestConfig):
        WTF_CSRF_ENABLED = True
        UPLOAD_DIR = str(tmp_path / "csrf-uploads")

    csrf_app = create_app(CsrfConfig)
    with csrf_app.app_context():
        db.create_all()
        plans.seed_plans()
        UserFactory("customer", "csrf@example.com")
        db.session.commit()
    yield csrf_app
    with csrf_app.app_context():
        db.drop_all()


def form_token(page):
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', text(page)).group(0)
    return re.search(r'value="([^"]+)"', tag).group(1)


def htmx_token(page):
    return re.search(r'"X-CSRFToken": "([^"]+)"', text(page)).group(1)


def test_post_without_csrf_token_is_rejected(csrf_app):
    client = csrf_app.test_client()
    response = client.post("/login", data={"email": "csrf@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in text(response)
    assert client.post("/signup", data={"full_name": "X", "email": "x@example.com", "password": NEW_PASSWORD,
                                        "confirm": NEW_PASSWORD}).status_code == 400
    with csrf_app.app_context():
        assert users_named("x@example.com") == 0


def test_post_with_a_wrong_csrf_token_is_rejected(csrf_app):
    client = csrf_app.test_client()
    client.get("/login")
    response = client.post("/login", data={"email": "csrf@example.com", "password": PASSWORD,
                                           "csrf_token": "forged"})
    assert response.status_code == 400


def test_form_token_and_htmx_header_token_are_accepted(csrf_app):
    client = csrf_app.test_client()
    page = client.get("/login")
    token = form_token(page)
    response = client.post("/login", data={"email": "csrf@example.com", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303

    # HTMX requests carry the token from <body hx-headers> as X-CSRFToken.
    intake = client.get("/customer/intake", follow_redirects=True)
    header_token = htmx_token(intake)
    ok = client.post("/customer/intake/vin", data={"vin": "1HGCM82633A004352"},
                     headers={"HX-Request": "true", "X-CSRFToken": header_token})
    assert ok.status_code == 200 and "Honda" in text(ok)
    refused = client.post("/customer/intake/vin", data={"vin": "1HGCM82633A004352"},
                          headers={"HX-Request": "true"})
    assert refused.status_code == 400
    # Log-out is a POST too, and needs the token.
    assert client.post("/logout").status_code == 400
    assert client.post("/logout", headers={"X-CSRFToken": header_token}).status_code == 303
