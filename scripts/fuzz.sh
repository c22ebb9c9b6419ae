#!/usr/bin/env bash
# Builds the libFuzzer targets under Fuzz/ and runs each for a bounded number of iterations; fails on any crash.
#
#   scripts/fuzz.sh [--runs N] [--seconds S] [--debug] [TARGET...]
#
# TARGET is frontend, backend, startup or sql (or FuzzFrontend...); all four by default.
# Each target runs until N iterations (-runs, default 100000) or S seconds (-max_total_time,
# default 60), whichever comes first, from the committed seeds in Fuzz/corpus/<target> and the
# dictionary Fuzz/<target>.dict if there is one. New inputs it finds go to a working corpus in
# $FUZZ_WORK_DIR (default .build-fuzz/work), never into the committed one; crash, timeout and
# out-of-memory inputs go to $FUZZ_WORK_DIR/artifacts/<target>. The build goes to
# $FUZZ_SCRATCH_PATH (default .build-fuzz), apart from the plain build, since every module is
# compiled with -sanitize=fuzzer,address. --debug builds unoptimized (faster to build, slower
# to run). Prints per target the iterations, exec/s, coverage and any crash file, and exits 1
# if any target crashed, timed out or ran out of memory.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
if [ -d /opt/swift/usr/bin ]; then export PATH=/opt/swift/usr/bin:$PATH; fi

runs=100000
seconds=60
config=release
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --debug) config=debug; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(frontend backend startup sql)

scratch=${FUZZ_SCRATCH_PATH:-$root/.build-fuzz}
work=${FUZZ_WORK_DIR:-$scratch/work}

product_of() {
    case "$1" in
        frontend|FuzzFrontend) echo FuzzFrontend ;;
        backend|FuzzBackend) echo FuzzBackend ;;
        startup|FuzzStartup) echo FuzzStartup ;;
        sql|FuzzSQL) echo FuzzSQL ;;
        *) echo "fuzz.sh: unknown target $1 (frontend, backend, startup, sql)" >&2; exit 2 ;;
    esac
}

products=()
for t in "${targets[@]}"; do products+=("$(product_of "$t")"); done

# One product per build: the modules they share are compiled once, by the first.
build_start=$SECONDS
for product in "${products[@]}"; do
    # The sanitizer runtime's linker notes about local symbols are noise; errors still show.
    # Package.swift leaves the run-time exclusivity checks out of release builds; fuzzing wants
    # every check there is, and swiftc takes the last of the two settings, which is this one.
    if ! swift build -c "$config" --product "$product" --scratch-path "$scratch" \
        -Xswiftc -DSWITCHYARD_FUZZING -Xswiftc -sanitize=fuzzer,address -Xswiftc -enforce-exclusivity=checked 2>&1 \
        | { grep -v "Cannot export local symbol" || true; }; then
        echo "fuzz.sh: building $product with -sanitize=fuzzer failed" >&2
        exit 1
    fi
done
echo "built ${products[*]} in $((SECONDS - build_start)) s ($config)"

# A crash must end the run at once with libFuzzer's report, not in Swift's interactive backtracer.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}

failed=0
summary=()
for product in "${products[@]}"; do
    name=$(echo "${product#Fuzz}" | tr '[:upper:]' '[:lower:]')
    corpus=$work/corpus/$name
    artifacts=$work/artifacts/$name
    log=$work/$name.log
    mkdir -p "$corpus" "$artifacts"
    rm -f "$artifacts"/*
    dictionary=()
    if [ -f "$root/Fuzz/$name.dict" ]; then dictionary=(-dict="$root/Fuzz/$name.dict"); fi
    status=0
    # timeout(1) is a second bound, should libFuzzer itself hang.
    timeout --kill-after=10 $((seconds + 120)) "$scratch/$config/$product" \
        -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "${dictionary[@]}" \
        "$corpus" "$root/Fuzz/corpus/$name" >"$log" 2>&1 || status=$?
    executed=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    coverage=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
    found=$(ls "$artifacts" 2>/dev/null | sed "s|^|$artifacts/|" | tr '\n' ' ')
    line="$name: $executed iterations, $rate exec/s, ${coverage:-cov: ? ft: ?}, working corpus $(ls "$corpus" | wc -l) inputs"
    if [ "$status" -ne 0 ] || [ -n "$found" ]; then
        failed=1
        line="$line, FAILED (exit $status) ${found:-no artifact}"
        echo "---- $name: the end of $log" >&2
        tail -40 "$log" >&2
    fi
    echo "$line"
    summary+=("$line")
done

echo "---- fuzz summary (runs $runs, at most $seconds s each)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: a target failed; replay an input with a plain build: .build/debug/<Target> FILE" >&2
    exit 1
fi
