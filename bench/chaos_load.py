#!/usr/bin/env python3
"""Client load for bench/chaos.sh that accounts for every request, and a watch
of who leads.

    chaos_load.py --proxies P1,P2,P3 --admins A1,A2,A3 --ids a,b,c --rps 200
                  --seconds S --state DIR --out summary.json [--deadline 10]

Sends GET /api/v2/rooms at RPS, round robin over the replicas that are up
(a file DIR/down-ID means replica ID is being killed: no new request goes
to it, as a load balancer's health check would see), each request on its own
connection with a deadline. Every request ends as exactly one of:

- ok: a 2xx, body read;
- killed: a connection error or time-out on a replica marked down (the
  request was in flight when it was killed);
- upstream: a 5xx that the canary upstream gave (its own answer, passed on),
  or canary's 502/504 for a canary-bound request while DIR/canary-down says
  the canary upstream is being killed;
- failed (by cause) or timed_out: everything else, canary's.

Every 250 ms it asks each replica that is up which one leads
(/api/v2/health `cluster.is_leader`): the time with none and the most at
once are in the summary.
"""

import argparse
import asyncio
import json
import os
import time
from collections import Counter


class Tally:
    def __init__(self):
        self.sent = 0
        self.ok = 0
        self.killed = 0
        self.upstream = 0
        self.failed = 0
        self.timed_out = 0
        self.causes = Counter()
        self.apart = Counter()


def down(state, rid):
    return os.path.exists(os.path.join(state, "down-" + rid))


async def exchange(port, path, user, deadline):
    """One GET on a new connection: (status, headers, body)."""

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-user-id: {user}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            raw = await reader.read(-1)
        finally:
            writer.close()
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ConnectionError(f"incomplete response ({len(raw)} bytes)")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers and len(body) < int(headers["content-length"]):
            raise ConnectionError("response body cut short")
        return status, headers, body

    return await asyncio.wait_for(go(), deadline)


def own_reply(body):
    """canary's own error reply (JSON with error, message, status), not an upstream's."""
    try:
        v = json.loads(body)
    except ValueError:
        return False
    return isinstance(v, dict) and "message" in v and "status" in v and "error" in v


async def one(t, rid, port, n, args):
    t.sent += 1
    try:
        status, headers, body = await exchange(port, "/api/v2/rooms", f"user-{n}", args.deadline)
    except asyncio.TimeoutError:
        if down(args.state, rid):
            t.killed += 1
            t.apart[f"in flight on killed replica {rid}: timed out"] += 1
        else:
            t.timed_out += 1
            t.causes[f"timed out after {args.deadline} s ({rid})"] += 1
        return
    except (OSError, ConnectionError, ValueError, IndexError) as e:
        if down(args.state, rid):
            t.killed += 1
            t.apart[f"in flight on killed replica: {type(e).__name__}"] += 1
        else:
            t.failed += 1
            t.causes[f"{type(e).__name__}: {e} ({rid})"] += 1
        return
    if 200 <= status < 300:
        t.ok += 1
        return
    version = headers.get("x-canary-version", "")
    canary_down = os.path.exists(os.path.join(args.state, "canary-down"))
    if status >= 500 and version == "canary" and (not own_reply(body) or canary_down):
        t.upstream += 1
        t.apart[f"canary upstream: {status}"] += 1
        return
    t.failed += 1
    snippet = body[:120].decode("utf-8", "replace")
    t.causes[f"status {status} ({version or 'no version'}): {snippet}"] += 1


async def health(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /api/v2/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        raw = await reader.read(-1)
    finally:
        writer.close()
    return json.loads(raw.partition(b"\r\n\r\n")[2])


async def watch_leaders(args, ids, admins, stop, out):
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.25)
        up = [(i, a) for i, a in zip(ids, admins) if not down(args.state, i)]
        answers = await asyncio.gather(
            *(asyncio.wait_for(health(a), 1.0) for _, a in up), return_exceptions=True
        )
        leaders = [i for (i, _), h in zip(up, answers) if isinstance(h, dict) and h.get("cluster", {}).get("is_leader")]
        now = time.monotonic()
        if not leaders:
            out["no_leader_s"] += now - last
        out["max_leaders"] = max(out["max_leaders"], len(leaders))
        if len(leaders) > 1:
            out["two_leaders_samples"].append(leaders)
        out["samples"] += 1
        last = now


async def main(args):
    ids = args.ids.split(",")
    proxies = [int(p) for p in args.proxies.split(",")]
    admins = [int(p) for p in args.admins.split(",")]
    t = Tally()
    leaders = {"no_leader_s": 0.0, "max_leaders": 0, "two_leaders_samples": [], "samples": 0}
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_leaders(args, ids, admins, stop, leaders))
    running = set()
    start = time.monotonic()
    n = 0
    skipped = 0
    k = 0
    while time.monotonic() - start < args.seconds:
        n += 1
        due = start + n / args.rps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        for _ in range(len(ids)):
            k = (k + 1) % len(ids)
            if not down(args.state, ids[k]):
                break
        else:
            skipped += 1
            continue
        task = asyncio.create_task(one(t, ids[k], proxies[k], n, args))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.wait(running)
    stop.set()
    await watcher
    summary = {
        "seconds": round(time.monotonic() - start, 1),
        "sent": t.sent,
        "ok": t.ok,
        "failed": t.failed,
        "timed_out": t.timed_out,
        "failed_by_cause": dict(t.causes),
        "apart": {"killed_replica_in_flight": t.killed, "canary_upstream_failed": t.upstream, "by_cause": dict(t.apart)},
        "not_sent_all_replicas_down": skipped,
        "accounted": t.sent == t.ok + t.failed + t.timed_out + t.killed + t.upstream,
        "leaders": {
            "seconds_without_a_leader": round(leaders["no_leader_s"], 1),
            "most_at_once": leaders["max_leaders"],
            "two_at_once_samples": leaders["two_leaders_samples"][:20],
            "samples": leaders["samples"],
        },
    }
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--proxies", required=True)
    p.add_argument("--admins", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--rps", type=float, default=200)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--deadline", type=float, default=10.0)
    asyncio.run(main(p.parse_args()))
