"""``genjin doctor``: one line per pre-flight check, so the IT person knows what to fix before go-live.

Why a separate command: ``serve`` stops at the first problem (bad config) or only notices
late ones (a wrong platform secret shows up as failed deliveries minutes later). The doctor runs
every check it can, says ✓ or ✗ for each with the fix, and exits 1 if any failed, so it can be
used by hand, in a container (``docker compose run --rm genjin-a genjin doctor``) or in a script.

Secrets never reach the output: every detail line is passed through :func:`redact`, because
error texts from HTTP libraries may echo URLs or request parameters.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.config import DEFAULT_CONFIG_PATH, ENV_PREFIX, Config, ConfigError, load_config

OK, FAIL = "✓", "✗"

# WeCom gettoken errcodes an IT person meets when setting up, with what to do about them.
WECOM_HINTS: Mapping[int, str] = {
    40001: "the app Secret is wrong: copy it from 应用管理 → your app → Secret into GENJIN_WECOM_SECRET",
    40013: "the corp id is wrong: copy 我的企业 → 企业ID into [wecom] corp_id",
    40091: "the secret is malformed: copy it again without spaces into GENJIN_WECOM_SECRET",
    41002: "[wecom] corp_id is empty",
    41004: "GENJIN_WECOM_SECRET is empty",
    60020: "this server's IP is not trusted: add it under the app's 企业可信IP",
}


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was checked, whether it passed, what was seen and the fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{OK if self.ok else FAIL} {self.name}: {self.detail}"
        return f"{text} — {self.fix}" if self.fix and not self.ok else text


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every configured secret (4+ characters, so '' or 'x' never blanks the text) by ***."""
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def secrets_of(config: Config) -> list[str]:
    """Every configured value that must never be printed (passwords in the URL included)."""
    from sqlalchemy.engine import make_url

    values = [
        config.wecom.secret, config.wecom.token, config.wecom.encoding_aes_key, config.wecom.robot_webhook_key,
        config.dingtalk.client_secret, config.dingtalk.robot_secret, config.dingtalk.robot_webhook,
    ]
    try:
        password = make_url(config.database.url).password
    except Exception:  # noqa: BLE001 - an unparsable URL is reported by the database check
        password = None
    return [v for v in [*values, password or ""] if v]


def safe_url(url: str) -> str:
    """The database URL as it may be printed: password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "(unparsable URL)"


# -- configuration --------------------------------------------------------------------------


def check_config(path: str | None, env: Mapping[str, str]) -> tuple[Check, Config | None]:
    """Load the config the way ``serve`` does; say which file and which GENJIN_ variables were used."""
    try:
        config = load_config(path, env)
    except ConfigError as exc:
        return Check("config", False, "; ".join(exc.problems), "fix the file or key named here (see config.example.toml)"), None
    file = Path(path) if path else DEFAULT_CONFIG_PATH
    source = str(file) if file.exists() else "no file (defaults)"
    names = sorted(name for name in env if name.startswith(ENV_PREFIX) and name != "GENJIN_MODEL_CACHE")
    used = f" + env {', '.join(names)}" if names else ""
    return Check("config", True, f"{source}{used}"), config


# -- database and migrations --------------------------------------------------------------------


def _missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file the URL names if it does not exist (connecting would silently create it)."""
    from sqlalchemy.engine import make_url

    from storage.db import is_sqlite

    if not is_sqlite(url):
        return None
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    path = Path(database).expanduser()
    return None if path.exists() else path


async def check_database(url: str) -> list[Check]:
    """Reachability, then alembic's current revision against the packaged head."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config, create_engine

    shown = safe_url(url)
    missing = _missing_sqlite_file(url)
    if missing is not None:
        return [
            Check("database", False, f"{missing} does not exist", "run genjin db upgrade"),
            Check("migrations", False, "no database yet", "run genjin db upgrade"),
        ]
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            current = set(await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_heads()))
    except Exception as exc:  # noqa: BLE001 - any driver error means "not reachable", with its text
        return [
            Check("database", False, f"{shown}: {type(exc).__name__}: {exc}",
                  "check GENJIN_DATABASE_URL (host, port, user, password) and that the server is up"),
            Check("migrations", False, "not checked (database unreachable)", "fix the database first"),
        ]
    finally:
        await engine.dispose()
    database = Check("database", True, f"{shown} reachable")
    if current == heads:
        return [database, Check("migrations", True, f"at head {', '.join(sorted(heads))}")]
    seen = ", ".join(sorted(current)) or "empty (never migrated)"
    return [database, Check("migrations", False, f"database at {seen}, code expects {', '.join(sorted(heads))}",
                            "run genjin db upgrade")]


# -- speech model -----------------------------------------------------------------------------


def check_speech(config: Config) -> Check:
    """The assembled bundled model (size + sha256, as ``nlp.speech.weights`` pins it), without loading it."""
    from bot.services import speech_config
    from nlp.speech.service import BUNDLED_NAMES
    from nlp.speech.weights import (
        MODEL_NAME,
        MODEL_SHA256,
        default_cache_dir,
        is_assembled,
        sha256_file,
    )

    speech = speech_config(config.speech)
    if speech.model is not None and str(speech.model) not in BUNDLED_NAMES:
        path = Path(speech.model).expanduser()
        if path.exists():
            return Check("speech model", True, f"custom model {path}")
        return Check("speech model", False, f"custom model {path} not found", "fix [speech] model or leave it empty")
    target = (speech.cache_dir or default_cache_dir()).expanduser() / MODEL_NAME
    fix = "run genjin speech install (with the same [speech] cache_dir / GENJIN_MODEL_CACHE as serve)"
    if not is_assembled(target):
        return Check("speech model", False, f"{target} not assembled", fix)
    if sha256_file(target / "model.bin") != MODEL_SHA256:
        return Check("speech model", False, f"{target}/model.bin sha256 mismatch", "run genjin speech install --verify")
    return Check("speech model", True, f"{target} (sha256 ok)")


# -- platforms ------------------------------------------------------------------------------------


async def check_wecom(config: Config) -> Check:
    """A real gettoken against ``[wecom] api_base``: the only proof corp id + secret + IP allow-list work."""
    from bot.channels.wecom_client import (
        WeComApiError,
        WeComClient,
        WeComTransportError,
    )

    cfg = config.wecom
    if not cfg.enabled:
        return Check("wecom", True, "not enabled")
    client = WeComClient(cfg.api_base, cfg.corp_id, cfg.secret, timeout=cfg.request_timeout)
    await client.start()
    try:
        await client.access_token()
    except WeComApiError as exc:
        hint = WECOM_HINTS.get(exc.errcode, "see WeCom's error code list for this errcode")
        return Check("wecom", False, f"gettoken errcode {exc.errcode} {exc.errmsg} ({cfg.api_base})", hint)
    except WeComTransportError as exc:
        return Check("wecom", False, f"gettoken: {exc.reason}", f"check [wecom] api_base ({cfg.api_base}) and outbound HTTPS")
    finally:
        await client.close()
    return Check("wecom", True, f"access token fetched from {cfg.api_base} (corp {cfg.corp_id})")


async def check_dingtalk(config: Config) -> Check:
    """A real accessToken call against ``[dingtalk] api_base`` with the configured AppKey/AppSecret."""
    from bot.channels.base import PermanentFailure, TemporaryFailure
    from bot.channels.dingtalk_client import DingTalkClient

    cfg = config.dingtalk
    if not cfg.enabled:
        return Check("dingtalk", True, "not enabled")
    client = DingTalkClient(cfg)
    try:
        await client.access_token()
    except PermanentFailure as exc:
        return Check("dingtalk", False, str(exc),
                     "copy AppKey into [dingtalk] client_id and AppSecret into GENJIN_DINGTALK_CLIENT_SECRET")
    except TemporaryFailure as exc:
        return Check("dingtalk", False, str(exc), f"check [dingtalk] api_base ({cfg.api_base}) and outbound HTTPS")
    finally:
        await client.close()
    return Check("dingtalk", True, f"access token fetched from {cfg.api_base} (AppKey {cfg.client_id})")


# -- data files -----------------------------------------------------------------------------------


def _data_check(name: str, where: str, load: Callable[[], object], errors: tuple[type[Exception], ...]) -> Check:
    """Run a loader; its own error text already names the file, the key and the problem."""
    try:
        load()
    except errors as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check(name, False, f"{problems[0]}{more}", f"fix {where}")
    return Check(name, True, where)


def check_data_files(config: Config) -> list[Check]:
    """Playbook, lexicon, calendar and ladders load exactly as the running bot loads them."""
    from cards.playbook import PACKAGED_DIR as PLAYBOOK_DIR
    from cards.playbook import PlaybookError, load_playbook
    from nlp.lexicon import DATA_DIR as LEXICON_DIR
    from nlp.lexicon import LexiconError, load_lexicon
    from reminders.calendar import PACKAGED_DIR as CALENDAR_DIR
    from reminders.calendar import CalendarError, load_calendar_spec
    from reminders.ladders import PACKAGED_DIR as LADDERS_DIR
    from reminders.ladders import LadderError, load_ladders

    playbook_dir = config.playbook.dir or None
    lexicon_dir = config.nlp.lexicon_dir or None
    lexicon_where = f"{LEXICON_DIR}" + (f" + {lexicon_dir}" if lexicon_dir else "")
    return [
        _data_check("playbook", str(playbook_dir or PLAYBOOK_DIR), lambda: load_playbook(playbook_dir), (PlaybookError,)),
        _data_check("lexicon", lexicon_where, lambda: load_lexicon(lexicon_dir), (LexiconError,)),
        _data_check("calendar", str(CALENDAR_DIR), lambda: load_calendar_spec(None), (CalendarError,)),
        _data_check("ladders", str(LADDERS_DIR), lambda: load_ladders(None), (LadderError,)),
    ]


# -- HTTP port ------------------------------------------------------------------------------------


def check_port(host: str, port: int) -> Check:
    """Bind the way aiohttp does (SO_REUSEADDR), so a port in TIME_WAIT is not reported as busy."""
    if port == 0:
        return Check("http port", True, f"{host}:0 (any free port)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return Check("http port", False, f"{host}:{port}: {exc.strerror}",
                         "stop what holds it (another genjin serve?) or set GENJIN_SERVER_PORT")
    return Check("http port", True, f"{host}:{port} free")


# -- the command ----------------------------------------------------------------------------------


async def run_checks(config: Config, *, port: bool = True) -> list[Check]:
    """Every check after the config, in the order an IT person would fix them."""
    checks = await check_database(config.database.url)
    checks.append(check_speech(config))
    checks.extend(await asyncio.gather(check_wecom(config), check_dingtalk(config)))
    checks.extend(check_data_files(config))
    if port:
        checks.append(check_port(config.server.host, config.server.port))
    return checks


def diagnose(path: str | None, env: Mapping[str, str], *, port: bool = True) -> tuple[list[str], bool]:
    """All check lines (secrets redacted) and whether every check passed."""
    first, config = check_config(path, env)
    checks = [first] if config is None else [first, *asyncio.run(run_checks(config, port=port))]
    hidden = secrets_of(config) if config is not None else _secret_env_values(env)
    return [redact(check.line(), hidden) for check in checks], all(check.ok for check in checks)


def _secret_env_values(env: Mapping[str, str]) -> list[str]:
    """Without a valid config, hide every GENJIN_ variable that may hold a secret (errors echo inputs)."""
    markers = ("SECRET", "TOKEN", "KEY", "PASSWORD", "WEBHOOK", "URL")
    return [value for name, value in env.items() if name.startswith(ENV_PREFIX) and any(m in name for m in markers)]


def cmd_doctor(args: argparse.Namespace) -> int:
    lines, healthy = diagnose(args.config, os.environ, port=not args.no_port)
    for line in lines:
        print(line)
    failed = sum(line.startswith(FAIL) for line in lines)
    print("all checks passed" if healthy else f"{failed} check(s) failed", file=sys.stderr)
    return 0 if healthy else 1


def register_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser("doctor", help="check config, database, migrations, speech model, platforms, data files, port")
    p.add_argument("--no-port", action="store_true", help="skip the HTTP port check (when running beside a live serve)")
    p.set_defaults(func=cmd_doctor)
