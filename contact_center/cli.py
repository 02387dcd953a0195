"""The ``contact-center`` command: serve, migrate, seed-demo, staffing, electre2, unlock-login, customer-value, fulfilment-queue."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import date
from typing import Sequence

from contact_center.logs import setup_logging
from contact_center.settings import Settings

log = logging.getLogger("contact_center.cli")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the hub until interrupted."""
    from dataclasses import replace

    from aiohttp import web

    from contact_center.app import create_app
    from contact_center.email_wiring import EmailConfigError
    from contact_center.twilio_wiring import TwilioConfigError

    settings = replace(settings, host=args.host or settings.host, port=args.port or settings.port)
    generated = not settings.service_tokens
    settings = settings.with_generated_secrets()
    try:
        app = create_app(settings)
    except (TwilioConfigError, EmailConfigError) as exc:
        print(f"contact-center serve: error: {exc}", file=sys.stderr)
        return 2
    if generated:
        # Embedded mode with no SERVICE_TOKEN set: a fresh token for this run, shown once to the operator.
        print(f"service token for this run (set SERVICE_TOKEN to choose one): {settings.service_tokens[0]}", file=sys.stderr)
    print(f"contact centre hub on http://{settings.host}:{settings.port}/ (database: {settings.database_url})", file=sys.stderr)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, shutdown_timeout=10)
    return 0


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    """Bring the database schema up to date."""
    from crm_store.migrate import upgrade

    upgrade(settings.database_url)
    print(f"database at {settings.database_url} is up to date", file=sys.stderr)
    return 0


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    """Load the demo shop into the database (migrating it first)."""
    from crm_store.db import Database
    from crm_store.demo import main_summary_line, seed_demo
    from crm_store.migrate import upgrade

    upgrade(settings.database_url)

    async def run() -> str:
        db = Database(settings.database_url)
        try:
            summary = await seed_demo(db, seed=args.seed, customers=args.customers, today=date.today())
        finally:
            await db.dispose()
        return main_summary_line(summary)

    print(asyncio.run(run()))
    return 0


def _staffing(args: argparse.Namespace, _settings: Settings) -> int:
    """Print the agents an interval needs (Erlang C): one JSON object with --json, else a short table."""
    import json

    from contact_center.domain.staffing import required_agents

    try:
        result = required_agents(
            args.contacts, args.interval_seconds, args.aht_seconds, args.target_sl, args.target_seconds, args.shrinkage
        )
    except ValueError as exc:
        print(f"contact-center staffing: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({
            "agents": result.agents,
            "service_level": result.service_level,
            "asa_seconds": result.asa_seconds,
            "occupancy": result.occupancy,
            "agents_with_shrinkage": result.agents_with_shrinkage,
        }))
        return 0
    rows = [
        ("traffic (Erlangs)", f"{result.traffic_erlangs:.2f}"),
        ("agents needed", str(result.agents)),
        (f"service level ({args.target_seconds:g} s)", f"{result.service_level:.1%}"),
        ("average speed of answer", f"{result.asa_seconds:.1f} s"),
        ("occupancy", f"{result.occupancy:.1%}"),
        (f"agents with {args.shrinkage:.0%} shrinkage", str(result.agents_with_shrinkage)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>8}")
    return 0


def _electre2(args: argparse.Namespace, _settings: Settings) -> int:
    """Rank a decision matrix with ELECTRE II: one JSON object with --json, else the ranking and its reasons."""
    import json
    from pathlib import Path

    from crm_store.domain.electre import ElectreInputError, Electre2Problem, electre2, parse_json

    try:
        text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"contact-center electre2: error: cannot read {args.input}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 2
    try:
        result = electre2(Electre2Problem.from_json(parse_json(text)))
    except ElectreInputError as exc:
        where = f" [{exc.field}]" if exc.field else ""
        print(f"contact-center electre2: error{where}: {exc}", file=sys.stderr)
        return 2
    answer = result.to_json(max_pairs=args.max_pairs, matrices=args.matrices)
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
        return 0
    exp = answer["explanation"]
    lines = [f"ELECTRE II: {exp['summary']}", "", "ranking (best first; a level's members are tied or incomparable):"]
    lines += [f"  {pos:>3}  {', '.join(level)}" for pos, level in enumerate(answer["ranking"], start=1)]
    lines.append("")
    for key in ("descending", "ascending"):
        lines.append(f"{key} distillation: " + " > ".join("[" + ", ".join(c) + "]" for c in answer[key]))
    for key in ("strong", "weak"):
        pairs = answer[key]
        shown = ", ".join(f"{a}>{b}" for a, b in pairs[:40]) + (f", ... ({len(pairs) - 40} more)" if len(pairs) > 40 else "")
        lines.append(f"{key} outranking ({len(pairs)}): {shown or 'none'}")
    tied = [g for g in exp["groups"] if len(g["names"]) > 1]
    if tied:
        lines += ["", "stand together:"]
        for g in tied:
            lines.append(f"  level {g['level']}: {', '.join(g['names'])}: {g['why']}")
            lines += [f"      {p}" for p in g.get("pairs", [])]
    if exp["incomparable"]:
        lines += ["", f"incomparable ({exp['incomparable_pairs']}):"]
        lines += [f"  {i['pair'][0]} / {i['pair'][1]}: {i['why']}" for i in exp["incomparable"]]
    if exp["circuits"]:
        lines += ["", "circuits:"]
        lines += [f"  {c['relation']}: {', '.join(c['names'])}" for c in exp["circuits"]]
    print("\n".join(lines))
    return 0


def _unlock_login(args: argparse.Namespace, settings: Settings) -> int:
    """Lift a login lockout (and forget the failures) of an account and/or a client address, in the shared state."""
    if not args.username and not args.address:
        print("contact-center unlock-login: error: give --username and/or --address", file=sys.stderr)
        return 2
    if not settings.redis_url:
        print("contact-center unlock-login: error: without REDIS_URL the login throttle lives inside the hub's process;"
              " lift the lock there (POST /auth/lockouts/clear as an admin) or restart the hub", file=sys.stderr)
        return 2
    import redis.asyncio as aioredis

    from contact_center.login_throttle import LoginThrottle, RedisThrottleStore

    async def run() -> list[str]:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            throttle = LoginThrottle.from_settings(settings, RedisThrottleStore(client, settings.redis_prefix))
            return await throttle.unlock(username=args.username, address=args.address)
        finally:
            await client.aclose()

    cleared = asyncio.run(run())
    print("cleared: " + (", ".join(cleared) if cleared else "nothing (no failures were recorded)"))
    return 0


def _customer_value(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute RFM, segments, attrition and routing tiers, and/or product associations (issue 18)."""
    import json
    from datetime import datetime, timezone

    from crm_store.db import Database
    from crm_store.repositories import evaluation as eval_repo
    from crm_store.repositories import marketing

    say = marketing.progress_printer(sys.stderr)

    async def run() -> dict[str, object]:
        db = Database(settings.database_url)
        now = datetime.now(timezone.utc)
        out: dict[str, object] = {}
        try:
            if args.what in ("values", "all"):
                v = await marketing.recompute_customer_values(db, now, progress=say)
                out["values"] = {"customers": v.customers, "active": v.active, "segments": v.segments,
                                 "tiers_changed": v.tiers_changed, "seconds": {k: round(x, 3) for k, x in v.seconds.items()}}
            if args.what in ("associations", "all"):
                a = await marketing.recompute_associations(db, now, progress=say)
                out["associations"] = {
                    "baskets": a.baskets, "itemsets": a.itemsets, "rules": a.rules, "stored": a.stored,
                    "seconds": {k: round(x, 3) for k, x in a.seconds.items()},
                }
                async with db.session() as s:
                    out["top"] = [
                        {"if": r.a_name, "then": r.b_name, "support": round(r.support, 5),
                         "confidence": round(r.confidence, 4), "lift": round(r.lift, 3), "count": r.count}
                        for r in await marketing.top_associations(s, 10)
                    ]
            if args.seed_rules:
                async with db.transaction() as s:
                    out["rules_seeded"] = await marketing.seed_demo_rules(s)
            q = await eval_repo.refresh_queue(db, now, force=True)
            out["queue"] = {"orders": q.orders, "seconds": round(q.seconds, 3)}
        finally:
            await db.dispose()
        return out

    out = asyncio.run(run())
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "values" in out:
        print(f"customer values: {out['values']}")
    if "associations" in out:
        print(f"associations: {out['associations']}")
        for i, r in enumerate(out.get("top", []), start=1):  # type: ignore[attr-defined]
            print(f"  {i:2}. {r['if']} -> {r['then']}: support {r['support']:.4f}, confidence {r['confidence']:.0%}, lift {r['lift']:.2f} ({r['count']} baskets)")
    print(f"fulfilment queue re-ranked: {out['queue']}")
    return 0


def _fulfilment_queue(args: argparse.Namespace, settings: Settings) -> int:
    """Print the fulfilment queue ranked with ELECTRE II, with each order's explanation."""
    import json
    from datetime import datetime, timezone

    from crm_store.db import Database
    from crm_store.repositories import evaluation as eval_repo

    async def run() -> list[dict[str, object]]:
        db = Database(settings.database_url)
        try:
            await eval_repo.refresh_queue(db, datetime.now(timezone.utc), force=args.refresh)
            async with db.session() as s:
                rows, _total = await eval_repo.read_queue(s, limit=args.limit)
            return [{"position": r.position, "level": r.level, "order_id": r.order_id, "customer": r.customer_name,
                     "values": r.criteria_values, "above": r.above, "notes": r.notes} for r in rows]
        finally:
            await db.dispose()

    rows = asyncio.run(run())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['position']:4}. level {r['level']:3}  order #{r['order_id']}  {r['customer']}  {r['values']}")
        if r["above"]:
            print(f"        {r['above']}")
        for note in r["notes"][:3]:  # type: ignore[index]
            print(f"        {note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="contact-center", description="Omnichannel contact centre hub")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the hub (migrates, loads demo data if DEMO_DATA is on)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=_serve)
    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(func=_migrate)
    seed = sub.add_parser("seed-demo", help="load the demo shop (skipped when products exist)")
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--customers", type=int, default=1000)
    seed.set_defaults(func=_seed)
    staffing = sub.add_parser("staffing", help="agents an interval needs for a service-level target (Erlang C)")
    staffing.add_argument("--contacts", type=float, required=True, help="contacts expected in the interval")
    staffing.add_argument("--interval-seconds", type=float, required=True, help="length of the interval")
    staffing.add_argument("--aht-seconds", type=float, required=True, help="average handle time")
    staffing.add_argument("--target-sl", type=float, required=True, help="share answered within the target, e.g. 0.8")
    staffing.add_argument("--target-seconds", type=float, required=True, help="target answer time, e.g. 20")
    staffing.add_argument("--shrinkage", type=float, default=0.0, help="share of paid time not available (0 to <1)")
    staffing.add_argument("--json", action="store_true", help="print one JSON object")
    staffing.set_defaults(func=_staffing)
    electre = sub.add_parser("electre2", help="rank a decision matrix with ELECTRE II (JSON in; see docs/subsystems/order-evaluation.md)")
    electre.add_argument("--input", required=True, help="the JSON file of the problem, or - for standard input")
    electre.add_argument("--json", action="store_true", help="print one JSON object")
    electre.add_argument("--matrices", action="store_true", help="include the concordance and discordance matrices (JSON)")
    electre.add_argument("--max-pairs", type=int, default=200, help="pair statements written out in the explanation")
    electre.set_defaults(func=_electre2)
    unlock = sub.add_parser("unlock-login", help="lift a login lockout of an account or a client address (REDIS_URL's shared state)")
    unlock.add_argument("--username", default=None, help="the agent's login name")
    unlock.add_argument("--address", default=None, help="the client's IP address")
    unlock.set_defaults(func=_unlock_login)
    value = sub.add_parser("customer-value", help="recompute RFM, attrition and routing tiers, and/or product associations (issue 18)")
    value.add_argument("what", nargs="?", choices=("values", "associations", "all"), default="all")
    value.add_argument("--seed-rules", action="store_true", help="add the demo shop's offer rules when there are none")
    value.add_argument("--json", action="store_true", help="print one JSON object")
    value.set_defaults(func=_customer_value)
    fq = sub.add_parser("fulfilment-queue", help="the fulfilment queue ranked with ELECTRE II, with explanations")
    fq.add_argument("--limit", type=int, default=20)
    fq.add_argument("--refresh", action="store_true", help="re-rank even if nothing changed")
    fq.add_argument("--json", action="store_true", help="print JSON")
    fq.set_defaults(func=_fulfilment_queue)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    settings = Settings.from_env()
    setup_logging(settings.log_level)
    args = build_parser().parse_args(argv)
    return int(args.func(args, settings))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
