#!/usr/bin/env python3
"""The summary of a bench/fleet.sh run.

    fleet_report.py OUT N...

Reads OUT/machine.json and, for each N, OUT/nN/{fleet,idle,load-R,
load-R-client,propagation,judging-idle,judging-load-R,judging-load-R-client,
logs}.json; writes OUT/summary.txt (each fleet in detail beside the issue's
aims, then two markdown tables, one row per N: the fleet idle, under load and
propagating; the leader while a rollout is judged) and OUT/summary.json (the
same figures, without each change's record).
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
    # The same aim, while a rollout is judged (the leader gathers every look).
    "leader_extra_cpu_ms_per_s_at_1000_judging": 50,
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


def signed(x):
    return ("+" if x is not None and x >= 0 else "") + f1(x)


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
    j = d.get("judging")
    if j:
        ji = j["idle"]
        ro = (ji.get("rollout") or {}).get("before") or {}
        lr = ro.get(ji.get("leader")) or {}
        was = j.get("state_before_resume")
        lines.append(
            f"judging: rollout {lr.get('rollout_id')} {lr.get('state')} at step {lr.get('step')} "
            f"(share {lr.get('share')}) on the leader and a follower, before and after each window"
            + (f" (resumed: {was} after the share changes)" if was == "paused" else "")
        )
        block("  judging idle", ji, False)
        lines.append(f"  {'gathering':<20} {f1(j['internal_per_s'])} internal requests/s; "
                     f"expected about 4·(N-1) = {j['internal_expected_per_s']}{j['internal_note']}")
        jl = j["load"]
        if jl:
            cl = jl["client"] or {}
            lines.append(
                f"judging under load {j['rate']} requests/s: {cl.get('sent')} sent at {cl.get('achieved_rate')}/s, "
                f"{cl.get('failed')} failed, {cl.get('late')} sent late; latency p50 "
                f"{cl.get('latency_ms', {}).get('p50')} ms, p99 {cl.get('latency_ms', {}).get('p99')} ms"
            )
            if cl.get("failed"):
                lines.append(f"  failures: {cl.get('failed_by_cause')}")
            block("  judging under load", jl["server"], False)
        lc = j["leader_cpu_ms_per_s"]
        lines.append(f"  {'leader CPU':<20} idle, no rollout {f1(lc['idle_no_rollout'])}; judging idle "
                     f"{f1(lc['judging_idle'])}; judging at {j['rate']}/s {f1(lc['judging_load'])} ms/s")
        lines.append(f"  {'gathering cost':<20} {signed(j['gathering_cost_ms_per_s'])} ms/s "
                     "(leader judging idle minus leader idle)")
        aim = ""
        if j["rate"] == AIM_RATE:
            aim = (f"aim at {AIM_RATE}/s over {AIM_REPLICAS} replicas: "
                   f"<= {AIMS['leader_extra_cpu_ms_per_s_at_1000_judging']} ms/s")
        text = f"{signed(j['leader_extra_ms_per_s'])} ms/s at {j['rate']}/s while judging, over idle"
        lines.append(f"  {'leader extra CPU':<20} {text:<48} {aim}".rstrip())
        if j.get("leader_note"):
            lines.append(f"  ({j['leader_note']})")
    if logs:
        lines.append(f"logs: {logs['warn']} WARN and {logs['error']} ERROR lines over all replicas, "
                     f"and {logs.get('while_stopping', 0)} while they stopped")
        for t in logs["top"][:5]:
            lines.append(f"  {t['count']}x on {t['replicas']} replicas: {t['message'][:150]}")
    lines.append("")


def judging(base, n, fleet, idle):
    """The judging phase's figures beside the leader's idle with no rollout,
    or None when it was not measured."""
    ji = load(os.path.join(base, "judging-idle.json"))
    if not ji:
        return None
    rate = fleet.get("judging_rate")
    server = load(os.path.join(base, f"judging-load-{rate}.json")) if rate else None
    jl = server and {"server": server, "client": load(os.path.join(base, f"judging-load-{rate}-client.json"))}
    # A difference of the leader's CPU means something only if one replica led
    # throughout: from the idle window to the end of the judging one.
    leaders = {idle.get("leader"), idle.get("leader_after"), ji.get("leader"), ji.get("leader_after")}
    if server:
        leaders |= {server.get("leader"), server.get("leader_after")}
    same = len(leaders) == 1 and None not in leaders
    li = idle["cpu_ms_per_s"]["leader"]
    lji = ji["cpu_ms_per_s"]["leader"]
    ljl = server["cpu_ms_per_s"]["leader"] if server else None

    def diff(a, b):
        return None if a is None or b is None or not same else round(a - b, 2)

    internal = ji["internal_requests_per_s"]["total"]
    expected = 4 * (n - 1)
    note = ""
    if internal is not None and expected and internal < 0.5 * expected:
        note = " (LOW: is the leader gathering at every look?)"
    return {
        "rate": rate,
        "state_before_resume": (fleet.get("judged") or {}).get("was"),
        "idle": ji,
        "load": jl,
        "leader_cpu_ms_per_s": {"idle_no_rollout": li, "judging_idle": lji, "judging_load": ljl},
        "gathering_cost_ms_per_s": diff(lji, li),
        "leader_extra_ms_per_s": diff(ljl, li),
        "leader_note": "" if same else f"the leader changed between the windows ({sorted(map(str, leaders))}): "
                                       "no difference of its CPU is given",
        "internal_per_s": internal,
        "internal_load_per_s": server["internal_requests_per_s"]["total"] if server else None,
        "internal_expected_per_s": expected,
        "internal_note": note,
    }


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
                     "judging": judging(base, n, fleet, idle),
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

    judged = {n: d["judging"] for n, d in fleets.items() if d.get("judging")}
    if judged:
        lines.append("")
        lines.append("| replicas | leader idle, no rollout | leader judging idle | leader judging under load "
                     "| gathering cost | leader extra while judging | fleet CPU judging idle / under load "
                     "| etcd judging idle / under load | internal req/s judging (4·(N-1)) |")
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, j in judged.items():
            lc, ci = j["leader_cpu_ms_per_s"], j["idle"]["cpu_ms_per_s"]
            cl = j["load"]["server"]["cpu_ms_per_s"] if j["load"] else {}
            lines.append(
                f"| {n} | {f1(lc['idle_no_rollout'])} | {f1(lc['judging_idle'])} "
                f"| {f1(lc['judging_load'])} at {j['rate']}/s | {signed(j['gathering_cost_ms_per_s'])} "
                f"| {signed(j['leader_extra_ms_per_s'])} at {j['rate']}/s "
                f"| {f1(ci['fleet'])} / {f1(cl.get('fleet'))} | {f1(ci['etcd'])} / {f1(cl.get('etcd'))} "
                f"| {f1(j['internal_per_s'])} ({j['internal_expected_per_s']}){' LOW' if j['internal_note'] else ''} |"
            )
        lines.append(f"| aim ({AIM_REPLICAS}) | | | | "
                     f"| <= {AIMS['leader_extra_cpu_ms_per_s_at_1000_judging']} at {AIM_RATE}/s | | | |")
        lines.append("")
        lines.append("Leader CPU in ms/s while the rollout deployed for the propagation test is judged (the leader "
                     "gathers every peer's totals at every look, 250 ms): with nothing sent (judging idle) and under "
                     "the highest load rate; gathering cost: leader judging idle minus leader idle with no rollout; "
                     "leader extra while judging: leader judging under load minus leader idle with no rollout.")

    checks = {}
    for n, d in fleets.items():
        p = d["propagation"]
        checks.setdefault(str(n), {})["propagation_p99_ms"] = verdict(
            p and p["from_sent_ms"]["p99"], AIMS["propagation_p99_ms"], strict=True)
    if AIM_REPLICAS in fleets:
        d = fleets[AIM_REPLICAS]
        c, mem = d["idle"]["cpu_ms_per_s"], d["idle"]["memory_mb"]
        ld = d["loads"].get(AIM_RATE)
        j = d.get("judging")
        checks[str(AIM_REPLICAS)].update({
            "fleet_cpu_ms_per_s": verdict(c["fleet"], AIMS["fleet_cpu_ms_per_s"]),
            "etcd_cpu_ms_per_s": verdict(c["etcd"], AIMS["etcd_cpu_ms_per_s"]),
            "pss_mb": verdict(mem["pss_max"], AIMS["pss_mb"]),
            "leader_extra_cpu_ms_per_s_at_1000": verdict(ld and ld["leader_extra_ms_per_s"],
                                                         AIMS["leader_extra_cpu_ms_per_s_at_1000"]),
            "leader_extra_cpu_ms_per_s_at_1000_judging": verdict(
                j["leader_extra_ms_per_s"] if j and j["rate"] == AIM_RATE else None,
                AIMS["leader_extra_cpu_ms_per_s_at_1000_judging"]),
        })
    lines.append("")
    lines.append("aims: " + "; ".join(
        f"{n} replicas: " + ", ".join(f"{k} {v}" for k, v in ch.items()) for n, ch in checks.items()))
    if AIM_REPLICAS not in fleets:
        lines.append(f"(the CPU, etcd, PSS and leader aims are for {AIM_REPLICAS} replicas, not run here)")
    if judged:
        lines.append("leader while judging, beside the leader aim (<= "
                     f"{AIMS['leader_extra_cpu_ms_per_s_at_1000_judging']} ms/s extra at {AIM_RATE}/s over "
                     f"{AIM_REPLICAS} replicas): " + "; ".join(
                         f"{n} replicas {signed(j['leader_extra_ms_per_s'])} ms/s at {j['rate']}/s "
                         f"(gathering {signed(j['gathering_cost_ms_per_s'])})" for n, j in judged.items()))

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
