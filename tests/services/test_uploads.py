"""Upload checks decided by content (never by name), the limits per type from DESIGN.md,
server-made thumbnails, streams handled without reading big files into memory, and both
storage backends (local disk; S3 through moto's in-process S3) leaving nothing behind when
the transaction rolls back."""
import io

import boto3
import pytest
import sqlalchemy as sa
from moto import mock_aws
from PIL import Image

from autodoctor.extensions import db
from autodoctor.integrations import storage
from autodoctor.models import StoredFile
from autodoctor.services import uploads
from autodoctor.services.errors import ValidationError

MB = 1024 * 1024
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200 + b"This program cannot be run"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free"


def image_bytes(fmt="JPEG", size=(64, 48), color=(200, 30, 30), **save):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt, **save)
    return buf.getvalue()


def noisy_jpeg(size=(1600, 1200)):
    buf = io.BytesIO()
    Image.effect_noise(size, 80).convert("RGB").save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def rejection(name, content, **kwargs):
    with pytest.raises(ValidationError) as exc:
        uploads.check(name, content, **kwargs)
    return exc.value.message


def sparse_file(tmp_path, name, head, size):
    """A file of `size` bytes that costs no memory or disk: `head`, then a hole."""
    path = tmp_path / name
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


class CountingReader(io.RawIOBase):
    """A seekable file that remembers how many bytes were read from it."""

    def __init__(self, f):
        self.f, self.bytes_read = f, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return self.f.seek(offset, whence)

    def tell(self):
        return self.f.tell()

    def readinto(self, buffer):
        data = self.f.read(len(buffer))
        buffer[:len(data)] = data
        self.bytes_read += len(data)
        return len(data)


def stored_count():
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count(StoredFile.id)))


def local_files(app):
    root = storage.LocalStorage(app.config["UPLOAD_DIR"]).root
    return sorted(p.name for p in root.iterdir())


# --- type by content -----------------------------------------------------------------------

@pytest.mark.parametrize("name,content", [("photo.jpg", ELF), ("photo.jpg", EXE), ("invoice.pdf", b"Total: $120\n" * 50),
                                          ("clip.mp4", b"#!/bin/sh\nrm -rf /\n" * 20)],
                         ids=["elf-as-jpg", "exe-as-jpg", "text-as-pdf", "script-as-mp4"])
def test_a_disguised_file_is_rejected_by_its_content(app, name, content):
    message = rejection(name, content)
    assert message == f"“{name}” is not a file type we accept (JPEG, PNG, WebP, MP4, MOV, PDF)."


def test_a_truncated_photo_is_rejected(app):
    import weasyprint  # noqa: F401 - imported by the web process too; it turns on Pillow's LOAD_TRUNCATED_IMAGES

    photo = noisy_jpeg()
    for cut in (len(photo) // 2, len(photo) - 500):
        assert rejection("truncated.jpg", photo[:cut]) == "“truncated.jpg” looks like an image but cannot be read."
    png = image_bytes("PNG")
    assert "cannot be read" in rejection("half.png", png[: len(png) - 20])


def test_a_pdf_cut_off_before_its_end_is_rejected(app):
    assert "looks like a PDF but is incomplete" in rejection("manual.pdf", PDF[:-8] + b" " * 5000)
    assert uploads.check("manual.pdf", PDF).mime == "application/pdf"


def test_real_files_are_accepted_by_their_content_whatever_their_name(app):
    assert uploads.check("dash.gif", image_bytes("PNG")).mime == "image/png"
    assert uploads.check("dash", image_bytes("WEBP")).mime == "image/webp"
    checked = uploads.check("clip.mov", MP4_HEAD + b"\x00" * 1000)
    assert (checked.mime, checked.kind, checked.size) == ("video/mp4", "video", len(MP4_HEAD) + 1000)
    assert checked.thumbnail is None


def test_the_name_keeps_only_the_file_name(app):
    checked = uploads.check("C:\\Users\\sam\\Pictures\\dash light.png", image_bytes("PNG"))
    assert checked.name == "dash light.png"
    assert uploads.check("../../etc/x.png", image_bytes("PNG")).name == "x.png"


def test_kinds_not_allowed_here_are_refused_with_the_reason(app):
    assert rejection("manual.pdf", PDF, kinds=("image",)) == \
        "“manual.pdf” is not a file type we accept (JPEG, PNG, WebP)."
    assert rejection("manual.pdf", PDF, kinds=("image",), wrong_kind="this plan takes photos only.") == \
        "“manual.pdf” is a PDF file; this plan takes photos only."


# --- limits per type -----------------------------------------------------------------------

@pytest.mark.parametrize("name,head,limit,label", [
    ("photo.jpg", image_bytes(), 10, "JPEG"),
    ("clip.mp4", MP4_HEAD, 100, "MP4"),
    ("manual.pdf", PDF, 25, "PDF"),
])
def test_each_type_has_its_own_limit(app, tmp_path, name, head, limit, label):
    over = sparse_file(tmp_path, "over", head, limit * MB + 1)
    with open(over, "rb") as f:
        message = rejection(name, f)
    assert message == f"“{name}” is just over {limit} MB; {label} files are limited to {limit} MB."
    way_over = sparse_file(tmp_path, "way-over", head, limit * MB + 3 * MB)
    with open(way_over, "rb") as f:
        assert f"is {limit + 3}.0 MB; {label} files are limited to {limit} MB." in rejection(name, f)


def test_a_video_at_the_limit_is_accepted_and_only_its_head_is_read(app, tmp_path):
    path = sparse_file(tmp_path, "clip.mp4", MP4_HEAD, 100 * MB)
    with open(path, "rb") as f:
        reader = CountingReader(f)
        checked = uploads.check("clip.mp4", reader)
        assert (checked.kind, checked.size) == ("video", 100 * MB)
        assert reader.bytes_read <= 64 * 1024  # never the whole 100 MB in memory


def test_an_empty_file_is_rejected(app):
    assert rejection("photo.jpg", b"") == "“photo.jpg” is empty."


def test_a_photo_with_too_many_pixels_is_rejected_before_decoding(app):
    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, format="PNG")  # tiny file, 64 megapixels
    assert rejection("huge.png", buf.getvalue()) == \
        "“huge.png” is 8000 × 8000 pixels; photos are limited to 60 megapixels."


# --- thumbnails ----------------------------------------------------------------------------

def test_thumbnail_is_a_small_jpeg_turned_the_way_the_camera_says(app):
    # A landscape photo split red | blue, with EXIF orientation 6 ("rotate 90° clockwise to view"),
    # as a phone held upright writes it.
    img = Image.new("RGB", (1200, 600), (220, 0, 0))
    img.paste((0, 0, 220), (600, 0, 1200, 600))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    checked = uploads.check("upright.jpg", buf.getvalue())
    thumb = Image.open(io.BytesIO(checked.thumbnail))
    assert thumb.format == "JPEG"
    assert thumb.size == (160, 320)  # portrait, longest side 320 px
    top, bottom = thumb.getpixel((80, 40)), thumb.getpixel((80, 280))
    assert top[0] > 180 and top[2] < 60, top        # the left (red) half is now on top
    assert bottom[2] > 180 and bottom[0] < 60, bottom


def test_thumbnail_of_a_transparent_png_is_flattened_on_white(app):
    buf = io.BytesIO()
    Image.new("RGBA", (400, 400), (0, 0, 0, 0)).save(buf, format="PNG")
    thumb = Image.open(io.BytesIO(uploads.check("logo.png", buf.getvalue()).thumbnail))
    assert thumb.size == (320, 320) and thumb.mode == "RGB"
    assert min(thumb.getpixel((10, 10))) > 245


def test_store_saves_the_file_and_its_thumbnail_under_unguessable_keys(app, users):
    photo = noisy_jpeg((3000, 2000))
    record = uploads.store(uploads.check("engine bay.jpg", photo), users["customer_a"].id)
    db.session.commit()
    assert record.size_bytes == len(photo) and record.mime_type == "image/jpeg"
    assert record.thumbnail_key and record.thumbnail_key != record.storage_key
    assert "engine" not in record.storage_key and len(record.storage_key) >= 24
    stored = storage.open(record.storage_key)
    assert stored.size == len(photo) and stored.stream.read() == photo
    stored.close()
    thumb = Image.open(io.BytesIO(storage.open(record.thumbnail_key).stream.read()))
    assert thumb.format == "JPEG" and thumb.size == (320, 213)
    assert sorted(local_files(app)) == sorted([record.storage_key, record.thumbnail_key])


def test_a_rolled_back_transaction_leaves_nothing_on_disk(app, users):
    uploads.store(uploads.check("a.jpg", noisy_jpeg()), users["customer_a"].id)
    uploads.store(uploads.check("b.pdf", PDF), users["customer_a"].id)
    db.session.flush()
    assert len(local_files(app)) == 3  # two files and one thumbnail
    db.session.rollback()
    assert local_files(app) == []
    assert stored_count() == 0


# --- S3-compatible storage (moto's in-process S3) --------------------------------------------

@pytest.fixture
def s3(app, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="autodoctor-files")
        monkeypatch.setitem(app.config, "S3_BUCKET", "autodoctor-files")
        monkeypatch.setitem(app.config, "S3_ENDPOINT_URL", "")
        app.extensions.pop("storage", None)
        yield client
        app.extensions.pop("storage", None)


def bucket_keys(client):
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="autodoctor-files").get("Contents", []))


def test_s3_backend_is_used_when_a_bucket_is_set(app, s3):
    assert isinstance(storage.backend(), storage.S3Storage)


def test_s3_save_open_exists_delete(app, s3):
    data = b"%PDF-1.7\n" + bytes(range(256)) * 40000 + b"\n%%EOF\n"  # ~10 MB: a multipart upload
    storage.save("key-1", io.BytesIO(data), "application/pdf")
    assert storage.exists("key-1")
    stored = storage.open("key-1")
    assert stored.size == len(data)
    assert stored.stream.read() == data
    stored.close()
    assert s3.head_object(Bucket="autodoctor-files", Key="key-1")["ContentType"] == "application/pdf"
    storage.delete("key-1")
    assert not storage.exists("key-1")
    with pytest.raises(FileNotFoundError):
        storage.open("key-1")
    storage.delete("key-1")  # already gone: not an error


def test_s3_store_keeps_file_and_thumbnail_and_a_rollback_removes_both(app, s3, users):
    photo = noisy_jpeg()
    record = uploads.store(uploads.check("dash.jpg", photo), users["customer_a"].id)
    db.session.commit()
    assert bucket_keys(s3) == sorted([record.storage_key, record.thumbnail_key])
    assert storage.open(record.storage_key).stream.read() == photo
    thumb = Image.open(io.BytesIO(storage.open(record.thumbnail_key).stream.read()))
    assert thumb.format == "JPEG" and max(thumb.size) == 320

    uploads.store(uploads.check("second.jpg", noisy_jpeg()), users["customer_a"].id)
    db.session.flush()
    assert len(bucket_keys(s3)) == 4
    db.session.rollback()
    assert bucket_keys(s3) == sorted([record.storage_key, record.thumbnail_key])
    assert stored_count() == 1
    assert local_files(app) == []  # nothing went to the local disk


# --- a plan's photo cap under concurrency (Postgres) ------------------------------------------

def test_quick_advice_keeps_one_photo_when_both_people_share_at_the_same_moment(pg_app):
    from autodoctor.models import ChatMessage
    from autodoctor.services import chat, lifecycle
    from autodoctor.services.errors import Conflict
    from tests.factories import PaidSessionFactory, UserFactory
    from tests.services.test_concurrency_pg import Racers

    photo = image_bytes(size=(640, 480))
    with Racers(pg_app, 2) as racers:
        for _ in range(8):
            customer, mechanic = UserFactory("customer"), UserFactory("mechanic")
            db.session.commit()
            session = PaidSessionFactory(customer, "quick_advice")
            db.session.commit()
            lifecycle.accept_request(session.current_request.id, mechanic.id)
            db.session.commit()
            sender_ids, session_id = (customer.id, mechanic.id), session.id
            results = racers.run(lambda i, sid=session_id, senders=sender_ids:
                                 chat.post_file(sid, senders[i], f"photo-{i}.jpg", photo).id)
            shared = [r for r in results if isinstance(r, int)]
            refused = [r for r in results if isinstance(r, Conflict)]
            assert len(shared) == 1 and len(refused) == 1, results
            assert "includes 1 photo in the room, and it has already been shared" in refused[0].message
            db.session.expire_all()
            assert db.session.scalar(sa.select(sa.func.count(StoredFile.id))
                                     .where(StoredFile.session_id == session_id)) == 1
            assert db.session.scalar(sa.select(sa.func.count(ChatMessage.id))
                                     .where(ChatMessage.session_id == session_id)) == 1
    keys = set(db.session.scalars(sa.select(StoredFile.storage_key))) | \
        set(db.session.scalars(sa.select(StoredFile.thumbnail_key)))
    assert set(local_files(pg_app)) == keys  # the refused uploads left no bytes behind
