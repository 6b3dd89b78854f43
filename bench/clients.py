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
