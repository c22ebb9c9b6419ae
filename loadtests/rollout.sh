#!/usr/bin/env bash
# A canary rollout under load: a pgbench workload of reads and writes on pgbench_accounts runs through
# Switchyard without a pause while the flag moves off -> dual_write (backfill, then verify, while the
# workload runs) -> shadow -> canary 5 -> canary 50 -> live, a fixed time per stage. Two scenarios, each
# on its own database of one throwaway PostgreSQL and its own Switchyard:
#
#   good   pgbench_accounts_v2 created empty with a correct mapping (abalance renamed to balance,
#          filler kept). Must end with zero failed transactions, no aborted client and verify equal;
#          the cutover report's verdict is recorded, whichever it is.
#   wrong  filler first set to distinct 64-character text; pgbench_accounts_v2.filler is varchar(20)
#          and the mapping truncates it (forward left(filler, 20)). verify, which compares through the
#          forward mapping, still says equal: only shadow reads can see it. Must end with zero failed
#          transactions, verify equal, `switchyard report` NO-GO (exit 1) naming the SELECT in its
#          divergences, a guardrail step-back ("switchyard guardrail") in the flag history, and the flag
#          at its step_back_to stage.
#
# The workload (pgbench -M simple, CLIENTS clients, one run of fixed length, -P 1 progress):
#   SELECT /*cohort='tenant-:c'*/ abalance, filler FROM pgbench_accounts WHERE aid = :aid;
#   UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
# with \set c random(1, 10000), so every read carries one of 10,000 cohorts.
# The script plays the operator: it moves the flag with `switchyard flag set` and does not move it
# further once a guardrail has stepped it back.
#
# Usage: loadtests/rollout.sh [--quick]
#   --quick            smoke run: short stages (STAGE_SECONDS=8)
# Environment:
#   STAGE_SECONDS=N    seconds at each of shadow, canary 5, canary 50 and live (default 30; 8 with --quick)
#   OFF_SECONDS=N      seconds of workload before the first flip, at stage off (default 10; 3)
#   DUAL_WRITE_SECONDS=N  the dual_write stage: backfill and verify must end within it, and the flag
#                      stays there until it is over (default 150; 90)
#   CLIENTS=N          pgbench clients, -j min(N, 2) (default 8)
#   SCALE=N            pgbench -i scale factor (default 10)
#   SCENARIOS="..."    good, wrong or both (default "good wrong")
#   P99_RATIO=X        the guardrail max_p99_ratio (default 3: at canary 5% the new path's p99 rests on
#                      about 200 requests, the control's on thousands, on 2 shared cores)
#   SWITCHYARD_BIN     the switchyard executable (default: $(swift build -c release --show-bin-path)/switchyard)
# Writes loadtests/results/rollout-latest.md (and each scenario's report JSON beside it); exits non-zero
# when a scenario's expectations failed, after writing the report.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lt_parse_args rollout "${BASH_SOURCE[0]}" "$@"
if ((quick)); then
    STAGE_SECONDS=${STAGE_SECONDS:-8}
    OFF_SECONDS=${OFF_SECONDS:-3}
    DUAL_WRITE_SECONDS=${DUAL_WRITE_SECONDS:-90}
else
    STAGE_SECONDS=${STAGE_SECONDS:-30}
    OFF_SECONDS=${OFF_SECONDS:-10}
    DUAL_WRITE_SECONDS=${DUAL_WRITE_SECONDS:-150}
fi
CLIENTS=${CLIENTS:-8}
SCALE=${SCALE:-10}
SCENARIOS=${SCENARIOS:-"good wrong"}
P99_RATIO=${P99_RATIO:-3}
for value in "$STAGE_SECONDS" "$OFF_SECONDS" "$DUAL_WRITE_SECONDS" "$CLIENTS" "$SCALE"; do
    [[ $value =~ ^[1-9][0-9]{0,4}$ ]] || {
        echo "rollout: STAGE_SECONDS, OFF_SECONDS, DUAL_WRITE_SECONDS, CLIENTS and SCALE must be positive integers (got '$value')" >&2
        exit 2
    }
done
((CLIENTS <= 64)) || {
    echo "rollout: at most 64 clients" >&2
    exit 2
}
[[ $P99_RATIO =~ ^[0-9]+(\.[0-9]+)?$ ]] || {
    echo "rollout: P99_RATIO must be a number (got '$P99_RATIO')" >&2
    exit 2
}
for scenario in $SCENARIOS; do
    [[ $scenario == good || $scenario == wrong ]] || {
        echo "rollout: unknown scenario '$scenario' (good, wrong)" >&2
        exit 2
    }
done

lt_init rollout
results_dir=$lt_dir/results
mkdir -p "$results_dir"
rm -rf "$results_dir/rollout-latest-logs"
switchyard_bin=$(lt_switchyard_bin)

# Each scenario's Switchyard and workload are stopped by their own pids, then lt_cleanup does the rest.
sy_pid=""
bench_pid=""
rollout_cleanup() {
    local status=$?
    set +e
    [[ -n $bench_pid ]] && lt_stop "$bench_pid" INT pgbench
    lt_stop "$sy_pid" TERM switchyard
    [[ -n $lt_spawned_pid && $lt_spawned_pid != "$sy_pid" ]] && lt_stop "$lt_spawned_pid" TERM switchyard
    (exit "$status")
    lt_cleanup
}
trap rollout_cleanup EXIT

lt_start_postgres 100
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
FLAG=accounts_v2
STEP_BACK_TO=shadow
# The stages after dual_write, in order: "stage percent".
PLAN=("shadow -" "canary 5" "canary 50" "live -")
bench_seconds=$((OFF_SECONDS + DUAL_WRITE_SECONDS + ${#PLAN[@]} * STAGE_SECONDS))

# The workload, the same for both scenarios.
workload=$lt_tmp/rollout.sql
cat >"$workload" <<'EOF'
\set aid random(1, 100000 * :scale)
\set c random(1, 10000)
\set delta random(-5000, 5000)
SELECT /*cohort='tenant-:c'*/ abalance, filler FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
EOF

now() { date +%s.%N | cut -c1-14; }

# flag_stage PORT: the flag's "stage percent" from the console's SHOW FLAGS (empty if it does not answer).
flag_stage() {
    lt_admin_query "$1" 'SHOW FLAGS' 2>/dev/null | awk -F'\t' -v flag="$FLAG" '
        NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "stage") s = i; if ($i == "percent") p = i }; next }
        s && $1 == flag { print $s, $p; exit }'
}

# run_scenario NAME: one rollout on database rollout_NAME; writes $lt_tmp/NAME/* for the report and
# appends the scenario's failed expectations to $lt_tmp/NAME/failures.
run_scenario() {
    local name=$1 db=rollout_$1 dir=$lt_tmp/$1
    mkdir -p "$dir"
    : >"$dir/failures"
    local timeline=$dir/timeline.tsv
    printf 'epoch\tevent\tdetail\n' >"$timeline"
    event() { printf '%s\t%s\t%s\n' "$(now)" "$1" "$2" >>"$timeline"; }
    fail() {
        echo "$1" >>"$dir/failures"
        say "$name: EXPECTATION FAILED: $1"
    }
    psql_db() { timeout 300 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$lt_pg_port" -U postgres -d "$db" "$@"; }

    say "$name: pgbench -i -s $SCALE $db"
    lt_psql_direct -c "CREATE DATABASE $db" >/dev/null
    timeout 900 pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$lt_pg_port" -U postgres "$db" >"$dir/init.log" 2>&1 || {
        cat "$dir/init.log" >&2
        die "pgbench -i failed"
    }
    local filler_type="character(84)" filler_mapping="filler: filler"
    if [[ $name == wrong ]]; then
        say "$name: distinct 64-character filler in every row"
        psql_db -c "UPDATE pgbench_accounts SET filler = md5(aid::text) || md5(aid::text)"
        filler_type="varchar(20)"
        filler_mapping='filler: { new: filler, forward: "left(filler, 20)", inverse: "filler" }'
    fi
    psql_db -c "CREATE TABLE pgbench_accounts_v2 (aid integer PRIMARY KEY, bid integer, balance integer, filler $filler_type)" \
        -c "VACUUM ANALYZE" >/dev/null

    local port config=$dir/switchyard.yaml
    port=$(lt_free_port)
    cat >"$config" <<EOF
# Generated by loadtests/rollout.sh: scenario $name.
listen: 127.0.0.1:$port
upstream: postgresql://postgres@127.0.0.1:$lt_pg_port/$db
admin_listen: off
migrations:
  - name: $FLAG
    old: public.pgbench_accounts
    new: public.pgbench_accounts_v2
    key: [aid]
    columns:
      aid: aid
      bid: bid
      abalance: balance
      $filler_mapping
flags:
  - name: $FLAG
    migration: $FLAG
    stage: off
    cohort_key: [comment:cohort, setting:switchyard.cohort, application_name]
    shadow_sample: 0.10
    guardrails:
      max_divergence_rate: 0.001
      max_p99_ratio: $P99_RATIO
      max_error_rate_increase: 0.01
      min_samples: 200
      step_back_to: $STEP_BACK_TO
control:
  schema: switchyard_rollout
EOF
    local sy=("$switchyard_bin")
    say "$name: switchyard check"
    local rc=0
    timeout 120 "${sy[@]}" check --config "$config" >"$dir/check.out" 2>&1 || rc=$?
    sed 's/^/    /' "$dir/check.out" >&2
    ((rc == 0)) && grep -q '^0 error(s)' "$dir/check.out" || die "$name: switchyard check exited $rc or reported errors"

    lt_spawn_switchyard "$switchyard_bin" "$port" "$dir/switchyard.log" --config "$config"
    sy_pid=$lt_spawned_pid
    [[ $(flag_stage "$port") == "off "* ]] || die "$name: the console does not show $FLAG at stage off"

    # The workload: one pgbench for the whole rollout; progress lines (stderr) carry Unix timestamps.
    say "$name: pgbench -c $CLIENTS -T $bench_seconds through Switchyard"
    timeout --kill-after=10 $((bench_seconds + 120)) pgbench -n -M simple -c "$CLIENTS" -j $((CLIENTS < 2 ? CLIENTS : 2)) \
        -T "$bench_seconds" -P 1 --progress-timestamp -s "$SCALE" -f "$workload" \
        -h 127.0.0.1 -p "$port" -U postgres "$db" >"$dir/pgbench.out" 2>"$dir/pgbench.err" &
    bench_pid=$!
    local start
    start=$(now)
    event start "pgbench started, stage off"

    # wait_until EPOCH: sleeps until then (or until pgbench ends); watches for a guardrail's step-back.
    local expected="off -" halted=0
    wait_until() {
        local until=$1 seen
        while awk -v a="$(now)" -v b="$until" 'BEGIN { exit !(a < b) }'; do
            lt_alive "$bench_pid" || return 0
            if ((!halted)) && [[ $expected == canary* || $expected == live* ]]; then
                seen=$(flag_stage "$port" || true)
                if [[ -n $seen && ${seen%% *} != "${expected%% *}" ]]; then
                    halted=1
                    event stepped-back "SHOW FLAGS shows $seen while the operator set $expected; the rollout stops here"
                    say "$name: the flag was stepped back to $seen; not moving it further"
                fi
            fi
            sleep 1
        done
    }
    flip() {
        local stage=$1 percent=$2 out
        local args=(flag set "$FLAG" "$stage")
        [[ $percent != - ]] && args+=("$percent")
        if out=$(timeout 60 "${sy[@]}" "${args[@]}" --why "loadtests/rollout.sh $name" --config "$config" 2>&1); then
            expected="$stage $percent"
            if [[ $percent == - ]]; then event flip "$stage"; else event flip "$stage $percent%"; fi
            say "$name: $out"
        else
            fail "switchyard flag set $stage $percent failed: $out"
        fi
    }

    wait_until "$(awk -v s="$start" -v d="$OFF_SECONDS" 'BEGIN { printf "%.2f", s + d }')"
    flip dual_write -
    event backfill-start ""
    rc=0
    timeout "$DUAL_WRITE_SECONDS" "${sy[@]}" backfill "$FLAG" --config "$config" >"$dir/backfill.out" 2>&1 || rc=$?
    event backfill-end "exit $rc"
    ((rc == 0)) || fail "switchyard backfill exited $rc (124: it ran past DUAL_WRITE_SECONDS)"
    event verify-start ""
    rc=0
    timeout "$DUAL_WRITE_SECONDS" "${sy[@]}" verify "$FLAG" --config "$config" >"$dir/verify.out" 2>&1 || rc=$?
    event verify-end "exit $rc"
    echo "$rc" >"$dir/verify.rc"
    ((rc == 0)) || fail "switchyard verify during dual_write exited $rc (0 is equal)"

    local at=$((OFF_SECONDS + DUAL_WRITE_SECONDS)) step
    for step in "${PLAN[@]}"; do
        wait_until "$(awk -v s="$start" -v d="$at" 'BEGIN { printf "%.2f", s + d }')"
        at=$((at + STAGE_SECONDS))
        lt_alive "$bench_pid" || break
        ((halted)) && break
        # shellcheck disable=SC2086 # "stage percent"
        flip ${step}
    done
    # Let the workload run to its end (the last stage, or the stage the guardrail left).
    wait_until "$(awk -v s="$start" -v d="$bench_seconds" 'BEGIN { printf "%.2f", s + d + 60 }')"
    rc=0
    wait "$bench_pid" || rc=$?
    bench_pid=""
    event end "pgbench exited $rc"
    echo "$rc" >"$dir/pgbench.rc"

    # The workload's own verdict: exit status, failed transactions, aborted clients.
    local failed aborted
    failed=$(awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$dir/pgbench.out")
    aborted=$(cat "$dir/pgbench.err" "$dir/pgbench.out" | grep -c -E 'aborted' || true)
    ((rc == 0)) || fail "pgbench exited $rc"
    [[ $failed == 0 ]] || fail "pgbench reported '${failed:-no count of}' failed transactions"
    ((aborted == 0)) || fail "pgbench reported aborted clients ($aborted lines)"

    # After the workload: verify again, the report, the console's view.
    rc=0
    timeout 600 "${sy[@]}" verify "$FLAG" --config "$config" >"$dir/verify-final.out" 2>&1 || rc=$?
    echo "$rc" >"$dir/verify-final.rc"
    ((rc == 0)) || fail "switchyard verify after the workload exited $rc (0 is equal)"
    sleep 3 # the evidence reaches the control schema every two seconds
    rc=0
    timeout 120 "${sy[@]}" report "$FLAG" --config "$config" --format json >"$dir/report.json" 2>"$dir/report.err" || rc=$?
    echo "$rc" >"$dir/report.rc"
    cp "$dir/report.json" "$results_dir/rollout-latest-$name.json"
    timeout 60 "${sy[@]}" flag history --config "$config" >"$dir/history.tsv" 2>&1 || true
    lt_admin_query "$port" 'SHOW FLAGS' >"$dir/show-flags.txt" 2>&1 || true
    lt_admin_query "$port" 'SHOW DIVERGENCES' >"$dir/show-divergences.txt" 2>&1 || true
    lt_admin_query "$port" 'SHOW LATENCY' >"$dir/show-latency.txt" 2>&1 || true
    local final_stage
    final_stage=$(flag_stage "$port" || true)
    echo "$final_stage" >"$dir/final-stage"

    local verdict
    verdict=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("verdict", ""))' "$dir/report.json" 2>/dev/null || true)
    [[ $verdict == GO || $verdict == NO-GO ]] || fail "switchyard report printed no verdict (exit $(cat "$dir/report.rc"))"
    if [[ $name == wrong ]]; then
        [[ $(cat "$dir/report.rc") == 1 && $verdict == NO-GO ]] ||
            fail "switchyard report exited $(cat "$dir/report.rc") with verdict '$verdict' (expected exit 1, NO-GO)"
        # The divergence is named: the workload's SELECT (its normalized text reads filler from pgbench_accounts).
        python3 - "$dir/report.json" <<'PY' || fail "the report's divergences do not name the workload's SELECT"
import json, sys
r = json.load(open(sys.argv[1]))
hits = [d for d in r.get("divergences", []) if "select" in d.get("query", "").lower()
        and "filler" in d.get("query", "").lower() and "pgbench_accounts" in d.get("query", "").lower() and d.get("count", 0) > 0]
sys.exit(0 if hits else 1)
PY
        python3 - "$dir/report.json" <<'PY' || fail "no guardrail step-back (by 'switchyard guardrail') in the flag history"
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if any(h.get("by") == "switchyard guardrail" for h in r.get("history", [])) else 1)
PY
        [[ ${final_stage%% *} == "$STEP_BACK_TO" ]] ||
            fail "the flag ended at '$final_stage', not at step_back_to ($STEP_BACK_TO)"
    fi

    lt_stop "$sy_pid" TERM switchyard
    sy_pid=""
    if grep -Eiq 'warning|error|critical|fatal' "$dir/switchyard.log"; then
        grep -Ei 'warning|error|critical|fatal' "$dir/switchyard.log" | head -n 20 >"$dir/switchyard-warnings.txt"
    fi
    say "$name: done ($(wc -l <"$dir/failures") failed expectation(s))"
}

started=$SECONDS
for scenario in $SCENARIOS; do
    run_scenario "$scenario"
done
elapsed=$((SECONDS - started))

meta=$lt_tmp/meta.md
{
    echo "Command: \`$command_line\`"
    echo
    echo "Settings: OFF_SECONDS=$OFF_SECONDS, DUAL_WRITE_SECONDS=$DUAL_WRITE_SECONDS, STAGE_SECONDS=$STAGE_SECONDS," \
        "CLIENTS=$CLIENTS (-j $((CLIENTS < 2 ? CLIENTS : 2))), SCALE=$SCALE, P99_RATIO=$P99_RATIO, SCENARIOS=\"$SCENARIOS\";" \
        "$elapsed s in all (load average before: $load_before). Each scenario has its own database on one PostgreSQL" \
        "(max_connections=100, shared_buffers=256MB, fsync=off, synchronous_commit=off, 127.0.0.1 only) and its own Switchyard."
    echo
    echo "Workload, one run per scenario: \`pgbench -n -M simple -c $CLIENTS -j $((CLIENTS < 2 ? CLIENTS : 2)) -T $bench_seconds -P 1 --progress-timestamp -s $SCALE -f rollout.sql\` through Switchyard:"
    echo
    echo '```'
    cat "$workload"
    echo '```'
    echo
    echo "Plan: stage off for $OFF_SECONDS s; dual_write, then \`switchyard backfill\` and \`switchyard verify\` while the" \
        "workload runs, the stage lasting $DUAL_WRITE_SECONDS s in all; then shadow, canary 5, canary 50 and live," \
        "$STAGE_SECONDS s each (\`switchyard flag set\`). Once a guardrail has stepped the flag back, it is not moved again."
    echo
    lt_machine_md "$switchyard_bin"
} >"$meta"

report=$results_dir/rollout-latest.md
python3 - "$lt_tmp" "$meta" "$SCENARIOS" "$STEP_BACK_TO" >"$report.tmp" <<'PY'
import datetime
import json
import os
import re
import statistics
import sys

tmp, meta_path, scenarios, step_back_to = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4]


def read(path, default=""):
    try:
        return open(path).read()
    except OSError:
        return default


def epoch_of(text):
    """The control schema's timestamps (timestamptz as text) as Unix time, or None."""
    t = text.strip().replace(" ", "T", 1)
    t = re.sub(r"([+-]\d\d)$", r"\1:00", t)
    t = t.replace("Z", "+00:00")
    try:
        d = datetime.datetime.fromisoformat(t)
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


out = ["# Switchyard canary rollout under load", "", read(meta_path).rstrip(), ""]
for name in scenarios:
    d = os.path.join(tmp, name)
    title = {"good": "good: a correct mapping", "wrong": "wrong mapping: filler truncated to 20 characters"}[name]
    out += [f"## Scenario {title}", ""]
    events = [line.split("\t") for line in read(os.path.join(d, "timeline.tsv")).splitlines()[1:] if line]
    events = [(float(e[0]), e[1], e[2] if len(e) > 2 else "") for e in events]
    if not events:
        out += ["Not run.", ""]
        continue
    start = events[0][0]
    try:
        report = json.loads(read(os.path.join(d, "report.json")) or "{}")
    except ValueError:
        report = {}
    history = list(reversed(report.get("history", [])))  # oldest first

    # Stage segments: the operator's flips (our own clock) and the guardrail's (the control schema's).
    marks = [(start, "off")]
    current = "off"
    for t, ev, detail in events:
        if ev == "flip":
            current = detail
            marks.append((t, detail))
        elif ev in ("backfill-start", "verify-start"):
            marks.append((t, f"{current}, {ev.split('-')[0]} running"))
        elif ev == "verify-end":
            marks.append((t, current))
    for h in history:
        if h.get("by") == "switchyard guardrail":
            t = epoch_of(h.get("at", ""))
            if t is not None:
                marks.append((t, f"{h.get('to')} (guardrail)"))
    marks.sort()

    out += ["Timeline (seconds from the workload's start):", "", "| t (s) | event | detail |", "| ---: | --- | --- |"]
    rows = [(t, ev, detail) for t, ev, detail in events]
    for h in history:
        t = epoch_of(h.get("at", ""))
        if h.get("by") == "switchyard guardrail" and t is not None:
            rows.append((t, "guardrail", f"{h.get('from')} → {h.get('to')}: {h.get('why')}"))
    for t, ev, detail in sorted(rows):
        out.append(f"| {t - start:.1f} | {ev} | {detail.replace('|', '/')} |")
    out.append("")

    # TPS per stage from pgbench -P 1 --progress-timestamp: "progress: EPOCH s, TPS tps, lat X ms stddev Y[, N failed]".
    prog = []
    for line in read(os.path.join(d, "pgbench.err")).splitlines():
        m = re.match(r"progress: ([\d.]+) s, ([\d.]+) tps, lat ([\d.]+) ms stddev [\d.NaN]+(?:, (\d+) failed)?", line)
        if m:
            prog.append((float(m.group(1)), float(m.group(2)), float(m.group(3)), int(m.group(4) or 0)))
    out += ["TPS per stage (pgbench's one-second progress lines, grouped by the stage in force at each line's time):", "",
            "| stage | from t (s) | seconds | median TPS | mean TPS | min–max TPS | median latency ms | failed |",
            "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for i, (t0, stage) in enumerate(marks):
        t1 = marks[i + 1][0] if i + 1 < len(marks) else float("inf")
        seg = [p for p in prog if t0 <= p[0] < t1]
        if not seg and t1 - t0 < 1:
            continue
        if not seg:
            out.append(f"| {stage} | {t0 - start:.1f} | 0 | — | — | — | — | — |")
            continue
        tps = [p[1] for p in seg]
        out.append(f"| {stage} | {t0 - start:.1f} | {len(seg)} | {statistics.median(tps):.0f} | {statistics.mean(tps):.0f} "
                   f"| {min(tps):.0f}–{max(tps):.0f} | {statistics.median(p[2] for p in seg):.2f} | {sum(p[3] for p in seg)} |")
    out.append("")

    bench = read(os.path.join(d, "pgbench.out"))
    summary = [l for l in bench.splitlines() if re.match(r"(number of (transactions|failed)|latency average|tps =|duration)", l)]
    errs = [l for l in read(os.path.join(d, "pgbench.err")).splitlines() if not l.startswith("progress:")]
    out += [f"pgbench: exit {read(os.path.join(d, 'pgbench.rc')).strip() or '?'}", "", "```"] + summary + ["```", ""]
    if errs:
        out += ["pgbench's other stderr lines (first 20):", "", "```"] + errs[:20] + ["```", ""]

    out += [f"`switchyard backfill` (during dual_write):", "", "```"] + read(os.path.join(d, "backfill.out")).rstrip().splitlines()[-8:] + ["```", ""]
    for label, f in (("during dual_write", "verify"), ("after the workload", "verify-final")):
        out += [f"`switchyard verify` {label}: exit {read(os.path.join(d, f + '.rc')).strip() or '?'}", "", "```"]
        out += read(os.path.join(d, f + ".out")).rstrip().splitlines()[-6:] + ["```", ""]

    rc = read(os.path.join(d, "report.rc")).strip()
    out += [f"`switchyard report accounts_v2 --format json`: exit {rc or '?'}, **verdict {report.get('verdict', '?')}**"
            f" (saved as `results/rollout-latest-{name}.json`).", ""]
    crit = report.get("criteria", [])
    if crit:
        out += ["| criterion | passed | detail |", "| --- | --- | --- |"]
        out += [f"| {c['name']} | {'yes' if c['passed'] else '**no**'} | {str(c['detail']).replace('|', '/')} |" for c in crit]
        out.append("")
    if report.get("reasons"):
        out += ["Reasons:", ""] + [f"- {r}" for r in report["reasons"]] + [""]
    sh = report.get("shadow", {})
    if sh:
        out += [f"Shadow reads in the report: {sh.get('samples')} samples, {sh.get('same')} same, {sh.get('divergent')} divergent,"
                f" {sh.get('nondeterministic')} nondeterministic, {sh.get('skipped')} skipped.", ""]
    if report.get("divergences"):
        out += ["Divergences:", "", "| kind | cohort | count | old rows | new rows | fingerprint | query |", "| --- | --- | ---: | ---: | ---: | --- | --- |"]
        for v in report["divergences"][:10]:
            out.append(f"| {v.get('kind')} | {v.get('cohort')} | {v.get('count')} | {v.get('old_rows')} | {v.get('new_rows')} "
                       f"| `{v.get('fingerprint')}` | `{str(v.get('query')).replace('|', '/')}` |")
        ex = report["divergences"][0]
        if ex.get("only_in_old") or ex.get("only_in_new"):
            out += ["", f"Differing rows of the first: only in old `{str(ex.get('only_in_old'))[:200]}`,"
                    f" only in new `{str(ex.get('only_in_new'))[:200]}`."]
        out.append("")
    lat = report.get("latency", [])
    if lat:
        out += ["Latency of routed-table reads as served (report, ms):", "", "| cohort | path | requests | errors | p50 | p95 | p99 |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        out += [f"| {p['cohort']} | {p['path']} | {p['requests']} | {p['errors']} | {p['p50']} | {p['p95']} | {p['p99']} |" for p in lat]
        out.append("")
    out += ["Flag history (oldest first):", "", "| at | from | to | by | why |", "| --- | --- | --- | --- | --- |"]
    out += [f"| {h.get('at')} | {h.get('from')} | {h.get('to')} | {h.get('by')} | {str(h.get('why')).replace('|', '/')} |" for h in history]
    guard = [h for h in history if h.get("by") == "switchyard guardrail"]
    out += ["", f"Guardrail events: {len(guard)}. Stage after the run (SHOW FLAGS): `{read(os.path.join(d, 'final-stage')).strip() or '?'}`.", ""]
    warnings = read(os.path.join(d, "switchyard-warnings.txt")).rstrip()
    if warnings:
        out += ["Switchyard's stderr, warnings and errors (first 20 lines):", "", "```"] + warnings.splitlines() + ["```", ""]
    failures = read(os.path.join(d, "failures")).strip()
    out += ["Expectations: " + ("**all met**." if not failures else "**FAILED**:"), ""]
    if failures:
        out += [f"- {f}" for f in failures.splitlines()] + [""]
print("\n".join(out))
PY
mv "$report.tmp" "$report"
cat "$report"
say "report written to ${report#"$lt_root"/}"
failed_total=0
for scenario in $SCENARIOS; do
    n=$(wc -l <"$lt_tmp/$scenario/failures")
    failed_total=$((failed_total + n))
done
if ((failed_total)); then
    for scenario in $SCENARIOS; do
        mkdir -p "$results_dir/rollout-latest-logs/$scenario"
        cp -f "$lt_tmp/$scenario"/*.{log,out,err,tsv,txt,yaml} "$results_dir/rollout-latest-logs/$scenario"/ 2>/dev/null || true
    done
    lt_keep_logs_dir=$results_dir/rollout-latest-logs
    say "$failed_total expectation(s) failed; logs copied to ${results_dir#"$lt_root"/}/rollout-latest-logs"
    exit 1
fi
