#!/usr/bin/env bash
# What each proxy does per statement, counted in instructions rather than seconds: valgrind's
# callgrind counts the same for the same binary and statements whatever else the machine runs, so
# a change to the per-statement path shows here when timings on a shared machine cannot resolve it.
#
# Starts a throwaway PostgreSQL, loads pgbench, creates pgbench_accounts_v2 as canary.sh does, and
# runs each target under callgrind in turn:
#   A  passthrough: serve --listen ... --upstream ... --admin-listen off (no migrations, no flags)
#   B  canary:      canary.sh's configuration, the flag at stage canary, percent 50
# Each gets WARMUP statements of canary.sh's var script (SELECT with a sqlcommenter cohort comment,
# one of 10,000 cohorts, -M simple, 1 client), then its counters are zeroed, STATEMENTS more run, and
# the counters are dumped. Reported: instructions per statement on the event-loop thread (the
# control thread's periodic work is left out), B / A, and B's heaviest functions (inclusive).
# Instructions are not time (cache misses and system calls are not in them), so the ratio is a
# measure of the proxy's own work, not of throughput.
#
# Usage: loadtests/instructions.sh [--quick]
# Environment: STATEMENTS (2000; 500 with --quick), WARMUP (300), SCALE (1); KEEP_DUMPS=DIR copies
# the callgrind dumps and their annotations there, for callgrind_annotate or kcachegrind.
# CACHE_SIM=1 runs callgrind's cache simulation too (this machine's cache sizes, the proxy alone on
# them) and adds the event loop's misses per statement: L1 instruction-cache misses show how much
# code a statement's path runs through, which instructions alone do not.
# SHADOW_SAMPLE=X gives B's flag that shadow_sample (canary.sh's B has 0, routing alone; a flag's
# default is 0.01): every read is offered to the samplers, and the sampled ones are answered on both
# paths by side connections, whose own work is not on the event loop.
# Needs valgrind (apt-get install valgrind). Writes loadtests/results/instructions-latest.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lt_parse_args instructions "${BASH_SOURCE[0]}" "$@"
STATEMENTS=${STATEMENTS:-$([[ $quick == 1 ]] && echo 500 || echo 2000)}
WARMUP=${WARMUP:-300}
SCALE=${SCALE:-1}
CACHE_SIM=${CACHE_SIM:-0}
SHADOW_SAMPLE=${SHADOW_SAMPLE:-0}
[[ $SHADOW_SAMPLE =~ ^(0|0?\.[0-9]+|1)$ ]] || die "SHADOW_SAMPLE must be a share from 0 to 1 (got '$SHADOW_SAMPLE')"
[[ $SHADOW_SAMPLE == 0 ]] || command_line="SHADOW_SAMPLE=$SHADOW_SAMPLE $command_line"
[[ $CACHE_SIM == [01] ]] || die "CACHE_SIM must be 0 or 1 (got '$CACHE_SIM')"
cache_args=()
((CACHE_SIM)) && cache_args=(--cache-sim=yes)
for value in "$STATEMENTS" "$WARMUP" "$SCALE"; do
    [[ $value =~ ^[1-9][0-9]{0,5}$ ]] || die "STATEMENTS, WARMUP and SCALE must be positive integers (got '$value')"
done
for tool in valgrind callgrind_control callgrind_annotate strip; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install valgrind binutils)"
done

lt_init instructions
results_dir=$lt_dir/results
mkdir -p "$results_dir"
switchyard_bin=$(lt_switchyard_bin)
# valgrind 3.19 cannot read the DWARF the Swift toolchain writes; the symbol table is enough to
# name functions.
bin=$lt_tmp/switchyard
strip --strip-debug -o "$bin" "$switchyard_bin"

lt_start_postgres 100
lt_pgbench_init postgres
lt_canary_table

cat >"$lt_tmp/var.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
\set c random(1, 10000)
SELECT /*cohort='k:c'*/ abalance FROM pgbench_accounts WHERE aid = :aid;
EOF

vg_pid=""
instructions_cleanup() {
    local status=$?
    set +e
    lt_stop "$vg_pid" TERM "switchyard under valgrind"
    (exit "$status")
    lt_cleanup
}
trap instructions_cleanup EXIT

event_loop_symbol='$s12SwitchyardIO9EventLoopC3runyyF'
declare -A per_statement misses
for target in A B; do
    port=$(lt_free_port)
    if [[ $target == A ]]; then
        args=(serve --listen "127.0.0.1:$port" --upstream "postgresql://postgres@127.0.0.1:$lt_pg_port/postgres" --admin-listen off)
    else
        lt_canary_config "$port" switchyard_instructions | sed "s/^    shadow_sample: 0\$/    shadow_sample: $SHADOW_SAMPLE/" >"$lt_tmp/b.yaml"
        grep -q "^    shadow_sample: $SHADOW_SAMPLE\$" "$lt_tmp/b.yaml" || die "could not set B's shadow_sample"
        args=(serve --config "$lt_tmp/b.yaml")
    fi
    valgrind --tool=callgrind "${cache_args[@]}" --callgrind-out-file="$lt_tmp/callgrind-$target.%p" "$bin" "${args[@]}" \
        >"$lt_tmp/valgrind-$target.log" 2>&1 &
    vg_pid=$!
    lt_wait_port "$port" 120 "$vg_pid" || {
        cat "$lt_tmp/valgrind-$target.log" >&2
        die "switchyard $target under valgrind is not accepting connections on 127.0.0.1:$port"
    }
    run() {
        timeout 600 pgbench -n -M simple -c 1 -j 1 -t "$1" -s "$SCALE" -f "$lt_tmp/var.sql" \
            -h 127.0.0.1 -p "$port" -U postgres postgres >"$lt_tmp/pgbench-$target.out" 2>&1 ||
            die "pgbench through $target failed: $(cat "$lt_tmp/pgbench-$target.out")"
        grep -q "number of failed transactions: 0" "$lt_tmp/pgbench-$target.out" ||
            die "pgbench through $target had failed transactions: $(cat "$lt_tmp/pgbench-$target.out")"
    }
    say "$target: $WARMUP statements to warm up, then $STATEMENTS counted"
    run "$WARMUP"
    timeout 60 callgrind_control -z "$vg_pid" >/dev/null
    run "$STATEMENTS"
    timeout 60 callgrind_control -d "$vg_pid" >/dev/null
    dump=$lt_tmp/callgrind-$target.$vg_pid.1
    for ((i = 0; i < 100; i++)); do
        [[ -s $dump ]] && break
        sleep 0.2
    done
    lt_stop "$vg_pid" TERM "switchyard $target under valgrind"
    vg_pid=""
    [[ -s $dump ]] || die "callgrind wrote no dump for $target ($dump)"
    callgrind_annotate --inclusive=yes --show=Ir "$dump" >"$lt_tmp/annotate-$target.txt" 2>/dev/null
    if ((CACHE_SIM)); then
        # The event loop's misses, inclusive: instruction fetches missing L1, data reads and writes
        # missing L1, and reads and writes missing the last level.
        callgrind_annotate --inclusive=yes --show=I1mr,D1mr,D1mw,DLmr,DLmw "$dump" >"$lt_tmp/misses-$target.txt" 2>/dev/null
        misses[$target]=$(grep -F -m1 "$event_loop_symbol" "$lt_tmp/misses-$target.txt" |
            awk -v n="$STATEMENTS" '{ gsub(/\([^)]*\)/, ""); gsub(",", ""); out = ""; for (i = 1; i <= 5; i++) out = out sprintf("%s%.1f", i > 1 ? " | " : "", $i / n); print out }')
        [[ -n ${misses[$target]} ]] || die "no event-loop misses in callgrind's output for $target"
        # Each function's own L1 instruction misses (not those of what it calls).
        callgrind_annotate --inclusive=no --show=I1mr --sort=I1mr --threshold=100 "$dump" >"$lt_tmp/code-misses-$target.txt" 2>/dev/null
    fi
    if [[ -n ${KEEP_DUMPS:-} ]]; then
        mkdir -p "$KEEP_DUMPS"
        cp -f "$dump" "$KEEP_DUMPS/callgrind-$target.out"
        cp -f "$lt_tmp/annotate-$target.txt" "$KEEP_DUMPS/annotate-$target.txt"
    fi
    total=$(grep -F -m1 "$event_loop_symbol" "$lt_tmp/annotate-$target.txt" | awk '{ gsub(",", "", $1); print $1 }')
    [[ $total =~ ^[0-9]+$ ]] || die "no event-loop total in callgrind's output for $target"
    per_statement[$target]=$((total / STATEMENTS))
    say "$target: ${per_statement[$target]} instructions per statement on the event loop"
done

ratio=$(lt_ratio "${per_statement[B]}" "${per_statement[A]}")
demangle() { if command -v swift >/dev/null 2>&1; then swift demangle --simplified; else cat; fi; }
# functions FILE [FORMAT]: "count per statement<TAB>function" for the binary's functions in FILE, a
# callgrind_annotate output of one event, largest first; the count printed with FORMAT (%d).
functions() {
    grep -E '^ *[0-9,]+ \([ 0-9.]+%\)  \?\?\?:' "$1" | grep -F "[$bin]" |
        awk -v n="$STATEMENTS" -v format="${2:-%d}\t%s\n" '{ c = $1; gsub(",", "", c); sub(/^ *[0-9,]+ \([ 0-9.]+%\)  \?\?\?:/, ""); sub(/ \[[^]]*\]$/, ""); printf format, c / n, $0 }' |
        demangle
}
# The two halves of a round trip: a statement read from the client and sent on, an answer read
# from the server and sent back (each with what it calls, system call wrappers included).
declare -A from_client from_server
for target in A B; do
    functions "$lt_tmp/annotate-$target.txt" >"$lt_tmp/functions-$target.txt"
    from_client[$target]=$(awk -F'\t' '$2 == "ProxySession.readClient()" { print $1; exit }' "$lt_tmp/functions-$target.txt")
    from_server[$target]=$(awk -F'\t' '$2 == "ProxySession.readServer()" { print $1; exit }' "$lt_tmp/functions-$target.txt")
done
heaviest=$(head -25 "$lt_tmp/functions-B.txt" | awk -F'\t' '{ printf "| %s | %s |\n", $1, substr($2, 1, 140) }')

report=$results_dir/instructions-latest.md
{
    echo "# Instructions per statement: passthrough and canary 50%"
    echo
    echo "Command: \`$command_line\`; valgrind --tool=callgrind, pgbench -M simple -c 1, canary.sh's var script"
    echo "(one of 10,000 sqlcommenter cohorts per statement), $WARMUP statements to warm up, then $STATEMENTS counted."
    echo
    lt_machine_md "$switchyard_bin"
    echo
    echo "| target | instructions per statement (event loop) | client to server (readClient) | server to client (readServer) |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| A passthrough | ${per_statement[A]} | ${from_client[A]:-?} | ${from_server[A]:-?} |"
    echo "| B canary 50% | ${per_statement[B]} | ${from_client[B]:-?} | ${from_server[B]:-?} |"
    echo "| **B / A** | **$ratio** | | |"
    echo
    echo "Without swift on the PATH the function names stay mangled and the two path columns are \"?\"."
    if ((CACHE_SIM)); then
        echo
        echo "Cache misses per statement on the event loop (CACHE_SIM=1: callgrind's simulation of this machine's"
        echo "caches, the proxy alone on them; one L1 instruction miss is 64 bytes of code fetched again):"
        echo
        echo "| target | L1 instruction misses | L1 data read misses | L1 data write misses | last-level read misses | last-level write misses |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: |"
        echo "| A passthrough | ${misses[A]} |"
        echo "| B canary 50% | ${misses[B]} |"
        echo
        echo "B's functions with the most L1 instruction misses of their own (not those of what they call), per statement:"
        echo
        echo "| misses | function |"
        echo "| ---: | --- |"
        # The frames open when the counters were zeroed (the threads' entry, the loop's closure) come
        # out of callgrind_annotate with what they called: no function's own count reaches the loop's.
        functions "$lt_tmp/code-misses-B.txt" '%.1f' |
            awk -F'\t' -v loop="${misses[B]%% *}" '$1 < loop + 0 && ++shown <= 12 { printf "| %s | %s |\n", $1, substr($2, 1, 140) }'
    fi
    echo
    echo "B's heaviest functions on the event loop, inclusive of what they call, per statement:"
    echo
    echo "| instructions | function |"
    echo "| ---: | --- |"
    echo "$heaviest"
} | tee "$report"
say "report: $report"
