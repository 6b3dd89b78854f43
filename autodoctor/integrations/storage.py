"""File storage behind one interface: local disk (default)."""
import os
from pathlib import Path

from flask import current_app


def _root():
    root = Path(current_app.config["UPLOAD_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    return root


def _path(key):
    if "/" in key or "\\" in key or key.startswith("."):
        raise ValueError("bad storage key")
    return _root() / key


def save(key, data: bytes):
    path = _path(key)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def open_path(key):
    return _path(key)


def delete(key):
    _path(key).unlink(missing_ok=True)
