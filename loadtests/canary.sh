#!/usr/bin/env bash
# Cost of canary routing: pgbench select-only through a Switchyard whose flag sends 50% of cohorts to
# a shadow table, against a plain passthrough Switchyard and direct PostgreSQL, in the same run.
#
# Starts a throwaway PostgreSQL on a free 127.0.0.1 port, loads pgbench at scale 10, creates
# pgbench_accounts_v2 (a copy of pgbench_accounts with abalance renamed to balance), runs
# `switchyard check` on the canary configuration, and starts two Switchyard instances on it:
#   A  passthrough: serve --listen ... --upstream ... --admin-listen off (no migrations, no flags)
#   B  canary:      serve --config canary.yaml, flag accounts_v2 at stage canary, percent 50
#   C  shadow 10%:  serve --config canary-shadow.yaml, B's flag with shadow_sample 0.10: one read in
#                   ten is also answered on both paths by the side connections and compared
#   R  the server's part: direct PostgreSQL running the statements as B sends them as texts
#                   (PREPARED_READS=false), half of them with B's new-path reference in place of
#                   pgbench_accounts (SHOW FLAGS' "new" column), so R / direct is what routing the
#                   texts costs PostgreSQL itself: the most B / A could be with a proxy that cost
#                   nothing. With prepared reads (the default) B sends EXECUTEs of statements each
#                   session prepared, which cost PostgreSQL less than the texts
# Each statement carries its cohort in a sqlcommenter comment, /*cohort='...'*/, so the cohorts
# spread over the canary:
#   var    one script, SELECT /*cohort='k:c'*/ abalance FROM pgbench_accounts WHERE aid = :aid, with
#          \set c random(1, 10000): in -M simple pgbench substitutes :c inside the comment too, so
#          every statement gets one of 10,000 cohorts. Not usable with -M prepared (pgbench turns
#          :c into a $n parameter, which PostgreSQL then rejects).
#   files  PREPARED_FILES scripts of weight 1 (-f FILE@1), each with one constant cohort; half of
#          the cohorts are in the canary (found by probing B once per candidate cohort before the
#          timed runs), so half of the transactions use a routed statement. Works in both protocols.
# For every scenario (protocol:script) and client count, the targets run interleaved for ROUNDS
# rounds, in TARGETS' order in odd rounds and in reverse in even ones (direct, R, A, B, C, C, B, A,
# R, direct, ...), so that a machine growing busier or quieter within a round favours no target.
# The per-round ratios pair the runs of one round. Reported: median TPS, B / A, C / B,
# B's routed share (SHOW FLAGS reads_routed_to_new before and after each run, against the
# transactions pgbench ran), C's shadow reads compared and dropped per run (its /metrics before and
# after) and the proxies' CPU time per transaction. The markdown report goes to stdout and to
# loadtests/results/canary-latest.md (canary-db-cpus-latest.md with DB_CPUS; canary-texts-*.md with
# PREPARED_READS=false).
#
# Usage: loadtests/canary.sh [--quick]
#   --quick            smoke run: DURATION=3, ROUNDS=1
# Environment:
#   DURATION=N         seconds per pgbench run (default 10; 3 with --quick)
#   ROUNDS=N           interleaved rounds per scenario (default 5; 1 with --quick)
#   CLIENTS="1 8"      client counts, -j min(clients, 2) (default "1 8")
#   SCENARIOS="..."    protocol:script pairs (default "simple:var prepared:files";
#                      simple:files is also accepted)
#   PREPARED_FILES=N   scripts in the files set, even, 2 to 100 (default 32)
#   SCALE=N            pgbench -i scale factor (default 10)
#   TARGETS="..."      the targets, in their order within a round (default "direct R A B C")
#   PREPARED_READS=B   B's (and C's) prepare_routed_reads, true or false (default true, the default
#                      of `serve`): false measures routing with the routed reads sent as texts
#   SHADOW_SAMPLE=X    C's shadow_sample (default 0.10)
#   SHADOW_CAP=N       C's max_per_fingerprint_per_second (default 0, no cap: the default of 50 would
#                      hold pgbench's single query far below the sample rate)
#   SHADOW_CONNECTIONS=N  C's side connections (shadow_reads.connections; default: the default, 2)
#   SWITCHYARD_BIN     the switchyard executable (default: $(swift build -c release --show-bin-path)/switchyard)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lt_parse_args canary "${BASH_SOURCE[0]}" "$@"

if ((quick)); then
    DURATION=${DURATION:-3}
    ROUNDS=${ROUNDS:-1}
else
    DURATION=${DURATION:-10}
    ROUNDS=${ROUNDS:-5}
fi
CLIENTS=${CLIENTS:-"1 8"}
SCENARIOS=${SCENARIOS:-"simple:var prepared:files"}
PREPARED_FILES=${PREPARED_FILES:-32}
SCALE=${SCALE:-10}
TARGETS=${TARGETS:-"direct R A B C"}
PREPARED_READS=${PREPARED_READS:-true}
[[ $PREPARED_READS == true || $PREPARED_READS == false ]] || die "PREPARED_READS must be true or false (got '$PREPARED_READS')"
SHADOW_SAMPLE=${SHADOW_SAMPLE:-0.10}
SHADOW_CAP=${SHADOW_CAP:-0}
SHADOW_CONNECTIONS=${SHADOW_CONNECTIONS:-}
[[ -z $SHADOW_CONNECTIONS || $SHADOW_CONNECTIONS =~ ^[1-9][0-9]?$ ]] || die "SHADOW_CONNECTIONS must be 1 to 99 (got '$SHADOW_CONNECTIONS')"
TARGET_RATIO=0.95
SHADOW_TARGET_RATIO=0.90
for target in $TARGETS; do
    [[ $target == direct || $target == R || $target == A || $target == B || $target == C ]] || {
        echo "canary: unknown target '$target' (direct, R, A, B, C)" >&2
        exit 2
    }
done
[[ " $TARGETS " == *" B "* ]] || {
    echo "canary: TARGETS must include B (the cohort probe and the routed share use it)" >&2
    exit 2
}
[[ $SHADOW_SAMPLE =~ ^(0(\.[0-9]{1,4})?|1)$ && $SHADOW_CAP =~ ^[0-9]{1,5}$ ]] || {
    echo "canary: SHADOW_SAMPLE must be 0 to 1 with at most four decimals and SHADOW_CAP a count (got '$SHADOW_SAMPLE', '$SHADOW_CAP')" >&2
    exit 2
}
for value in "$DURATION" "$ROUNDS" "$SCALE" "$PREPARED_FILES" $CLIENTS; do
    [[ $value =~ ^[1-9][0-9]{0,4}$ ]] || {
        echo "canary: DURATION, ROUNDS, SCALE, PREPARED_FILES and CLIENTS must be positive integers (got '$value')" >&2
        exit 2
    }
done
for c in $CLIENTS; do
    ((c <= 64)) || {
        echo "canary: at most 64 clients (PostgreSQL runs with max_connections=200, shared by the targets)" >&2
        exit 2
    }
done
((PREPARED_FILES % 2 == 0 && PREPARED_FILES <= 100)) || {
    echo "canary: PREPARED_FILES must be even and at most 100 (got $PREPARED_FILES)" >&2
    exit 2
}
for scenario in $SCENARIOS; do
    case $scenario in
    simple:var | simple:files | prepared:files) ;;
    prepared:var)
        echo "canary: prepared:var cannot work: pgbench makes :c inside the comment a \$n parameter in -M prepared" >&2
        exit 2
        ;;
    *)
        echo "canary: unknown scenario '$scenario' (simple:var, simple:files, prepared:files)" >&2
        exit 2
        ;;
    esac
done

lt_init canary
results_dir=$lt_dir/results
mkdir -p "$results_dir"
rm -rf "$results_dir/canary-latest-logs"
switchyard_bin=$(lt_switchyard_bin)

# B is not one of lib.sh's processes: stop it by its pid, then let lt_cleanup do the rest
# (it keeps the exit status it finds in $?).
sy_b_pid=""
sy_b_port=""
sy_b_log=""
sy_c_pid=""
canary_cleanup() {
    local status=$?
    set +e
    lt_stop "$sy_b_pid" TERM "switchyard B"
    lt_stop "$sy_c_pid" TERM "switchyard C"
    # A B or C that lt_spawn_switchyard started but gave up on before its pid was kept.
    [[ -n $lt_spawned_pid && $lt_spawned_pid != "$sy_b_pid" && $lt_spawned_pid != "$sy_c_pid" ]] &&
        lt_stop "$lt_spawned_pid" TERM "switchyard"
    (exit "$status")
    lt_cleanup
}
trap canary_cleanup EXIT

# Both accounts tables (about 150 MB each at scale 10) fit in shared_buffers, as the old and the new
# table of a canary would in production (SHARED_BUFFERS=256MB runs with the smaller default).
lt_start_postgres 200 1GB

lt_pgbench_init postgres
say "creating pgbench_accounts_v2"
lt_canary_table

# B's configuration. Its admin console (database switchyard on the listen port) stays on: SHOW FLAGS
# gives the routed-read counter.
sy_b_port=$(lt_free_port)
config_b=$lt_tmp/canary.yaml
{
    echo "# Generated by loadtests/canary.sh: instance B, the flag at canary 50% on pgbench_accounts."
    lt_canary_config "$sy_b_port" switchyard_bench
    echo "# Routed reads run as statements each session prepares (true, the default) or as texts (false)."
    echo "prepare_routed_reads: $PREPARED_READS"
} >"$config_b"

# C's configuration: B's, on its own port and control schema, with shadow reads at SHADOW_SAMPLE and its
# admin HTTP on, whose /metrics counts the shadow reads compared and dropped.
sy_c_port=$(lt_free_port)
sy_c_http=$(lt_free_port)
config_c=$lt_tmp/canary-shadow.yaml
sed -e "s/^listen: .*/listen: 127.0.0.1:$sy_c_port/" -e "s/^admin_listen: .*/admin_listen: 127.0.0.1:$sy_c_http/" \
    -e "s/^# Generated by .*/# Generated by loadtests\/canary.sh: instance C, B's flag with shadow reads sampled./" \
    -e "s/^    shadow_sample: 0\$/    shadow_sample: $SHADOW_SAMPLE\n    shadow:\n      max_per_fingerprint_per_second: $SHADOW_CAP/" \
    -e "s/^  schema: switchyard_bench\$/  schema: switchyard_bench_c/" \
    -e '/^    # Routing alone/d' -e '/^    # server their own queries/d' "$config_b" >"$config_c"
grep -q "shadow_sample: $SHADOW_SAMPLE" "$config_c" || die "could not derive C's configuration from B's"
if [[ -n $SHADOW_CONNECTIONS ]]; then
    printf 'shadow_reads:\n  connections: %s\n' "$SHADOW_CONNECTIONS" >>"$config_c"
fi

say "switchyard check --config canary.yaml"
check_out=$lt_tmp/check.out
check_rc=0
timeout 120 "$switchyard_bin" check --config "$config_b" >"$check_out" 2>&1 || check_rc=$?
sed 's/^/    /' "$check_out" >&2
((check_rc == 0)) || die "switchyard check exited $check_rc"
grep -q '^0 error(s)' "$check_out" || die "switchyard check did not report 0 errors"

# A: lib.sh's plain passthrough (lt_sy_*). B: the canary configuration.
lt_start_switchyard "$switchyard_bin"
sy_a_log_first=$lt_sy_log
sy_b_log=$lt_tmp/switchyard-b.log
start_b() {
    lt_spawn_switchyard "$switchyard_bin" "$sy_b_port" "$sy_b_log" --config "$config_b"
    sy_b_pid=$lt_spawned_pid
}
start_b
sy_c_log=$lt_tmp/switchyard-c.log
start_c() {
    lt_spawn_switchyard "$switchyard_bin" "$sy_c_port" "$sy_c_log" --config "$config_c"
    sy_c_pid=$lt_spawned_pid
}
[[ " $TARGETS " == *" C "* ]] && start_c

declare -A target_port=([direct]=$lt_pg_port [R]=$lt_pg_port [A]=$lt_sy_port [B]=$sy_b_port [C]=$sy_c_port)
read -r -a targets <<<"$TARGETS"
for target in "${targets[@]}"; do
    out=$(timeout 30 psql -X -At -h 127.0.0.1 -p "${target_port[$target]}" -U postgres -d postgres \
        -c 'select count(*) from pgbench_branches' 2>&1) || die "$target does not answer: $out"
    [[ $out == "$SCALE" ]] || die "$target answered '$out' to select count(*) from pgbench_branches"
done

# routed_reads [PORT]: B's (or PORT's) reads_routed_to_new for the flag (empty if the console does not answer).
routed_reads() {
    lt_admin_query "${1:-$sy_b_port}" 'SHOW FLAGS' 2>/dev/null | awk -F'\t' '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == "reads_routed_to_new") col = i; next }
        col && $1 == "accounts_v2" { print $col; exit }'
}
[[ $(routed_reads) =~ ^[0-9]+$ ]] || die "B's admin console does not show the flag's reads_routed_to_new"

# shadow_counts: C's shadow reads so far from its /metrics, "completed divergent dropped" (empty if it
# does not answer). Completed is every outcome: same, divergent, nondeterministic, skipped, error.
shadow_counts() {
    timeout 10 curl -sf "http://127.0.0.1:$sy_c_http/metrics" 2>/dev/null | awk '
        /^switchyard_shadow_reads_total\{/ { done += $2; if ($1 ~ /"divergent"/) div += $2; seen = 1 }
        /^switchyard_shadow_reads_dropped_total / { dropped = $2 }
        END { if (seen) print done + 0, div + 0, dropped + 0 }'
}
if [[ " $TARGETS " == *" C "* ]]; then
    [[ -n $(shadow_counts) ]] || die "C's /metrics does not show switchyard_shadow_reads_total"
fi

# The scripts. aid as in pgbench's select-only; -s SCALE makes :scale right for custom scripts.
scripts_dir=$lt_tmp/scripts
mkdir -p "$scripts_dir/files"
cat >"$scripts_dir/var.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
\set c random(1, 10000)
SELECT /*cohort='k:c'*/ abalance FROM pgbench_accounts WHERE aid = :aid;
EOF

# R's statements on the new path: pgbench_accounts replaced by what B puts in its place, as SHOW FLAGS
# shows it, and checked once against PostgreSQL.
new_reference=$(lt_admin_query "$sy_b_port" 'SHOW FLAGS' 2>/dev/null | awk -F'\t' '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == "new") col = i; next }
    col && $1 == "accounts_v2" { print $col; exit }')
[[ -n $new_reference ]] || die "B's SHOW FLAGS does not show the flag's new-path reference"
routed_statement() { sed "s/ FROM pgbench_accounts / FROM $new_reference /"; }
sed '$d' "$scripts_dir/var.sql" >"$scripts_dir/var-routed.sql"
tail -n 1 "$scripts_dir/var.sql" | routed_statement >>"$scripts_dir/var-routed.sql"
grep -qF "$new_reference" "$scripts_dir/var-routed.sql" || die "could not write R's routed statement"
lt_psql_direct -c "$(tail -n 1 "$scripts_dir/var-routed.sql" | sed -e 's/:aid/1/' -e 's/:c/1/')" >/dev/null ||
    die "R's routed statement does not run on PostgreSQL"
say "R's statements on the new path name: $new_reference"

# The files set: probe candidate cohorts p1, p2, ... through B one statement each until half of
# PREPARED_FILES are in the canary (the routed counter moved) and half are not.
need_files=0
for scenario in $SCENARIOS; do [[ $scenario == *:files ]] && need_files=1; done
files_new=()
files_old=()
if ((need_files)); then
    half=$((PREPARED_FILES / 2))
    say "probing cohorts through B for $half canary and $half non-canary scripts"
    before=$(routed_reads || true)
    for ((i = 1; i <= 400; i++)); do
        ((${#files_new[@]} >= half && ${#files_old[@]} >= half)) && break
        cohort=p$i
        timeout 30 psql -X -q -At -h 127.0.0.1 -p "$sy_b_port" -U postgres -d postgres \
            -c "SELECT /*cohort='$cohort'*/ abalance FROM pgbench_accounts WHERE aid = 1" >/dev/null ||
            die "probe of cohort $cohort through B failed"
        after=$(routed_reads || true)
        [[ $before =~ ^[0-9]+$ && $after =~ ^[0-9]+$ ]] || die "B's SHOW FLAGS stopped answering during the probe"
        if ((after > before)); then
            ((${#files_new[@]} < half)) && files_new+=("$cohort")
        else
            ((${#files_old[@]} < half)) && files_old+=("$cohort")
        fi
        before=$after
    done
    ((${#files_new[@]} == half && ${#files_old[@]} == half)) ||
        die "400 probed cohorts gave ${#files_new[@]} canary and ${#files_old[@]} other cohorts (wanted $half each)"
    mkdir -p "$scripts_dir/files-routed"
    for cohort in "${files_new[@]}"; do
        printf '%s\n' '\set aid random(1, 100000 * :scale)' \
            "SELECT /*cohort='$cohort'*/ abalance FROM pgbench_accounts WHERE aid = :aid;" \
            >"$scripts_dir/files/new-$cohort.sql"
        sed '$d' "$scripts_dir/files/new-$cohort.sql" >"$scripts_dir/files-routed/new-$cohort.sql"
        tail -n 1 "$scripts_dir/files/new-$cohort.sql" | routed_statement >>"$scripts_dir/files-routed/new-$cohort.sql"
    done
    for cohort in "${files_old[@]}"; do
        printf '%s\n' '\set aid random(1, 100000 * :scale)' \
            "SELECT /*cohort='$cohort'*/ abalance FROM pgbench_accounts WHERE aid = :aid;" \
            >"$scripts_dir/files/old-$cohort.sql"
        cp "$scripts_dir/files/old-$cohort.sql" "$scripts_dir/files-routed/"
    done
    say "canary cohorts: ${files_new[*]}"
fi

# Warm the caches: both tables, straight to PostgreSQL, not recorded.
timeout 60 pgbench -n -S -T 2 -c 2 -j 2 -h 127.0.0.1 -p "$lt_pg_port" -U postgres postgres >/dev/null 2>&1 || true
lt_psql_direct -c 'SELECT count(*) FROM pgbench_accounts_v2' >/dev/null

runs_dir=$lt_tmp/runs
mkdir -p "$runs_dir"
tsv=$lt_tmp/results.tsv
notes=$lt_tmp/notes.md
: >"$notes"
printf 'mode\tscript\tclients\tround\ttarget\tstatus\ttps\tlatency_ms\txacts\tfailed_tx\trouted\tnew_xacts\tcpu_s\tshadow_done\tshadow_divergent\tshadow_dropped\tpg_cpu_s\n' >"$tsv"
failures=0
restarts=0

# note_exit TARGET PID LOG WHAT: quote the end of a proxy's log in the notes after it exited.
note_exit() {
    local target=$1 pid=$2 log=$3 what=$4 code=""
    wait "$pid" 2>/dev/null || code=$?
    say "switchyard $target (pid $pid) exited during $what (wait status ${code:-0}); its log:"
    tail -n 50 "$log" >&2 || true
    {
        echo "- **Switchyard $target exited** during $what (pid $pid, wait status ${code:-0}). Last lines of its stderr:"
        echo '  ```'
        tail -n 30 "$log" | sed 's/^/  /'
        echo '  ```'
    } >>"$notes"
    lt_keep_logs_dir=$results_dir/canary-latest-logs
    restarts=$((restarts + 1))
    ((restarts <= 3)) || die "Switchyard exited more than 3 times; giving up"
}

# run_one MODE SCRIPT CLIENTS ROUND TARGET: one pgbench run, one line in the TSV.
run_one() {
    local mode=$1 script=$2 clients=$3 round=$4 target=$5
    local jobs=$((clients < 2 ? clients : 2))
    local port=${target_port[$target]}
    local args=(-h 127.0.0.1 -p "$port" -U postgres -n -M "$mode" -c "$clients" -j "$jobs" -T "$DURATION" -s "$SCALE")
    local f
    if [[ $script == var && $target == R ]]; then
        args+=(-f "$scripts_dir/var.sql@1" -f "$scripts_dir/var-routed.sql@1")
    elif [[ $script == var ]]; then
        args+=(-f "$scripts_dir/var.sql")
    elif [[ $target == R ]]; then
        for f in "$scripts_dir"/files-routed/*.sql; do args+=(-f "$f@1"); done
    else
        for f in "$scripts_dir"/files/*.sql; do args+=(-f "$f@1"); done
    fi
    local log=$runs_dir/$mode-$script-c$clients-r$round-$target.log
    local pid="" cpu_before="" routed_before="" shadow_before=""
    case $target in
    A) pid=$lt_sy_pid ;;
    B | C)
        pid=$sy_b_pid
        [[ $target == C ]] && pid=$sy_c_pid
        routed_before=$(routed_reads "$port" || true)
        [[ $target == C ]] && shadow_before=$(shadow_counts || true)
        ;;
    esac
    [[ -n $pid ]] && cpu_before=$(lt_cpu_seconds "$pid")
    local pg_before
    pg_before=$(lt_pg_cpu_seconds)
    local rc=0
    echo "pgbench ${args[*]} postgres" >"$log"
    timeout --kill-after=10 $((DURATION + 60)) pgbench "${args[@]}" postgres >>"$log" 2>&1 || rc=$?
    local cpu="-" routed="-" cpu_after routed_after pg_cpu="-" pg_after
    pg_after=$(lt_pg_cpu_seconds)
    if [[ -n $pg_before && -n $pg_after ]]; then
        pg_cpu=$(awk -v a="$pg_before" -v b="$pg_after" 'BEGIN { printf "%.2f", b - a }')
    fi
    if [[ -n $pid ]]; then
        cpu_after=$(lt_cpu_seconds "$pid")
        if [[ -n $cpu_before && -n $cpu_after ]]; then
            cpu=$(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN { printf "%.2f", b - a }')
        fi
    fi
    if [[ $target == B || $target == C ]]; then
        routed_after=$(routed_reads "$port" || true)
        if [[ $routed_before =~ ^[0-9]+$ && $routed_after =~ ^[0-9]+$ ]]; then
            routed=$((routed_after - routed_before))
        fi
    fi
    # C's shadow reads during the run: completed (every outcome), divergent, dropped. Samples still in
    # the side connections' queue when pgbench ends (at most shadow_reads.queue) count in the next run.
    local shadow_delta=("-" "-" "-")
    if [[ $target == C ]]; then
        local shadow_after
        shadow_after=$(shadow_counts || true)
        if [[ -n $shadow_before && -n $shadow_after ]]; then
            read -r -a shadow_delta <<<"$(awk -v a="$shadow_before" -v b="$shadow_after" 'BEGIN {
                split(a, x, " "); split(b, y, " "); print y[1] - x[1], y[2] - x[2], y[3] - x[3] }')"
        fi
    fi
    local tps latency xacts failed new_xacts="-"
    tps=$(awk '/^tps = / { print $3; exit }' "$log")
    latency=$(awk '/^latency average = / { print $4; exit }' "$log")
    xacts=$(awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$log")
    failed=$(awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$log")
    if [[ $script == files ]]; then
        # Per-script sections: "SQL script N: PATH" then " - T transactions (...)".
        new_xacts=$(awk '/^SQL script [0-9]+: / { isnew = ($4 ~ /\/new-[^\/]*\.sql$/) }
            /^ - [0-9]+ transactions / { if (isnew) sum += $2 }
            END { print sum + 0 }' "$log")
    fi
    local status=ok
    if ((rc != 0)) || [[ -z $tps || -z $latency || -z $xacts ]] || [[ -n $failed && $failed != 0 ]]; then
        status="fail(rc=$rc)"
        failures=$((failures + 1))
        say "FAILED: $target -M $mode $script -c $clients round $round (exit $rc); pgbench output:"
        sed 's/^/    /' "$log" >&2
        {
            echo "- **$target, -M $mode, $script, $clients clients, round $round**: pgbench exited $rc" \
                "(tps='${tps:-}', latency='${latency:-}', failed transactions='${failed:-}')."
            echo '  ```'
            sed 's/^/  /' "$log" | tail -n 30
            echo '  ```'
        } >>"$notes"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$script" "$clients" "$round" \
        "$target" "$status" "${tps:--}" "${latency:--}" "${xacts:--}" "${failed:--}" "$routed" "$new_xacts" "$cpu" \
        "${shadow_delta[@]}" "$pg_cpu" >>"$tsv"
    printf '%-8s %-5s c=%-2s r=%s %-6s %9s tps %7s ms routed=%-7s cpu=%ss pg=%ss %s\n' "$mode" "$script" "$clients" \
        "$round" "$target" "${tps:--}" "${latency:--}" "$routed" "$cpu" "$pg_cpu" "$status" >&2

    local what="-M $mode $script -c $clients round $round"
    if [[ $target == A ]] && ! lt_alive "$lt_sy_pid"; then
        note_exit A "$lt_sy_pid" "$lt_sy_log" "$what"
        mv "$lt_sy_log" "$lt_tmp/switchyard-a-crash-$restarts.log"
        lt_sy_pid=""
        lt_start_switchyard "$switchyard_bin"
        target_port[A]=$lt_sy_port
    fi
    if [[ $target == B ]] && ! lt_alive "$sy_b_pid"; then
        note_exit B "$sy_b_pid" "$sy_b_log" "$what"
        mv "$sy_b_log" "$lt_tmp/switchyard-b-crash-$restarts.log"
        sy_b_pid=""
        start_b
    fi
    if [[ $target == C ]] && ! lt_alive "$sy_c_pid"; then
        note_exit C "$sy_c_pid" "$sy_c_log" "$what"
        mv "$sy_c_log" "$lt_tmp/switchyard-c-crash-$restarts.log"
        sy_c_pid=""
        start_c
    fi
}

n_clients=$(wc -w <<<"$CLIENTS")
total=$(($(wc -w <<<"$SCENARIOS") * n_clients * ROUNDS * ${#targets[@]}))
say "$total pgbench runs of ${DURATION}s each (about $((total * (DURATION + 2) / 60 + 1)) min)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$SECONDS
for scenario in $SCENARIOS; do
    mode=${scenario%%:*}
    script=${scenario#*:}
    for clients in $CLIENTS; do
        for ((round = 1; round <= ROUNDS; round++)); do
            order=("${targets[@]}")
            ((round % 2 == 1)) || order=($(printf '%s\n' "${targets[@]}" | tac))
            for target in "${order[@]}"; do
                run_one "$mode" "$script" "$clients" "$round" "$target"
            done
        done
    done
done
elapsed=$((SECONDS - started))

routing_out=$lt_tmp/show-routing.txt
lt_admin_query "$sy_b_port" 'SHOW ROUTING' >"$routing_out" 2>&1 || true
flags_out=$lt_tmp/show-flags.txt
lt_admin_query "$sy_b_port" 'SHOW FLAGS' >"$flags_out" 2>&1 || true
divergences_out=$lt_tmp/show-divergences-c.txt
: >"$divergences_out"
[[ -n $sy_c_pid ]] && { lt_admin_query "$sy_c_port" 'SHOW DIVERGENCES' >"$divergences_out" 2>&1 || true; }

if ((failures)); then
    lt_keep_logs_dir=$results_dir/canary-latest-logs
fi
for pair in "A:$sy_a_log_first" "B:$sy_b_log" "C:$sy_c_log"; do
    name=${pair%%:*}
    log=${pair#*:}
    if grep -Eiq 'warning|error|critical|fatal' "$log" 2>/dev/null; then
        {
            echo "- Switchyard $name's stderr has warnings or errors (first 20 such lines):"
            echo '  ```'
            grep -Ei 'warning|error|critical|fatal' "$log" | head -n 20 | sed 's/^/  /'
            echo '  ```'
        } >>"$notes"
    fi
done
fallbacks=$(awk -F'\t' 'NR > 1 && NF >= 4 { n += $2 } END { print n + 0 }' "$routing_out")
if ((fallbacks > 0)); then
    {
        echo "- B kept $fallbacks read(s) of pgbench_accounts on the old path (SHOW ROUTING):"
        echo '  ```'
        head -n 20 "$routing_out" | sed 's/^/  /'
        echo '  ```'
    } >>"$notes"
fi

meta=$lt_tmp/meta.md
{
    echo "Command: \`$command_line\`"
    echo
    echo "Settings: DURATION=$DURATION s per run, ROUNDS=$ROUNDS, CLIENTS=\"$CLIENTS\", SCENARIOS=\"$SCENARIOS\", PREPARED_READS=$PREPARED_READS," \
        "PREPARED_FILES=$PREPARED_FILES, pgbench scale $SCALE; $total runs in ${elapsed} s" \
        "(load average before the runs: $load_before). Each run:" \
        "\`pgbench -h 127.0.0.1 -p PORT -U postgres -n -M {simple|prepared} -c C -j min(C,2) -T $DURATION -s $SCALE -f SCRIPT... postgres\`," \
        "the targets interleaved within each round: ${targets[*]} in odd rounds, the reverse in even ones."
    echo
    echo "Targets, all on one PostgreSQL (max_connections=200, shared_buffers=$lt_pg_shared_buffers, fsync=off, synchronous_commit=off, 127.0.0.1 only):"
    echo
    echo "- **direct**: PostgreSQL itself, for reference."
    echo "- **R** (the server's part): PostgreSQL itself, running the statements as B sends them as texts: half of them with B's" \
        "new-path reference in place of \`pgbench_accounts\` (\`var\`: the script and its routed copy at weight 1 each;" \
        "\`files\`: the canary cohorts' scripts routed). No proxy: R / direct is what routing the texts costs PostgreSQL" \
        "(with \`prepare_routed_reads: true\` B sends EXECUTEs of statements its sessions prepared instead, which cost it less)."
    echo "- **A** (passthrough): \`switchyard serve --listen 127.0.0.1:PORT --upstream postgresql://postgres@127.0.0.1:PGPORT/postgres --admin-listen off\`, no migrations or flags."
    echo "- **B** (canary 50%): \`switchyard serve --config canary.yaml\`, below; its admin console answers SHOW FLAGS."
    echo "- **C** (canary 50% and shadow reads): \`switchyard serve --config canary-shadow.yaml\`, B's configuration with" \
        "\`shadow_sample: $SHADOW_SAMPLE\` and \`max_per_fingerprint_per_second: $SHADOW_CAP\` (0: no cap), its own" \
        "control schema, and its admin HTTP on for \`/metrics\` (shadow reads: ${SHADOW_CONNECTIONS:-2} side connections$([[ -z $SHADOW_CONNECTIONS ]] && echo ", the default"), queue 100)."
    echo
    echo "All use the default worker count (one event loop per two cores)."
    echo
    echo '```yaml'
    sed "s/$sy_b_port/PORT/; s/$lt_pg_port/PGPORT/" "$config_b"
    echo '```'
    echo
    echo "C's differences from B's configuration:"
    echo
    echo '```diff'
    diff -U0 <(sed "s/$sy_b_port/PORT/; s/$lt_pg_port/PGPORT/" "$config_b") \
        <(sed "s/$sy_c_port/PORT/; s/$sy_c_http/HTTPPORT/; s/$lt_pg_port/PGPORT/" "$config_c") | tail -n +3 || true
    echo '```'
    echo
    echo "\`switchyard check --config canary.yaml\` (exit $check_rc):"
    echo
    echo '```'
    cat "$check_out"
    echo '```'
    echo
    echo "Scripts (every target runs the same ones). **var**, for \`-M simple\`: pgbench substitutes \`:c\` inside the" \
        "comment, so each statement gets one of 10,000 cohorts \`k1\`…\`k10000\`:"
    echo
    echo '```'
    cat "$scripts_dir/var.sql"
    echo '```'
    if ((need_files)); then
        echo
        echo "**files**: $PREPARED_FILES scripts of weight 1 (\`-f FILE@1\`), each \`\\set aid random(1, 100000 * :scale)\`" \
            "and \`SELECT /*cohort='pN'*/ abalance FROM pgbench_accounts WHERE aid = :aid;\` with a constant cohort." \
            "Before the runs every candidate cohort p1, p2, … was sent through B once and kept by whether B's routed" \
            "counter moved, until half were in the canary. Canary cohorts (new-*.sql): ${files_new[*]}." \
            "Other cohorts (old-*.sql): ${files_old[*]}." \
            "This set exists for \`-M prepared\`, where the var script cannot work: pgbench replaces \`:c\` in the comment" \
            "by a \`\$1\` parameter the statement never uses, and PostgreSQL refuses to prepare it" \
            "(\`ERROR:  could not determine data type of parameter \$1\`)."
    fi
    echo
    lt_machine_md "$switchyard_bin"
} >"$meta"

# Texts (PREPARED_READS=false) keep a report of their own.
report=$(lt_report_file "canary$([[ $PREPARED_READS == false ]] && echo -texts)")
python3 - "$tsv" "$meta" "$notes" "$TARGET_RATIO" "$PREPARED_FILES" "$routing_out" "$flags_out" "$TARGETS" \
    "$SHADOW_TARGET_RATIO" "$SHADOW_SAMPLE" "$divergences_out" >"$report.tmp" <<'PY'
import csv
import statistics
import sys

tsv, meta_path, notes_path, target_ratio, n_files, routing_path, flags_path = sys.argv[1:8]
TARGETS = sys.argv[8].split()
shadow_ratio, shadow_sample, divergences_path = float(sys.argv[9]), float(sys.argv[10]), sys.argv[11]
target_ratio = float(target_ratio)
n_files = int(n_files)


def num(text):
    try:
        return float(text)
    except ValueError:
        return None


def med(values):
    return statistics.median(values) if values else None


def fmt(value, spec):
    return "—" if value is None else format(value, spec)


def spread_text(ratios):
    """Per-round ratios as median (quartiles; range); quartiles from four rounds on."""
    if not ratios:
        return "—"
    text = f"{med(ratios):.3f} ("
    if len(ratios) >= 4:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        text += f"quartiles {q1:.3f}–{q3:.3f}; "
    return text + f"range {min(ratios):.3f}–{max(ratios):.3f})"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


rows = list(csv.DictReader(open(tsv, newline=""), delimiter="\t"))
scenarios = []
for r in rows:
    key = (r["mode"], r["script"], int(r["clients"]))
    if key not in scenarios:
        scenarios.append(key)


def runs(key, target, ok_only=True):
    return [r for r in rows if (r["mode"], r["script"], int(r["clients"])) == key and r["target"] == target
            and (r["status"] == "ok" or not ok_only)]


def share(key):
    """B's routed share: (share, text, min, max) over B's ok runs."""
    mode, script, clients = key
    b = runs(key, "B")
    if script == "files":
        # Executions of statements whose cohort is in the canary, from pgbench's per-script counts;
        # B's counter counts Parse messages in -M prepared (one per statement and client).
        xs = [(num(r["new_xacts"]), num(r["xacts"])) for r in b if num(r["new_xacts"]) is not None and num(r["xacts"])]
        executed = sum(x for x, _ in xs) / sum(t for _, t in xs) if xs else None
        routed = [num(r["routed"]) for r in b if num(r["routed"]) is not None]
        if mode == "prepared":
            expect = clients * n_files // 2
            ok = all(v == expect for v in routed)
            note = (f"{fmt(executed * 100 if executed is not None else None, '.1f')}% of executions "
                    f"(canary-cohort statements); Parses routed per run: {', '.join(str(int(v)) for v in routed) or '—'}"
                    f" (expected {expect} = {clients} clients × {n_files // 2} canary statements{'' if ok else ', MISMATCH'})")
            return executed, note
        rs = [(num(r["routed"]), num(r["xacts"])) for r in b if num(r["routed"]) is not None and num(r["xacts"])]
        counted = sum(x for x, _ in rs) / sum(t for _, t in rs) if rs else None
        return counted, (f"{fmt(counted * 100 if counted is not None else None, '.1f')}% counted by SHOW FLAGS; "
                         f"{fmt(executed * 100 if executed is not None else None, '.1f')}% of transactions used a canary cohort")
    rs = [(num(r["routed"]), num(r["xacts"])) for r in b if num(r["routed"]) is not None and num(r["xacts"])]
    if not rs:
        return None, "—"
    total = sum(x for x, _ in rs) / sum(t for _, t in rs)
    per = [x / t for x, t in rs]
    return total, (f"{total * 100:.1f}% ({int(sum(x for x, _ in rs))} of {int(sum(t for _, t in rs))} statements; "
                   f"per run {min(per) * 100:.1f}–{max(per) * 100:.1f}%)")


def cpu_us(key, target, column="cpu_s"):
    vals = [num(r[column]) / num(r["xacts"]) * 1e6 for r in runs(key, target)
            if num(r[column]) is not None and num(r["xacts"])]
    return med(vals)


def per_round(key, top="B", bottom="A"):
    ratios = []
    by_round = {}
    for r in rows:
        if (r["mode"], r["script"], int(r["clients"])) == key and r["status"] == "ok":
            by_round.setdefault(r["round"], {})[r["target"]] = float(r["tps"])
    for rnd in sorted(by_round, key=int):
        d = by_round[rnd]
        if top in d and bottom in d:
            ratios.append(d[top] / d[bottom])
    return ratios


out = []
out.append("# Switchyard canary routing cost: flag at canary 50% vs plain passthrough")
out.append("")
out.append(open(meta_path).read().rstrip())
out.append("")
out.append("Medians over the rounds. **B / A** is the ratio of the median TPS; the per-round column is B / A within each"
           " round (A and B ran back to back), median, quartiles and range. Proxy CPU is the proxy process's user + system time"
           " during the run divided by the transactions; PostgreSQL CPU is the same for all of PostgreSQL's processes"
           " (backends, background workers, and those that ended during the run). The machine has 2 shared cores: distrust differences of a"
           " few percent, and a `--quick` run is a smoke test, not a measurement.")
out.append("")
out.append("## Summary (median TPS)")
out.append("")
out.append("| protocol | script | clients | direct | A passthrough | B canary 50% | **B / A** | B / A per round (median, quartiles, range) "
           "| A / direct | B / direct | A CPU µs/tx | B CPU µs/tx | PostgreSQL CPU µs/tx (direct, A, B) | B ≥ 95% of A? |")
out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |")
verdicts = []
for key in scenarios:
    mode, script, clients = key
    m = {t: med([float(r["tps"]) for r in runs(key, t)]) for t in ["direct", "A", "B", "C"]}
    ba = ratio(m["B"], m["A"])
    pr = per_round(key)
    pr_text = spread_text(pr)
    met = None if ba is None else ba >= target_ratio
    verdicts.append((key, ba, pr, met))
    out.append(f"| {mode} | {script} | {clients} | {fmt(m['direct'], '.0f')} | {fmt(m['A'], '.0f')} | {fmt(m['B'], '.0f')} "
               f"| **{fmt(ba, '.3f')}** | {pr_text} | {fmt(ratio(m['A'], m['direct']), '.3f')} "
               f"| {fmt(ratio(m['B'], m['direct']), '.3f')} | {fmt(cpu_us(key, 'A'), '.0f')} | {fmt(cpu_us(key, 'B'), '.0f')} "
               f"| {', '.join(fmt(cpu_us(key, t, 'pg_cpu_s'), '.0f') for t in ['direct', 'A', 'B'])} "
               f"| {'—' if met is None else ('yes' if met else '**no**')} |")
out.append("")
out.append("## Routed share (B)")
out.append("")
out.append("| protocol | script | clients | routed share |")
out.append("| --- | --- | ---: | --- |")
for key in scenarios:
    _, text = share(key)
    out.append(f"| {key[0]} | {key[1]} | {key[2]} | {text} |")
out.append("")
out.append("For **var**, the share is B's `reads_routed_to_new` (SHOW FLAGS, read before and after each run) over the"
           " statements pgbench ran. In `-M prepared` Switchyard routes a statement when it is parsed: the counter"
           " moves once per Parse (each client parses each script's statement once), not per execution, so the"
           " executed share comes from pgbench's per-script transaction counts of the canary-cohort scripts.")
out.append("")
out.append("## Target: B keeps at least 95% of A's TPS (pgbench select-only, -M simple)")
out.append("")
goal = [v for v in verdicts if v[0][0] == "simple" and v[0][1] == "var"]
if not goal:
    out.append("Not measured: SCENARIOS did not include simple:var.")
for key, ba, pr, met in goal:
    if met is None:
        out.append(f"- {key[2]} client(s): no successful runs of both A and B.")
        continue
    agree = ""
    if pr:
        pr_met = med(pr) >= target_ratio
        if pr_met != met:
            agree = (f" The median of the per-round ratios ({med(pr):.3f}) is on the other side of 0.95: the result is"
                     " within the noise of this machine.")
    out.append(f"- {key[2]} client(s): B / A = {ba:.3f} — target **{'met' if met else 'NOT met'}**.{agree}")
for key, ba, pr, met in verdicts:
    if key[0] == "prepared" and met is not None:
        spread = f"; per round: {spread_text(pr)}" if pr else ""
        out.append(f"- For reference, -M prepared ({key[1]}), {key[2]} client(s): B / A = {ba:.3f}"
                   f" ({'≥' if met else '<'} 0.95{spread}).")
out.append("")
if "R" in TARGETS:
    out.append("## The server's part (R)")
    out.append("")
    out.append("R sends the statements B sends straight to PostgreSQL, half of them on the new path. **R / direct** is"
               " what routing costs PostgreSQL itself, with no proxy in between: the most B / A could be with a proxy"
               " that cost nothing. The per-round column pairs R with direct within each round.")
    out.append("")
    out.append("| protocol | script | clients | direct | R | **R / direct** | R / direct per round (median, quartiles, range) "
               "| PostgreSQL CPU µs/tx (direct, R) | B / A |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |")
    for key in scenarios:
        m = {t: med([float(r["tps"]) for r in runs(key, t)]) for t in ["direct", "R", "A", "B"]}
        pr = per_round(key, "R", "direct")
        pr_text = spread_text(pr)
        out.append(f"| {key[0]} | {key[1]} | {key[2]} | {fmt(m['direct'], '.0f')} | {fmt(m['R'], '.0f')} "
                   f"| **{fmt(ratio(m['R'], m['direct']), '.3f')}** | {pr_text} "
                   f"| {', '.join(fmt(cpu_us(key, t, 'pg_cpu_s'), '.0f') for t in ['direct', 'R'])} "
                   f"| {fmt(ratio(m['B'], m['A']), '.3f')} |")
    out.append("")
if "C" in TARGETS:
    out.append(f"## Target: shadow reads at {shadow_sample:g} keep at least {shadow_ratio:.0%} of the TPS (C / B)")
    out.append("")
    out.append("C is B with shadow reads sampled. **C / B** is the ratio of the median TPS, with the per-round ratios"
               " (B and C ran back to back). The shadow reads are C's `/metrics` counters read before and after each run:"
               " compared is every finished sample (same, divergent, nondeterministic, skipped, error), dropped the samples"
               " refused because the side connections' queue was full. Drawn = compared + dropped, so drawn / statements"
               " should be close to the sample rate, and compared / statements is the share actually compared.")
    out.append("")
    out.append("| protocol | script | clients | B TPS | C TPS | **C / B** | C / B per round (median, quartiles, range) | B CPU µs/tx "
               "| C CPU µs/tx | statements (C) | drawn | compared | dropped | divergent | C ≥ 90% of B? |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | --- |")
    for key in scenarios:
        b = med([float(r["tps"]) for r in runs(key, "B")])
        c = med([float(r["tps"]) for r in runs(key, "C")])
        cb = ratio(c, b)
        pr = per_round(key, "C", "B")
        pr_text = spread_text(pr)
        cr = [r for r in runs(key, "C") if num(r["shadow_done"]) is not None and num(r["xacts"])]
        xs = sum(num(r["xacts"]) for r in cr)
        done = sum(num(r["shadow_done"]) for r in cr)
        dropped = sum(num(r["shadow_dropped"]) for r in cr)
        div = sum(num(r["shadow_divergent"]) for r in cr)
        pct = (lambda n: f"{n:.0f} ({n / xs:.2%})") if xs else (lambda n: "—")
        met = None if cb is None else cb >= shadow_ratio
        out.append(f"| {key[0]} | {key[1]} | {key[2]} | {fmt(b, '.0f')} | {fmt(c, '.0f')} | **{fmt(cb, '.3f')}** | {pr_text} "
                   f"| {fmt(cpu_us(key, 'B'), '.0f')} | {fmt(cpu_us(key, 'C'), '.0f')} | {xs:.0f} | {pct(done + dropped)} "
                   f"| {pct(done)} | {pct(dropped)} | {div:.0f} | {'—' if met is None else ('yes' if met else '**no**')} |")
    out.append("")
    out.append("C's `SHOW DIVERGENCES` after the runs (a correct mapping: there should be none):")
    out.append("")
    out.append("```")
    out.append(open(divergences_path).read().rstrip())
    out.append("```")
    out.append("")
out.append("## Every run (TPS)")
out.append("")
rounds = sorted({int(r["round"]) for r in rows})
out.append("| protocol | script | clients | target | " + " | ".join(f"round {n}" for n in rounds) + " | median latency ms |")
out.append("| --- | --- | ---: | --- | " + " | ".join("---:" for _ in rounds) + " | ---: |")
for key in scenarios:
    for t in TARGETS:
        cells = []
        for n in rounds:
            rs = [r for r in runs(key, t, ok_only=False) if int(r["round"]) == n]
            cells.append("—" if not rs else (f"{float(rs[0]['tps']):.0f}" if rs[0]["status"] == "ok" else rs[0]["status"]))
        lat = med([float(r["latency_ms"]) for r in runs(key, t)])
        out.append(f"| {key[0]} | {key[1]} | {key[2]} | {t} | " + " | ".join(cells) + f" | {fmt(lat, '.3f')} |")
out.append("")
out.append("## B's admin console after the runs")
out.append("")
out.append("SHOW FLAGS:")
out.append("")
out.append("```")
out.append(open(flags_path).read().rstrip())
out.append("```")
out.append("")
out.append("SHOW ROUTING (reads of pgbench_accounts kept on the old path):")
out.append("")
out.append("```")
out.append(open(routing_path).read().rstrip())
out.append("```")
out.append("")
out.append("## Problems seen")
out.append("")
notes = open(notes_path).read().rstrip()
out.append(notes if notes else "None: every run succeeded, no Switchyard exited, and their stderr has no warnings.")
print("\n".join(out))
PY
mv "$report.tmp" "$report"
cat "$report"
say "report written to ${report#"$lt_root"/}"
if ((failures)); then
    say "$failures run(s) failed; logs copied to ${results_dir#"$lt_root"/}/canary-latest-logs"
    exit 1
fi
