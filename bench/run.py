#!/usr/bin/env python
"""`make bench`: start the real stack on loopback, measure, write docs/PERFORMANCE.md, clean up.

1. A fresh Postgres database (`flask db upgrade`, `flask seed-demo`), Redis db 9 (flushed),
   gunicorn with gunicorn.conf.py (gevent, WEB_CONCURRENCY=2) + `python worker.py`, and the
   bare flask-sock echo app (bench/echo_app.py) under the same gunicorn config.
   Some users log in through the real /login form; the rest get the same session cookie from
   the app's own login code (each real login costs ~0.25 CPU-s of Argon2id).
2. New request -> dashboard: 200 mechanics logged in, each holding /mechanic/stream open;
   requests are opened by the app's own service functions in a separate process (commit time
   taken when COMMIT returns) and, for a few rounds, through the HTTP test checkout.
3. Chat: 100 live rooms (customer + mechanic on /room/<id>/ws); each customer sends a paced
   stream of lines; round trip to the sender and delivery to the mechanic. Beside it, the
   same 100 clients against the bare echo server.
4. Bytes on the wire for the pricing, intake and dashboard pages with every CSS/JS they load.
"""
import argparse
import asyncio
import datetime
import http.client
import math
import os
import platform
import random
import re
import resource
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "PERFORMANCE.md"
OUT = ROOT / "bench" / "out"
TARGETS = {"dashboard_p99_ms": 250, "chat_p99_ms": 50, "page_kb": 30}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary_ms(values):
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50": pct(ms, 50), "p90": pct(ms, 90), "p99": pct(ms, 99),
            "max": max(ms) if ms else float("nan"), "min": min(ms) if ms else float("nan")}


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def others_busy_cores(groups, window=1.0):
    """Cores' worth of CPU used over `window` seconds by processes that are not the bench's."""
    from bench.stack import CpuMeter

    meter = CpuMeter(groups)
    meter.start()
    time.sleep(window)
    elapsed, usage = meter.stop()
    return usage["everything else on the machine"] / elapsed


async def quiet_gate(results, label, c):
    """Other work on this machine (test suites, builds) distorts latency. Before a timed phase,
    wait until other processes use less than 0.25 of a core, spending at most what is left of
    the run's waiting budget, and record what was found."""
    waited = 0.0
    busy = await asyncio.to_thread(others_busy_cores, c.meter.groups)
    while busy > 0.25 and c.gate_budget["left"] > 0:
        await asyncio.sleep(1)
        waited += 2
        c.gate_budget["left"] -= 2
        busy = await asyncio.to_thread(others_busy_cores, c.meter.groups)
    results.setdefault("quiet", {})[label] = (busy, waited)
    if waited:
        log(f"  waited {waited:.0f}s for other work on the machine to calm down (others now use {busy:.2f} cores)")


async def wait_until(predicate, timeout, interval=0.005):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


# -- 4. page weight ---------------------------------------------------------------------------
ASSET_RES = (re.compile(r'<link[^>]+rel="stylesheet"[^>]*href="([^"]+)"'),
             re.compile(r'<script[^>]+src="([^"]+)"'))


def _fetch_raw(base, path, cookie, accept_encoding):
    """One GET as a browser sends it: (status, header bytes, body bytes as sent, encoding, html)."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Accept-Encoding": accept_encoding, "Accept": "*/*", "User-Agent": "autodoctor-bench"}
    if cookie:
        headers["Cookie"] = cookie
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    head = f"HTTP/1.1 {response.status} {response.reason}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in response.getheaders()) + "\r\n"
    encoding = response.getheader("Content-Encoding")
    conn.close()
    text = None
    if response.getheader("Content-Type", "").startswith("text/html"):
        import gzip
        import zlib

        raw = body
        if encoding == "gzip":
            raw = gzip.decompress(body)
        elif encoding == "deflate":
            raw = zlib.decompress(body)
        elif encoding == "br":
            import brotli

            raw = brotli.decompress(body)
        elif encoding == "zstd":
            from backports import zstd

            raw = zstd.decompress(body)
        text = raw.decode()
    return response.status, len(head.encode()), len(body), encoding or "identity", text


def page_weight(base, path, cookie, accept_encoding):
    status, head, body, encoding, html = _fetch_raw(base, path, cookie, accept_encoding)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}")
    rows = [{"url": path, "encoding": encoding, "headers": head, "body": body}]
    assets = []
    for regex in ASSET_RES:
        assets += [a for a in regex.findall(html) if not a.startswith("data:")]
    for asset in dict.fromkeys(assets):
        a_status, a_head, a_body, a_enc, _ = _fetch_raw(base, asset, cookie, accept_encoding)
        if a_status != 200:
            raise RuntimeError(f"GET {asset}: HTTP {a_status}")
        rows.append({"url": asset, "encoding": a_enc, "headers": a_head, "body": a_body})
    return rows


def cookie_header(user):
    from yarl import URL

    cookies = user.http.cookie_jar.filter_cookies(URL(user.base))
    return "; ".join(f"{k}={m.value}" for k, m in cookies.items())


# -- the run ----------------------------------------------------------------------------------
class Ctx:
    """What the phases share."""


async def health_probe(url, stop, interval=0.025):
    """GET /healthz back to back (every `interval` s) until `stop` is set; returns latencies."""
    import aiohttp

    samples = []
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            t = time.monotonic()
            async with http.get(url + "/healthz") as r:
                await r.read()
            samples.append(time.monotonic() - t)
            await asyncio.sleep(interval)
    return samples


async def setup(args, stack, results):
    import aiohttp

    from bench.actor import Actor
    from bench.clients import USER_AGENT, User, gather_limited
    from bench.stack import CpuMeter, pids_by_comm

    c = Ctx()
    c.to_thread = asyncio.to_thread
    c.gate_budget = {"left": args.quiet_budget}
    c.db_name = stack.db_name
    t_begin = time.monotonic()
    log(f"fresh database {stack.db_name}, flask db upgrade, flask seed-demo")
    env = stack.prepare()
    os.environ.update(env)  # the actor process is spawned with the stack's settings
    c.actor = actor = Actor()
    results["_actor"] = actor
    n_mech = max(args.dashboards if "dashboard" in args.phases else 0, args.rooms if "chat" in args.phases else 0, 1)
    n_cust = max(args.rooms if "chat" in args.phases else 0, args.http_rounds if "dashboard" in args.phases else 0, 1)
    log(f"creating {n_mech} mechanics, {n_cust} customers, {args.standing} standing-request customers")
    c.mech_emails = await c.to_thread(actor.call, "create_users", "bench-mech-", "mechanic", n_mech)
    c.cust_emails = await c.to_thread(actor.call, "create_users", "bench-cust-", "customer", n_cust)
    c.standing_emails = await c.to_thread(actor.call, "create_users", "bench-standing-", "customer", args.standing)
    c.round_emails = await c.to_thread(actor.call, "create_users", "bench-round-", "customer", 10)

    log(f"starting gunicorn (WEB_CONCURRENCY={stack.web_concurrency}, gevent) on {stack.url}, worker.py, echo app")
    stack.start_servers()
    c.web_pids = lambda: stack.worker_pids("web")
    per_worker = {f"web worker {i + 1}": (lambda pid=pid: [pid]) for i, pid in enumerate(c.web_pids())}
    c.meter = CpuMeter({**per_worker, "echo workers": lambda: stack.worker_pids("echo"),
                        "rq worker": lambda: [stack.procs["worker"].pid],
                        "postgres": lambda: pids_by_comm({"postgres"}),
                        "redis": lambda: pids_by_comm({"redis-server"}), "bench client": lambda: [os.getpid()],
                        "actor": lambda: [actor.pid]})
    results["setup_seconds"] = time.monotonic() - t_begin

    c.connector = aiohttp.TCPConnector(limit=0, force_close=False)
    results["_connector"] = c.connector
    stop = asyncio.Event()
    idle_probe = asyncio.create_task(health_probe(stack.url, stop))
    await asyncio.sleep(2)
    stop.set()
    results["health_idle"] = await idle_probe

    everyone = c.mech_emails + c.cust_emails + ["carla@autodoctor.example"]
    half = args.http_logins // 2
    by_http = ["carla@autodoctor.example"] + c.mech_emails[:half] + c.cust_emails[:args.http_logins - half - 1]
    minted = [e for e in everyone if e not in set(by_http)]
    log(f"logging in {len(by_http)} users over HTTP (GET /login, POST /login with csrf_token), "
        f"{args.login_concurrency} at a time, probing /healthz meanwhile")
    stop = asyncio.Event()
    probe = asyncio.create_task(health_probe(stack.url, stop))
    t = time.monotonic()
    logged = await gather_limited([User(stack.url, e, c.connector).login() for e in by_http], args.login_concurrency)
    results["login_seconds"] = time.monotonic() - t
    stop.set()
    results["health_logins"] = await probe
    results["logins"] = len(logged)
    h = summary_ms(results["health_logins"])
    log(f"  {len(logged)} logins in {results['login_seconds']:.1f}s; /healthz meanwhile p50={h['p50']:.1f}ms "
        f"p99={h['p99']:.1f}ms max={h['max']:.1f}ms")
    cookies = await c.to_thread(actor.call, "mint_sessions", minted, USER_AGENT)
    c.users = {u.email: u for u in logged}
    c.users.update({e: User(stack.url, e, c.connector).adopt(*cookies[e]) for e in minted})
    results["_users"] = c.users
    results["minted"] = len(minted)
    log(f"  {len(minted)} more users got the session cookie a login sets, minted by the app's own session code")

    log(f"opening {args.standing} standing requests (the dashboards show a realistic list)")
    standing = [await c.to_thread(actor.call, "open_request", e) for e in c.standing_emails]
    c.standing_ids = {s["request_id"] for s in standing}
    return c


async def phase_bytes(args, stack, results, c):
    log("page weight: pricing, intake, dashboard")
    pages = {"Pricing (anonymous) — /pricing": ("/pricing", ""),
             "Intake (logged-in customer) — /customer/intake": ("/customer/intake",
                                                                  cookie_header(c.users["carla@autodoctor.example"])),
             f"Mechanic dashboard ({args.standing} open requests) — /mechanic/": (
                 "/mechanic/", cookie_header(c.users[c.mech_emails[0]]))}
    weights = {}
    for encoding in ("gzip", "gzip, deflate, br, zstd"):
        weights[encoding] = {name: await c.to_thread(page_weight, stack.url, path, cookie, encoding)
                             for name, (path, cookie) in pages.items()}
    results["weights"] = weights
    for name, rows in weights["gzip"].items():
        log(f"  {name.split(' — ')[0]}: {sum(r['headers'] + r['body'] for r in rows) / 1024:.1f} KB (gzip)")


async def phase_dashboard(args, stack, results, c):
    from bench.clients import Dashboard, csrf_token, gather_limited
    from bench.stack import db_sessions, rss_kb

    actor, to_thread = c.actor, c.to_thread
    log(f"connecting {args.dashboards} dashboards to /mechanic/stream")
    dashboards = [Dashboard(c.users[e]) for e in c.mech_emails[:args.dashboards]]
    t = time.monotonic()
    await gather_limited([d.connect() for d in dashboards], 50)
    ok = await wait_until(lambda: all(d.ready.is_set() for d in dashboards), 60, 0.05)
    results["dashboard_connect_seconds"] = time.monotonic() - t
    if not ok:
        raise RuntimeError(f"only {sum(d.ready.is_set() for d in dashboards)} dashboards got their snapshot")
    if not all(c.standing_ids <= d.last_ids for d in dashboards):
        raise RuntimeError("a dashboard snapshot lacks the standing requests")
    log(f"  all {len(dashboards)} got the initial snapshot in {results['dashboard_connect_seconds']:.1f}s")
    await asyncio.sleep(1)

    async def settle(rid):
        await wait_until(lambda: all(rid not in d.last_ids for d in dashboards), 10)
        await asyncio.sleep(random.uniform(0.05, 0.25))

    def record(into, rid, t0):
        lat = [d.first_seen[rid] - t0 for d in dashboards if rid in d.first_seen]
        into["samples"].extend(lat)
        into["all_reached"].append(max(lat) if lat else float("nan"))
        into["missing"] += len(dashboards) - len(lat)

    async def one_round(email, into):
        opened = await to_thread(actor.call, "open_request", email)
        rid, t0 = opened["request_id"], opened["t_commit"]
        await wait_until(lambda: all(rid in d.first_seen for d in dashboards), 10)
        if into is not None:
            record(into, rid, t0)
            into["publish_done"].append(opened["t_hooks_done"] - t0)
        await to_thread(actor.call, "cancel_active", email)
        await settle(rid)

    for i in range(2):  # warm-up: templates compiled, pools filled
        await one_round(c.round_emails[i % len(c.round_emails)], None)
    await quiet_gate(results, "dashboard", c)
    dash = {"samples": [], "all_reached": [], "missing": 0, "publish_done": []}
    log(f"{args.rounds} rounds: open a request (service functions + commit), wait for all dashboards, cancel")
    sessions_before = await to_thread(db_sessions, stack.db_name)
    c.meter.start()
    for i in range(args.rounds):
        await one_round(c.round_emails[i % len(c.round_emails)], dash)
    dash["elapsed"], dash["cpu"] = c.meter.stop()
    dash["peak_others"] = c.meter.peak_others
    dash["db_connects"] = await to_thread(db_sessions, stack.db_name) - sessions_before
    dash["bytes_per_event"] = sum(d.bytes for d in dashboards) / max(1, sum(d.events for d in dashboards))
    dash["rss_kb"] = [rss_kb(pid) for pid in c.web_pids()]
    results["dashboard"] = dash
    s = summary_ms(dash["samples"])
    log(f"  dashboard latency: n={s['n']} p50={s['p50']:.1f}ms p99={s['p99']:.1f}ms max={s['max']:.1f}ms "
        f"missing={dash['missing']}; render+publish p50={summary_ms(dash['publish_done'])['p50']:.1f}ms; "
        f"new DB connections: {dash['db_connects']}")

    # the honest HTTP path: intake form, test checkout, card POST (webhook + fulfilment inside)
    http_rounds = {"samples": [], "all_reached": [], "missing": 0, "post_seconds": []}
    log(f"{args.http_rounds} HTTP rounds through /customer/intake and the test checkout")
    for i in range(args.http_rounds):
        user = c.users[c.cust_emails[i]]
        async with user.http.get(stack.url + "/customer/intake") as r:
            token = csrf_token(await r.text())
        form = {"csrf_token": token, "plan": "chat10", "year": "2015", "make": "Honda", "model": "Civic", "vin": "",
                "concern": "Grinding noise when braking (HTTP round)", "city": "Toronto", "country": "CA",
                "accept_waiver": "y"}
        async with user.http.post(stack.url + "/customer/intake", data=form, allow_redirects=False) as r:
            if r.status != 303:
                raise RuntimeError(f"intake POST: HTTP {r.status}")
            checkout = urllib.parse.urljoin(stack.url, r.headers["Location"])
        async with user.http.get(checkout) as r:
            token = csrf_token(await r.text())
        t0 = time.monotonic()
        async with user.http.post(checkout, data={"csrf_token": token, "card_number": "4242 4242 4242 4242"},
                                  allow_redirects=False) as r:
            if r.status != 303:
                raise RuntimeError(f"card POST: HTTP {r.status}")
        http_rounds["post_seconds"].append(time.monotonic() - t0)
        rid = (await to_thread(actor.call, "active_request", user.email))["request_id"]
        await wait_until(lambda rid=rid: all(rid in d.first_seen for d in dashboards), 10)
        record(http_rounds, rid, t0)
        await to_thread(actor.call, "cancel_active", user.email)
        await settle(rid)
    results["dashboard_http"] = http_rounds
    if http_rounds["samples"]:
        s = summary_ms(http_rounds["samples"])
        log(f"  HTTP path: p50={s['p50']:.1f}ms p99={s['p99']:.1f}ms")
    results["dashboard_errors"] = sum(1 for d in dashboards if d.error)
    await asyncio.gather(*(d.close() for d in dashboards))


async def talk(args, c, senders, receivers, label, interval, messages):
    """Each sender sends `messages` tagged lines, one every `interval` s from a random offset
    (open loop); returns how long each line took to come back to its sender and to reach the
    paired receiver."""
    nonce = random.randrange(16**6)
    sent = [{} for _ in senders]

    async def talker(i, sock):
        start = time.monotonic() + random.uniform(0, interval)
        for seq in range(messages):
            await asyncio.sleep(max(0.0, start + seq * interval - time.monotonic()))
            tag = f"{label}{i}n{seq}x{nonce:06x}"
            sent[i][tag] = time.monotonic()
            await sock.send(tag)

    def arrived():
        return all(all(tag in senders[i].arrivals for tag in tags) and
                   (not receivers or all(tag in receivers[i].arrivals for tag in tags))
                   for i, tags in enumerate(sent))

    from bench.stack import db_sessions

    sessions_before = await asyncio.to_thread(db_sessions, c.db_name)
    c.meter.start()
    await asyncio.gather(*(talker(i, s) for i, s in enumerate(senders)))
    await wait_until(arrived, 15, 0.05)
    elapsed, cpu = c.meter.stop()
    peak_others = c.meter.peak_others
    db_connects = await asyncio.to_thread(db_sessions, c.db_name) - sessions_before
    rtt, delivery, lost, rtt_at = [], [], 0, []
    for i, tags in enumerate(sent):
        for tag, t0 in tags.items():
            if tag in senders[i].arrivals:
                rtt.append(senders[i].arrivals[tag] - t0)
                rtt_at.append((round(t0, 4), round(rtt[-1], 5)))
            else:
                lost += 1
            if receivers:
                if tag in receivers[i].arrivals:
                    delivery.append(receivers[i].arrivals[tag] - t0)
                else:
                    lost += 1
    return {"rtt": rtt, "delivery": delivery, "lost": lost, "sent": sum(len(t) for t in sent),
            "elapsed": elapsed, "cpu": cpu, "interval": interval, "messages": messages, "db_connects": db_connects,
            "peak_others": peak_others, "rtt_at": rtt_at,
            "errors": sum(1 for s in senders + receivers if s.error)}


async def warm_up(socks, label):
    """One untimed line per socket, spread over a second, each waited for: a server that has
    been up for a while has its statement caches and connection pools warm."""
    async def one(i, sock):
        await asyncio.sleep(random.uniform(0, 1))
        tag = f"{label}{i}"
        await sock.send(tag)
        await wait_until(lambda: tag in sock.arrivals, 10, 0.01)

    await asyncio.gather(*(one(i, s) for i, s in enumerate(socks)))
    await asyncio.sleep(1)


async def phase_chat(args, stack, results, c):
    import aiohttp

    from bench.clients import Socket, chat_tags, echo_tags, gather_limited
    from bench.stack import rss_kb

    actor, to_thread = c.actor, c.to_thread
    for e in c.standing_emails:  # the dashboards are gone; leave only the rooms' own requests
        await to_thread(actor.call, "cancel_active", e)
    log(f"opening {args.rooms} sessions (paid + accepted) and connecting both sides over websocket")
    pairs = list(zip(c.cust_emails[:args.rooms], c.mech_emails[:args.rooms], strict=True))
    session_ids = await to_thread(actor.call, "make_sessions", pairs)
    ws_base = stack.url.replace("http://", "ws://")
    mech_socks = [Socket(c.users[m].http, f"{ws_base}/room/{sid}/ws", chat_tags)
                  for (_, m), sid in zip(pairs, session_ids, strict=True)]
    cust_socks = [Socket(c.users[cu].http, f"{ws_base}/room/{sid}/ws", chat_tags)
                  for (cu, _), sid in zip(pairs, session_ids, strict=True)]
    await gather_limited([s.connect() for s in mech_socks], 20)
    await gather_limited([s.connect() for s in cust_socks], 20)
    statuses = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        statuses = await to_thread(actor.call, "session_statuses", session_ids)
        if statuses.get("live") == len(session_ids):
            break
        await asyncio.sleep(0.2)
    else:
        raise RuntimeError(f"rooms did not all go live: {statuses}")
    log(f"  {len(session_ids)} rooms live")
    await warm_up(cust_socks, "cw")

    results["chat"] = []
    for interval in args.intervals:
        await quiet_gate(results, f"chat {interval:g}", c)
        log(f"chat: {args.rooms} customers x {args.messages} lines, one every {interval:g}s each "
            f"(≈{args.rooms / interval:.0f} lines/s)")
        chat = await talk(args, c, cust_socks, mech_socks, "c", interval, args.messages)
        chat["rss_kb"] = [rss_kb(pid) for pid in c.web_pids()]
        results["chat"].append(chat)
        s, d = summary_ms(chat["rtt"]), summary_ms(chat["delivery"])
        log(f"  round trip p50={s['p50']:.1f}ms p99={s['p99']:.1f}ms; to mechanic p50={d['p50']:.1f}ms "
            f"p99={d['p99']:.1f}ms; lost={chat['lost']}; new DB connections: {chat['db_connects']}")
        await asyncio.sleep(1)
    await asyncio.gather(*(s.close() for s in cust_socks + mech_socks))

    log(f"echo baseline: the same {args.rooms} clients against bench/echo_app.py")
    echo_http = aiohttp.ClientSession(connector=c.connector, connector_owner=False)
    results["_echo_http"] = echo_http
    echo_socks = [Socket(echo_http, stack.echo_url.replace("http://", "ws://") + "/ws", echo_tags)
                  for _ in range(args.rooms)]
    await gather_limited([s.connect() for s in echo_socks], 20)
    await warm_up(echo_socks, "ew")
    results["echo"] = []
    for interval in sorted({args.intervals[0], args.intervals[-1]}, reverse=True):
        echo = await talk(args, c, echo_socks, [], "e", interval, args.messages)
        results["echo"].append(echo)
        s = summary_ms(echo["rtt"])
        log(f"  echo, one every {interval:g}s: p50={s['p50']:.1f}ms p99={s['p99']:.1f}ms; lost={echo['lost']}")
    await asyncio.gather(*(s.close() for s in echo_socks))
    await echo_http.close()


async def run(args, stack, results):
    c = await setup(args, stack, results)
    if "bytes" in args.phases:
        await phase_bytes(args, stack, results, c)
    if "dashboard" in args.phases:
        await phase_dashboard(args, stack, results, c)
    if "chat" in args.phases:
        await phase_chat(args, stack, results, c)
    results["pg_version"], results["redis_version"] = _versions()


def _versions():
    try:
        pg = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-Atc", "SHOW server_version"],
                            capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        pg = "?"
    try:
        info = subprocess.run(["redis-cli", "-h", "127.0.0.1", "INFO", "server"], capture_output=True, text=True,
                              timeout=10).stdout
        redis_v = re.search(r"redis_version:(\S+)", info).group(1)
    except Exception:
        redis_v = "?"
    return pg, redis_v


# -- report -------------------------------------------------------------------------------------
INTRO = """# Performance

Measured by `make bench` (bench/run.py), which starts the real stack on this machine's
loopback, measures, writes this file and shuts everything down. **This file is generated:
edit the template in bench/run.py, not the file.**
"""


def machine_facts():
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    return {"nproc": os.cpu_count(), "mem_gib": mem_kb / 1024 / 1024,
            "cpu": model.group(1).strip() if model else platform.processor(), "kernel": platform.release(),
            "python": platform.python_version()}


def _row(s):
    return f"{s['n']} | {s['p50']:.1f} | {s['p90']:.1f} | {s['p99']:.1f} | {s['max']:.1f}"


def _cpu_line(cpu, elapsed):
    parts = [f"{name} {sec / elapsed * 100:.0f}%" for name, sec in cpu.items() if sec > 0]
    return ", ".join(parts) + f" (100% = one core; over {elapsed:.0f} s)"


def _ok(value, target):
    return "✅ met" if value <= target else "❌ missed"


def _rss(kbs):
    return ", ".join(f"{k / 1024:.0f} MB" for k in kbs)


def render(args, results, command, started, duration):
    m = machine_facts()
    lines = [INTRO, "## Run", "",
             f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')} (whole run {duration:.0f} s)",
             f"- Command: `{command}`",
             f"- Machine: {m['nproc']} cores ({m['cpu']}), {m['mem_gib']:.1f} GiB memory, Linux {m['kernel']}; "
             f"load average when the run began: {results.get('loadavg', '?')}",
             f"- Software: Python {m['python']}, PostgreSQL {results.get('pg_version', '?')}, "
             f"Redis {results.get('redis_version', '?')}; gunicorn with gunicorn.conf.py (gevent worker class), "
             f"WEB_CONCURRENCY={args.web_concurrency}, plus `python worker.py` (RQ); everything on 127.0.0.1",
             f"- Setup: {results['logins']} users logged in through GET+POST /login in {results['login_seconds']:.0f} s "
             f"(Argon2id verify ≈ 0.25 CPU-s each); {results.get('minted', 0)} more got the session cookie such a "
             f"login sets, minted with `flask_login.login_user` and the app's session interface (same signed cookie, "
             f"same session-protection identifier), to keep the run under 5 minutes", "",
             "## Targets", "", "| measurement | target | result | |", "| --- | --- | --- | --- |"]
    dash = results.get("dashboard")
    if dash:
        ds = summary_ms(dash["samples"])
        lines.append(f"| new request → {args.dashboards} dashboards, p99 | ≤ {TARGETS['dashboard_p99_ms']} ms | "
                     f"{ds['p99']:.1f} ms | {_ok(ds['p99'], TARGETS['dashboard_p99_ms'])} |")
    for chat in results.get("chat", []):
        cs = summary_ms(chat["rtt"])
        lines.append(f"| chat round trip, {args.rooms} rooms, one line per customer every {chat['interval']:g} s "
                     f"(≈{args.rooms / chat['interval']:.0f} lines/s), p99 | ≤ {TARGETS['chat_p99_ms']} ms | "
                     f"{cs['p99']:.1f} ms | {_ok(cs['p99'], TARGETS['chat_p99_ms'])} |")
    for name, rows in (results.get("weights") or {}).get("gzip", {}).items():
        total = sum(r["headers"] + r["body"] for r in rows) / 1024
        lines.append(f"| {name.split(' — ')[0]} page + its CSS/JS, gzip | ≤ {TARGETS['page_kb']} KB | "
                     f"{total:.1f} KB | {_ok(total, TARGETS['page_kb'])} |")
    background = [(label, phase["cpu"]["everything else on the machine"] / phase["elapsed"],
                   max(phase["peak_others"], phase["cpu"]["everything else on the machine"] / phase["elapsed"]))
                  for label, phase in ([("dashboard rounds", dash)] if dash else []) + [
                      (f"chat, one line / {ch['interval']:g} s", ch) for ch in results.get("chat", [])]]
    if background:
        busy = [f"{label} {mean:.2f} on average, {peak:.2f} in its busiest second" for label, mean, peak in background]
        lines += ["", f"Other processes on the machine (not the bench, its servers, Postgres or Redis) used, in cores: "
                  f"{'; '.join(busy)}."]
        if max(peak for _, _, peak in background) > 0.5:
            lines.append("**The machine was shared with other work during this run: on 2 cores that load inflates "
                         "every latency above; rerun `make bench` on a quiet machine for clean numbers.**")
    if dash:
        http_r = results["dashboard_http"]
        dall = summary_ms(dash["all_reached"])
        lines += ["", "## 1. New request → mechanic dashboards (SSE)", "",
                  f"{args.dashboards} mechanics, each logged in as a different account, hold `/mechanic/stream` "
                  f"open. {args.standing} other requests stay open throughout, so every `requests` event carries "
                  f"{args.standing + 1} cards (≈ {dash['bytes_per_event'] / 1024:.1f} KB on the wire per dashboard "
                  f"per event). Each round opens one request and, once every dashboard has it, cancels it (which is "
                  f"broadcast too) and waits for that before the next round.", "",
                  "| path | samples | p50 ms | p90 ms | p99 ms | max ms |", "| --- | --- | --- | --- | --- | --- |",
                  f"| service functions in a separate process; from COMMIT returned to the event read on each "
                  f"dashboard ({args.rounds} rounds × {args.dashboards}) | {_row(ds)} |",
                  f"| same rounds: until the **last** of the {args.dashboards} dashboards had it (one sample per "
                  f"round) | {_row(dall)} |",
                  f"| same rounds: COMMIT returned → all after-commit hooks done in the committing process (RQ "
                  f"timeouts scheduled, list rendered and published, e-mail job queued) | "
                  f"{_row(summary_ms(dash['publish_done']))} |"]
        if http_r["samples"]:
            hs, hp = summary_ms(http_r["samples"]), summary_ms(http_r["post_seconds"])
            lines.append(f"| HTTP: the customer's card POST on the test checkout (the webhook and the fulfilment "
                         f"run inside it); from sending the POST ({args.http_rounds} rounds × {args.dashboards}) | "
                         f"{_row(hs)} |")
            lines.append(f"| HTTP: that POST's own response time, for reference | {_row(hp)} |")
        lines += ["", f"Missing events: {dash['missing'] + http_r['missing']}; stream errors: "
                  f"{results['dashboard_errors']}; web worker RSS after the rounds: {_rss(dash['rss_kb'])}. "
                  f"CPU during the timed rounds: {_cpu_line(dash['cpu'], dash['elapsed'])}."]
    if results.get("chat"):
        lines += ["", "## 2. Chat round trip (websocket)", "",
                  f"{args.rooms} live sessions: customer and mechanic both connected to `/room/<id>/ws` (each "
                  f"session went live because both were present). In each run every customer sends "
                  f"{args.messages} lines on a fixed schedule from a random offset (open loop: a line never waits "
                  f"for the previous one), after one untimed warm-up line per socket. Round trip = from sending `{{\"body\", \"client_token\"}}` until the "
                  f"fragment carrying that line is read back on the sender's socket; on the way the line is "
                  f"committed to Postgres, rendered once and published through Redis. The echo rows are a bare "
                  f"flask-sock app (bench/echo_app.py) under the same gunicorn config with the same "
                  f"{args.rooms} clients and schedule: the floor set by gevent, simple-websocket and the client.", "",
                  "| run | samples | p50 ms | p90 ms | p99 ms | max ms |", "| --- | --- | --- | --- | --- | --- |"]
        echoes = {e["interval"]: e for e in results.get("echo", [])}
        for chat in results["chat"]:
            echo = echoes.get(chat["interval"])
            rate = f"one line / {chat['interval']:g} s per customer (≈{args.rooms / chat['interval']:.0f}/s)"
            lines.append(f"| chat, {rate}: back to the sender | {_row(summary_ms(chat['rtt']))} |")
            lines.append(f"| chat, {rate}: to the mechanic's socket | {_row(summary_ms(chat['delivery']))} |")
            if echo:
                lines.append(f"| bare echo, {rate} | {_row(summary_ms(echo['rtt']))} |")
        lines.append("")
        for chat in results["chat"]:
            echo = echoes.get(chat["interval"])
            web_cpu = sum(v for k, v in chat["cpu"].items() if k.startswith("web worker"))
            note = (f"- One line / {chat['interval']:g} s: web workers spent {web_cpu / max(1, chat['sent']) * 1000:.1f}"
                    f" ms of CPU per line; lost {chat['lost']} of {chat['sent']} × 2 sockets")
            if echo:
                note += f", echo lost {echo['lost']}"
            note += f"; web worker RSS after: {_rss(chat['rss_kb'])}; CPU: {_cpu_line(chat['cpu'], chat['elapsed'])}"
            if echo:
                note += f"; echo CPU: {_cpu_line(echo['cpu'], echo['elapsed'])}"
            lines.append(note + ".")
    if results.get("health_logins"):
        hi, hl = summary_ms(results["health_idle"]), summary_ms(results["health_logins"])
        lines += ["", "## 3. A side measurement: other traffic while users log in", "",
                  f"`GET /healthz` (one query) back to back every 25 ms, idle and while {results['logins']} users "
                  f"log in ({args.login_concurrency} at a time). Argon2id runs in C for ≈ 0.25 CPU-s per login.", "",
                  "| condition | samples | p50 ms | p90 ms | p99 ms | max ms |",
                  "| --- | --- | --- | --- | --- | --- |",
                  f"| idle | {_row(hi)} |", f"| during the logins | {_row(hl)} |"]
    if results.get("weights"):
        lines += ["", "## 4. Bytes transferred per page", "",
                  "Cold cache: the HTML plus every stylesheet and script it references, fetched as a browser "
                  "would; bytes = response headers + body as sent (compressed). `Accept-Encoding: gzip` is the "
                  "target's condition; a current Chromium sends `gzip, deflate, br, zstd`, shown second.", ""]
        for encoding, pages_ in results["weights"].items():
            lines += [f"### Accept-Encoding: {encoding}", "",
                      "| page | resource | encoding | headers B | body B | total KB |",
                      "| --- | --- | --- | --- | --- | --- |"]
            for name, rows in pages_.items():
                short = name.split(" — ")[0]
                for r in rows:
                    lines.append(f"| {short} | `{r['url']}` | {r['encoding']} | {r['headers']} | {r['body']} | "
                                 f"{(r['headers'] + r['body']) / 1024:.1f} |")
                lines.append(f"| **{short}** | **total** | | {sum(r['headers'] for r in rows)} | "
                             f"{sum(r['body'] for r in rows)} | "
                             f"**{sum(r['headers'] + r['body'] for r in rows) / 1024:.1f}** |")
            lines.append("")
    lines += ["", "## Method", "",
              "- `make bench` starts Postgres and Redis if needed, then bench/run.py creates a fresh database "
              "(`flask db upgrade`, `flask seed-demo`), flushes Redis db 9 and starts gunicorn with "
              "gunicorn.conf.py bound to 127.0.0.1, `python worker.py` and the echo app. Extra mechanics and "
              "customers are made with `services.accounts.create_user` in an app context on the same DATABASE_URL "
              "(the Argon2id hash of the shared password is computed once and reused). Some users log in over HTTP "
              "(GET /login for the CSRF token, POST /login); the rest get the identical session cookie from the "
              "app's own login code in-process, because each real login costs ≈ 0.25 CPU-s of Argon2id.",
              "- The clients are one asyncio process (aiohttp). Arrival times are `time.monotonic()` when the bytes "
              "reach the client; the commit time comes from a separate actor process (CLOCK_MONOTONIC is shared by "
              "all processes), so the actor's own work never delays the client's clock. Clients, servers, Postgres "
              "and Redis share the machine's cores, and so does anything else running at the time (the CPU lines "
              "show it as \"everything else on the machine\"): the numbers include that contention.",
              "- A dashboard counts as served when a `requests` event whose `data-ids` lists the new request has "
              "been read in full. The in-process path calls the functions the intake form and the Stripe webhook "
              "call (`intakes.create_intake`, `payments.start_checkout`, then `payments.fulfil_payment` in its own "
              "transaction) and stamps the moment COMMIT returns; the app's after-commit hooks then render the "
              "list and publish it. The HTTP rows go through the real intake form and test checkout and are "
              "measured from the moment the card POST is sent, so they include that request's own work.",
              f"- Before each timed phase the run waits (at most {args.quiet_budget:.0f} s in all) until processes outside the "
              "bench use less than a quarter of a core; what they used during each phase is listed under Targets.",
              "- Percentiles are nearest-rank over all samples.",
              "- Everything is torn down at the end: servers stopped with SIGTERM, the database dropped, the Redis "
              "db flushed. Logs of the last run are in bench/out/ (git-ignored).", ""]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dashboards", type=int, default=200)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--http-rounds", type=int, default=10)
    p.add_argument("--standing", type=int, default=5, help="requests kept open during the dashboard rounds")
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--messages", type=int, default=10, help="lines per customer in each chat run")
    p.add_argument("--intervals", type=lambda v: [float(x) for x in v.split(",")], default=[2.0, 1.5, 1.0],
                   help="seconds between one customer's lines; one chat run per value (first = headline)")
    p.add_argument("--phases", type=lambda v: set(v.split(",")), default={"bytes", "dashboard", "chat"},
                   help="comma-separated subset of bytes,dashboard,chat")
    p.add_argument("--web-concurrency", type=int, default=2)
    p.add_argument("--login-concurrency", type=int, default=8)
    p.add_argument("--http-logins", type=int, default=40,
                   help="users logged in through POST /login; the others get a minted session cookie")
    p.add_argument("--quiet-budget", type=float, default=40,
                   help="seconds the whole run may wait for other load on the machine to pass before timed phases")
    p.add_argument("--no-doc", action="store_true", help="do not write docs/PERFORMANCE.md")
    p.add_argument("--time-limit", type=float, default=290, help="abort the run after this many seconds")
    return p.parse_args(argv)


async def _cleanup_clients(results):
    for user in (results.get("_users") or {}).values():
        await user.close()
    for key in ("_echo_http",):
        if results.get(key) is not None and not results[key].closed:
            await results[key].close()
    if results.get("_connector") is not None:
        await results["_connector"].close()


async def amain(args):
    from bench.stack import Stack

    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    raise_nofile()
    stack = Stack(OUT, web_concurrency=args.web_concurrency)
    results = {"loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3])}
    failed = None
    try:
        await asyncio.wait_for(run(args, stack, results), timeout=args.time_limit)
    except Exception as exc:  # noqa: BLE001 - report, then clean up
        failed = exc
    finally:
        try:
            await asyncio.wait_for(_cleanup_clients(results), 20)
        except Exception as exc:  # noqa: BLE001
            log(f"client cleanup: {exc!r}")
        if results.get("_actor") is not None:
            results["_actor"].stop()
        log("stopping servers, dropping the database")
        stack.stop()
    duration = time.monotonic() - t0
    if failed is not None:
        log(f"FAILED after {duration:.0f}s: {failed!r} (logs in {OUT})")
        raise failed
    command = "make bench"
    if sys.argv[1:]:
        command = f".venv/bin/python bench/run.py {' '.join(sys.argv[1:])}"
    text = render(args, results, command, started, duration)
    import json

    raw = {k: v for k, v in results.items() if not k.startswith("_")}
    (OUT / "results.json").write_text(json.dumps(raw, default=str))
    (OUT / "PERFORMANCE.md").write_text(text)
    if not args.no_doc and args.phases == {"bytes", "dashboard", "chat"}:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text)
        log(f"wrote {DOC.relative_to(ROOT)}")
    log(f"done in {duration:.0f}s")


def main():
    args = parse_args()
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
