#!/usr/bin/env python3
"""The summary of a bench/fleet.sh run.

    fleet_report.py OUT N...

Reads OUT/machine.json and, for each N, OUT/nN/{fleet,idle,load-R,
load-R-client,propagation,logs}.json; writes OUT/summary.txt (each fleet in
detail beside the issue's aims, then a markdown table, one row per N) and
OUT/summary.json (the same figures, without each change's record).
"""

import json
import os
import sys

# The issue's aims: for 100 replicas idle, and propagation at any size.
AIMS = {
    "fleet_cpu_ms_per_s": 100,
    "etcd_cpu_ms_per_s": 50,
    "pss_mb": 15,
    "propagation_p99_ms": 250,
    "leader_extra_cpu_ms_per_s_at_1000": 50,
}
AIM_REPLICAS = 100
AIM_RATE = 1000


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def f1(x):
    return "-" if x is None else f"{x:.1f}"


def top(d, n=4):
    items = sorted(((k, v) for k, v in d.items() if v), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v:.1f}" for k, v in items) or "none"


def verdict(value, limit, strict=False):
    if value is None:
        return "not measured"
    ok = value < limit if strict else value <= limit
    return "met" if ok else "MISSED"


def detail(n, d, lines):
    fleet, idle, prop, logs = d["fleet"], d["idle"], d["propagation"], d["logs"]
    settle = fleet.get("settle", {})
    lines.append(
        f"== {n} replicas: answering after {fleet['start_s']} s, all registered with one leader "
        f"({settle.get('leader')}) after {settle.get('seconds')} s more; stopped in {fleet['stop_s']} s"
    )

    def block(title, m, aims):
        c, mem = m["cpu_ms_per_s"], m["memory_mb"]
        w = lambda label, text, aim="": lines.append(  # noqa: E731
            f"  {label:<20} {text:<48} {aim if aims else ''}".rstrip()
        )
        lines.append(f"{title} (window {m['window_s']:.1f} s)")
        w("fleet CPU", f"{f1(c['fleet'])} ms/s (sum over {m['replicas']} replicas)",
          aims and f"aim at {AIM_REPLICAS} replicas: <= {AIMS['fleet_cpu_ms_per_s']} ms/s")
        w("per replica", f"mean {f1(c['replica_mean'])}, median {f1(c['replica_median'])}, "
                         f"max {f1(c['replica_max'])} ms/s ({c['replica_max_id']})")
        leader_text = f"{f1(c['leader'])} ms/s ({m['leader']}); followers' mean {f1(c['followers_mean'])}"
        if m.get("leader_after") != m.get("leader"):
            leader_text += f"; LEADER CHANGED to {m.get('leader_after')} during the window"
        w("leader", leader_text)
        w("etcd", f"{f1(c['etcd'])} ms/s",
          aims and f"aim at {AIM_REPLICAS} replicas: <= {AIMS['etcd_cpu_ms_per_s']} ms/s")
        w("PSS per replica", f"median {f1(mem['pss_median'])}, max {f1(mem['pss_max'])} MB",
          aims and f"aim at {AIM_REPLICAS} replicas: <= {AIMS['pss_mb']} MB")
        w("RSS per replica", f"median {f1(mem['rss_median'])}, max {f1(mem['rss_max'])} MB")
        ir = m["internal_requests_per_s"]
        w("internal requests", f"{f1(ir['total'])}/s ({top(ir['by_path'])})")
        er = m["etcd_requests_per_s"]
        w("etcd requests", f"{f1(er['total'])}/s ({top(er['by_method'])})")
        if m.get("metrics_missing"):
            w("", f"({m['metrics_missing']} /metrics scrapes failed)")

    block("idle", idle, True)
    for rate, ld in sorted(d["loads"].items()):
        cl = ld["client"] or {}
        lines.append(
            f"load {rate} requests/s: {cl.get('sent')} sent at {cl.get('achieved_rate')}/s, "
            f"{cl.get('failed')} failed, {cl.get('late')} sent late; latency p50 "
            f"{cl.get('latency_ms', {}).get('p50')} ms, p99 {cl.get('latency_ms', {}).get('p99')} ms"
        )
        if cl.get("failed"):
            lines.append(f"  failures: {cl.get('failed_by_cause')}")
        block("  under load", ld["server"], False)
        extra = ld["leader_extra_ms_per_s"]
        aim = ""
        if rate == AIM_RATE:
            aim = (f"aim at {AIM_RATE}/s over {AIM_REPLICAS} replicas: "
                   f"<= {AIMS['leader_extra_cpu_ms_per_s_at_1000']} ms/s")
        lines.append(f"  {'leader extra CPU':<20} {('+' if extra and extra >= 0 else '') + f1(extra) + ' ms/s over idle':<48} {aim}".rstrip())
    if prop:
        fa, fs, an = prop["from_answer_ms"], prop["from_sent_ms"], prop["answer_ms"]
        lines.append(
            f"propagation: {prop['changes']} share changes, {prop['timed_out']} not everywhere in 10 s; "
            f"routing polled every {prop['poll_interval_ms']:.0f} ms"
        )
        lines.append(f"  {'from the PUT sent':<20} {'p50 ' + f1(fs['p50']) + ', p99 ' + f1(fs['p99']) + ', max ' + f1(fs['max']) + ' ms':<48} "
                     f"aim: p99 < {AIMS['propagation_p99_ms']} ms (checked on this one)")
        lo = prop.get("from_sent_lower_ms") or {}
        lines.append(f"  {'  at least':<20} p50 {f1(lo.get('p50'))}, p99 {f1(lo.get('p99'))}, max {f1(lo.get('max'))} ms "
                     "(when the last poll not showing it was sent)")
        lines.append(f"  {'from its answer':<20} p50 {f1(fa['p50'])}, p99 {f1(fa['p99'])}, max {f1(fa['max'])} ms")
        lines.append(f"  {'the PUT itself':<20} p50 {f1(an['p50'])}, p99 {f1(an['p99'])}, max {f1(an['max'])} ms")
        dp = prop["deploy"]
        lines.append(f"  {'the deploy':<20} answered in {f1(dp['answer_ms'])} ms, everywhere {f1(dp['from_sent_ms'])} ms after sent")
        last = ", ".join(f"{k} {v}x" for k, v in prop["most_often_last"])
        lines.append(f"  {'last to show it':<20} {last}")
    if logs:
        lines.append(f"logs: {logs['warn']} WARN and {logs['error']} ERROR lines over all replicas, "
                     f"and {logs.get('while_stopping', 0)} while they stopped")
        for t in logs["top"][:5]:
            lines.append(f"  {t['count']}x on {t['replicas']} replicas: {t['message'][:150]}")
    lines.append("")


def main():
    out, sizes = sys.argv[1], [int(n) for n in sys.argv[2:]]
    machine = load(os.path.join(out, "machine.json")) or {}
    fleets = {}
    for n in sizes:
        base = os.path.join(out, f"n{n}")
        fleet = load(os.path.join(base, "fleet.json"))
        idle = load(os.path.join(base, "idle.json"))
        if not fleet or not idle:
            continue
        loads = {}
        for rate in fleet.get("load_rates", []):
            server = load(os.path.join(base, f"load-{rate}.json"))
            if not server:
                continue
            la, li = server["cpu_ms_per_s"]["leader"], idle["cpu_ms_per_s"]["leader"]
            extra = None if la is None or li is None or server["leader"] != idle["leader"] else round(la - li, 2)
            loads[rate] = {"server": server, "client": load(os.path.join(base, f"load-{rate}-client.json")),
                           "leader_extra_ms_per_s": extra}
        prop = load(os.path.join(base, "propagation.json"))
        fleets[n] = {"fleet": fleet, "idle": idle, "loads": loads, "propagation": prop,
                     "logs": load(os.path.join(base, "logs.json"))}

    lines = [
        f"canary fleet benchmark ({machine.get('started')})",
        f"machine: {machine.get('nproc')} cores, {machine.get('cpu')}, {machine.get('kernel')}",
        f"canary {machine.get('canary_rev')}; binary {machine.get('canary_binary')}; "
        f"replicas' [proxy] workers: {machine.get('workers')}",
        f"etcd {machine.get('etcd')} (one member, new for each fleet); nginx {machine.get('nginx')} backend; "
        f"python {machine.get('python')} clients",
        f"CPU: utime+stime from /proc/PID/stat in clock ticks (CLK_TCK {machine.get('clk_tck')}: each process's "
        f"figure is within {1000 / (machine.get('clk_tck') or 100) / (machine.get('window_s') or 20):.1f} ms/s) "
        f"over {machine.get('window_s')} s windows, after {machine.get('settle_s')} s idle; "
        "ms/s = ms of CPU per second of wall time (1000 = one core)",
        "",
    ]
    for n, d in fleets.items():
        detail(n, d, lines)

    lines.append("| replicas | fleet CPU ms/s | per replica mean/max | leader | etcd | PSS median/max MB "
                 "| RSS median MB | internal req/s | etcd req/s | propagation p50/p99 ms | leader extra CPU |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n, d in fleets.items():
        c, mem, idle = d["idle"]["cpu_ms_per_s"], d["idle"]["memory_mb"], d["idle"]
        p = d["propagation"]
        prop = f"{f1(p['from_sent_ms']['p50'])} / {f1(p['from_sent_ms']['p99'])}" if p else "-"
        extra = "; ".join(
            f"{'+' if (ld['leader_extra_ms_per_s'] or 0) >= 0 else ''}{f1(ld['leader_extra_ms_per_s'])} at {r}/s"
            for r, ld in sorted(d["loads"].items())
        ) or "-"
        lines.append(
            f"| {n} | {f1(c['fleet'])} | {f1(c['replica_mean'])} / {f1(c['replica_max'])} | {f1(c['leader'])} "
            f"| {f1(c['etcd'])} | {f1(mem['pss_median'])} / {f1(mem['pss_max'])} | {f1(mem['rss_median'])} "
            f"| {f1(idle['internal_requests_per_s']['total'])} | {f1(idle['etcd_requests_per_s']['total'])} "
            f"| {prop} | {extra} |"
        )
    lines.append(
        f"| aim ({AIM_REPLICAS}) | <= {AIMS['fleet_cpu_ms_per_s']} | | | <= {AIMS['etcd_cpu_ms_per_s']} "
        f"| <= {AIMS['pss_mb']} | | | | p99 < {AIMS['propagation_p99_ms']} "
        f"| <= {AIMS['leader_extra_cpu_ms_per_s_at_1000']} at {AIM_RATE}/s |"
    )
    lines.append("")
    lines.append("CPU, memory and request rates idle; propagation from the PUT sent; leader extra CPU: "
                 "under load minus idle.")

    checks = {}
    for n, d in fleets.items():
        p = d["propagation"]
        checks.setdefault(str(n), {})["propagation_p99_ms"] = verdict(
            p and p["from_sent_ms"]["p99"], AIMS["propagation_p99_ms"], strict=True)
    if AIM_REPLICAS in fleets:
        d = fleets[AIM_REPLICAS]
        c, mem = d["idle"]["cpu_ms_per_s"], d["idle"]["memory_mb"]
        ld = d["loads"].get(AIM_RATE)
        checks[str(AIM_REPLICAS)].update({
            "fleet_cpu_ms_per_s": verdict(c["fleet"], AIMS["fleet_cpu_ms_per_s"]),
            "etcd_cpu_ms_per_s": verdict(c["etcd"], AIMS["etcd_cpu_ms_per_s"]),
            "pss_mb": verdict(mem["pss_max"], AIMS["pss_mb"]),
            "leader_extra_cpu_ms_per_s_at_1000": verdict(ld and ld["leader_extra_ms_per_s"],
                                                         AIMS["leader_extra_cpu_ms_per_s_at_1000"]),
        })
    lines.append("")
    lines.append("aims: " + "; ".join(
        f"{n} replicas: " + ", ".join(f"{k} {v}" for k, v in ch.items()) for n, ch in checks.items()))
    if AIM_REPLICAS not in fleets:
        lines.append(f"(the CPU, etcd, PSS and leader aims are for {AIM_REPLICAS} replicas, not run here)")

    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    for d in fleets.values():
        if d["propagation"]:
            d["propagation"] = {k: v for k, v in d["propagation"].items() if k != "each"}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"machine": machine, "aims": AIMS, "checks": checks,
                   "fleets": {str(n): d for n, d in fleets.items()}}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
