"""The PostgreSQL message log's statement: one transaction per message vs one pipelined transaction per batch.

Creates a scratch database (migrated with the project's migrations), 64 open conversations, then, for each
batch size N, appends N messages (one per conversation, round robin) ``--rounds`` times in two ways on one
asyncpg connection:

* ``one by one``: N ``fetchrow`` of the append statement in autocommit (PgMessageLog before issue 19: each
  message its own round trip and its own commit);
* ``pipelined``: one ``fetchmany`` of N (PgMessageLog now: one round trip, one implicit transaction, one commit).

Per message it prints the wall time, this process's CPU, and the PostgreSQL backend's CPU (from /proc);
the load average is printed before and after.

    .venv/bin/python bench/pg_append.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_store.message_log import _PG_APPEND  # noqa: E402
from crm_store.models import utcnow  # noqa: E402

ADMIN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")
TCK = os.sysconf("SC_CLK_TCK")


def backend_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


async def main(rounds: int) -> None:
    import asyncpg

    from crm_store.migrate import upgrade

    name = f"ccbench_append_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN.rsplit("/", 1)[0]
    try:
        await asyncio.get_running_loop().run_in_executor(None, upgrade, f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}")
        conn = await asyncpg.connect(f"{base}/{name}")
        convs = []
        for _ in range(64):  # one open chat per customer
            cust = await conn.fetchval(
                "INSERT INTO customers (display_name, created_at, updated_at, tier) VALUES ('b', now(), now(), 'standard') RETURNING id")
            convs.append(await conn.fetchval(
            "INSERT INTO conversations (customer_id, channel, status, last_seq, created_at, updated_at, customer_address, our_address, priority, subject)"
            " VALUES ($1, 'chat', 'assigned', 0, now(), now(), '', '', 0, '') RETURNING id", cust))
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        print(f"  {'batch':>5} {'way':<11} {'wall us/msg':>12} {'client CPU us/msg':>18} {'PG backend CPU us/msg':>22}")
        out = []
        for n in (1, 4, 16, 64):
            for way in ("one by one", "pipelined"):
                k = 0

                def args() -> list[tuple]:
                    nonlocal k
                    now = utcnow()
                    batch = []
                    for _ in range(n):
                        k += 1
                        batch.append((convs[k % len(convs)], "customer", None, f"m{k}", f"{way[0]}{n}-{k}", False, now, None, "[]", None))
                    return batch

                for _ in range(10):  # warm
                    b = args()
                    await conn.fetchmany(_PG_APPEND, b)
                w0, c0, b0 = time.perf_counter(), time.process_time(), backend_ticks(pid)
                for _ in range(rounds):
                    b = args()
                    if way == "pipelined":
                        await conn.fetchmany(_PG_APPEND, b)
                    else:
                        for one in b:
                            await conn.fetchrow(_PG_APPEND, *one)
                w1, c1, b1 = time.perf_counter(), time.process_time(), backend_ticks(pid)
                msgs = rounds * n
                row = {"batch": n, "way": way, "wall_us": (w1 - w0) / msgs * 1e6, "client_cpu_us": (c1 - c0) / msgs * 1e6,
                       "pg_cpu_us": (b1 - b0) / TCK / msgs * 1e6}
                out.append(row)
                print(f"  {n:>5} {way:<11} {row['wall_us']:>12.0f} {row['client_cpu_us']:>18.0f} {row['pg_cpu_us']:>22.0f}")
        await conn.close()
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print(json.dumps({"bench": "pg_append", "rounds": rounds, "rows": out}))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(p.parse_args().rounds))
