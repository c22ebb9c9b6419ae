#!/usr/bin/env bash
# Ends PostgreSQL/switchyard processes and temp dirs left by a crashed test run, using only the pids the harness recorded.
#
# The harness (Tests/SwitchyardTestSupport) appends "PID OWNER_PID OWNER_START NAME" to
# /tmp/switchyard-test-pids for every process it starts. An entry is a leftover when its owner
# (the test process) is gone; entries of a test run still in progress, possibly another
# developer's on the same machine, are left alone. A pid is signalled only if /proc/PID/cmdline
# still names postgres or switchyard, so a reused pid is never touched.
#
# Usage: scripts/kill-test-leftovers.sh [--all | --owner PID]
#   --all        also processes whose owner still runs (nothing else should be testing then)
#   --owner PID  only what the (dead) test process PID left; the harness's crash watchdog runs this
set -uo pipefail

registry=${SWITCHYARD_TEST_PIDS:-/tmp/switchyard-test-pids}
all=0
only_owner=""
case ${1:-} in
--all) all=1 ;;
--owner)
    only_owner=${2:-}
    [[ $only_owner =~ ^[0-9]+$ ]] || { echo "usage: $0 [--all | --owner PID]" >&2; exit 2; }
    ;;
"") ;;
*) echo "usage: $0 [--all | --owner PID]" >&2; exit 2 ;;
esac

# Start time (clock ticks since boot) of a pid, field 22 of /proc/PID/stat; empty if gone.
start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    # After "pid (comm) " the fields start at number 3, so field 22 is the 20th here.
    awk '{ print $20 }' <<<"$stat"
}

# Process state letter (R, S, Z...) of a pid: the first field after "pid (comm) "; empty if gone.
proc_state() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    echo "${stat%% *}"
}

# Whether the test process that recorded an entry still runs (same pid, same start time, and
# not a zombie: a crashed test process waits as one until `swift test` reaps it).
owner_alive() {
    local pid=$1 started=$2
    [[ -d /proc/$pid ]] || return 1
    [[ $(proc_state "$pid") != Z ]] || return 1
    [[ $started == 0 || $(start_time "$pid") == "$started" ]]
}

if [[ -n $only_owner ]] && owner_alive "$only_owner" 0; then
    echo "kill-test-leftovers: test process $only_owner is still running, leaving its processes alone" >&2
    exit 0
fi

cmdline_of() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null
}

is_ours() {
    local cmdline
    cmdline=$(cmdline_of "$1") || return 1
    [[ $cmdline == *postgres* || $cmdline == *switchyard* ]]
}

to_stop=()
if [[ -f $registry ]]; then
    exec 9>>"$registry"
    # The harness appends under the same lock.
    flock 9
    kept=()
    while read -r pid owner owner_start name; do
        [[ $pid =~ ^[0-9]+$ && $owner =~ ^[0-9]+$ ]] || continue
        [[ -d /proc/$pid ]] || continue
        if [[ -n $only_owner && $owner != "$only_owner" ]] ||
            { [[ $all == 0 ]] && owner_alive "$owner" "${owner_start:-0}"; }; then
            kept+=("$pid $owner $owner_start $name")
            continue
        fi
        if is_ours "$pid"; then
            to_stop+=("$pid")
        fi
    done <"$registry"
    # Rewrite in place (not a new file) so the lock held on it stays meaningful.
    if ((${#kept[@]})); then
        printf '%s\n' "${kept[@]}" >"$registry"
    else
        : >"$registry"
    fi
    exec 9>&-
fi

if ((${#to_stop[@]})); then
    echo "kill-test-leftovers: stopping ${#to_stop[@]} leftover process(es): ${to_stop[*]}"
    for pid in "${to_stop[@]}"; do
        # A postmaster gets SIGINT (fast shutdown); SIGTERM would wait for its clients.
        if [[ $(cmdline_of "$pid") =~ ^[^\ ]*/postgres\  ]]; then
            kill -INT "$pid" 2>/dev/null
        else
            kill -TERM "$pid" 2>/dev/null
        fi
    done
    for _ in $(seq 100); do
        alive=()
        for pid in "${to_stop[@]}"; do
            state=$(proc_state "$pid")
            if [[ -n $state && $state != Z ]] && is_ours "$pid"; then
                alive+=("$pid")
            fi
        done
        ((${#alive[@]})) || break
        sleep 0.1
    done
    for pid in "${alive[@]}"; do
        echo "kill-test-leftovers: pid $pid did not stop in 10 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    done
fi

# Temp directories of clusters whose owning test process is gone (or all with --all, once their
# server is stopped).
for dir in /tmp/switchyard-pg-*; do
    [[ -d $dir ]] || continue
    owner=$(cat "$dir/owner.pid" 2>/dev/null || echo "")
    if [[ -n $only_owner && $owner != "$only_owner" ]]; then
        continue
    fi
    if [[ $all == 0 && $owner =~ ^[0-9]+$ ]] && owner_alive "$owner" 0; then
        continue
    fi
    if [[ -z $owner ]] && [[ -z $(find "$dir" -maxdepth 0 -mmin +60 2>/dev/null) ]]; then
        # No owner file yet: maybe a cluster being created right now; only old ones go.
        continue
    fi
    postmaster=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || echo "")
    if [[ $postmaster =~ ^[0-9]+$ && -d /proc/$postmaster ]] && is_ours "$postmaster"; then
        echo "kill-test-leftovers: $dir still has a running postmaster ($postmaster), keeping it"
        continue
    fi
    rm -rf -- "$dir"
done
exit 0
