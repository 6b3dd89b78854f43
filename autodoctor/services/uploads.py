"""Upload checks: type decided by the bytes, never the name; limits from DESIGN.md; image
thumbnails made on the server; and which files each plan allows in the room, in one place.

Uploads are worked on as streams (the spooled temporary file the form parser wrote), never
read whole into memory: the head decides the type, the stream's end gives the size."""
import io
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field

import filetype
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from autodoctor.extensions import after_rollback, db
from autodoctor.integrations import storage
from autodoctor.models import ConsultSession, StoredFile
from autodoctor.offload import off_hub
from autodoctor.services.errors import Conflict, Forbidden, ValidationError

MB = 1024 * 1024
ALLOWED = {
    # detected mime: (kind, limit in bytes, label)
    "image/jpeg": ("image", 10 * MB, "JPEG"),
    "image/png": ("image", 10 * MB, "PNG"),
    "image/webp": ("image", 10 * MB, "WebP"),
    "video/mp4": ("video", 100 * MB, "MP4"),
    "video/quicktime": ("video", 100 * MB, "MOV"),
    "application/pdf": ("document", 25 * MB, "PDF"),
}
KINDS = ("image", "video", "document")
KIND_NAMES = {"image": "photos", "video": "videos", "document": "PDFs"}
EXTENSIONS = {"image/jpeg": ".jpg,.jpeg", "image/png": ".png", "image/webp": ".webp", "video/mp4": ".mp4",
              "video/quicktime": ".mov", "application/pdf": ".pdf"}
ACCEPT_ATTR = ",".join(list(ALLOWED) + list(EXTENSIONS.values()))
HEAD_BYTES = 8192
# Decoding a photo costs about 4 bytes a pixel: beyond this a "small" file can still exhaust memory.
MAX_PIXELS = 60_000_000
THUMBNAIL_PX = 320
THUMBNAIL_QUALITY = 80

# What a plan allows in the room: (kinds, how many files in all, None = no cap). Plans not
# listed allow every kind without a cap.
ROOM_FILE_RULES = {
    "free": ((), 0),
    "quick_advice": (("image",), 1),
}


@dataclass
class CheckedUpload:
    name: str
    stream: object  # a readable, seekable binary stream; store() rewinds it
    size: int
    mime: str
    kind: str
    thumbnail: bytes | None = None  # JPEG, images only


def check(name, source, kinds=KINDS, wrong_kind=None):
    """Return a CheckedUpload or raise ValidationError with a message a person understands.
    `source` is bytes or a binary stream; `wrong_kind` finishes the message for a known file
    type that is not allowed here (otherwise the accepted types are listed)."""
    name = clean_name(name)
    stream = _seekable(source)
    size = _size(stream)
    if size == 0:
        raise ValidationError(f"“{name}” is empty.")
    guess = filetype.guess(stream.read(HEAD_BYTES))
    stream.seek(0)
    mime = guess.mime if guess else None
    if mime not in ALLOWED or ALLOWED[mime][0] not in kinds:
        if mime in ALLOWED and wrong_kind:
            raise ValidationError(f"“{name}” is a {ALLOWED[mime][2]} file; {wrong_kind}")
        raise ValidationError(f"“{name}” is not a file type we accept ({accepted_labels(kinds)}).")
    kind, limit, label = ALLOWED[mime]
    if size > limit:
        raise ValidationError(f"“{name}” is {_megabytes(size, limit)}; {label} files are limited to {limit // MB} MB.")
    thumbnail = None
    if kind == "image":
        thumbnail = off_hub("image", _thumbnail, name, stream)  # 0.1–0.3 s of CPU per photo
    elif kind == "document":
        _check_pdf_complete(name, stream, size)
    stream.seek(0)
    return CheckedUpload(name=name, stream=stream, size=size, mime=mime, kind=kind, thumbnail=thumbnail)


def store(upload: CheckedUpload, owner_id, intake_id=None, session_id=None):
    """Save the bytes (and the thumbnail) under fresh unguessable keys and add the record;
    a rolled-back transaction removes what was saved."""
    key = _new_key()
    after_rollback(lambda: storage.discard(key))
    upload.stream.seek(0)
    storage.save(key, upload.stream, upload.mime)
    thumbnail_key = None
    if upload.thumbnail:
        thumbnail_key = _new_key()
        after_rollback(lambda: storage.discard(thumbnail_key))
        storage.save(thumbnail_key, io.BytesIO(upload.thumbnail), "image/jpeg")
    record = StoredFile(owner_id=owner_id, intake_id=intake_id, session_id=session_id, storage_key=key,
                        thumbnail_key=thumbnail_key, original_name=upload.name, mime_type=upload.mime,
                        kind=upload.kind, size_bytes=upload.size)
    db.session.add(record)
    return record


def accepted_labels(kinds=KINDS):
    return ", ".join(label for kind_, _, label in ALLOWED.values() if kind_ in kinds)


def clean_name(name):
    """The file's own name without any folder a browser sent, printable, at most 200 characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or "upload"


@dataclass
class RoomFilePolicy:
    """What may still be shared in one session's room; the upload form and the service both read it."""

    plan_name: str
    kinds: tuple
    cap: int | None
    shared: int
    refusal: str | None = None  # why nothing (more) can be shared, when that is the case
    limits: dict = field(default_factory=dict)  # detected mime -> bytes, for the browser's pre-check

    @property
    def accept(self):
        mimes = [m for m, (k, _, _) in ALLOWED.items() if k in self.kinds]
        return ",".join(mimes + [EXTENSIONS[m] for m in mimes])

    @property
    def hint(self):
        text = ", ".join(_kind_hint(k) for k in KINDS if k in self.kinds)
        if self.cap:
            return f"{self.plan_name}: {'1 photo' if self.cap == 1 else f'{self.cap} photos'} in this session — {text}."
        return text[0].upper() + text[1:] + "."

    @property
    def wrong_kind(self):
        names = " and ".join(KIND_NAMES[k] for k in KINDS if k in self.kinds)
        return f"the {self.plan_name} plan takes {names} only ({accepted_labels(self.kinds)})."

    @property
    def refusal_error(self):
        return Forbidden(self.refusal) if not self.kinds else Conflict(self.refusal)


def room_file_policy(session):
    """The plan's rule for files in the room (free: text only; quick_advice: one photo; others:
    photos, videos and PDFs), with what has already been shared."""
    plan = session.plan
    kinds, cap = ROOM_FILE_RULES.get(plan.code, (KINDS, None))
    shared = _room_file_count(session.id) if cap else 0
    policy = RoomFilePolicy(plan_name=plan.name, kinds=kinds, cap=cap, shared=shared,
                            limits={m: limit for m, (k, limit, _) in ALLOWED.items() if k in kinds})
    if not kinds:
        policy.refusal = (f"The {plan.name} plan is text chat only: sharing photos and files comes with "
                          "Quick Advice (one photo) and the plans above it.")
    elif cap is not None and shared >= cap:
        policy.refusal = _cap_reached(plan, cap)
    return policy


def check_room_upload(session, name, source):
    """check() under the session plan's rule; raises with the plan's reason when it refuses."""
    policy = room_file_policy(session)
    if policy.refusal:
        raise policy.refusal_error
    if source is None:
        raise ValidationError("Choose a photo or file to share first.")
    return check(name, source, kinds=policy.kinds, wrong_kind=policy.wrong_kind)


def hold_room_cap(session):
    """Once the new file is flushed, count again under a lock on the session row (Postgres),
    so two uploads at the same moment cannot both take a plan's last photo. FOR NO KEY UPDATE:
    the file's foreign key already holds a KEY SHARE lock on the row, which FOR UPDATE would
    wait on (two uploads would deadlock)."""
    _, cap = ROOM_FILE_RULES.get(session.plan.code, (KINDS, None))
    if cap is None:
        return
    db.session.execute(db.select(ConsultSession.id).where(ConsultSession.id == session.id)
                       .with_for_update(key_share=True))
    if _room_file_count(session.id) > cap:
        raise Conflict(_cap_reached(session.plan, cap))


def _cap_reached(plan, cap):
    what = "1 photo" if cap == 1 else f"{cap} photos"
    return (f"The {plan.name} plan includes {what} in the room, and {'it has' if cap == 1 else 'they have'} "
            "already been shared. Describe anything else in the chat.")


def too_large_message():
    """For a body the server refused before reading it (its type unknown): every limit."""
    limits = [f"{KIND_NAMES[k]} {'are limited ' if i == 0 else ''}to {_kind_limit(k) // MB} MB"
              for i, k in enumerate(KINDS)]
    return (f"That file is too large to send: {', '.join(limits[:-1])} and {limits[-1]}. "
            "Nothing was shared.")


def _kind_limit(kind):
    return max(limit for k, limit, _ in ALLOWED.values() if k == kind)


def _kind_hint(kind):
    labels = [label for k, _, label in ALLOWED.values() if k == kind]
    name = KIND_NAMES[kind]
    named = name if len(labels) == 1 else f"{name} ({', '.join(labels)})"
    return f"{named} up to {_kind_limit(kind) // MB} MB"


def _room_file_count(session_id):
    return db.session.scalar(db.select(db.func.count(StoredFile.id)).where(StoredFile.session_id == session_id))


def _new_key():
    return secrets.token_urlsafe(24)


def _seekable(source):
    if source is None:
        return io.BytesIO(b"")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source)
    if getattr(source, "seekable", lambda: False)():
        source.seek(0)
        return source
    # A one-way stream: spool it (to disk past 1 MB), never more than the largest allowed file + 1 byte.
    spool = tempfile.SpooledTemporaryFile(max_size=MB)
    shutil.copyfileobj(_limited(source, max(limit for _, limit, _ in ALLOWED.values()) + 1), spool)
    spool.seek(0)
    return spool


class _limited:
    def __init__(self, stream, remaining):
        self.stream, self.remaining = stream, remaining

    def read(self, size=-1):
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        chunk = self.stream.read(size)
        self.remaining -= len(chunk)
        return chunk


def _size(stream):
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def _megabytes(size, limit):
    text = f"{size / MB:.1f} MB"
    return f"just over {limit // MB} MB" if text == f"{limit / MB:.1f} MB" else text


def _thumbnail(name, stream):
    """Decode the whole image (a truncated or corrupt one fails here) and return a small JPEG
    of it, turned the way the camera's EXIF orientation says."""
    unreadable = ValidationError(f"“{name}” looks like an image but cannot be read.")
    # WeasyPrint sets this process-wide switch on import, which would let a cut-off photo
    # through with grey filler; report PDFs embed no images, so it stays off.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(stream) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ValidationError(f"“{name}” is {width} × {height} pixels; photos are limited to "
                                      f"{MAX_PIXELS // 1_000_000} megapixels.")
            img.verify()
        stream.seek(0)
        with Image.open(stream) as img:
            img.draft("RGB", (THUMBNAIL_PX * 2, THUMBNAIL_PX * 2))  # JPEG: decode at a reduced scale
            img.load()
            small = ImageOps.exif_transpose(img)
            small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
            small = _flatten(small)
            out = io.BytesIO()
            small.save(out, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
            return out.getvalue()
    except Image.DecompressionBombError:
        raise ValidationError(f"“{name}” has too many pixels; photos are limited to "
                              f"{MAX_PIXELS // 1_000_000} megapixels.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise unreadable from None


def _flatten(img):
    """RGB for JPEG: transparent areas on white, other modes converted."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if img.mode.startswith("I;16"):
        img = img.point(lambda v: v / 256)  # 16-bit grey: scale to 8 bits before converting
    return img.convert("RGB")


def _check_pdf_complete(name, stream, size):
    """A PDF ends with %%EOF (readers tolerate a little trailing data): a cut-off download does not."""
    stream.seek(max(0, size - 4096))
    if b"%%EOF" not in stream.read():
        raise ValidationError(f"“{name}” looks like a PDF but is incomplete; it may not have finished downloading.")
