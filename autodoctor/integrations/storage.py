"""File storage behind one small interface: local disk (default, `UPLOAD_DIR`) or an
S3-compatible bucket when `S3_BUCKET` is set. Keys are opaque and never shown to anyone;
bytes only leave through the app's authorised routes (`open` streams them), never through
a public or signed URL."""
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from autodoctor.offload import off_hub

log = logging.getLogger(__name__)
CHUNK = 256 * 1024


@dataclass
class StoredObject:
    """A readable binary stream of a stored object and its size in bytes. Close it when done
    (a served response closes it when sent)."""

    stream: object
    size: int

    def close(self):
        self.stream.close()


class LocalStorage:
    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key):
        if not key or "/" in key or "\\" in key or key.startswith("."):
            raise ValueError("bad storage key")
        return self.root / key

    def save(self, key, source, content_type=None):
        # Disk reads and writes never yield to gevent: copying an 80 MB upload inline stalled
        # every chat socket of the worker for 85-135 ms (make bench). A native thread does it.
        off_hub("storage", self._write, self._path(key), source)

    @staticmethod
    def _write(path, source):
        tmp = path.with_name(path.name + ".part")
        try:
            with tmp.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def open(self, key):
        path = self._path(key)
        stream = path.open("rb")  # FileNotFoundError when it is gone
        return StoredObject(stream=stream, size=os.fstat(stream.fileno()).st_size)

    def delete(self, key):
        self._path(key).unlink(missing_ok=True)

    def exists(self, key):
        return self._path(key).is_file()


class _S3Body:
    """Only read/close: the WSGI server must iterate it, never try sendfile() on the socket
    underneath the HTTP response."""

    def __init__(self, body):
        self._body = body

    def read(self, size=-1):
        return self._body.read(None if size is None or size < 0 else size)

    def close(self):
        self._body.close()


class S3Storage:
    def __init__(self, bucket, endpoint_url=None, region=None):
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None,
                                   config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"}))

    def save(self, key, source, content_type=None):
        extra = {"ContentType": content_type} if content_type else {}
        self.client.upload_fileobj(source, self.bucket, key, ExtraArgs=extra)  # multipart when large

    def open(self, key):
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            raise
        return StoredObject(stream=_S3Body(obj["Body"]), size=obj["ContentLength"])

    def delete(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def exists(self, key):
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True


def backend():
    """The storage for the current app, built once per app (an S3 client is thread-safe)."""
    app = current_app._get_current_object()
    store = app.extensions.get("storage")
    if store is None:
        if app.config.get("S3_BUCKET"):
            store = S3Storage(app.config["S3_BUCKET"], app.config.get("S3_ENDPOINT_URL"), app.config.get("S3_REGION"))
        else:
            store = LocalStorage(app.config["UPLOAD_DIR"])
        app.extensions["storage"] = store
    return store


def save(key, source, content_type=None):
    """Store a readable binary stream (read from where it is to its end) under `key`."""
    backend().save(key, source, content_type)


def open(key):  # noqa: A001 - the storage verb, only ever called as storage.open
    """A StoredObject for `key`; FileNotFoundError when there is none."""
    return backend().open(key)


def delete(key):
    """Remove `key`; no error when it is already gone."""
    backend().delete(key)


def exists(key):
    return backend().exists(key)


def discard(key):
    """delete() for an undo hook: a rollback must finish even if the store is unreachable;
    the orphan is logged for cleanup."""
    try:
        delete(key)
    except Exception:
        log.exception("could not delete stored object %s after a rollback", key)
