#!/usr/bin/env python3
"""Hold N idle client sessions open through a PostgreSQL proxy and measure the proxy's memory and threads.

Speaks just enough of the PostgreSQL v3 protocol by hand (standard library only, no driver):
StartupMessage with trust authentication, a simple-protocol `select 1`, Terminate.

Steps:
  1. sample the proxy's VmRSS, Threads and open fds from /proc/PID (before);
  2. open N TCP connections, in batches, each doing startup (until ReadyForQuery) and `select 1`;
  3. hold them idle for --hold seconds, sample again (held), and count PostgreSQL's client
     backends over one direct connection (--direct-port) to check each session has its own;
  4. run `select 1` once more on every held session (the proxy kept them usable);
  5. close them all (Terminate), wait for the proxy to settle, sample again (after).
Prints idle memory per session = (RSS_held - RSS_before) / N in KiB.

Every socket operation has a timeout (--timeout, 5 s) and the whole run a deadline (--deadline).
Exit status 0 when all N sessions worked throughout, 1 otherwise (the failures are printed).
"""
import argparse
import collections
import os
import resource
import socket
import statistics
import struct
import sys
import time

APP_NAME = "hold_sessions"


class ProtocolError(Exception):
    pass


class DeadlineExceeded(Exception):
    pass


def proc_sample(pid):
    """VmRSS (KiB), VmHWM (KiB), Threads and the number of open fds of PID."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        fds = None
    return {
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "hwm_kib": int(fields["VmHWM"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": fds,
    }


def recv_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ProtocolError("connection closed by the server")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(sock):
    header = recv_exact(sock, 5)
    kind = header[:1]
    (length,) = struct.unpack("!I", header[1:])
    if length < 4 or length > 64 * 1024 * 1024:
        raise ProtocolError(f"bad message length {length} for type {kind!r}")
    return kind, recv_exact(sock, length - 4)


def error_text(body):
    """The severity, SQLSTATE and message of an ErrorResponse/NoticeResponse body."""
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return f"{fields.get('S', '?')} {fields.get('C', '?')}: {fields.get('M', '?')}"


def read_until_ready(sock):
    """Reads messages until ReadyForQuery; returns the DataRow bodies. Raises on ErrorResponse."""
    rows = []
    error = None
    while True:
        kind, body = read_message(sock)
        if kind == b"R":
            (code,) = struct.unpack("!I", body[:4])
            if code != 0:
                raise ProtocolError(f"server asks for authentication (code {code}); trust auth expected")
        elif kind == b"E":
            error = error_text(body)
        elif kind == b"D":
            rows.append(body)
        elif kind == b"Z":
            if error:
                raise ProtocolError(error)
            return rows
        # S (ParameterStatus), K (BackendKeyData), T, C, N and the rest are not needed here.


def startup_message(user, database):
    params = b"".join(
        k.encode() + b"\0" + v.encode() + b"\0"
        for k, v in (("user", user), ("database", database), ("application_name", APP_NAME))
    ) + b"\0"
    return struct.pack("!II", 8 + len(params), 196608) + params


def query_message(sql):
    payload = sql.encode() + b"\0"
    return b"Q" + struct.pack("!I", 4 + len(payload)) + payload


TERMINATE = b"X" + struct.pack("!I", 4)


def first_value(row):
    (ncols,) = struct.unpack("!H", row[:2])
    if ncols < 1:
        raise ProtocolError("DataRow without columns")
    (length,) = struct.unpack("!i", row[2:6])
    return None if length < 0 else row[6 : 6 + length].decode()


class Run:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.deadline
        self.errors = collections.Counter()

    def check_deadline(self):
        if time.monotonic() > self.deadline:
            raise DeadlineExceeded(f"the run took longer than --deadline {self.args.deadline} s")

    def fail(self, stage, exc):
        self.errors[f"{stage}: {type(exc).__name__}: {exc}"] += 1

    def select_one(self, socks, stage):
        """Sends `select 1` on every socket, then reads every answer; returns the sockets that worked."""
        sent = []
        for s in socks:
            self.check_deadline()
            try:
                s.sendall(query_message("select 1"))
                sent.append(s)
            except (OSError, ProtocolError) as exc:
                self.fail(stage, exc)
                s.close()
        ok = []
        for s in sent:
            self.check_deadline()
            try:
                rows = read_until_ready(s)
                if len(rows) != 1 or first_value(rows[0]) != "1":
                    raise ProtocolError(f"unexpected result of select 1: {rows!r}")
                ok.append(s)
            except (OSError, ProtocolError) as exc:
                self.fail(stage, exc)
                s.close()
        return ok

    def open_sessions(self):
        a = self.args
        held = []
        startup_ms = []
        for start in range(0, a.sessions, a.batch):
            count = min(a.batch, a.sessions - start)
            pending = []
            for _ in range(count):
                self.check_deadline()
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(a.timeout)
                try:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    began = time.monotonic()
                    s.connect((a.host, a.port))
                    s.sendall(startup_message(a.user, a.database))
                    pending.append((s, began))
                except OSError as exc:
                    self.fail("connect", exc)
                    s.close()
            started = []
            for s, began in pending:
                self.check_deadline()
                try:
                    read_until_ready(s)
                    startup_ms.append((time.monotonic() - began) * 1000)
                    started.append(s)
                except (OSError, ProtocolError) as exc:
                    self.fail("startup", exc)
                    s.close()
            held.extend(self.select_one(started, "first select 1"))
        return held, startup_ms


def backend_count(args):
    """(client backends with our application_name, all client backends), over a direct connection."""
    s = socket.create_connection((args.host, args.direct_port), timeout=args.timeout)
    try:
        s.settimeout(args.timeout)
        s.sendall(startup_message(args.user, args.database))
        read_until_ready(s)
        s.sendall(query_message(
            "select count(*) filter (where application_name = '%s')::text || ' ' || count(*)::text "
            "from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()" % APP_NAME))
        rows = read_until_ready(s)
        ours, total = first_value(rows[0]).split()
        s.sendall(TERMINATE)
        return int(ours), int(total)
    finally:
        s.close()


def wait_backends_gone(args, seconds):
    end = time.monotonic() + seconds
    counts = None
    while time.monotonic() < end:
        counts = backend_count(args)
        if counts[0] == 0:
            break
        time.sleep(0.2)
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="the proxy's port")
    p.add_argument("--pid", type=int, required=True, help="the proxy's pid, for /proc/PID/status")
    p.add_argument("--direct-port", type=int, help="PostgreSQL's own port, to count its backends")
    p.add_argument("--sessions", "-n", type=int, default=1000)
    p.add_argument("--hold", type=float, default=5.0, help="seconds to hold the sessions idle")
    p.add_argument("--batch", type=int, default=100, help="sessions started at once")
    p.add_argument("--user", default="postgres")
    p.add_argument("--database", default="postgres")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds for each socket operation")
    p.add_argument("--deadline", type=float, default=300.0, help="seconds for the whole run")
    p.add_argument("--settle", type=float, default=2.0, help="seconds to let the proxy settle before sampling")
    args = p.parse_args()
    if args.sessions < 1 or args.batch < 1:
        p.error("--sessions and --batch must be at least 1")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.sessions + 100
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
        except (ValueError, OSError):
            pass

    run = Run(args)
    out = print
    time.sleep(args.settle)
    before = proc_sample(args.pid)
    out(f"proxy pid {args.pid}: before: RSS {before['rss_kib']} KiB, threads {before['threads']}, fds {before['fds']}")

    held = []
    status = 0
    try:
        began = time.monotonic()
        held, startup_ms = run.open_sessions()
        took = time.monotonic() - began
        out(f"opened {len(held)}/{args.sessions} sessions (startup + select 1) in {took:.1f} s; "
            f"startup to ReadyForQuery: median {statistics.median(startup_ms) if startup_ms else float('nan'):.1f} ms, "
            f"max {max(startup_ms) if startup_ms else float('nan'):.1f} ms")
        time.sleep(args.hold)
        run.check_deadline()
        held_sample = proc_sample(args.pid)
        held_sample["sessions"] = len(held)
        out(f"held {len(held)} idle for {args.hold:g} s: RSS {held_sample['rss_kib']} KiB "
            f"(peak {held_sample['hwm_kib']} KiB), threads {held_sample['threads']}, fds {held_sample['fds']}")
        if args.direct_port:
            ours, total = backend_count(args)
            out(f"PostgreSQL client backends while held: {ours} from these sessions ({total} in all)")
            if ours != len(held):
                run.errors[f"PostgreSQL has {ours} backends for {len(held)} held sessions"] += 1
        still = run.select_one(held, "select 1 after holding")
        out(f"select 1 after holding: {len(still)}/{len(held)} sessions answered")
        held = still
    except DeadlineExceeded as exc:
        run.errors[str(exc)] += 1
        held_sample = None
    finally:
        for s in held:
            try:
                s.sendall(TERMINATE)
            except OSError:
                pass
            s.close()

    if args.direct_port:
        counts = wait_backends_gone(args, 15)
        if counts:
            out(f"after closing: {counts[0]} backends from these sessions remain ({counts[1]} in all)")
    time.sleep(args.settle)
    after = proc_sample(args.pid)
    out(f"after closing: RSS {after['rss_kib']} KiB, threads {after['threads']}, fds {after['fds']}")

    if held_sample and held_sample["sessions"]:
        n = held_sample["sessions"]
        per = (held_sample["rss_kib"] - before["rss_kib"]) / n
        out("")
        out(f"idle memory per session: {per:.1f} KiB  (= (RSS held {held_sample['rss_kib']} - RSS before "
            f"{before['rss_kib']}) KiB / {n} sessions)")
        out(f"RSS not returned after closing: {after['rss_kib'] - before['rss_kib']} KiB")
        out(f"threads: before {before['threads']}, held {held_sample['threads']}, after {after['threads']}")
        out(f"fds: before {before['fds']}, held {held_sample['fds']}, after {after['fds']}")
    if run.errors:
        status = 1
        out("")
        out("FAILURES:")
        for message, count in run.errors.most_common(20):
            out(f"  {count} x {message}")
    return status


if __name__ == "__main__":
    sys.exit(main())
