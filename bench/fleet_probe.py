#!/usr/bin/env python3
"""Looks at a fleet of canary replicas for bench/fleet.sh.

    fleet_probe.py ready     --replicas F [--first I] [--last J] [--timeout S]
    fleet_probe.py settle    --replicas F --n N [--timeout S]
    fleet_probe.py measure   --replicas F --etcd URL --etcd-pid P --seconds W --out F [--judging]
    fleet_probe.py propagate --replicas F --canary URL --changes C --out F [--seed S]
    fleet_probe.py resume    --replicas F
    fleet_probe.py logs      --replicas F --dir D --out F

F lists the replicas, one JSON object a line: {"id", "pid", "admin", "proxy"}
(ports on 127.0.0.1).

ready: waits until replicas I..J-1 answer GET /api/v2/health (fails at once
if one of them exited).

settle: waits until every replica's health lists all N replicas in
cluster.replicas and names the same leader, with no etcd error; prints
{"leader": ID, "seconds": S}.

measure: a measurement window of W seconds with nothing sent to the fleet
by this process: before it, the replicas' and etcd's /metrics are scraped
and the leader is read; at its start and end, utime+stime of every replica
and of etcd (/proc/PID/stat, clock ticks); at its end PSS and RSS
(/proc/PID/smaps_rollup); after it, /metrics again and the leader again.
Writes JSON: CPU in ms/s (each replica, fleet sum, leader, etcd), memory in
MB, the replicas' internal requests/s by path
(canary_cluster_internal_requests_total) and etcd's gRPC calls/s by method
(grpc_server_started_total; etcd's JSON gateway goes through its gRPC server).
With --judging, a rollout must be active (the leader gathers the fleet's
totals at every look only then): just before the window's first scrape and
just after its last, GET /api/rollout on the leader and on one follower must
show a `state` of progressing, holding or paused, or it fails, saying what
they showed; the answers are in the JSON ("rollout").

propagate: deploys a rollout (canary URL, share 20, a manual plan with an
hour's bake, so nothing moves on its own) through a random replica and waits
until every replica routes by it; then C share changes alternating 30 and
20, each a PUT /api/routing/share to a random replica's admin API (followers
forward it to the leader). After each answer it polls GET /api/routing on
the replicas not yet showing the new share, concurrently on keep-alive
connections, a round every 10 ms (in a new order each round), until all do
(10 s at most). A change's propagation time is when the last replica showed
it (the answer that showed it read): measured from the answer to the PUT and
from its sending; and, as a lower bound, when the last poll that did not
show it on the replica that took it last was sent. The next change is sent
once the previous one is everywhere. Writes JSON: p50/p99/max of each, and
every change.

resume: the rollout set going again for bench/fleet.sh's judging phase:
propagate's share changes (PUT /api/routing/share) leave it paused, and a
paused rollout is judged only for an immediate rollback. If GET /api/rollout on the leader
shows it paused, POST /api/rollout/resume (back to its step's share, the bake
where it stopped); then waits (10 s at most) until the leader and a follower
show it progressing. Prints {"was", "state", "rollout_id", "step", "share"};
fails, saying what it saw, if there is no active rollout to resume.

logs: counts the WARN and ERROR lines in D/ID/stderr.log of every replica
(apart: those logged once it was stopping), and the most frequent messages (timestamps and field values left out), with
how many replicas logged each.
"""

import argparse
import asyncio
import json
import math
import os
import random
import re
import sys
import time

from fleet_http import Conn, HttpError, Pool

CLK_TCK = os.sysconf("SC_CLK_TCK")


def load_replicas(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def die(msg):
    print(f"fleet_probe: {msg}", file=sys.stderr)
    sys.exit(1)


def exited(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X")
    except OSError:
        return True


def ticks(pid):
    """utime+stime of PID (all its threads, living and ended), clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15
    return int(fields[11]) + int(fields[12])


def memory(pid):
    """(PSS, RSS) in kB from smaps_rollup."""
    pss = rss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    return pss, rss


def pct(xs, q):
    """Nearest-rank percentile."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)]


def median(xs):
    if not xs:
        return None
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


async def get_json(pool, path, timeout=5.0):
    status, body, _ = await pool.request("GET", path, timeout=timeout)
    if status != 200:
        raise HttpError(f"GET {path}: status {status}")
    return json.loads(body)


# --- ready / settle ---------------------------------------------------------------


async def ready(args):
    reps = load_replicas(args.replicas)[args.first : args.last]
    pools = {r["id"]: Pool(r["admin"]) for r in reps}
    waiting = {r["id"]: r for r in reps}
    end = time.monotonic() + args.timeout
    while waiting:
        for rid, r in list(waiting.items()):
            if exited(r["pid"]):
                die(f"replica {rid} (pid {r['pid']}) exited during startup; see its stderr.log")

        async def look(rid):
            try:
                await get_json(pools[rid], "/api/v2/health", timeout=2)
                return rid
            except (HttpError, ValueError):
                return None

        for rid in await asyncio.gather(*(look(rid) for rid in waiting)):
            if rid is not None:
                del waiting[rid]
        if not waiting:
            break
        if time.monotonic() > end:
            die(f"{len(waiting)} replicas did not answer their admin API in {args.timeout} s: {sorted(waiting)[:10]}")
        await asyncio.sleep(0.2)
    for p in pools.values():
        p.close()


async def settle(args):
    reps = load_replicas(args.replicas)
    pools = {r["id"]: Pool(r["admin"]) for r in reps}
    start = time.monotonic()
    last = ""
    while True:
        async def look(r):
            try:
                h = await get_json(pools[r["id"]], "/api/v2/health", timeout=5)
            except (HttpError, ValueError) as e:
                return r["id"], None, None, f"no health: {e}"
            c = h.get("cluster") or {}
            return r["id"], len(c.get("replicas") or []), c.get("leader"), c.get("etcd_error")

        got = await asyncio.gather(*(look(r) for r in reps))
        leaders = {g[2] for g in got}
        counts = sorted({g[1] for g in got if g[1] is not None})
        errors = [f"{g[0]}: {g[3]}" for g in got if g[3]]
        if all(g[1] == args.n for g in got) and len(leaders) == 1 and None not in leaders and not errors:
            break
        last = (
            f"replicas seen: {counts} (want {args.n}); leaders named: {sorted(map(str, leaders))}; "
            f"errors: {errors[:3]}"
        )
        if time.monotonic() - start > args.timeout:
            die(f"the fleet did not settle in {args.timeout} s: {last}")
        await asyncio.sleep(1.0)
    for p in pools.values():
        p.close()
    print(json.dumps({"leader": leaders.pop(), "seconds": round(time.monotonic() - start, 1)}))


# --- measure ----------------------------------------------------------------------

METRIC = re.compile(r'^(\w+)\{([^}]*)\}\s+(\S+)')


def parse_metrics(text, name, label):
    """{label value: sum} of metric NAME's samples."""
    out = {}
    for line in text.splitlines():
        m = METRIC.match(line)
        if not m or m.group(1) != name:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = labels.get(label, "")
        out[key] = out.get(key, 0.0) + float(m.group(3))
    return out


async def scrape(reps, pools, etcd):
    """Internal requests answered, summed over the replicas, by path; etcd's
    gRPC calls started, by method; and when (monotonic)."""

    async def one(r):
        try:
            status, body, _ = await pools[r["id"]].request("GET", "/metrics", timeout=10)
        except HttpError:
            return None
        if status != 200:
            return None
        return parse_metrics(body.decode(), "canary_cluster_internal_requests_total", "path")

    t = time.monotonic()
    got = await asyncio.gather(*(one(r) for r in reps))
    internal, missing = {}, 0
    for g in got:
        if g is None:
            missing += 1
            continue
        for k, v in g.items():
            internal[k] = internal.get(k, 0.0) + v
    ec = Conn(etcd)
    try:
        status, body, _ = await ec.request("GET", "/metrics", timeout=10)
        grpc = parse_metrics(body.decode(), "grpc_server_started_total", "grpc_method") if status == 200 else {}
    except HttpError:
        grpc = {}
    ec.close()
    return {"t": (t + time.monotonic()) / 2, "internal": internal, "missing": missing, "grpc": grpc}


async def leader_of(reps, pools):
    for r in reps[:5]:
        try:
            h = await get_json(pools[r["id"]], "/api/v2/health", timeout=5)
        except (HttpError, ValueError):
            continue
        leader = (h.get("cluster") or {}).get("leader")
        if leader:
            return leader
    return None


# A rollout in these states is active: the leader's controller judges it, and
# gathers the fleet's totals at every look (canary_core's State::is_active).
ACTIVE = ("progressing", "holding", "paused")


async def rollout_states(reps, pools, leader, when):
    """GET /api/rollout on the leader and on one follower: {id: {state,
    rollout_id, step, share}}; fails unless both show an active rollout."""
    if not leader:
        die(f"{when}: no replica names a leader")
    ids = [leader] + [r["id"] for r in reps if r["id"] != leader][:1]
    out = {}
    for rid in ids:
        try:
            st = await get_json(pools[rid], "/api/rollout", timeout=10)
        except (HttpError, ValueError) as e:
            die(f"{when}: GET /api/rollout on {rid}: {e}")
        ro = st.get("rollout") or {}
        out[rid] = {"state": st.get("state"), "rollout_id": ro.get("id"), "step": ro.get("step"),
                    "share": st.get("share")}
        if st.get("state") not in ACTIVE:
            role = "the leader" if rid == leader else "a follower"
            die(f"{when}: no rollout is being judged: GET /api/rollout on {rid} ({role}) shows state "
                f"{st.get('state')!r} (want one of {', '.join(ACTIVE)}); rollout {ro or None}; "
                f"error {st.get('error')!r}")
    return out


def rates(before, after, seconds):
    keys = set(before) | set(after)
    return {k: round((after.get(k, 0) - before.get(k, 0)) / seconds, 2) for k in sorted(keys)}


async def measure(args):
    reps = load_replicas(args.replicas)
    pools = {r["id"]: Pool(r["admin"]) for r in reps}
    etcd_port = int(args.etcd.rsplit(":", 1)[1].strip("/"))
    leader = await leader_of(reps, pools)
    rollout = {}
    if args.judging:
        rollout["before"] = await rollout_states(reps, pools, leader, "before the window")
    s0 = await scrape(reps, pools, etcd_port)
    # Idle connections stay open: closing them now would be work in the window.
    pids = [r["pid"] for r in reps] + [args.etcd_pid]
    t0 = time.monotonic()
    c0 = [ticks(p) for p in pids]
    await asyncio.sleep(args.seconds)
    c1 = [ticks(p) for p in pids]
    t1 = time.monotonic()
    mem = [memory(r["pid"]) for r in reps]
    s1 = await scrape(reps, pools, etcd_port)
    leader_after = await leader_of(reps, pools)
    if args.judging:
        rollout["after"] = await rollout_states(reps, pools, leader_after, "after the window")
    for p in pools.values():
        p.close()

    window = t1 - t0
    ms = [(b - a) * 1000.0 / CLK_TCK / window for a, b in zip(c0, c1)]
    per = dict(zip([r["id"] for r in reps], ms[:-1]))
    reps_ms = ms[:-1]
    pss = [m[0] / 1024 for m in mem]
    rss = [m[1] / 1024 for m in mem]
    scraped = s1["t"] - s0["t"]
    internal = rates(s0["internal"], s1["internal"], scraped)
    grpc = rates(s0["grpc"], s1["grpc"], scraped)
    # This process's own scrape of etcd's /metrics is not etcd's clients' work:
    # it is an HTTP handler, outside the gRPC counters.
    r2 = lambda x: None if x is None else round(x, 2)  # noqa: E731
    out = {
        "window_s": round(window, 3),
        "clk_tck": CLK_TCK,
        "replicas": len(reps),
        "leader": leader,
        "leader_after": leader_after,
        "cpu_ms_per_s": {
            "fleet": r2(sum(reps_ms)),
            "replica_mean": r2(sum(reps_ms) / len(reps_ms)),
            "replica_median": r2(median(reps_ms)),
            "replica_max": r2(max(reps_ms)),
            "replica_max_id": max(per, key=per.get),
            "leader": r2(per.get(leader)) if leader in per else None,
            "followers_mean": r2(
                sum(v for k, v in per.items() if k != leader) / max(1, len(per) - (leader in per))
            ),
            "etcd": r2(ms[-1]),
            "per_replica": {k: r2(v) for k, v in per.items()},
        },
        "memory_mb": {
            "pss_median": r2(median(pss)),
            "pss_max": r2(max(pss)),
            "pss_sum": r2(sum(pss)),
            "rss_median": r2(median(rss)),
            "rss_max": r2(max(rss)),
        },
        "internal_requests_per_s": {"total": r2(sum(internal.values())), "by_path": internal},
        "etcd_requests_per_s": {"total": r2(sum(grpc.values())), "by_method": {k: v for k, v in grpc.items() if v}},
        "scrape_interval_s": round(scraped, 3),
        "metrics_missing": s0["missing"] + s1["missing"],
    }
    if args.judging:
        out["rollout"] = rollout
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")


# --- propagate -------------------------------------------------------------------


async def propagate(args):
    reps = load_replicas(args.replicas)
    rng = random.Random(args.seed)
    polls = {r["id"]: Conn(r["admin"]) for r in reps}  # one each: the routing polls
    cmds = {r["id"]: Pool(r["admin"]) for r in reps}  # the commands

    async def shows(rid, want, canary):
        """(rid, shown, when its request was sent, when its answer was read)."""
        asked = time.monotonic()
        try:
            status, body, at = await polls[rid].request("GET", "/api/routing", timeout=2)
            if status != 200:
                return rid, False, asked, None
            t = json.loads(body)
        except (HttpError, ValueError):
            return rid, False, asked, None
        ok = t.get("share") is not None and abs(float(t["share"]) - want) < 1e-9
        if canary and not t.get("canary"):
            ok = False
        return rid, ok, asked, at

    async def until_everywhere(want, since, canary=False):
        """When every replica showed WANT, as a bracket: (earliest, latest,
        the last one's id, rounds). A replica took the change after the
        last poll that did not show it was sent (or after SINCE), and
        before the answer of the first that did was read. On time-out
        (None, None, the laggards, rounds)."""
        pending = {r["id"]: since for r in reps}  # the lower bound so far
        lower, upper, last_id, rounds = since, None, None, 0
        end = time.monotonic() + args.timeout
        while pending:
            round_start = time.monotonic()
            rounds += 1
            # In a new order each round: the replicas asked last in a round
            # are seen last, whatever they did.
            order = list(pending)
            rng.shuffle(order)
            for rid, ok, asked, at in await asyncio.gather(*(shows(rid, want, canary) for rid in order)):
                if not ok:
                    pending[rid] = asked
                    continue
                lower = max(lower, pending.pop(rid))
                if upper is None or at > upper:
                    upper, last_id = at, rid
            if not pending:
                break
            if time.monotonic() > end:
                return None, None, sorted(pending), rounds
            await asyncio.sleep(max(0.0, round_start + args.interval - time.monotonic()))
        return lower, upper, last_id, rounds

    async def command(method, path, body):
        """Sends to a random replica; retries a refusal (no leader yet) 5 times."""
        for attempt in range(6):
            target = rng.choice(reps)["id"]
            sent = time.monotonic()
            try:
                status, data, answered = await cmds[target].request(method, path, json.dumps(body).encode(), timeout=30)
            except HttpError as e:
                status, data, answered = None, str(e).encode(), time.monotonic()
            if status == 200:
                return target, sent, answered, attempt
            print(f"fleet_probe: {method} {path} via {target}: {status} {data[:200]!r}; retrying", file=sys.stderr)
            await asyncio.sleep(1.0)
        die(f"{method} {path} failed 6 times")

    first = 20.0
    deploy = {"share": first, "canary": args.canary, "steps": "20,50,100", "bake": "1h",
              "final_watch": "1h", "manual": True}
    target, sent, answered, retries = await command("POST", "/api/rollout/deploy", deploy)
    _, last_t, last_id, rounds = await until_everywhere(first, sent, canary=True)
    if last_t is None:
        die(f"the deploy did not reach every replica in {args.timeout} s: {last_id[:10]}")
    deployed = {"via": target, "answer_ms": round((answered - sent) * 1000, 1),
                "from_answer_ms": round(max(0.0, last_t - answered) * 1000, 1),
                "from_sent_ms": round((last_t - sent) * 1000, 1), "last": last_id}

    changes = []
    values = [30.0, 20.0]
    for i in range(args.changes):
        want = values[i % 2]
        target, sent, answered, retries = await command("PUT", "/api/routing/share", {"share": want})
        lower, last_t, last_id, rounds = await until_everywhere(want, sent)
        c = {"i": i, "share": want, "via": target, "retries": retries,
             "answer_ms": round((answered - sent) * 1000, 1), "rounds": rounds}
        if last_t is None:
            c.update(timed_out=True, laggards=last_id[:20])
        else:
            c.update(from_answer_ms=round(max(0.0, last_t - answered) * 1000, 1),
                     from_sent_ms=round((last_t - sent) * 1000, 1),
                     from_sent_lower_ms=round((lower - sent) * 1000, 1), last=last_id)
        changes.append(c)
        await asyncio.sleep(args.gap)
    for c in polls.values():
        c.close()
    for p in cmds.values():
        p.close()

    done = [c for c in changes if not c.get("timed_out")]

    def stats(key):
        xs = [c[key] for c in done]
        return {"p50": pct(xs, 0.50), "p99": pct(xs, 0.99), "max": max(xs) if xs else None}

    lasts = {}
    for c in done:
        lasts[c["last"]] = lasts.get(c["last"], 0) + 1
    out = {
        "changes": len(changes),
        "timed_out": len(changes) - len(done),
        "poll_interval_ms": args.interval * 1000,
        "from_answer_ms": stats("from_answer_ms"),
        "from_sent_ms": stats("from_sent_ms"),
        "from_sent_lower_ms": stats("from_sent_lower_ms"),
        "answer_ms": stats("answer_ms"),
        "most_often_last": sorted(lasts.items(), key=lambda kv: -kv[1])[:5],
        "deploy": deployed,
        "seed": args.seed,
        "each": changes,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")


# --- resume ----------------------------------------------------------------------


async def resume(args):
    reps = load_replicas(args.replicas)
    pools = {r["id"]: Pool(r["admin"]) for r in reps}
    leader = await leader_of(reps, pools)
    if not leader:
        die("no replica names a leader")
    st = await get_json(pools[leader], "/api/rollout", timeout=10)
    was = st.get("state")
    if was not in ACTIVE:
        die(f"no rollout to judge: GET /api/rollout on the leader {leader} shows state {was!r}; "
            f"rollout {st.get('rollout')}; error {st.get('error')!r}")
    if was == "paused":
        status, body, _ = await pools[leader].request("POST", "/api/rollout/resume", timeout=30)
        if status != 200:
            die(f"POST /api/rollout/resume on {leader}: status {status}: {body[:300]!r}")
    end = time.monotonic() + 10
    while True:
        states = await rollout_states(reps, pools, leader, "after resuming")
        if all(v["state"] == "progressing" for v in states.values()):
            break
        if time.monotonic() > end:
            die(f"the rollout is not progressing 10 s after resuming: {states}")
        await asyncio.sleep(0.2)
    for p in pools.values():
        p.close()
    print(json.dumps({"was": was, **states[leader]}))


# --- logs ------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LEVEL = re.compile(r"\b(WARN|ERROR)\b\s+(.*)")


def logs(args):
    reps = load_replicas(args.replicas)
    counts = {"WARN": 0, "ERROR": 0, "stopping": 0}
    messages = {}
    for r in reps:
        path = os.path.join(args.dir, r["id"], "stderr.log")
        try:
            with open(path, errors="replace") as f:
                lines = f.readlines()
        except OSError:
            continue
        stopping = False
        for line in lines:
            line = ANSI.sub("", line)
            # canary's own line once it got SIGTERM: what follows is its shutdown.
            stopping = stopping or "stopping: " in line
            m = LEVEL.search(line)
            if not m:
                continue
            counts["stopping" if stopping else m.group(1)] += 1
            # The message without its variable parts: field values, numbers.
            text = re.sub(r'=("[^"]*"|\S+)', "=…", m.group(2))
            text = re.sub(r"\d+", "N", text)[:160]
            key = f"{'(stopping) ' if stopping else ''}{m.group(1)} {text}"
            e = messages.setdefault(key, {"count": 0, "replicas": set()})
            e["count"] += 1
            e["replicas"].add(r["id"])
    top = sorted(messages.items(), key=lambda kv: -kv[1]["count"])[:10]
    out = {
        "warn": counts["WARN"],
        "error": counts["ERROR"],
        "while_stopping": counts["stopping"],
        "top": [{"message": k, "count": v["count"], "replicas": len(v["replicas"])} for k, v in top],
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ready")
    p.add_argument("--replicas", required=True)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--last", type=int, default=None)
    p.add_argument("--timeout", type=float, default=120)
    p = sub.add_parser("settle")
    p.add_argument("--replicas", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--timeout", type=float, default=300)
    p = sub.add_parser("measure")
    p.add_argument("--replicas", required=True)
    p.add_argument("--etcd", required=True)
    p.add_argument("--etcd-pid", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--judging", action="store_true", help="a rollout must be active before and after the window")
    p = sub.add_parser("propagate")
    p.add_argument("--replicas", required=True)
    p.add_argument("--canary", required=True)
    p.add_argument("--changes", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.010)
    p.add_argument("--gap", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    p.add_argument("--out", required=True)
    p = sub.add_parser("resume")
    p.add_argument("--replicas", required=True)
    p = sub.add_parser("logs")
    p.add_argument("--replicas", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "logs":
        logs(a)
        sys.exit(0)
    asyncio.run({"ready": ready, "settle": settle, "measure": measure, "propagate": propagate,
                 "resume": resume}[a.cmd](a))
