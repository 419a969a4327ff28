"""``genjin leads …``: import a CSV/XLSX export, check the routing rules, simulate a batch.

* ``import FILE`` — the file is validated all or nothing first (every bad row named by its
  line, nothing stored); then each lead is taken in its own transaction through the same
  service as chat and the API (quality → dedupe → route → offer), so a re-run after an
  interruption is safe: leads are idempotent on their ``id`` column.
* ``check [FILE]`` — the rules (FILE, else ``[leads] rules``, else the packaged default)
  against the people in the database.
* ``simulate --leads FILE [--rules FILE] [--at ISO]`` — one JSON line per lead, nothing stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter

from bot.config import Config


async def _import(config: Config, file: str, *, quiet: bool) -> int:
    from tqdm import tqdm

    from bot.app import build_runtime
    from handlers.leads import service
    from handlers.leads.files import parse_lead_file

    leads, errors = parse_lead_file(file, config.tz)
    if errors:
        print(f"{file}：有 {len(errors)} 处错误，未导入任何线索 / nothing imported:", file=sys.stderr)
        for error in errors[:200]:
            print(f"  {error}", file=sys.stderr)
        return 2
    runtime = build_runtime(config)
    totals: Counter[str] = Counter()
    try:
        await runtime.start(http=False, workers=False)
        app = runtime.app
        for lead in tqdm(leads, desc="导入线索", unit="条", disable=quiet, file=sys.stderr):
            async with app.sessions() as session, session.begin():
                outcome = await service.intake(app, session, lead, now=app.clock.now())
            totals[outcome.status] += 1
    finally:
        await runtime.stop()
    labels = {"offered": "已派发", "manager_queue": "待经理分配", "merged": "重复已合并", "quarantined": "已隔离待补全",
              "existing": "已存在（跳过）"}
    print("导入完成：" + "，".join(f"{labels.get(k, k)} {v}" for k, v in sorted(totals.items())))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from bot.cli import _config, configure_logging

    config = _config(args)
    configure_logging("WARNING", config.logging.format)
    return asyncio.run(_import(config, args.file, quiet=args.quiet))


async def _org_people(config: Config) -> list[object]:
    from sqlalchemy import select

    from storage.db import create_engine, session_factory, upgrade
    from storage.models import Person

    await upgrade(config.database.url)
    engine = create_engine(config.database.url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.scalars(select(Person))).all())
    finally:
        await engine.dispose()


def cmd_check(args: argparse.Namespace) -> int:
    from bot.cli import _config, configure_logging
    from handlers.leads.rules import DEFAULT_RULES, RulesError, check, load_rules

    config = _config(args)
    configure_logging("WARNING", config.logging.format)
    path = args.file or config.leads.rules or str(DEFAULT_RULES)
    try:
        rules = load_rules(path)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 2
    people = asyncio.run(_org_people(config))
    problems = check(rules, people)
    for problem in problems:
        print(problem, file=sys.stderr)
    errors = [p for p in problems if p.severity == "error"]
    print(f"{path}: {len(rules.rules)} rules, {len(rules.pools)} pools checked against {len(people)} people: "
          f"{len(errors)} errors, {len(problems) - len(errors)} warnings")
    return 1 if errors else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from bot.cli import _config
    from handlers.leads.rules import DEFAULT_RULES
    from handlers.leads.simulate import main as simulate_main

    config = _config(args)
    argv = ["--leads", args.leads, "--rules", args.rules or config.leads.rules or str(DEFAULT_RULES)]
    if args.at:
        argv += ["--at", args.at]
    if args.org:
        argv += ["--org", args.org]
    return simulate_main(argv)


def register_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    leads = sub.add_parser("leads", help="sales leads: import, rules check, dry-run routing").add_subparsers(
        dest="leads_command", required=True)
    p = leads.add_parser("import", help="import a CSV/XLSX export and route it (all or nothing per file, idempotent on id)")
    p.add_argument("file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_import)
    p = leads.add_parser("check", help="check routing rules against the org in the database")
    p.add_argument("file", nargs="?", default=None, help="rules TOML (default: [leads] rules, else the packaged default)")
    p.set_defaults(func=cmd_check)
    p = leads.add_parser("simulate", help="dry-run routing over a CSV/XLSX: one JSON line per lead, nothing stored")
    p.add_argument("--leads", required=True)
    p.add_argument("--rules", default=None)
    p.add_argument("--at", default=None, help="routing time, ISO 8601 (default now, Beijing time)")
    p.add_argument("--org", default=None, help="org TOML (default: the demo org)")
    p.set_defaults(func=cmd_simulate)
