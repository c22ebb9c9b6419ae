#!/usr/bin/env python3
"""Turns bench.sh's per-run TSV into the markdown report (stdout). Standard library only.

Usage: report.py RESULTS.tsv META.md NOTES.md

RESULTS.tsv has one line per pgbench run:
  script mode clients round target status tps latency_ms failed_tx
Only runs with status "ok" count towards the medians; failed runs are listed in the notes.
"""
import csv
import statistics
import sys

TARGETS = ["direct", "pgbouncer", "switchyard"]
SCRIPTS = ["select-only", "tpcb-like"]
MODES = ["simple", "prepared"]
# Statements per transaction of pgbench's built-in scripts (BEGIN/END counted for tpcb-like).
STATEMENTS = {"select-only": 1, "tpcb-like": 7}


def load(path):
    runs = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["script"], row["mode"], int(row["clients"]), row["target"])
            entry = runs.setdefault(key, {"tps": [], "lat": [], "failed": 0})
            if row["status"] == "ok":
                entry["tps"].append(float(row["tps"]))
                entry["lat"].append(float(row["latency_ms"]))
            else:
                entry["failed"] += 1
    return runs


def med(values):
    return statistics.median(values) if values else None


def fmt(value, spec):
    return "—" if value is None else format(value, spec)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    tsv, meta_path, notes_path = sys.argv[1:4]
    runs = load(tsv)
    clients = sorted({k[2] for k in runs})
    scripts = [s for s in SCRIPTS if any(k[0] == s for k in runs)]
    modes = [m for m in MODES if any(k[1] == m for k in runs)]

    def stats(script, mode, c, target):
        e = runs.get((script, mode, c, target), {"tps": [], "lat": [], "failed": 0})
        return med(e["tps"]), med(e["lat"]), e

    out = []
    w = out.append
    w("# Switchyard load test: pgbench through Switchyard vs PgBouncer vs direct")
    w("")
    w(open(meta_path).read().rstrip())
    w("")
    w("Medians over the rounds; ratios are of medians. The machine is shared and noisy: read the ratios, "
      "not the absolute numbers, and distrust differences of a few percent.")
    w("")

    w("## Summary (median TPS)")
    w("")
    w("| script | protocol | clients | direct | pgbouncer | switchyard | switchyard / direct | pgbouncer / direct | switchyard / pgbouncer |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for script in scripts:
        for mode in modes:
            for c in clients:
                d = stats(script, mode, c, "direct")[0]
                b = stats(script, mode, c, "pgbouncer")[0]
                s = stats(script, mode, c, "switchyard")[0]
                w(f"| {script} | {mode} | {c} | {fmt(d, '.0f')} | {fmt(b, '.0f')} | {fmt(s, '.0f')} | "
                  f"{fmt(ratio(s, d), '.2f')} | {fmt(ratio(b, d), '.2f')} | **{fmt(ratio(s, b), '.2f')}** |")
    w("")

    w("## Added latency at 1 client (median latency minus direct's median)")
    w("")
    w("With one client every transaction waits for the previous one, so the difference in average latency "
      "is the time the proxy adds to each transaction. select-only has 1 statement per transaction, so its "
      "row is the added latency per statement (one round trip through the proxy). tpcb-like has 7 "
      "statements (BEGIN, 3 UPDATE, SELECT, INSERT, END), each a round trip; the per-statement column "
      "divides by 7.")
    w("")
    if 1 in clients:
        w("| script | protocol | direct latency (ms) | pgbouncer adds (µs/tx) | switchyard adds (µs/tx) | pgbouncer adds (µs/stmt) | switchyard adds (µs/stmt) |")
        w("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for script in scripts:
            for mode in modes:
                d = stats(script, mode, 1, "direct")[1]
                b = stats(script, mode, 1, "pgbouncer")[1]
                s = stats(script, mode, 1, "switchyard")[1]
                add_b = None if d is None or b is None else (b - d) * 1000
                add_s = None if d is None or s is None else (s - d) * 1000
                n = STATEMENTS[script]
                per_b = None if add_b is None else add_b / n
                per_s = None if add_s is None else add_s / n
                w(f"| {script} | {mode} | {fmt(d, '.3f')} | {fmt(add_b, '.0f')} | {fmt(add_s, '.0f')} | "
                  f"{fmt(per_b, '.0f')} | {fmt(per_s, '.0f')} |")
    else:
        w("(no 1-client runs in this report)")
    w("")

    w("## Per scenario")
    for script in scripts:
        for mode in modes:
            for c in clients:
                jobs = min(c, 2)
                w("")
                w(f"### {script}, -M {mode}, {c} client{'s' if c != 1 else ''} (-j {jobs})")
                w("")
                w("| target | median TPS | median latency (ms) | TPS / direct | latency / direct | TPS / pgbouncer | TPS of each run |")
                w("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
                d_tps, d_lat, _ = stats(script, mode, c, "direct")
                b_tps = stats(script, mode, c, "pgbouncer")[0]
                for target in TARGETS:
                    tps, lat, e = stats(script, mode, c, target)
                    each = ", ".join(f"{v:.0f}" for v in e["tps"]) or "—"
                    if e["failed"]:
                        each += f" ({e['failed']} failed)"
                    vs_b = fmt(ratio(tps, b_tps), ".2f") if target != "direct" else ""
                    w(f"| {target} | {fmt(tps, '.0f')} | {fmt(lat, '.3f')} | {fmt(ratio(tps, d_tps), '.2f')} | "
                      f"{fmt(ratio(lat, d_lat), '.2f')} | {vs_b} | {each} |")
                s_tps = stats(script, mode, c, "switchyard")[0]
                w("")
                w(f"Switchyard / PgBouncer TPS: **{fmt(ratio(s_tps, b_tps), '.2f')}**")
    w("")

    notes = open(notes_path).read().rstrip()
    w("## Problems seen")
    w("")
    w(notes if notes else "None: every pgbench run exited 0 with 0 failed transactions, and Switchyard logged no warnings or errors.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
