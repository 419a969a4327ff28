"""The ``genjin`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import structlog

from bot.config import Config, ConfigError, load_config, parse_config
from bot.redact import redact_event

DEMO_ORG = Path(__file__).resolve().parents[1] / "demo" / "org.toml"
DEMO_DB = "sqlite+aiosqlite:///./genjin-demo.db"
DEMO_USER = "zhangwei"


def configure_logging(level: str, fmt: str) -> None:
    """structlog on top of stdlib logging, to stderr so chat output stays clean."""
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr, format="%(message)s")
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,  # after format_exc_info: tracebacks carry URLs with secrets too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    quiet_libraries()


# Libraries that narrate routine work at INFO: every job run ("executed successfully"), every
# migration context ("Context impl …", "Will assume transactional DDL"), plugin set-up.
QUIET_LOGGERS = ("apscheduler", "alembic")


def quiet_libraries() -> None:
    """Their warnings and errors still show; their INFO chatter does not drown ours."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config)


async def _serve(config: Config) -> int:
    from bot.app import build_runtime

    runtime = build_runtime(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.start()
    except OSError as exc:  # the port is taken (another genjin?) or the address is wrong
        await runtime.stop()
        print(port_busy_message(config.server.host, config.server.port, exc), file=sys.stderr)
        return 2
    warm = asyncio.create_task(runtime.app.services.warm_up())  # the first memo should not wait for a model load
    print(f"Genjin serving on http://{config.server.host}:{runtime.port}  (Ctrl-C to stop)", file=sys.stderr)
    try:
        await stop.wait()
    finally:
        warm.cancel()
        await runtime.stop()
    return 0


def with_server(config: Config, host: str | None, port: int | None) -> Config:
    """``--host`` / ``--port`` override ``[server]`` (and GENJIN_SERVER_HOST / GENJIN_SERVER_PORT)."""
    data = config.model_dump()
    if host:
        data["server"]["host"] = host
    if port is not None:
        data["server"]["port"] = port
    return Config.model_validate(data)


def port_busy_message(host: str, port: int, exc: OSError, flag: str = "--port") -> str:
    reason = exc.strerror or str(exc)
    hint = f"换一个端口，例如 {flag} {port + 1}" if port else "换一个端口"
    return (f"无法在 {host}:{port} 上启动 HTTP 服务：{reason}。可能已有一个 genjin 在运行。\n"
            f"  {hint}（或在配置里设置 [server] port / 环境变量 GENJIN_SERVER_PORT）。\n"
            f"Cannot listen on {host}:{port} ({reason}); is another genjin running? Try {flag} {port + 1 if port else 'N'}.")


def cmd_serve(args: argparse.Namespace) -> int:
    config = with_server(_config(args), args.host, args.port)
    configure_logging(config.logging.level, config.logging.format)
    return asyncio.run(_serve(config))


async def _import_org(config: Config, file: str) -> str:
    from storage.db import create_engine, session_factory, transaction, upgrade
    from storage.org import import_org, parse_org_file

    spec = parse_org_file(file)
    await upgrade(config.database.url)
    engine = create_engine(config.database.url)
    try:
        async with transaction(session_factory(engine)) as session:
            report = await import_org(session, spec)
    finally:
        await engine.dispose()
    return (
        f"导入完成：团队 新增 {report.teams_created} / 更新 {report.teams_updated}；"
        f"人员 新增 {report.people_created} / 更新 {report.people_updated}"
    )


def cmd_org_import(args: argparse.Namespace) -> int:
    from storage.org import OrgError

    config = _config(args)
    configure_logging("WARNING", config.logging.format)
    try:
        print(asyncio.run(_import_org(config, args.file)))
    except OrgError as exc:
        print("组织架构文件有误 / organisation file is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import upgrade_sync

    config = _config(args)
    upgrade_sync(config.database.url, args.revision)
    print(f"database at {args.revision}: {config.database.url.split('@')[-1]}")
    return 0


async def _chat(config: Config, user: str, *, http: bool, org: Path | None, demo_start: datetime | None = None, demo: bool = False) -> int:
    from bot.app import build_runtime
    from bot.chat import DemoControls, run_chat
    from bot.clock import OffsetClock

    if org is not None:
        await _import_org(config, str(org))
    clock = OffsetClock(demo_start) if demo else None
    runtime = build_runtime(config, clock=clock)
    try:
        await runtime.start(http=http)
    except OSError as exc:
        await runtime.stop()
        print(port_busy_message(config.server.host, config.server.port, exc), file=sys.stderr)
        return 2
    if http:
        print(f"HTTP: http://{config.server.host}:{runtime.port}/healthz", file=sys.stderr)
    controls = DemoControls(clock, runtime.jobs.run_all) if clock is not None else None
    try:
        return await run_chat(runtime.app, user, demo=controls)
    finally:
        await runtime.stop()


def cmd_chat(args: argparse.Namespace) -> int:
    config = _config(args)
    configure_logging("WARNING", config.logging.format)
    return asyncio.run(_chat(config, args.user, http=False, org=None))


def demo_config(args: argparse.Namespace) -> Config:
    base = load_config(args.config) if args.config else parse_config({}, "demo defaults")
    data = base.model_dump()
    data["database"]["url"] = f"sqlite+aiosqlite:///{Path(args.db).resolve()}"
    data["server"]["host"], data["server"]["port"] = "127.0.0.1", args.port
    data["wecom"]["enabled"] = data["dingtalk"]["enabled"] = False
    data["local"]["enabled"] = True
    return Config.model_validate(data)


def cmd_demo(args: argparse.Namespace) -> int:
    config = demo_config(args)
    configure_logging("WARNING", config.logging.format)
    print(f"Genjin demo: database {args.db}, you are {args.user}. 试试：今天去新华医院拜访了钱主任，他让我周五前把报价发给他"
          f"  ·  #帮助  ·  /as wang_jl  ·  /clock +1d（演示用户和更多试法见 README「演示用户与可以试试的话」）", file=sys.stderr)
    start = _demo_start(args.at, config) if args.at else None
    return asyncio.run(_chat(config, args.user, http=not args.no_http, org=DEMO_ORG, demo_start=start, demo=True))


def _demo_start(text: str, config: Config) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=config.tz)


Register = Callable[[argparse._SubParsersAction], None]  # type: ignore[type-arg]


def _topic_commands() -> list[Register]:
    """Each topic module of the CLI adds its own sub-commands; all CLI code lives in ``bot.cli``."""
    from bot.cli import (
        calendar,
        digest,
        doctor,
        leads,
        nlp,
        outbox,
        payments,
        playbook,
        speech,
    )

    return [
        nlp.register_commands,
        speech.register_commands,
        playbook.register_commands,
        calendar.register_commands,
        outbox.register_commands,
        doctor.register_commands,
        payments.register_commands,
        digest.register_commands,
        leads.register_commands,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genjin", description="跟进 Genjin — chat-first sales follow-up assistant")
    parser.add_argument("--config", default=None, help="TOML config file (default ./genjin.toml if present)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "serve",
        help="run the production server",
        description=(
            "Run one Genjin node: the HTTP server (WeCom/DingTalk callbacks, /healthz, /metrics), the inbox and "
            "outbox workers and the job queue (reminders, timers). Settings come from the config file "
            "(--config, else ./genjin.toml) and GENJIN_… environment variables; --host and --port override "
            "[server]. Run `genjin db upgrade` once before the first start and `genjin doctor` to check the set-up."
        ),
        epilog="examples:  genjin serve  |  genjin --config /etc/genjin/genjin.toml serve --port 8081  |  "
               "GENJIN_DATABASE_URL=postgresql+asyncpg://… genjin serve --host 0.0.0.0",
    )
    p.add_argument("--host", default=None, help="address to listen on (default [server] host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default [server] port, 8080; 0 = any free port)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="demo organisation + HTTP server + local chat as a demo rep")
    p.add_argument("--db", default="genjin-demo.db", help="demo SQLite file")
    p.add_argument("--user", default=DEMO_USER)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--no-http", action="store_true", help="do not start the HTTP server")
    p.add_argument("--at", default="", help="start the demo's clock at this local time (ISO, e.g. 2026-03-16T09:00)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("chat", help="talk to the bot as a person from the org (stdin lines for scripts)")
    p.add_argument("--user", required=True, help="the person's org key")
    p.set_defaults(func=cmd_chat)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="apply migrations")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=cmd_db_upgrade)

    org = sub.add_parser("org", help="organisation data").add_subparsers(dest="org_command", required=True)
    p = org.add_parser("import", help="import people and teams from TOML or CSV (re-importable)")
    p.add_argument("file")
    p.set_defaults(func=cmd_org_import)

    for register in _topic_commands():
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print("配置有误 / configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


