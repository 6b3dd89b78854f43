"""asyncio clients (aiohttp): logged-in users, SSE dashboards, chat and echo websockets.
Every arrival is stamped with time.monotonic() (CLOCK_MONOTONIC, shared by all processes on
the machine) as soon as the bytes are handed to the client."""
import asyncio
import json
import re
import time

import aiohttp

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
IDS_RE = re.compile(rb'data-ids="([^"]*)"')
BODY_RE = re.compile(r'<span class="body">([^<]*)</span>')
PASSWORD = "autodoctor-demo"


def csrf_token(html):
    match = CSRF_RE.search(html)
    if not match:
        raise RuntimeError("no csrf_token in page")
    return match.group(1)


USER_AGENT = "autodoctor-bench"


class User:
    """One browser: its own cookie jar (aiohttp refuses cookies for IP hosts unless unsafe)."""

    def __init__(self, base, email, connector):
        self.base = base
        self.email = email
        self.http = aiohttp.ClientSession(connector=connector, connector_owner=False,
                                          cookie_jar=aiohttp.CookieJar(unsafe=True),
                                          headers={"User-Agent": USER_AGENT},
                                          timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))

    def adopt(self, name, value):
        """Use a session cookie minted by the app for this user (see actor.mint_sessions)."""
        from yarl import URL

        self.http.cookie_jar.update_cookies({name: value}, URL(self.base))
        return self

    async def login(self):
        async with self.http.get(self.base + "/login") as r:
            token = csrf_token(await r.text())
        async with self.http.post(self.base + "/login", allow_redirects=False,
                                  data={"csrf_token": token, "email": self.email, "password": PASSWORD}) as r:
            if r.status != 303:
                raise RuntimeError(f"login {self.email}: HTTP {r.status}")
        return self

    async def close(self):
        await self.http.close()


class Dashboard:
    """A mechanic's /mechanic/stream: records, per request id, when a `requests` event that
    lists it first arrived, and the ids of the latest `requests` event."""

    def __init__(self, user):
        self.user = user
        self.first_seen = {}
        self.last_ids = frozenset()
        self.events = 0
        self.bytes = 0
        self.ready = asyncio.Event()
        self.task = None
        self.error = None
        self._response = None

    async def connect(self):
        self._response = await self.user.http.get(self.user.base + "/mechanic/stream",
                                                  headers={"Accept": "text/event-stream"})
        if self._response.status != 200:
            raise RuntimeError(f"stream {self.user.email}: HTTP {self._response.status}")
        self.task = asyncio.create_task(self._read())

    async def _read(self):
        buffer = b""
        try:
            async for chunk in self._response.content.iter_any():
                now = time.monotonic()
                self.bytes += len(chunk)
                buffer += chunk
                if b"\n\n" not in buffer:
                    continue
                *blocks, buffer = buffer.split(b"\n\n")
                for block in blocks:
                    if b"event: requests" not in block:
                        continue
                    match = IDS_RE.search(block)
                    ids = frozenset(int(x) for x in match.group(1).split()) if match else frozenset()
                    for rid in ids:
                        self.first_seen.setdefault(rid, now)
                    self.last_ids = ids
                    self.events += 1
                    self.ready.set()
        except (aiohttp.ClientError, asyncio.CancelledError) as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.error = exc

    async def close(self):
        if self.task:
            self.task.cancel()
        if self._response is not None:
            self._response.close()


class Socket:
    """A websocket that records when each tagged line comes back. `extract` turns a received
    text frame into the tags it carries."""

    def __init__(self, http, url, extract):
        self.http = http
        self.url = url
        self.extract = extract
        self.arrivals = {}
        self.frames = 0
        self.ws = None
        self.task = None
        self.error = None

    async def connect(self):
        self.ws = await self.http.ws_connect(self.url, autoping=True, max_msg_size=0, compress=0)
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self):
        try:
            async for msg in self.ws:
                now = time.monotonic()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.frames += 1
                    for tag in self.extract(msg.data):
                        self.arrivals.setdefault(tag, now)
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break
        except (aiohttp.ClientError, asyncio.CancelledError) as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.error = exc

    async def send(self, tag):
        await self.ws.send_str(json.dumps({"body": tag, "client_token": tag}))
        return time.monotonic()

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
        if self.task:
            self.task.cancel()


def chat_tags(text):
    return BODY_RE.findall(text) if 'class="body"' in text else ()


def echo_tags(text):
    try:
        return (json.loads(text)["body"],)
    except (ValueError, KeyError, TypeError):
        return ()


async def gather_limited(coros, limit):
    sem = asyncio.Semaphore(limit)

    async def run(coro):
        async with sem:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


# -- file uploads ------------------------------------------------------------------------
MB = 1024 * 1024
# A real ISO-BMFF head: an `ftyp` box (brand isom, compatible isom/iso2/avc1/mp41) and then an
# `mdat` box header whose payload is the filler: the app's content check reads it as MP4.
FTYP = (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00" b"isomiso2avc1mp41")


def mp4_chunks(size, chunk=64 * 1024):
    """`size` bytes of a valid-by-content MP4 in `chunk`-sized pieces: ftyp, an mdat header,
    then incompressible filler (the same random block over and over)."""
    import os
    import struct

    head = FTYP + struct.pack(">I", size - len(FTYP)) + b"mdat"
    block = os.urandom(chunk)
    yield head + block[:chunk - len(head)]
    sent = chunk
    while sent < size:
        n = min(chunk, size - sent)
        yield block[:n]
        sent += n


class UploadResult:
    def __init__(self, **kw):
        self.__dict__.update(kw)


async def upload_video(user, room_url, csrf, caption, size, rate, name="dashcam.mp4", chunk=64 * 1024):
    """POST /room/<id>/files the way the room's upload form does under htmx: multipart/form-data
    with the CSRF token, the file and a caption, `Content-Length` known up front, `HX-Request`
    set; the body is written at `rate` bytes/s (a client on a fast uplink). Returns when the
    response has been read."""
    boundary = f"----benchboundary{random_hex()}"
    fields_before = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n"
                     f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                     f"Content-Type: video/mp4\r\n\r\n").encode()
    fields_after = (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\n"
                    f"Content-Type: application/octet-stream\r\n\r\n\r\n"  # the empty "Take photo" input
                    f"--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n{caption}\r\n"
                    f"--{boundary}--\r\n").encode()
    total = len(fields_before) + size + len(fields_after)
    times = {}

    async def body():
        t0 = times["start"] = time.monotonic()
        written = len(fields_before)
        yield fields_before
        for piece in mp4_chunks(size, chunk):
            written += len(piece)
            yield piece
            delay = t0 + written / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield fields_after
        times["body_done"] = time.monotonic()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(total),
               "HX-Request": "true", "HX-Target": "upload", "HX-Current-URL": room_url, "Referer": room_url}
    async with user.http.post(room_url + "/files", data=body(), headers=headers, allow_redirects=False) as r:
        text = await r.text()
        status = r.status
    done = time.monotonic()
    return UploadResult(status=status, ok=status in (200, 201) and 'class="ok"' in text, size=size, sent=total,
                        start=times.get("start", done), body_done=times.get("body_done", done), done=done,
                        caption=caption, error=None if status in (200, 201) else text[:300])


def random_hex(n=12):
    import secrets

    return secrets.token_hex(n // 2)
