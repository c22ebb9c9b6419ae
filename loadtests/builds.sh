#!/usr/bin/env bash
# Two Switchyard builds side by side: both as plain passthroughs in front of one PostgreSQL,
# pgbench select-only through each, interleaved, so a change's cost (or gain) on the proxy path
# is read as a ratio from one run rather than from two runs on different days.
#
# Usage: BUILD_A=/path/to/old/switchyard BUILD_B=/path/to/new/switchyard loadtests/builds.sh [--quick]
# Environment: DURATION (5; 3 with --quick), ROUNDS (4; 1), CLIENTS ("1 8"), SCALE (10),
#   MODES ("simple prepared").
# Writes loadtests/results/builds-latest.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lt_parse_args builds "${BASH_SOURCE[0]}" "$@"
DURATION=${DURATION:-$([[ $quick == 1 ]] && echo 3 || echo 5)}
ROUNDS=${ROUNDS:-$([[ $quick == 1 ]] && echo 1 || echo 4)}
CLIENTS=${CLIENTS:-"1 8"}
SCALE=${SCALE:-10}
MODES=${MODES:-"simple prepared"}
for value in "$DURATION" "$ROUNDS" "$SCALE" $CLIENTS; do
    [[ $value =~ ^[1-9][0-9]{0,4}$ ]] || die "DURATION, ROUNDS, SCALE and CLIENTS must be positive integers (got '$value')"
done
for build in "${BUILD_A:-}" "${BUILD_B:-}"; do
    [[ -n $build && -x $build ]] || die "BUILD_A and BUILD_B must name two switchyard executables (got '${BUILD_A:-}', '${BUILD_B:-}')"
done

lt_init builds
pid_a=""
pid_b=""
builds_cleanup() {
    local status=$?
    set +e
    lt_stop "$pid_a" TERM "switchyard A"
    lt_stop "$pid_b" TERM "switchyard B"
    (exit "$status")
    lt_cleanup
}
trap builds_cleanup EXIT

lt_start_postgres 100
lt_pgbench_init postgres
upstream=postgresql://postgres@127.0.0.1:$lt_pg_port/postgres
port_a=$(lt_free_port)
lt_spawn_switchyard "$BUILD_A" "$port_a" "$lt_tmp/a.log" --listen "127.0.0.1:$port_a" --upstream "$upstream" --admin-listen off
pid_a=$lt_spawned_pid
port_b=$(lt_free_port)
lt_spawn_switchyard "$BUILD_B" "$port_b" "$lt_tmp/b.log" --listen "127.0.0.1:$port_b" --upstream "$upstream" --admin-listen off
pid_b=$lt_spawned_pid

declare -A tps
for ((round = 1; round <= ROUNDS; round++)); do
    for mode in $MODES; do
        for c in $CLIENTS; do
            for build in A B; do
                port=$([[ $build == A ]] && echo "$port_a" || echo "$port_b")
                out=$(timeout $((DURATION + 60)) pgbench -n -S -M "$mode" -c "$c" -j $((c < 2 ? c : 2)) -T "$DURATION" \
                    -h 127.0.0.1 -p "$port" -U postgres postgres 2>&1) || die "pgbench through $build failed: $out"
                t=$(awk '/^tps = / { print $3; exit }' <<<"$out")
                tps[$mode,$c,$build]+="$t "
                say "round $round -M $mode -c $c $build: $t tps"
            done
        done
    done
done

results_dir=$(dirname "${BASH_SOURCE[0]}")/results
mkdir -p "$results_dir"
report=$results_dir/builds-latest.md
{
    echo "# Two Switchyard builds side by side (passthrough, pgbench select-only)"
    echo
    echo "Command: \`$command_line\`; A: \`$BUILD_A\`, B: \`$BUILD_B\`; scale $SCALE, $ROUNDS rounds of $DURATION s, A and B interleaved."
    echo
    lt_machine_md "$BUILD_B"
    echo
    echo "| -M | clients | A median TPS | B median TPS | **B / A** | A per round | B per round |"
    echo "| --- | ---: | ---: | ---: | ---: | --- | --- |"
    for mode in $MODES; do
        for c in $CLIENTS; do
            a=$(lt_median "${tps[$mode,$c,A]}")
            b=$(lt_median "${tps[$mode,$c,B]}")
            echo "| $mode | $c | $a | $b | **$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')** | ${tps[$mode,$c,A]} | ${tps[$mode,$c,B]} |"
        done
    done
} >"$report"
cat "$report"
