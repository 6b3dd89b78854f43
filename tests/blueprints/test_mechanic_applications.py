"""Mechanic applications: sign-up with credentials (checked by content, all or nothing), the
dashboard while under review (no requests, no switch, no accepting), the admin's review with
the documents inline, approve / reject / revoke (audited, e-mailed), and the documents served
only to admins."""
import io
import time
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import (
    AuditEntry,
    MechanicCredential,
    MechanicProfile,
    Notification,
    OutboxEmail,
    SessionRequest,
    StoredFile,
    User,
)
from autodoctor.services import demo, routing
from tests.factories import PASSWORD, PaidSessionFactory, UserFactory

CONCERN = "Check engine light is on"  # every factory intake's concern


def png(color=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), color).save(buffer, format="PNG")
    return buffer.getvalue()


def pdf():
    return demo._demo_pdf("Certificate of Qualification")


def application(**overrides):
    data = {"full_name": "Nora Wrench", "email": "nora@example.com", "password": PASSWORD, "confirm": PASSWORD,
            "city": "Halifax", "country": "ca", "years_experience": "9", "red_seal": "yes",
            "specialties": "brakes, hybrids", "brands": "Toyota, Lexus", "bio": "Nine years at a Toyota dealer.",
            "certificate": (io.BytesIO(pdf()), "certificate.pdf"),
            "insurance": (io.BytesIO(png()), "insurance.png"),
            "others": [(io.BytesIO(png((0, 90, 200))), "licence.png")]}
    data.update(overrides)
    return data


def stored_files(app):
    folder = Path(app.config["UPLOAD_DIR"])
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def applicant(name="Pat Pending", **profile):
    """A mechanic who applied and waits for review, with a certificate (PDF) and insurance (PNG)."""
    from autodoctor.services import applications, uploads

    docs = applications.Documents(items=[
        ("certificate", uploads.check("cert.pdf", pdf(), kinds=applications.DOCUMENT_KINDS)),
        ("insurance", uploads.check("insurance.png", png(), kinds=applications.DOCUMENT_KINDS))])
    n = db.session.scalar(db.select(db.func.count(User.id)))
    user = applications.apply(f"applicant{n}@example.com", PASSWORD, name, "Toronto", "CA",
                              {"years_experience": 7, **profile}, docs)
    db.session.commit()
    return user


def open_request():
    """A paid, pending request on everyone's list (no head start for anyone)."""
    session = PaidSessionFactory(UserFactory("customer"))
    routing.broadcast(session.current_request.id, early=True)
    db.session.commit()
    return session.current_request.id


def profile_of(user_id):
    db.session.expire_all()
    return db.session.get(MechanicProfile, user_id)


def audit_rows(action):
    return db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == action)).all()


def text(response):
    return response.get_data(as_text=True)


def wait_for(mailbox, to, subject_contains, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for message in mailbox:
            if message["To"] == to and subject_contains in message["Subject"]:
                return message
        time.sleep(0.05)
    raise AssertionError(f"no e-mail about {subject_contains!r}; got {[m['Subject'] for m in mailbox]}")


def body_of(message):
    return next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()


# --- sign-up ---------------------------------------------------------------------------------

def test_the_sign_up_and_home_pages_link_to_the_application(app, client):
    assert 'href="/signup/mechanic"' in text(client.get("/signup"))
    assert 'href="/signup/mechanic"' in text(client.get("/"))
    page = text(client.get("/signup/mechanic"))
    assert "Apply to join as a mechanic" in page and 'enctype="multipart/form-data"' in page


def test_a_mechanic_applies_with_documents_and_lands_on_the_dashboard_under_review(app, client):
    response = client.post("/signup/mechanic", data=application(), content_type="multipart/form-data")
    assert response.status_code == 303 and response.headers["Location"] == "/mechanic/"
    user = db.session.scalar(db.select(User).where(User.email == "nora@example.com"))
    assert (user.role, user.city, user.country) == ("mechanic", "Halifax", "CA")
    profile = profile_of(user.id)
    assert profile.approved is False and profile.application_status == "pending"
    assert profile.applied_at is not None and profile.red_seal and profile.years_experience == 9
    assert (profile.specialties, profile.brands) == ("brakes, hybrids", "Toyota, Lexus")
    credentials = db.session.scalars(db.select(MechanicCredential).where(MechanicCredential.mechanic_id == user.id)
                                     .order_by(MechanicCredential.id)).all()
    assert [(c.kind, c.file.original_name, c.file.mime_type) for c in credentials] == [
        ("certificate", "certificate.pdf", "application/pdf"), ("insurance", "insurance.png", "image/png"),
        ("other", "licence.png", "image/png")]
    assert all(c.file.owner_id == user.id and c.file.intake_id is None and c.file.session_id is None
               for c in credentials)
    assert len(stored_files(app)) == 5  # three documents, two of them photos with a thumbnail

    page = text(client.get("/mechanic/"))  # logged in by the sign-up
    assert "Your application is under review" in page
    assert "certificate.pdf" in page and "insurance.png" in page and "licence.png" in page
    assert 'aria-checked="false"' in page and "once your application is approved" in page


@pytest.mark.parametrize("field,upload,message", [
    ("certificate", (io.BytesIO(b"<html><script>alert(1)</script></html>"), "certificate.pdf"),
     "“certificate.pdf” is not a file type we accept (JPEG, PNG, WebP, PDF)."),
    ("insurance", (io.BytesIO(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64), "insurance.mp4"),
     "“insurance.mp4” is a MP4 file; documents must be photos (JPEG, PNG, WebP) or PDFs."),
    ("others", [(io.BytesIO(b"%PDF-1.4 cut off"), "course.pdf")], "“course.pdf” looks like a PDF but is incomplete"),
])
def test_a_bad_document_is_refused_with_a_message_and_nothing_is_stored(app, client, field, upload, message):
    response = client.post("/signup/mechanic", data=application(**{field: upload}), content_type="multipart/form-data")
    assert response.status_code == 422
    page = text(response)
    assert message in page and f'id="field-{field}"' in page and "choose them again" in page
    assert db.session.scalar(db.select(User).where(User.email == "nora@example.com")) is None
    assert db.session.scalar(db.select(db.func.count(StoredFile.id))) == 0
    assert stored_files(app) == []


def test_both_required_documents_are_asked_for(app, client):
    data = application()
    del data["certificate"], data["insurance"]
    response = client.post("/signup/mechanic", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    page = text(response)
    assert "Upload your trade certificate" in page and "Upload your insurance document" in page
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0 and stored_files(app) == []


def test_a_taken_e_mail_stores_nothing(app, client):
    UserFactory("customer", "nora@example.com")
    db.session.commit()
    response = client.post("/signup/mechanic", data=application(), content_type="multipart/form-data")
    assert response.status_code == 422 and "An account with this e-mail already exists" in text(response)
    assert db.session.scalar(db.select(db.func.count(StoredFile.id))) == 0 and stored_files(app) == []


# --- not approved: no requests ------------------------------------------------------------------

def test_an_applicant_cannot_see_go_online_or_accept_requests(app, login):
    request_id = open_request()
    pending = applicant()
    client = login(pending)

    page = text(client.get("/mechanic/"))
    assert "Your application is under review" in page
    assert CONCERN not in page and 'id="request-list"' not in page and "sse-connect" not in page

    response = client.post("/mechanic/presence", data={"online": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert "You can take requests once your application is approved." in text(response)
    assert profile_of(pending.id).online is False and profile_of(pending.id).presence == "offline"

    response = client.post(f"/mechanic/requests/{request_id}/accept", headers={"HX-Request": "true"})
    assert response.status_code == 403 and "Only approved mechanics can take requests." in text(response)
    db.session.expire_all()
    assert db.session.get(SessionRequest, request_id).status == "pending"

    assert routing.visible_request_ids(pending.id) == set()
    assert routing.offers_for(pending.id) == [] and routing.taking_requests(pending.id) is False


def test_an_applicant_stream_sends_no_requests_and_no_offers(app, login):
    open_request()
    pending = applicant()
    app.config["SSE_KEEPALIVE_SECONDS"] = 0.2
    response = login(pending).get("/mechanic/stream", headers={"Accept": "text/event-stream"}, buffered=False)
    chunks = []
    for chunk in response.response:
        chunks.append(chunk.decode() if isinstance(chunk, bytes) else chunk)
        if len(chunks) == 3:
            break
    response.close()
    assert chunks[0].startswith(": connected")
    assert all(c.startswith(":") for c in chunks), chunks  # only comments: no requests, no offers
    assert CONCERN not in "".join(chunks)


def test_applicants_are_not_in_the_directory_nor_bookable(app, client):
    from autodoctor.blueprints.customer import scheduling
    from autodoctor.services import booking, working_hours

    pending = applicant(name="Hidden Applicant")
    working_hours.replace_week(pending.id, {day: [("09:00", "17:00")] for day in range(7)})
    db.session.commit()
    assert "Hidden Applicant" not in text(client.get("/mechanics"))
    assert client.get(f"/mechanics/{pending.id}").status_code == 404
    assert pending.id not in [m.id for m in scheduling._mechanics()]  # the schedule-for-later mechanic step
    assert booking._mechanic(pending.id) is None  # the book-now wizard's chosen mechanic


# --- the admin's review ------------------------------------------------------------------------

def test_the_queue_lists_pending_applications_oldest_first(app, login):
    admin = UserFactory("admin")
    clock.set(clock.now() - timedelta(days=2))
    older = applicant(name="Older Applicant")
    clock.reset()
    newer = applicant(name="Newer Applicant")
    UserFactory("mechanic", full_name="Veteran Approved")  # approved by an admin, never applied
    db.session.commit()
    page = text(login(admin).get("/admin/applications"))
    assert page.index("Older Applicant") < page.index("Newer Applicant")
    assert "Veteran Approved" not in page
    assert f'href="/admin/applications/{older.id}"' in page
    row = page[page.index(f'id="application-{newer.id}"'):]
    assert "<td>7</td>" in row[:600] and "<td>2</td>" in row[:600]  # years, documents
    assert "No rejected applications." in text(login(admin).get("/admin/applications?status=rejected"))


def test_the_application_page_shows_the_documents_inline(app, login):
    admin = UserFactory("admin")
    pending = applicant()
    cert, insurance = db.session.scalars(db.select(MechanicCredential).where(
        MechanicCredential.mechanic_id == pending.id).order_by(MechanicCredential.id)).all()
    page = text(login(admin).get(f"/admin/applications/{pending.id}"))
    assert f'<object class="app-pdf" data="/admin/credentials/{cert.id}" type="application/pdf"' in page
    assert f'<img class="app-image" src="/admin/credentials/{insurance.id}"' in page
    assert f'href="/admin/credentials/{cert.id}?download=1"' in page
    assert 'id="approve-form"' in page and 'id="reject-form"' in page


def test_admin_approves_then_the_mechanic_is_emailed_and_can_take_requests(app, login, smtp_server):
    admin = UserFactory("admin")
    pending = applicant()
    request_id = open_request()
    client = login(admin)

    response = client.post(f"/admin/applications/{pending.id}/approve", data={})
    assert response.status_code == 422 and "Tick the box to confirm you checked the documents." in text(response)
    assert profile_of(pending.id).approved is False and audit_rows("mechanic.approve") == []

    response = client.post(f"/admin/applications/{pending.id}/approve", data={"confirm": "y"})
    assert response.status_code == 303
    assert "Approved. The mechanic was e-mailed" in text(client.get(response.headers["Location"]))
    profile = profile_of(pending.id)
    assert profile.approved and profile.reviewed_by_id == admin.id and profile.reviewed_at is not None
    [entry] = audit_rows("mechanic.approve")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (admin.id, "user", pending.id)
    assert entry.before["approved"] is False and entry.after["approved"] is True
    assert entry.after["reviewed_by_id"] == admin.id
    message = wait_for(smtp_server, pending.email, "You are approved")
    assert "you can now take requests" in body_of(message).lower() and "Taking requests" in body_of(message)
    assert db.session.scalar(db.select(Notification).where(Notification.user_id == pending.id)) is not None

    # Approving again changes nothing (a guarded update) and says so.
    response = client.post(f"/admin/applications/{pending.id}/approve", data={"confirm": "y"}, follow_redirects=True)
    assert "This mechanic is approved already." in text(response) and len(audit_rows("mechanic.approve")) == 1

    mechanic = login(pending)
    assert mechanic.post("/mechanic/presence", data={"online": "1"}).status_code == 303
    page = text(mechanic.get("/mechanic/"))
    assert CONCERN in page and "under review" not in page
    response = mechanic.post(f"/mechanic/requests/{request_id}/accept", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/room/")


def test_admin_rejects_with_a_reason_and_the_mechanic_re_applies(app, login):
    admin = UserFactory("admin")
    pending = applicant()
    client = login(admin)

    response = client.post(f"/admin/applications/{pending.id}/reject", data={"reason": "  "})
    assert response.status_code == 422 and "Give the reason: the mechanic reads it." in text(response)
    assert profile_of(pending.id).application_status == "pending" and audit_rows("mechanic.reject") == []

    reason = "The insurance document has expired; please send the current one."
    assert client.post(f"/admin/applications/{pending.id}/reject", data={"reason": reason}).status_code == 303
    profile = profile_of(pending.id)
    assert (profile.application_status, profile.rejection_reason) == ("rejected", reason)
    [entry] = audit_rows("mechanic.reject")
    assert entry.reason == reason and entry.before["rejection_reason"] is None
    assert entry.after["rejection_reason"] == reason
    email = db.session.scalar(db.select(OutboxEmail).where(OutboxEmail.to_address == pending.email))
    assert "not approved" in email.subject and reason in email.body_text and "How to re-apply" in email.body_text
    assert "No rejected" not in text(client.get("/admin/applications?status=rejected"))

    mechanic = login(pending)
    page = text(mechanic.get("/mechanic/"))
    assert "Your application was not approved" in page and reason in page and "Re-apply" in page

    # A bad file: refused, still rejected, nothing new stored.
    files_before = db.session.scalar(db.select(db.func.count(StoredFile.id)))
    response = mechanic.post("/mechanic/application", content_type="multipart/form-data",
                             data={"insurance": (io.BytesIO(b"GIF89a not really"), "insurance.gif")})
    assert response.status_code == 422 and "is not a file type we accept" in text(response)
    assert profile_of(pending.id).application_status == "rejected"
    assert db.session.scalar(db.select(db.func.count(StoredFile.id))) == files_before

    response = mechanic.post("/mechanic/application", content_type="multipart/form-data",
                             data={"insurance": (io.BytesIO(png((0, 200, 0))), "insurance-2026.png")})
    assert response.status_code == 303
    profile = profile_of(pending.id)
    assert profile.application_status == "pending" and profile.rejection_reason is None
    assert "insurance-2026.png" in text(mechanic.get("/mechanic/"))
    page = text(client.get("/admin/applications"))
    assert f'id="application-{pending.id}"' in page and "<td>3</td>" in page


def test_admin_revokes_an_approval_and_the_mechanic_goes_offline(app, login):
    admin = UserFactory("admin")
    mechanic = UserFactory("mechanic", full_name="Once Approved")
    db.session.commit()
    client = login(mechanic)
    assert client.post("/mechanic/presence", data={"online": "1"}).status_code == 303
    client.get("/mechanic/stream", headers={"Accept": "text/event-stream"}, buffered=False).close()  # seen: online
    assert profile_of(mechanic.id).presence == "online"

    response = login(admin).post(f"/admin/applications/{mechanic.id}/revoke", data={})
    assert response.status_code == 422 and profile_of(mechanic.id).approved
    response = login(admin).post(f"/admin/applications/{mechanic.id}/revoke", data={"reason": "Licence suspended."})
    assert response.status_code == 303
    profile = profile_of(mechanic.id)
    assert (profile.approved, profile.online, profile.presence) == (False, False, "offline")
    [entry] = audit_rows("mechanic.revoke")
    assert (entry.before["approved"], entry.before["online"], entry.before["rejection_reason"]) == (True, True, None)
    assert entry.after["approved"] is False and entry.after["rejection_reason"] == "Licence suspended."
    assert db.session.scalar(db.select(OutboxEmail.subject).where(OutboxEmail.to_address == mechanic.email)) == \
        "Your AutoDoctor approval was withdrawn"
    assert client.post("/mechanic/presence", data={"online": "1"}, headers={"HX-Request": "true"}).status_code == 403
    page = text(client.get("/mechanic/"))
    assert "Your approval was withdrawn" in page and "Licence suspended." in page and "Re-apply" in page


def test_an_empty_post_or_a_person_without_an_application_changes_nothing(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    db.session.commit()
    client = login(admin)
    response = client.get(f"/admin/applications/{customer.id}", follow_redirects=True)
    assert "That person has no mechanic application." in text(response)
    for action in ("approve", "reject", "revoke"):
        assert client.post(f"/admin/applications/{customer.id}/{action}", data={}).status_code == 303
    assert db.session.scalar(db.select(db.func.count(AuditEntry.id))) == 0


# --- the documents, for admins only ---------------------------------------------------------------

def test_credential_files_are_served_only_to_admins(app, login, client):
    admin = UserFactory("admin")
    pending = applicant()
    db.session.commit()
    cert, insurance = db.session.scalars(db.select(MechanicCredential).where(
        MechanicCredential.mechanic_id == pending.id).order_by(MechanicCredential.id)).all()
    admin_client = login(admin)

    response = admin_client.get(f"/admin/credentials/{insurance.id}")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.get_data() == png()
    assert response.headers["Content-Security-Policy"] == "sandbox; frame-ancestors 'self'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private, no-store"

    response = admin_client.get(f"/admin/credentials/{cert.id}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.get_data().startswith(b"%PDF-") and "attachment" not in response.headers.get("Content-Disposition", "")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"  # the review page embeds it
    assert response.headers["Content-Security-Policy"] == "sandbox; frame-ancestors 'self'"
    response = admin_client.get(f"/admin/credentials/{cert.id}?download=1")
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert admin_client.get("/admin/credentials/999999").status_code == 404

    for person in (pending, UserFactory("mechanic"), UserFactory("customer")):
        db.session.commit()
        assert login(person).get(f"/admin/credentials/{cert.id}").status_code == 403
    response = client.get(f"/admin/credentials/{cert.id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_demo_seed_has_one_pending_applicant_with_two_documents(app):
    demo.seed_demo()
    demo.seed_demo()  # idempotent
    db.session.commit()
    user = db.session.scalar(db.select(User).where(User.email == demo.DEMO_APPLICANT[0]))
    assert profile_of(user.id).application_status == "pending"
    kinds = db.session.scalars(db.select(MechanicCredential.kind).where(MechanicCredential.mechanic_id == user.id)).all()
    assert sorted(kinds) == ["certificate", "insurance"]
    approved = db.session.scalars(db.select(MechanicProfile.approved).join(User, User.id == MechanicProfile.user_id)
                                  .where(User.email.in_([e for e, _, r, _ in demo.DEMO_USERS if r == "mechanic"])))
    assert all(approved)


def test_admins_approving_at_once_approve_once_on_postgres(pg_app):
    """Real threads with their own sessions: the guarded update lets one approval through; the
    others are told it is approved already; one audit row, one e-mail."""
    from autodoctor.services import applications
    from autodoctor.services.audit import Actor
    from autodoctor.services.errors import Conflict
    from tests.services.test_concurrency_pg import race

    admins = [UserFactory("admin").id for _ in range(6)]
    pending = applicant()
    results = race(pg_app, 6, lambda i: applications.approve(Actor(admins[i]), pending.id) and "approved")
    assert results.count("approved") == 1, results
    assert all(isinstance(r, Conflict) for r in results if r != "approved"), results
    db.session.commit()
    assert len(audit_rows("mechanic.approve")) == 1
    assert db.session.scalar(db.select(db.func.count(OutboxEmail.id)).where(OutboxEmail.to_address == pending.email)) == 1
    assert profile_of(pending.id).reviewed_by_id == admins[results.index("approved")]
