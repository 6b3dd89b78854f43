"""Upload checks: type decided by the bytes, never the name; limits from DESIGN.md."""
import io
import secrets
from dataclasses import dataclass

import filetype
from PIL import Image, UnidentifiedImageError

from autodoctor.extensions import after_rollback, db
from autodoctor.integrations import storage
from autodoctor.models import StoredFile
from autodoctor.services.errors import ValidationError

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
ACCEPT_ATTR = ",".join(ALLOWED) + ",.jpg,.jpeg,.png,.webp,.mp4,.mov,.pdf"


@dataclass
class CheckedUpload:
    name: str
    data: bytes
    mime: str
    kind: str


def check(name, data, kinds=("image", "video", "document")):
    """Return a CheckedUpload or raise ValidationError with a message a person understands."""
    name = (name or "upload").rsplit("/", 1)[-1][:200]
    if not data:
        raise ValidationError(f"“{name}” is empty.")
    guess = filetype.guess(data[:8192])
    mime = guess.mime if guess else None
    if mime not in ALLOWED or ALLOWED[mime][0] not in kinds:
        allowed = ", ".join(label for m, (k, _, label) in ALLOWED.items() if k in kinds)
        raise ValidationError(f"“{name}” is not a file type we accept ({allowed}).")
    kind, limit, label = ALLOWED[mime]
    if len(data) > limit:
        raise ValidationError(f"“{name}” is {len(data) / MB:.1f} MB; {label} files are limited to {limit // MB} MB.")
    if kind == "image":
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise ValidationError(f"“{name}” looks like an image but cannot be read.") from None
    return CheckedUpload(name=name, data=data, mime=mime, kind=kind)


def store(upload: CheckedUpload, owner_id, intake_id=None, session_id=None):
    key = secrets.token_urlsafe(24)
    storage.save(key, upload.data)
    after_rollback(lambda: storage.delete(key))
    record = StoredFile(owner_id=owner_id, intake_id=intake_id, session_id=session_id, storage_key=key,
                        original_name=upload.name, mime_type=upload.mime, kind=upload.kind,
                        size_bytes=len(upload.data))
    db.session.add(record)
    return record
