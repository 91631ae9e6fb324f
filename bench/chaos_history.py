#!/usr/bin/env python3
"""Reads the event history bench/chaos.sh left in etcd (etcdctl's `get --prefix`
output, oldest first, on stdin) and checks every rollout's steps.

A rollout leaves its steps in order: step_advanced and promoted name the step
they leave (`from_step`), which must run 1, 2, 3... with none twice and none
skipped; a rollback names the step it happened at (`at_step`), which must be
the step after the last one left; a new leader's `leader_changed` names the
step it resumes at, which must be the one the rollout was at. Prints a JSON
summary: rollouts started, promoted, rolled back, steps done twice or skipped
(each one named).
"""

import json
import sys


def main():
    lines = sys.stdin.read().splitlines()
    rollouts = {}
    order = []
    for key, value in zip(lines[0::2], lines[1::2]):
        e = json.loads(value)
        d = e.get("detail") or {}
        rid = d.get("rollout")
        if rid is None:
            continue
        if rid not in rollouts:
            rollouts[rid] = {"at": 1, "ended": None, "events": []}
            order.append(rid)
        rollouts[rid]["events"].append((key.rsplit("/", 1)[-1], e["kind"], d))
    twice, skipped, wrong = [], [], []
    started = promoted = rolled_back = 0
    for rid in order:
        r = rollouts[rid]
        for name, kind, d in r["events"]:
            where = f"rollout {rid}: {kind} ({name})"
            if kind == "rollout_started":
                started += 1
            elif kind in ("step_advanced", "promoted"):
                left = d.get("from_step")
                if r["ended"] is not None:
                    twice.append(f"{where} after the rollout ended ({r['ended']})")
                elif left < r["at"]:
                    twice.append(f"{where}: left step {left} again (at step {r['at']})")
                elif left > r["at"]:
                    skipped.append(f"{where}: left step {left} while at step {r['at']}")
                r["at"] = left + 1
                if kind == "promoted":
                    promoted += 1
                    r["ended"] = "promoted"
            elif kind == "rolled_back":
                at = d.get("at_step")
                # After a promotion a rollback restores the old stable (no step).
                if at is not None and r["ended"] is None and at != r["at"]:
                    wrong.append(f"{where}: rolled back at step {at} while at step {r['at']}")
                rolled_back += 1
                r["ended"] = "rolled_back"
            elif kind == "leader_changed":
                step = d.get("step")
                if step is not None and r["ended"] is None and step != r["at"]:
                    wrong.append(f"{where}: the new leader resumed at step {step}, the rollout was at {r['at']}")
    print(
        json.dumps(
            {
                "rollouts_started": started,
                "promoted": promoted,
                "rolled_back": rolled_back,
                "still_running": sum(1 for r in rollouts.values() if r["ended"] is None),
                "steps_done_twice": twice,
                "steps_skipped": skipped,
                "inconsistent": wrong,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
