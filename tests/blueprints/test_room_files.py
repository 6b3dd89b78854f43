"""Files in the room (POST /room/<id>/files, GET .../files/<fid> and .../thumb): a participant
shares a file from the chat and it arrives as a chat line for both people; files are served
only to the session's participants and admins; anything refused (disguised, too big, not in
the plan, session over) answers the form with a clear message and stores nothing."""
import html
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import g
from PIL import Image

from autodoctor.extensions import db
from autodoctor.models import ChatMessage, StoredFile
from autodoctor.services import lifecycle, uploads
from tests.factories import AcceptedSessionFactory

MB = 1024 * 1024
HX = {"HX-Request": "true"}
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200 + b"This program cannot be run"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free"


def jpeg(size=(800, 600), color=(30, 120, 200)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def room(app, users):
    """A session of `plan` that customer A bought and mechanic A accepted (status waiting)."""

    def _room(plan="chat10", customer="customer_a", mechanic="mechanic_a", live=False):
        return AcceptedSessionFactory(users[customer], users[mechanic], plan, live=live)

    return _room


@pytest.fixture
def people(login, users):
    return {role: login(user) for role, user in users.items()}


def share(client, session_id, name, content, caption=None, headers=HX):
    data = {"file": (io.BytesIO(content) if isinstance(content, bytes) else content, name)}
    if caption is not None:
        data["caption"] = caption
    return client.post(f"/room/{session_id}/files", data=data, content_type="multipart/form-data", headers=headers)


def form_error(response):
    """The message shown in the upload form's error area."""
    page = response.get_data(as_text=True)
    match = re.search(r'<p class="error"[^>]*>(.*?)</p>', page, re.S)
    assert match, page[:2000]
    return html.unescape(match.group(1)).strip()


def upload_dir_files(app):
    root = Path(app.config["UPLOAD_DIR"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_nothing_stored(app):
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(StoredFile.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(ChatMessage.id))) == 0
    assert upload_dir_files(app) == []


def only_message():
    db.session.expire_all()
    return db.session.scalars(sa.select(ChatMessage)).one()


# --- sharing --------------------------------------------------------------------------------

def test_participant_shares_a_photo_and_both_get_it_in_the_chat(app, room, people, users):
    session = room()
    subscription = app.extensions["broker"].subscribe([f"room:{session.id}"])
    photo = jpeg()
    response = share(people["customer_a"], session.id, "dash light.jpg", photo, caption="This came on today")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Sent “dash light.jpg”." in html.unescape(page)
    assert 'id="upload-form"' in page  # the form comes back reset, ready for the next file

    message = only_message()
    assert message.sender_id == users["customer_a"].id and message.body == "This came on today"
    record = message.file
    assert (record.original_name, record.mime_type, record.kind, record.size_bytes) == \
        ("dash light.jpg", "image/jpeg", "image", len(photo))
    assert record.session_id == session.id and record.thumbnail_key

    # Pushed to the room (both people's sockets) once committed: the thumbnail links to the full image.
    pushed = subscription.get(timeout=2)
    while pushed is not None and pushed.id != f"msg-{message.id}":
        pushed = subscription.get(timeout=2)
    subscription.close()
    assert pushed is not None, "the chat line with the file was not pushed to the room"
    thumb_url = f"/room/{session.id}/files/{record.id}/thumb"
    full_url = f"/room/{session.id}/files/{record.id}"
    assert f'src="{thumb_url}"' in pushed.data and f'href="{full_url}"' in pushed.data
    assert 'target="_blank"' in pushed.data and "This came on today" in pushed.data

    # The mechanic's room page (and the replay) shows the same line.
    room_page = people["mechanic_a"].get(f"/room/{session.id}").get_data(as_text=True)
    assert f'src="{thumb_url}"' in room_page

    thumb = people["mechanic_a"].get(thumb_url)
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.data)).size == (320, 240)
    full = people["mechanic_a"].get(full_url)
    assert full.status_code == 200 and full.mimetype == "image/jpeg"
    assert full.data == photo
    assert full.headers["Content-Length"] == str(len(photo))
    for response in (thumb, full):
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.headers["Content-Security-Policy"] == "sandbox"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Disposition"].startswith("inline")


def test_mechanic_shares_a_pdf_shown_by_name_type_and_size(app, room, people):
    session = room()
    document = PDF + b"%" + b"x" * (300 * 1024) + b"\n%%EOF\n"
    response = share(people["mechanic_a"], session.id, "brake-quote.pdf", document)
    assert response.status_code == 200
    record = only_message().file
    page = html.unescape(people["customer_a"].get(f"/room/{session.id}").get_data(as_text=True))
    assert "brake-quote.pdf" in page and "PDF · 300 KB · Download" in page
    download = people["customer_a"].get(f"/room/{session.id}/files/{record.id}")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.data == document
    assert people["customer_a"].get(f"/room/{session.id}/files/{record.id}/thumb").status_code == 404


def test_a_video_under_the_limit_is_shared(app, room, people, tmp_path):
    session = room()
    path = tmp_path / "clip.mp4"
    with open(path, "wb") as f:
        f.write(MP4_HEAD)
        f.truncate(12 * MB)
    with open(path, "rb") as f:
        response = share(people["customer_a"], session.id, "noise.mp4", f)
    assert response.status_code == 200
    record = only_message().file
    assert (record.kind, record.size_bytes) == ("video", 12 * MB)
    assert "MP4 video · 12.0 MB · Download" in html.unescape(
        people["mechanic_a"].get(f"/room/{session.id}").get_data(as_text=True))


def test_without_htmx_the_upload_returns_to_the_room_with_a_message(app, room, people):
    session = room()
    response = share(people["customer_a"], session.id, "dash.jpg", jpeg(), headers={})
    assert response.status_code == 303 and response.headers["Location"] == f"/room/{session.id}"
    assert "Shared “dash.jpg”." in html.unescape(people["customer_a"].get(f"/room/{session.id}").get_data(as_text=True))


# --- who may see a file ---------------------------------------------------------------------

def test_only_participants_and_admins_can_open_a_file(app, room, people, users, client):
    session = room()
    share(people["customer_a"], session.id, "dash.jpg", jpeg())
    record = only_message().file
    urls = [f"/room/{session.id}/files/{record.id}", f"/room/{session.id}/files/{record.id}/thumb"]
    for url in urls:
        for outsider in ("customer_b", "mechanic_b"):
            assert people[outsider].get(url).status_code == 404, (outsider, url)
        assert people["admin"].get(url).status_code == 200, url
        assert people["mechanic_a"].get(url).status_code == 200, url
        anonymous = client.get(url)
        assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["Location"]
    # Outsiders cannot upload into the room either.
    assert share(people["customer_b"], session.id, "x.jpg", jpeg()).status_code == 404
    assert db.session.scalar(sa.select(sa.func.count(StoredFile.id))) == 1


def test_a_file_of_another_session_is_not_served_through_this_one(app, room, people):
    mine = room()
    theirs = room(customer="customer_b", mechanic="mechanic_b")
    share(people["customer_b"], theirs.id, "theirs.jpg", jpeg())
    record = db.session.scalar(sa.select(StoredFile))
    assert people["customer_a"].get(f"/room/{mine.id}/files/{record.id}").status_code == 404
    assert people["customer_a"].get(f"/room/{mine.id}/files/{record.id}/thumb").status_code == 404


def test_intake_photos_show_as_thumbnails_for_the_mechanic(app, room, people, users):
    session = room()
    photo = uploads.store(uploads.check("tyre.jpg", jpeg((1200, 900))), users["customer_a"].id,
                          intake_id=session.intake_id)
    db.session.commit()
    page = people["mechanic_a"].get(f"/room/{session.id}").get_data(as_text=True)
    assert "1 photo from the request" in page
    assert f'src="/room/{session.id}/files/{photo.id}/thumb"' in page
    assert f'href="/room/{session.id}/files/{photo.id}"' in page
    assert people["mechanic_a"].get(f"/room/{session.id}/files/{photo.id}/thumb").mimetype == "image/jpeg"


# --- refused, and nothing stored ------------------------------------------------------------

@pytest.mark.parametrize("name,content", [("photo.jpg", ELF), ("photo.jpg", EXE), ("invoice.pdf", b"Total: 120\n" * 40)],
                         ids=["elf-as-jpg", "exe-as-jpg", "text-as-pdf"])
def test_a_disguised_file_is_refused_and_nothing_is_stored(app, room, people, name, content):
    session = room()
    response = share(people["customer_a"], session.id, name, content)
    assert response.status_code == 422
    assert form_error(response) == f"“{name}” is not a file type we accept (JPEG, PNG, WebP, MP4, MOV, PDF)."
    assert 'id="upload-form"' in response.get_data(as_text=True)
    assert_nothing_stored(app)


def test_an_oversized_video_is_refused_and_nothing_is_stored(app, room, people, tmp_path):
    """A real body of more than 100 MB (under the server's 101 MB ceiling) reaches the check."""
    session = room()
    path = tmp_path / "long.mp4"
    with open(path, "wb") as f:
        f.write(MP4_HEAD)
        f.truncate(100 * MB + 512 * 1024)
    with open(path, "rb") as f:
        response = share(people["customer_a"], session.id, "long.mp4", f)
    assert response.status_code == 422
    assert form_error(response) == "“long.mp4” is 100.5 MB; MP4 files are limited to 100 MB."
    assert_nothing_stored(app)


@pytest.mark.parametrize("csrf", [False, True], ids=["csrf-off", "csrf-on"])
def test_a_body_over_the_server_limit_gets_the_same_clear_message_in_the_form(app, room, people, csrf):
    session = room()
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    app.config["WTF_CSRF_ENABLED"] = csrf  # with CSRF on, the token check is what reads the body first
    # The token check runs before conftest's hook that forgets the user cached on the shared test
    # app context (in production every request has its own): forget it here.
    g.pop("_login_user", None)
    response = share(people["customer_a"], session.id, "dash.jpg", jpeg() + b"\x00" * (512 * 1024))
    assert response.status_code == 413
    assert form_error(response).startswith("That file is too large to send: photos are limited to 10 MB")
    assert 'id="upload-form"' in response.get_data(as_text=True)  # the form fragment, not an error page
    assert "<html" not in response.get_data(as_text=True)
    assert_nothing_stored(app)


def test_no_file_chosen_and_a_long_caption_are_explained(app, room, people):
    session = room()
    response = people["customer_a"].post(f"/room/{session.id}/files", data={"caption": "hi"}, headers=HX)
    assert response.status_code == 422 and form_error(response) == "Choose a photo or file to share first."
    response = share(people["customer_a"], session.id, "dash.jpg", jpeg(), caption="x" * 2001)
    assert response.status_code == 422 and form_error(response) == "Captions are limited to 2000 characters."
    assert_nothing_stored(app)


def test_free_plan_is_text_only(app, room, people):
    session = room("free")
    page = html.unescape(people["customer_a"].get(f"/room/{session.id}").get_data(as_text=True))
    assert 'id="upload-form"' not in page
    assert "The Free Session plan is text chat only" in page
    response = share(people["customer_a"], session.id, "dash.jpg", jpeg())
    assert response.status_code == 403
    assert "The Free Session plan is text chat only" in html.unescape(response.get_data(as_text=True))
    assert_nothing_stored(app)


def test_quick_advice_allows_one_photo_in_the_room(app, room, people):
    session = room("quick_advice")
    page = people["customer_a"].get(f"/room/{session.id}").get_data(as_text=True)
    assert 'accept="image/jpeg,image/png,image/webp,.jpg,.jpeg,.png,.webp"' in page

    response = share(people["customer_a"], session.id, "manual.pdf", PDF)
    assert response.status_code == 422
    assert form_error(response) == \
        "“manual.pdf” is a PDF file; the Quick Advice plan takes photos only (JPEG, PNG, WebP)."
    assert_nothing_stored(app)

    assert share(people["customer_a"], session.id, "first.jpg", jpeg()).status_code == 200
    response = share(people["mechanic_a"], session.id, "second.jpg", jpeg())
    assert response.status_code == 409
    assert "The Quick Advice plan includes 1 photo in the room, and it has already been shared." in \
        html.unescape(response.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(StoredFile.id))) == 1
    assert len(upload_dir_files(app)) == 2  # the first photo and its thumbnail


def test_no_files_once_the_session_is_over(app, room, people, users):
    session = room(live=True)
    lifecycle.end_session(session.id, users["mechanic_a"].id, "Replace the pads.")
    db.session.commit()
    response = share(people["customer_a"], session.id, "late.jpg", jpeg())
    assert response.status_code == 409
    assert form_error(response) == "This session has ended; the chat is closed."
    assert_nothing_stored(app)


def test_the_summary_lists_the_files_with_thumbnails(app, room, people, users):
    session = room()
    share(people["customer_a"], session.id, "dash.jpg", jpeg())
    share(people["mechanic_a"], session.id, "quote.pdf", PDF)
    for user in ("customer_a", "mechanic_a"):
        lifecycle.join_room(session.id, users[user].id)
    db.session.commit()
    lifecycle.maybe_go_live(session.id)
    db.session.commit()
    lifecycle.end_session(session.id, users["mechanic_a"].id, "Replace the pads.")
    db.session.commit()
    photo, document = db.session.scalars(sa.select(StoredFile).order_by(StoredFile.id)).all()
    for who in ("customer_a", "admin"):
        page = html.unescape(people[who].get(f"/room/{session.id}/summary").get_data(as_text=True))
        assert "Files (2)" in page
        assert f'src="/room/{session.id}/files/{photo.id}/thumb"' in page
        assert f'href="/room/{session.id}/files/{document.id}"' in page and "quote.pdf" in page


def test_with_s3_storage_files_are_streamed_through_the_room_and_refusals_leave_the_bucket_empty(
        app, room, people, monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="room-files")
        monkeypatch.setitem(app.config, "S3_BUCKET", "room-files")
        app.extensions.pop("storage", None)
        try:
            session = room()
            assert share(people["customer_a"], session.id, "photo.jpg", ELF).status_code == 422
            assert "Contents" not in s3.list_objects_v2(Bucket="room-files")
            photo = jpeg()
            assert share(people["customer_a"], session.id, "dash.jpg", photo).status_code == 200
            record = only_message().file
            keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="room-files")["Contents"])
            assert keys == sorted([record.storage_key, record.thumbnail_key])
            assert upload_dir_files(app) == []
            full = people["mechanic_a"].get(f"/room/{session.id}/files/{record.id}")
            assert full.status_code == 200 and full.data == photo and full.mimetype == "image/jpeg"
            assert full.headers["Cache-Control"] == "private, no-store"
            thumb = people["admin"].get(f"/room/{session.id}/files/{record.id}/thumb")
            assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.data)).format == "JPEG"
            # Gone from the bucket: a clear 404, not a server error.
            s3.delete_object(Bucket="room-files", Key=record.storage_key)
            assert people["mechanic_a"].get(f"/room/{session.id}/files/{record.id}").status_code == 404
        finally:
            app.extensions.pop("storage", None)
