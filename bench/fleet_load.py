#!/usr/bin/env python3
"""Open-loop load for bench/fleet.sh, spread over a fleet of replicas.

    fleet_load.py --ports P1,P2,... --rate R --seconds S [--path /] [--out F]

Stops early, with its summary, on SIGTERM or SIGINT. Request k is due at start + k/R (open loop: a slow answer does not delay the
next request) and goes to the replicas' proxy ports round robin, on a
keep-alive connection of that replica's pool (a new one when all of its
connections are busy). Writes a JSON summary (to --out, or stdout): sent,
ok (2xx), failed by cause, late (sent over 10 ms after due), the rate
achieved, and latency percentiles. Standard library only.
"""

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter

from fleet_http import HttpError, Pool


def percentile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def main(args):
    ports = [int(p) for p in args.ports.split(",") if p]
    pools = [Pool(p) for p in ports]
    total = int(args.rate * args.seconds)
    tally = Counter()
    causes = Counter()
    latencies = []
    tasks = set()

    async def one(pool):
        t = time.monotonic()
        try:
            status, _, done = await pool.request("GET", args.path, timeout=args.timeout)
        except HttpError as e:
            tally["failed"] += 1
            causes[str(e)[:80]] += 1
            return
        latencies.append(done - t)
        if 200 <= status < 300:
            tally["ok"] += 1
        else:
            tally["failed"] += 1
            causes[f"status {status}"] += 1

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    start = time.monotonic()
    k = 0
    while k < total and not stop.is_set():
        now = time.monotonic()
        while k < total and start + k / args.rate <= now:
            if now - (start + k / args.rate) > 0.010:
                tally["late"] += 1
            task = asyncio.create_task(one(pools[k % len(pools)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            tally["sent"] += 1
            k += 1
        if k < total:
            await asyncio.sleep(max(0.0, start + k / args.rate - time.monotonic()))
    sending = time.monotonic() - start
    if tasks:
        await asyncio.wait(set(tasks), timeout=args.timeout + 1)
    for pool in pools:
        pool.close()
    ms = lambda x: None if x is None else round(x * 1000, 2)  # noqa: E731
    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "sent": tally["sent"],
        "ok": tally["ok"],
        "failed": tally["failed"],
        "failed_by_cause": dict(causes.most_common(10)),
        "late": tally["late"],
        "achieved_rate": round(tally["sent"] / sending, 1) if sending > 0 else None,
        "connections": sum(p.opened for p in pools),
        "latency_ms": {
            "p50": ms(percentile(latencies, 0.50)),
            "p99": ms(percentile(latencies, 0.99)),
            "max": ms(max(latencies) if latencies else None),
        },
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ports", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--out")
    a = ap.parse_args()
    summary = asyncio.run(main(a))
    text = json.dumps(summary, indent=2)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    sys.exit(0)
