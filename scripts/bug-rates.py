#!/usr/bin/env python3
"""Planted-bug catch rates from a suite's store (BENCHMARKS.md, "Planted bugs under the
generic `--nemesis all`").

    scripts/bug-rates.py STORE

For each suite entry (a directory of STORE), over its runs (one per seed): how many
were invalid, which checker caught each (the history's or the node logs'), the median
seconds from the run's start to the first anomaly, the seeds missed, and runs that
ended in a harness error. Seconds to the first anomaly: for a history anomaly, the
completion time of the operation that cannot be linearized (each history checker's
`failures`); for a node-log anomaly, the latest evidence line's timestamp (when
the anomaly became evident) minus the earliest line of any node log (the nodes'
start), corrected for the clock faults the nemesis recorded on that node. Only reads
what runs wrote; no dependency beyond Python 3.
"""

import json
import statistics
import sys
from datetime import datetime
from pathlib import Path


def stamp(line):
    """The wall time (s since the epoch) a tracing line starts with, or None."""
    try:
        return datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
    except (ValueError, IndexError):
        return None


def nodes_start(run):
    """The earliest timestamp of any node log's first line."""
    first = []
    for log in (run / "nodes").glob("*/node.log"):
        with open(log, errors="replace") as f:
            t = stamp(f.readline())
            if t is not None:
                first.append(t)
    return min(first) if first else None


def clock_offsets(run, start):
    """Per node, the (from, to, delta s) intervals its clock was moved, in wall time."""
    intervals, open_ = {}, {}
    path = run / "nemesis.jsonl"
    if not path.exists() or start is None:
        return intervals
    for line in open(path):
        op = json.loads(line)
        if op.get("type") != "info":
            continue
        at = start + op["time"] / 1e9
        value = op.get("value")
        if op["f"] in ("bump-clock", "strobe-clock") and isinstance(value, dict):
            for node, offset in clock_targets(value):
                if node in open_:
                    since, delta = open_[node]
                    intervals.setdefault(node, []).append((since, at, delta))
                open_[node] = (at, offset)
        elif op["f"] == "reset-clock":
            for node, (since, delta) in open_.items():
                intervals.setdefault(node, []).append((since, at, delta))
            open_ = {}
    for node, (since, delta) in open_.items():
        intervals.setdefault(node, []).append((since, float("inf"), delta))
    return intervals


def clock_targets(value):
    """(node, offset s) pairs a clock fault's recorded value names: the node's clock
    offset from then on (`offset_ms`, else `delta_ms`)."""
    nodes = value.get("nodes")
    items = [value] + ([i for i in nodes if isinstance(i, dict)] if isinstance(nodes, list) else [])
    pairs = []
    for item in items:
        ms = item.get("offset_ms", item.get("delta_ms"))
        if "node" in item and isinstance(ms, (int, float)):
            pairs.append((item["node"], ms / 1e3))
    return pairs


def evidence_time(ev, intervals):
    """Wall time of an evidence line, the node's clock fault taken out."""
    t = stamp(ev.get("text", ""))
    if t is None:
        return None
    for since, until, delta in intervals.get(ev.get("node"), []):
        if since <= t - delta < until:
            return t - delta
    return t


def history_times(run, indices):
    """Seconds since the run's start of the history lines `indices`."""
    want, found = set(indices), {}
    if not want:
        return found
    with open(run / "history.jsonl") as f:
        for line in f:
            op = json.loads(line)
            if op["index"] in want:
                found[op["index"]] = op["time"] / 1e9
                if len(found) == len(want):
                    break
    return found


def first_anomaly(run, results):
    """(seconds to the first anomaly, set of checkers that caught it)."""
    checkers = results.get("checkers", {})
    caught, times = set(), []
    start = nodes_start(run)
    logs = checkers.get("node-logs") or {}
    if logs.get("valid") is False:
        caught.add("node logs")
        intervals = clock_offsets(run, start)
        for anomalies in (logs.get("anomalies") or {}).values():
            for a in anomalies:
                ts = [evidence_time(e, intervals) for e in a.get("evidence", [])]
                ts = [t for t in ts if t is not None]
                if ts and start is not None:
                    times.append(max(ts) - start)
    for name, c in checkers.items():
        if name == "node-logs" or not isinstance(c, dict) or c.get("valid") is not False:
            continue
        caught.add("history")
        indices = [f["op"]["complete_index"] for f in c.get("failures", [])
                   if isinstance(f.get("op"), dict) and "complete_index" in f["op"]]
        times.extend(history_times(run, indices).values())
    return (min(times) if times else None), caught


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    store = Path(sys.argv[1])
    rows = []
    for entry in sorted(p for p in store.iterdir() if p.is_dir()):
        runs = sorted(r for r in entry.iterdir() if (r / "results.json").exists()
                      and not r.is_symlink())
        if not runs:
            continue
        tried, invalid, by, secs, missed, errors = 0, 0, {}, [], [], []
        for run in runs:
            results = json.loads((run / "results.json").read_text())
            tried += 1
            seed = results.get("seed")
            if results.get("harness_error"):
                errors.append(seed)
            if results.get("valid") is False:
                invalid += 1
                t, caught = first_anomaly(run, results)
                for c in caught:
                    by[c] = by.get(c, 0) + 1
                if t is not None:
                    secs.append(t)
            else:
                missed.append(seed)
        median = f"{statistics.median(secs):.0f}" if secs else "–"
        rows.append((entry.name, invalid, tried, median,
                     ", ".join(f"{k} {v}" for k, v in sorted(by.items())) or "–",
                     ", ".join(str(s) for s in sorted(missed)) or "–",
                     ", ".join(str(s) for s in sorted(errors)) or "–"))
    print("| entry | caught | median s to first anomaly | caught by | missed seeds | harness errors |")
    print("|---|---|---|---|---|---|")
    for name, invalid, tried, median, by, missed, errors in rows:
        print(f"| `{name}` | {invalid} of {tried} | {median} | {by} | {missed} | {errors} |")


if __name__ == "__main__":
    main()
