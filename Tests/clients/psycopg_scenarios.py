#!/usr/bin/env python3
# psycopg 3 client scenarios, run directly against PostgreSQL and through Switchyard by PsycopgTests.swift.
"""Runs psycopg 3 scenarios against one server and prints ONE JSON document of their results.

Usage: psycopg_scenarios.py CONNINFO PREFIX

CONNINFO is a libpq connection string. PREFIX (letters, digits, underscores) starts the name of
every table and channel the scenarios create, so that two runs against the same database (one
direct, one through the proxy) never collide. The output is deterministic for a given server:
rows are sorted where SQL leaves their order open, backend process ids are replaced by
placeholders, and PREFIX is replaced by "<prefix>", so the documents of the two runs can be
compared as they are.

Exit status: 0 when every scenario succeeded, 1 when at least one failed (its "ok" is false and
"error" says why; the traceback goes to stderr), 2 on bad usage.
"""

import datetime
import decimal
import hashlib
import json
import re
import sys
import threading
import time
import traceback
import uuid

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

CONNINFO = ""
PREFIX = ""


def connect(autocommit=False):
    return psycopg.connect(CONNINFO, autocommit=autocommit)


def table(name):
    """The prefixed identifier of a scenario's table."""
    return sql.Identifier(f"{PREFIX}{name}")


def describe(value):
    """A JSON-able, type-tagged rendering of a value psycopg returned."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, decimal.Decimal):
        return ["Decimal", str(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, datetime.datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return [type(value).__name__, str(value)]
    if isinstance(value, uuid.UUID):
        return ["UUID", str(value)]
    if isinstance(value, list):
        return ["list", [describe(v) for v in value]]
    if isinstance(value, tuple):
        return ["tuple", [describe(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", json.loads(json.dumps(value, sort_keys=True))]
    return [type(value).__name__, str(value)]


def describe_row(row):
    return [describe(v) for v in row]


def columns(cursor):
    """Column names and type OIDs of the cursor's current result."""
    return [[c.name, c.type_code] for c in (cursor.description or [])]


def error_info(error):
    """What a client can see of a server error: class, SQLSTATE, primary message."""
    return {
        "class": type(error).__name__,
        "sqlstate": error.sqlstate,
        "message": error.diag.message_primary if error.diag else str(error),
    }


def digest(rows):
    """sha256 over a text rendering of rows, one per line."""
    h = hashlib.sha256()
    for row in rows:
        h.update(("|".join("" if v is None else str(v) for v in row) + "\n").encode())
    return h.hexdigest()


def drop(conn, *names):
    for name in names:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table(name)))


# The values the parameter scenarios send, with the SQL type each is cast to.
PARAMETERS = [
    ("int8", 42),
    ("int8", -9007199254740993),
    ("float8", 3.5),
    ("float8", -0.1),
    ("text", "héllo, wörld ✓ 'quoted' \\ back"),
    ("bytea", b"\x00\x01\x02\xfe\xff binary \x00"),
    ("numeric", decimal.Decimal("12345678901234567890.123456789")),
    ("timestamptz", datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.timezone.utc)),
    ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("jsonb", Jsonb({"a": [1, 2, {"b": None}], "c": "ü"})),
    ("int8[]", [1, 2, 3, None]),
    ("text[]", ["a", "b c", None, "{d}"]),
    ("text", None),
]


def parameters_scenario(binary):
    placeholder = "%b" if binary else "%t"
    columns_sql = [f"{placeholder}::{cast} AS c{i}" for i, (cast, _) in enumerate(PARAMETERS)]
    values = [v for _, v in PARAMETERS]
    out = {}
    with connect(autocommit=True) as conn:
        cur = conn.cursor(binary=binary)
        cur.execute("SELECT " + ", ".join(columns_sql), values)
        out["echo_columns"] = columns(cur)
        out["echo"] = describe_row(cur.fetchone())
        # Untyped parameters: the server infers the types; psycopg 3 dumps ints as the smallest fit.
        auto = "%b" if binary else "%t"
        cur.execute(f"SELECT {auto} AS i, {auto} AS f, {auto} AS t, {auto} AS n, {auto}::text IS NULL AS isnull",
                    [7, 2.25, "plain", decimal.Decimal("1.50"), None])
        out["inferred_columns"] = columns(cur)
        out["inferred"] = describe_row(cur.fetchone())

        name = "params_bin" if binary else "params_text"
        drop(conn, name)
        defs = ", ".join(f"c{i} {cast}" for i, (cast, _) in enumerate(PARAMETERS))
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, " + defs + ")").format(table(name)))
        insert = sql.SQL("INSERT INTO {} VALUES (%s, " + ", ".join([placeholder] * len(PARAMETERS)) + ")").format(table(name))
        cur.execute(insert, [1] + values)
        cur.execute(insert, [2] + [None] * len(PARAMETERS))
        cur.execute(sql.SQL("SELECT * FROM {} ORDER BY id").format(table(name)))
        out["stored_columns"] = columns(cur)
        out["stored"] = [describe_row(r) for r in cur.fetchall()]
        # Read the same rows in the other format too.
        other = conn.cursor(binary=not binary)
        other.execute(sql.SQL("SELECT * FROM {} ORDER BY id").format(table(name)))
        out["stored_other_format"] = [describe_row(r) for r in other.fetchall()]
        # Server-side text rendering, independent of the client's adapters.
        cur.execute(sql.SQL("SELECT c0::text, c4, encode(c5, 'hex'), c6::text, c9::text, c10::text, c11::text FROM {} WHERE id = 1").format(table(name)))
        out["server_text"] = describe_row(cur.fetchone())
        drop(conn, name)
    return out


def scenario_binary_parameters():
    return parameters_scenario(binary=True)


def scenario_text_parameters():
    return parameters_scenario(binary=False)


def scenario_executemany():
    out = {}
    with connect(autocommit=True) as conn:
        drop(conn, "many")
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, name text, score numeric)").format(table("many")))
        cur = conn.cursor()
        rows = [(i, f"row {i}", decimal.Decimal(i) / 8) for i in range(1, 501)]
        cur.executemany(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s)").format(table("many")), rows)
        out["rowcount"] = cur.rowcount
        cur.execute(sql.SQL("SELECT count(*), sum(score), min(name), max(id) FROM {}").format(table("many")))
        out["aggregate"] = describe_row(cur.fetchone())
        # executemany with RETURNING: one result set per parameter set.
        cur.executemany(
            sql.SQL("UPDATE {} SET score = score * 2 WHERE id = %s RETURNING id, score").format(table("many")),
            [(i,) for i in (3, 1, 2, 999)],
            returning=True,
        )
        returned = []
        while True:
            returned.append([describe_row(r) for r in cur.fetchall()])
            if not cur.nextset():
                break
        out["returning"] = returned
        # A failing parameter set stops executemany with the server's error.
        try:
            cur.executemany(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s)").format(table("many")),
                            [(1001, "a", 1), (1, "duplicate", 2), (1002, "b", 3)])
            out["duplicate"] = "no error"
        except psycopg.Error as error:
            out["duplicate"] = error_info(error)
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table("many")))
        out["count_after_error"] = cur.fetchone()[0]
        drop(conn, "many")
    return out


def scenario_pipeline():
    out = {}
    with connect(autocommit=True) as conn:
        drop(conn, "pipe")
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v text)").format(table("pipe")))
        ins = sql.SQL("INSERT INTO {} VALUES (%s, %s) RETURNING id").format(table("pipe"))
        count = sql.SQL("SELECT count(*), string_agg(v, ',' ORDER BY id) FROM {}").format(table("pipe"))

        with conn.pipeline() as pipeline:
            c1 = conn.execute(ins, (1, "one"))
            c2 = conn.execute(ins, (2, "two"))
            c3 = conn.execute(count)
            pipeline.sync()
            c4 = conn.cursor()
            c4.executemany(ins, [(3, "three"), (4, "four")])
            c5 = conn.execute(count)
        out["first"] = [c1.fetchone()[0], c2.fetchone()[0], describe_row(c3.fetchone()), describe_row(c5.fetchone())]

        # An error inside a pipeline: the statements after it in the same sync block are skipped,
        # the whole implicit transaction is rolled back, and the connection recovers.
        try:
            with conn.pipeline() as pipeline:
                conn.execute(ins, (10, "ten"))
                conn.execute("SELECT 1 / 0")
                conn.execute(ins, (11, "eleven"))
            out["error"] = "no error"
        except psycopg.Error as error:
            out["error"] = error_info(error)
        out["after_error"] = describe_row(conn.execute(count).fetchone())

        # Sync points split the pipeline: work before the failing block is kept.
        try:
            with conn.pipeline() as pipeline:
                conn.execute(ins, (20, "twenty"))
                pipeline.sync()
                conn.execute(ins, (1, "duplicate"))
                conn.execute(ins, (21, "skipped"))
            out["error_after_sync"] = "no error"
        except psycopg.Error as error:
            out["error_after_sync"] = error_info(error)
        out["after_sync_error"] = describe_row(conn.execute(count).fetchone())

        # A pipeline inside an explicit transaction, then rolled back.
        conn.autocommit = False
        with conn.pipeline():
            for i in range(30, 40):
                conn.execute(ins, (i, f"tx{i}"))
            inside = conn.execute(count)
        out["inside_transaction"] = describe_row(inside.fetchone())
        conn.rollback()
        out["after_rollback"] = describe_row(conn.execute(count).fetchone())
        conn.rollback()
        conn.autocommit = True
        drop(conn, "pipe")
    return out


def scenario_server_side_cursor():
    out = {}
    query = "SELECT g, md5(g::text) FROM generate_series(1, 10000) AS g ORDER BY g"
    with connect() as conn:
        with conn.cursor(name=f"{PREFIX}cursor") as cur:
            cur.itersize = 700
            cur.execute(query)
            rows = list(cur)
            out["iterated"] = {"count": len(rows), "sha256": digest(rows), "first": describe_row(rows[0]),
                               "last": describe_row(rows[-1])}
        with conn.cursor(name=f"{PREFIX}batches", binary=True) as cur:
            cur.execute(query)
            sizes = []
            h = hashlib.sha256()
            while True:
                batch = cur.fetchmany(3000)
                if not batch:
                    break
                sizes.append(len(batch))
                for row in batch:
                    h.update(("|".join(str(v) for v in row) + "\n").encode())
            out["batch_sizes"] = sizes
            out["batches_sha256"] = h.hexdigest()
            out["rownumber"] = cur.rownumber
        with conn.cursor(name=f"{PREFIX}scroll", scrollable=True) as cur:
            cur.execute(query)
            cur.scroll(9_000, mode="absolute")
            a = cur.fetchone()
            cur.scroll(-5_000)
            b = cur.fetchone()
            out["scrolled"] = [describe_row(a), describe_row(b)]
        # The cursors were closed; the transaction still holds nothing of theirs.
        open_cursors = conn.execute("SELECT count(*) FROM pg_cursors").fetchone()[0]
        out["open_cursors_after_close"] = open_cursors
        conn.commit()
        # WITH HOLD survives the commit.
        cur = conn.cursor(name=f"{PREFIX}hold", withhold=True)
        cur.execute("SELECT g FROM generate_series(1, 2500) AS g")
        conn.commit()
        held = cur.fetchall()
        out["withhold"] = [len(held), sum(r[0] for r in held)]
        cur.close()
        conn.commit()
    return out


def scenario_copy():
    out = {}
    with connect(autocommit=True) as conn:
        drop(conn, "copy_text", "copy_bin")
        conn.execute(sql.SQL("CREATE TABLE {} (id int, name text, amount numeric, at timestamptz, tags text[])").format(table("copy_text")))
        conn.execute(sql.SQL("CREATE TABLE {} (id int, data bytea, ratio float8, flag bool)").format(table("copy_bin")))
        cur = conn.cursor()
        base = datetime.datetime(2023, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
        rows = [(i, f"name\t{i}\n\\ \"q\"" if i % 7 == 0 else f"n{i}", decimal.Decimal(i) / 3 if i % 5 else None,
                 base + datetime.timedelta(minutes=i), ["x", str(i)]) for i in range(1, 2001)]
        with cur.copy(sql.SQL("COPY {} FROM STDIN").format(table("copy_text"))) as copy:
            for row in rows:
                copy.write_row(row)
        out["text_in_rowcount"] = cur.rowcount
        # Raw CSV data in chunks that split rows.
        csv = "".join(f"{i},\"csv, {i}\",{i}.5,2023-06-02 00:00:00+00,\"{{a,b}}\"\n" for i in range(5001, 5101))
        with cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(table("copy_text"))) as copy:
            for start in range(0, len(csv), 333):
                copy.write(csv[start:start + 333])
        out["csv_in_rowcount"] = cur.rowcount

        with cur.copy(sql.SQL("COPY (SELECT * FROM {} ORDER BY id) TO STDOUT").format(table("copy_text"))) as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
        out["text_out"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "head": data[:120].decode()}
        with cur.copy(sql.SQL("COPY (SELECT * FROM {} ORDER BY id) TO STDOUT").format(table("copy_text"))) as copy:
            copy.set_types(["int4", "text", "numeric", "timestamptz", "text[]"])
            back = list(copy.rows())
        out["text_rows_roundtrip"] = back[:2000] == rows
        out["text_rows_sample"] = [describe_row(back[6]), describe_row(back[-1])]
        with cur.copy(sql.SQL("COPY {} TO STDOUT (FORMAT csv, HEADER)").format(table("copy_text"))) as copy:
            csv_out = b"".join(bytes(chunk) for chunk in copy)
        out["csv_out_lines"] = len(csv_out.splitlines())

        bin_rows = [(i, bytes(range(i % 256)) * 3, i / 7, i % 2 == 0) for i in range(1, 1001)]
        with cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(table("copy_bin"))) as copy:
            copy.set_types(["int4", "bytea", "float8", "bool"])
            for row in bin_rows:
                copy.write_row(row)
        out["binary_in_rowcount"] = cur.rowcount
        with cur.copy(sql.SQL("COPY (SELECT * FROM {} ORDER BY id) TO STDOUT (FORMAT BINARY)").format(table("copy_bin"))) as copy:
            copy.set_types(["int4", "bytea", "float8", "bool"])
            back_bin = [(r[0], bytes(r[1]), r[2], r[3]) for r in copy.rows()]
        out["binary_roundtrip"] = back_bin == bin_rows
        out["binary_sha256"] = digest((r[0], r[1].hex(), repr(r[2]), r[3]) for r in back_bin)
        cur.execute(sql.SQL("SELECT count(*), sum(length(data)), sum(ratio)::numeric(20,6) FROM {}").format(table("copy_bin")))
        out["binary_aggregate"] = describe_row(cur.fetchone())

        # Bad data: the server rejects the COPY, the connection stays usable.
        try:
            with cur.copy(sql.SQL("COPY {} (id) FROM STDIN").format(table("copy_text"))) as copy:
                copy.write("1\n2\nnot-a-number\n4\n")
            out["bad_data"] = "no error"
        except psycopg.Error as error:
            out["bad_data"] = error_info(error)
        # The client aborts: psycopg sends CopyFail, the server answers with an error.
        try:
            with cur.copy(sql.SQL("COPY {} (id) FROM STDIN").format(table("copy_text"))) as copy:
                copy.write("7\n")
                raise RuntimeError("client gave up")
        except RuntimeError as error:
            out["client_abort"] = str(error)
        except psycopg.Error as error:
            out["client_abort"] = error_info(error)
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table("copy_text")))
        out["count_after_errors"] = cur.fetchone()[0]
        drop(conn, "copy_text", "copy_bin")
    return out


def wait_until_sleeping(monitor, pid, deadline_seconds=15):
    """Waits until backend `pid` is inside pg_sleep, as seen from another connection."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        row = monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active' AND wait_event = 'PgSleep'",
            (pid,)).fetchone()
        if row[0] == 1:
            return True
        time.sleep(0.05)
    return False


def scenario_cancel():
    out = {}
    with connect(autocommit=True) as conn, connect(autocommit=True) as monitor:
        for method in ("cancel", "cancel_safe"):
            seen = {}

            def canceller():
                seen["sleeping"] = wait_until_sleeping(monitor, conn.info.backend_pid)
                getattr(conn, method)()

            thread = threading.Thread(target=canceller)
            started = time.monotonic()
            thread.start()
            try:
                conn.execute("SELECT pg_sleep(30)")
                result = "not canceled"
            except psycopg.Error as error:
                result = error_info(error)
            elapsed = time.monotonic() - started
            thread.join(30)
            out[method] = {
                "error": result,
                "backend_was_sleeping": seen.get("sleeping"),
                "ended_within_10s": elapsed < 10,
                "usable_after": conn.execute("SELECT 'still here'").fetchone()[0],
            }
        # statement_timeout raises the same class, from the server alone.
        conn.execute("SET statement_timeout = '200ms'")
        try:
            conn.execute("SELECT pg_sleep(5)")
            out["statement_timeout"] = "no error"
        except psycopg.Error as error:
            out["statement_timeout"] = error_info(error)
        conn.execute("RESET statement_timeout")
    return out


def scenario_notifications():
    out = {}
    channel = f"{PREFIX}channel"
    with connect(autocommit=True) as conn, connect(autocommit=True) as other:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        conn.execute(sql.SQL("NOTIFY {}, 'from myself'").format(sql.Identifier(channel)))
        conn.execute("SELECT pg_notify(%s, %s)", (channel, "second ✓"))
        other.execute("SELECT pg_notify(%s, %s)", (channel, "from another session"))
        received = []
        for notify in conn.notifies(timeout=10, stop_after=3):
            if notify.pid == conn.info.backend_pid:
                sender = "<own pid>"
            elif notify.pid == other.info.backend_pid:
                sender = "<other pid>"
            else:
                sender = "<unknown pid>"
            received.append([notify.channel, notify.payload, sender])
        out["received"] = received
        # Nothing more arrives after UNLISTEN.
        conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(channel)))
        other.execute("SELECT pg_notify(%s, %s)", (channel, "after unlisten"))
        out["after_unlisten"] = [n.payload for n in conn.notifies(timeout=0.5)]
        # In a transaction, delivery waits for the commit.
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        with other.transaction():
            other.execute("SELECT pg_notify(%s, %s)", (channel, "committed"))
            other.execute("SELECT pg_notify(%s, %s)", (channel, "committed"))  # duplicates fold
            out["before_commit"] = [n.payload for n in conn.notifies(timeout=0.3)]
        out["after_commit"] = [n.payload for n in conn.notifies(timeout=5, stop_after=1)]
        conn.execute("UNLISTEN *")
    return out


def scenario_transactions():
    out = {}
    with connect() as conn:
        drop(conn, "tx")
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY)").format(table("tx")))
        conn.commit()
        ins = sql.SQL("INSERT INTO {} VALUES (%s)").format(table("tx"))
        ids = sql.SQL("SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM {}").format(table("tx"))

        conn.execute(ins, (1,))
        out["status_in_transaction"] = conn.info.transaction_status.name
        conn.rollback()
        out["after_rollback"] = conn.execute(ids).fetchone()[0]
        conn.rollback()

        conn.execute(ins, (2,))
        try:
            conn.execute(ins, (2,))
        except psycopg.Error as error:
            out["duplicate"] = error_info(error)
        out["status_failed"] = conn.info.transaction_status.name
        try:
            conn.execute("SELECT 1")
        except psycopg.Error as error:
            out["in_failed_transaction"] = error_info(error)
        conn.rollback()
        out["after_failed_rollback"] = conn.execute(ids).fetchone()[0]
        conn.commit()

        conn.autocommit = True
        with conn.transaction():
            conn.execute(ins, (10,))
            with conn.transaction():
                conn.execute(ins, (11,))
            try:
                with conn.transaction():
                    conn.execute(ins, (12,))
                    conn.execute(ins, (10,))
            except psycopg.errors.UniqueViolation as error:
                out["savepoint_error"] = error_info(error)
            with conn.transaction() as inner:
                conn.execute(ins, (13,))
                raise psycopg.Rollback(inner)
        out["after_savepoints"] = conn.execute(ids).fetchone()[0]
        try:
            with conn.transaction():
                conn.execute(ins, (20,))
                raise ValueError("application error")
        except ValueError:
            pass
        out["after_exception"] = conn.execute(ids).fetchone()[0]
        conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY")
        out["isolation"] = conn.execute("SHOW transaction_isolation").fetchone()[0]
        try:
            conn.execute(ins, (30,))
        except psycopg.Error as error:
            out["read_only"] = error_info(error)
        conn.execute("ROLLBACK")
        out["status_end"] = conn.info.transaction_status.name
        drop(conn, "tx")
    return out


def scenario_prepared_statements():
    out = {}
    with connect(autocommit=True) as conn:
        drop(conn, "prep")
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, sq bigint)").format(table("prep")))
        cur = conn.cursor()
        ins = sql.SQL("INSERT INTO {} VALUES (%s, %s::bigint * %s)").format(table("prep"))
        for i in range(1, 201):
            cur.execute(ins, (i, i, i), prepare=True)
        sel = sql.SQL("SELECT sq FROM {} WHERE id = %s").format(table("prep"))
        total = 0
        for i in range(1, 201):
            total += cur.execute(sel, (i,), prepare=True).fetchone()[0]
        out["sum"] = total
        out["server_prepared"] = sorted(
            [r[0], r[1]] for r in conn.execute(
                "SELECT name, statement FROM pg_prepared_statements").fetchall())
        # Automatic preparation after prepare_threshold executions.
        conn.prepare_threshold = 3
        for i in range(10):
            cur.execute("SELECT %s::int + 1", (i,))
        out["auto_prepared_count"] = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
        # A prepared statement whose table changes shape underneath it.
        conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN extra text DEFAULT 'x'").format(table("prep")))
        star = sql.SQL("SELECT * FROM {} WHERE id = %s").format(table("prep"))
        out["after_alter"] = describe_row(cur.execute(star, (5,), prepare=True).fetchone())
        conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN extra").format(table("prep")))
        try:
            out["after_drop_column"] = describe_row(cur.execute(star, (5,), prepare=True).fetchone())
        except psycopg.Error as error:
            out["after_drop_column"] = error_info(error)
        # DEALLOCATE ALL from SQL; psycopg notices and re-prepares.
        conn.execute("DEALLOCATE ALL")
        out["after_deallocate"] = cur.execute(sel, (7,), prepare=True).fetchone()[0]
        # SQL-level PREPARE / EXECUTE.
        conn.execute("PREPARE sq_plan(int) AS SELECT $1 * $1")
        out["sql_execute"] = [conn.execute(f"EXECUTE sq_plan({i})").fetchone()[0] for i in (3, 4)]
        conn.execute("DEALLOCATE sq_plan")
        drop(conn, "prep")
    return out


def scenario_large_result():
    out = {}
    query = "SELECT g, md5(g::text), g * 1.5 AS half FROM generate_series(1, 50000) AS g ORDER BY g"
    with connect(autocommit=True) as conn:
        for binary in (False, True):
            cur = conn.cursor(binary=binary)
            cur.execute(query)
            rows = cur.fetchall()
            out["binary" if binary else "text"] = {"count": len(rows), "sha256": digest(rows),
                                                    "last": describe_row(rows[-1])}
        # Many short rows, fetched one at a time in streaming mode (single-row mode).
        cur = conn.cursor()
        count = 0
        h = hashlib.sha256()
        for row in cur.stream("SELECT g, repeat('x', g % 50) FROM generate_series(1, 20000) AS g ORDER BY g"):
            count += 1
            h.update(f"{row[0]}|{row[1]}\n".encode())
        out["stream"] = {"count": count, "sha256": h.hexdigest()}
        # One large value.
        big = conn.execute("SELECT repeat('0123456789abcdef', 262144)").fetchone()[0]
        out["big_value"] = {"length": len(big), "sha256": hashlib.sha256(big.encode()).hexdigest()}
    return out


def scenario_simple_protocol_client_cursor():
    """ClientCursor: parameters merged client-side, simple query protocol, several statements at once."""
    out = {}
    with connect(autocommit=True) as conn:
        cur = psycopg.ClientCursor(conn)
        cur.execute("SELECT %s AS a, %s AS b; SELECT 'two' AS c; SHOW client_encoding", (1, "o'quote"))
        results = []
        while True:
            results.append([columns(cur), [describe_row(r) for r in cur.fetchall()]])
            if not cur.nextset():
                break
        out["results"] = results
        try:
            cur.execute("SELECT 1; SELECT 1/0; SELECT 3")
        except psycopg.Error as error:
            out["error"] = error_info(error)
        cur.execute("")
        out["empty_query"] = [psycopg.pq.ExecStatus(cur.pgresult.status).name if cur.pgresult is not None else None,
                              cur.description]
        notices = []
        conn.add_notice_handler(lambda diag: notices.append([diag.severity, diag.message_primary]))
        cur.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 1; RAISE WARNING 'careful'; END $$")
        out["notices"] = notices
    return out


SCENARIOS = [
    ("binary_parameters", scenario_binary_parameters),
    ("text_parameters", scenario_text_parameters),
    ("executemany", scenario_executemany),
    ("pipeline", scenario_pipeline),
    ("server_side_cursor", scenario_server_side_cursor),
    ("copy", scenario_copy),
    ("cancel", scenario_cancel),
    ("notifications", scenario_notifications),
    ("transactions", scenario_transactions),
    ("prepared_statements", scenario_prepared_statements),
    ("large_result", scenario_large_result),
    ("client_cursor_simple_protocol", scenario_simple_protocol_client_cursor),
]


def main(argv):
    global CONNINFO, PREFIX
    if len(argv) != 3 or not re.fullmatch(r"[a-z][a-z0-9_]*", argv[2]):
        print("usage: psycopg_scenarios.py CONNINFO PREFIX (PREFIX: lower-case letters, digits, _)", file=sys.stderr)
        return 2
    CONNINFO, PREFIX = argv[1], argv[2]
    results = {}
    all_ok = True
    for name, scenario in SCENARIOS:
        started = time.monotonic()
        try:
            results[name] = {"ok": True, "result": scenario()}
        except Exception as error:  # a failed scenario is reported, the others still run
            all_ok = False
            results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            print(f"scenario {name} failed:", file=sys.stderr)
            traceback.print_exc()
        print(f"scenario {name}: {time.monotonic() - started:.2f}s", file=sys.stderr)
    document = {
        "psycopg": psycopg.__version__,
        "libpq": psycopg.pq.version(),
        "scenarios": results,
    }
    text = json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False)
    print(text.replace(PREFIX, "<prefix>"))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
