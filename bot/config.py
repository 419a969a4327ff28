"""Configuration: one TOML file, validated up front, secrets from the environment.

Sales ops and IT people edit this file, so every error names the file, the key and
what is wrong, and start-up stops before anything touches the database or a platform.
Any key can be overridden from the environment as ``GENJIN_<SECTION>_<KEY>``
(``GENJIN_WECOM_SECRET``, ``GENJIN_DATABASE_URL`` …) so secrets stay out of files.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_CONFIG_PATH = Path("genjin.toml")
ENV_PREFIX = "GENJIN_"


class ConfigError(Exception):
    """A configuration problem a person can fix: names the file, the key and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(1_048_576, ge=1024, description="callbacks larger than this get 413")


class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///./genjin.db"
    echo: bool = False
    pool_size: int = Field(5, ge=1, le=100)
    ingest_pool_size: int = Field(2, ge=1, le=20, description="connections reserved for storing callbacks (PostgreSQL; SQLite uses one)")

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not (value.startswith("sqlite") or value.startswith("postgresql")):
            raise ValueError("must be a sqlite+aiosqlite:/// or postgresql+asyncpg:// URL")
        return value


class PipelineConfig(_Section):
    workers: int = Field(2, ge=0, le=64, description="inbox workers on this node; 0 = ingest only")
    outbox_workers: int = Field(1, ge=0, le=64)
    poll_interval: float = Field(0.2, gt=0, le=60, description="seconds between polls right after work; doubles while idle")
    poll_interval_max: float = Field(1.0, gt=0, le=60, description="idle polls back off up to this (bounds pickup from other nodes)")
    claim_batch: int = Field(
        16, ge=1, le=500,
        description="most inbox rows one claim takes (one per sender; shared among workers); all are held until the batch commits,"
                    " so keep it × the time per message well under lease_seconds",
    )
    outbox_batch: int = Field(50, ge=1, le=1000, description="most replies one delivery claim takes (one per recipient)")
    lease_seconds: float = Field(120, ge=1)
    max_attempts: int = Field(3, ge=1, le=100)
    outbox_max_attempts: int = Field(8, ge=1, le=100, description="attempts after unexpected errors (bugs)")
    outbox_max_age_hours: float = Field(24, gt=0, le=24 * 14, description="temporary failures retry until a reply is this old")
    outbox_backoff_base: float = Field(2.0, gt=0)
    outbox_backoff_max: float = Field(600.0, gt=0)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"


class NlpConfig(_Section):
    lexicon_dir: str = Field("", description="extra lexicon TOML directory overriding the packaged one")


class SpeechSection(_Section):
    backend: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    model: str = Field("", description="model directory, checkpoint path or name; empty = bundled base")
    cache_dir: str = ""
    beam_size: int = Field(5, ge=1, le=10, description="5 measured best on the dev memos (CER 0.127 vs 0.151)")
    max_seconds: float = Field(120, gt=0, le=3600)
    concurrency: int = Field(2, ge=1, le=16)
    correct_terms: bool = True
    parallel_pieces: int = Field(2, ge=1, le=8, description="a long memo is cut at pauses into this many pieces decoded at once (one core each); 1 = never cut")
    split_min_seconds: float = Field(10, ge=0, le=600, description="memos at least this long are cut into parallel_pieces pieces")
    long_beam_size: int = Field(3, ge=1, le=10, description="beam size (at most beam_size) for memos of long_memo_seconds or more: as accurate as 5, ~15% faster")
    long_memo_seconds: float = Field(15, ge=0, le=3600, description="from this length on long_beam_size applies")
    word_probabilities: bool = Field(True, description="per-word probabilities, so cards can flag unsure words (one extra alignment pass)")
    prompt_hotword_chars: int = Field(165, ge=0, le=165, description="lexicon hotword characters put in the decoder prompt (also bounded by memo length); 0 = none")
    warm_on_load: bool = Field(True, description="decode one second of audio when the model loads, so the first memo is not slower")
    trim_memory: bool = Field(True, description="give freed decoder memory back to the OS after each memo (~20 ms)")
    repair_loops: bool = Field(True, description="collapse decoder repetition loops and cut copied prompt text out of transcripts")
    context_correction: bool = Field(True, description="also correct hospital names, brands near price words and surnames before titles, from the whole lexicon ([nlp] lexicon_dir)")
    spell_numbers: bool = Field(True, description="write numbers as spoken Chinese numerals (120万 → 一百二十万); the extractor reads both")
    encoder_min_seconds: float = Field(15.0, ge=1, le=30, description="shortest encoder window per piece (30 = whisper's full window: slower, marginally more accurate)")
    encoder_margin_seconds: float = Field(5.0, ge=0, le=30, description="silence after a piece's audio inside its encoder window")
    names_and_dates: bool = Field(True, description="with context_correction: places, the hospital-type word and date words repaired from homophones (each edit asked as unsure)")
    max_tokens_per_second: float = Field(12.0, ge=0, description="output tokens allowed per second of a piece (plus 24); 0 = whisper's own limit")
    malloc_arenas: int = Field(2, ge=0, le=64, description="glibc malloc arenas for the process, set when the speech service starts; 0 = glibc's default")
    unsure_below: float = Field(0.5, ge=0, le=1, description="a voice-memo field heard with a word probability below this (or term-corrected) is shown as unsure and asked, never stored as fact until confirmed")


class NotesConfig(_Section):
    question_window_minutes: int = Field(30, ge=1, le=24 * 60)
    followup_window_minutes: int = Field(10, ge=0, le=24 * 60, description="a hospital-less message this soon after a note completes that note (0 = off)")
    reminder_hour: int = Field(9, ge=0, le=23)
    reminder_tick_seconds: float = Field(30, gt=0)


class CalendarConfig(_Section):
    dir: str = Field("", description="sales calendar TOML directory (working hours, extra holidays and workdays); empty = packaged")


class TimersConfig(_Section):
    ladders_dir: str = Field("", description="escalation ladder TOML directory; empty = the packaged ladders")
    sweep_seconds: float = Field(5, gt=0, le=3600, description="how often each node looks for due timers")
    batch: int = Field(500, ge=1, le=100_000, description="timers claimed per sweep step")
    lease_seconds: float = Field(60, ge=1, description="a claimed timer is free again after this long")


class AlertsConfig(_Section):
    merge_minutes: float = Field(10, ge=0, le=24 * 60, description="alerts of one class to one person within this window become one card")
    daily_cap: int = Field(30, ge=1, le=1000, description="alert cards per person per day; the rest go into one summary card")
    quiet_jitter_minutes: float = Field(5, ge=0, le=120, description="alerts held outside working hours go out within this many minutes of the opening")
    urgent_classes: list[str] = Field(["lead_offer"], description="classes sent at once, even outside working hours, never merged")


class EscalationsConfig(_Section):
    rules_dir: str = Field("", description="directory with escalations.toml (stage → stalled-deal ladder); empty = packaged")
    follow_up_max_workdays: int = Field(3, ge=1, le=30, description="跟进中: the promised date is at most this many working days away")
    snooze_hours: float = Field(2, gt=0, le=72, description="稍后提醒: the card comes back after this many working hours")
    max_snoozes: int = Field(2, ge=0, le=10, description="稍后提醒 at most this many times per escalation")
    answer_minutes: int = Field(30, ge=1, le=24 * 60, description="how long a 跟进中/暂停 question waits for its answer")
    snooze_tick_seconds: float = Field(30, gt=0, le=3600, description="how often each node looks for snoozed cards that are due")


class LeadsConfig(_Section):
    enabled: bool = Field(True, description="lead intake from chat (#线索) and the HTTP API; offers and claims always work")
    rules: str = Field("", description="routing rules TOML; empty = the packaged handlers/leads/rules/default.toml")
    api_token: str = Field("", description="bearer token for POST /api/leads (GENJIN_LEADS_API_TOKEN); empty = endpoint off")


class PlaybookConfig(_Section):
    dir: str = Field("", description="playbook TOML directory; empty = the packaged default playbook")
    watch: bool = True


class LocalChannelConfig(_Section):
    enabled: bool = True
    http: bool = Field(False, description="accept POST /local/messages (scripts, load tests); needs token")
    token: str = Field("", description="bearer token for POST /local/messages and /healthz details (GENJIN_LOCAL_TOKEN)")
    http_remote: bool = Field(False, description="accept /local/messages from non-loopback callers too")
    transcript: str = Field("", description="append delivered local messages to this JSONL file")


class WeComConfig(_Section):
    enabled: bool = False
    corp_id: str = ""
    agent_id: str = ""
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base: str = "https://qyapi.weixin.qq.com"
    callback_path: str = "/wecom/callback"
    callback_max_skew_seconds: int = Field(3600, ge=1, description="signed callbacks whose timestamp is further off are rejected (replays)")
    robot_webhook_key: str = ""
    per_member_per_minute: int = Field(30, ge=1, description="WeCom's limit: app messages per member per minute")
    robot_per_minute: int = Field(20, ge=1, description="WeCom's limit: group-robot messages per minute")
    task_id_prefix: str = Field(
        "genjin", pattern=r"^[A-Za-z0-9_@-]{1,40}$", description="prefix of template-card task_ids (unique per app)"
    )
    token_refresh_margin: float = Field(300, ge=0, description="refresh access_token this many seconds before expiry")
    request_timeout: float = Field(10, gt=0, le=120, description="seconds per WeCom API request")

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: str) -> str:
        if value and len(value) != 43:
            raise ValueError("EncodingAESKey must be exactly 43 characters (copy it from the WeCom admin console)")
        return value


class DingTalkConfig(_Section):
    enabled: bool = False
    mode: Literal["stream", "http"] = "stream"
    client_id: str = Field("", description="AppKey")
    client_secret: str = Field("", description="AppSecret")
    robot_code: str = ""
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"
    callback_path: str = "/dingtalk/callback"
    voice: Literal["platform", "local", "both"] = "platform"
    robot_webhook: str = Field("", description="custom group robot webhook for team-channel pushes (recipient 'default')")
    robot_secret: str = Field("", description="the robot's 加签 secret (SEC…); empty = unsigned webhook")
    robot_per_minute: int = Field(20, ge=1)
    robot_throttle_seconds: float = Field(600, gt=0, description="pause after errcode 130101 (DingTalk throttles ~10 min)")
    gateway_base: str = Field("", description="Stream gateway base URL; empty = api_base")
    reconnect_min_seconds: float = Field(1.0, gt=0, le=600, description="first Stream reconnect delay")
    reconnect_max_seconds: float = Field(60.0, gt=0, le=3600, description="longest Stream reconnect delay")
    http_timeout_seconds: float = Field(10.0, gt=0, le=300)
    callback_max_skew_seconds: int = Field(3600, ge=1, description="HTTP callbacks whose timestamp is further off are rejected")
    token_refresh_margin_seconds: float = Field(300, ge=0, description="refresh the access token this long before it expires")
    session_webhook_margin_seconds: float = Field(60, ge=0, description="stop using a sessionWebhook this long before it expires")
    session_webhook_hosts: list[str] = Field(
        default_factory=lambda: ["https://oapi.dingtalk.com", "https://api.dingtalk.com"],
        description="scheme://host[:port] a sessionWebhook must match; others fall back to the OpenAPI",
    )
    max_media_bytes: int = Field(20 * 1024 * 1024, ge=1024)


class DashboardConfig(_Section):
    secret: str = Field("", description="HMAC key for dashboard links and sessions (GENJIN_DASHBOARD_SECRET); empty = dashboard off")
    base_url: str = Field("", description="public URL the links start with (e.g. https://genjin.example.com); default http://host:port")
    link_minutes: float = Field(10, gt=0, le=24 * 60, description="how long a #看板 link may be opened (once)")
    session_hours: float = Field(8, gt=0, le=24 * 30, description="how long the session cookie it becomes lasts")


class ReportsConfig(_Section):
    digest_at: str = Field("08:45", description="local time of the weekly digest on the first working day of the ISO week")
    health_at: str = Field("02:30", description="local time of the nightly health recomputation")
    refresh_seconds: float = Field(300, ge=5, description="how often deals whose inputs changed are re-scored")


class Config(_Section):
    timezone: str = "Asia/Shanghai"
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    pipeline: PipelineConfig = PipelineConfig()
    logging: LoggingConfig = LoggingConfig()
    nlp: NlpConfig = NlpConfig()
    speech: SpeechSection = SpeechSection()
    notes: NotesConfig = NotesConfig()
    playbook: PlaybookConfig = PlaybookConfig()
    calendar: CalendarConfig = CalendarConfig()
    timers: TimersConfig = TimersConfig()
    alerts: AlertsConfig = AlertsConfig()
    escalations: EscalationsConfig = EscalationsConfig()
    leads: LeadsConfig = LeadsConfig()
    local: LocalChannelConfig = LocalChannelConfig()
    wecom: WeComConfig = WeComConfig()
    dingtalk: DingTalkConfig = DingTalkConfig()
    dashboard: DashboardConfig = DashboardConfig()
    reports: ReportsConfig = ReportsConfig()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _env_overrides(model: type[BaseModel], env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """Collect ``GENJIN_SECTION_KEY`` values for every leaf field, nested like the TOML."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        env_name = f"{prefix}{name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested = _env_overrides(annotation, env, env_name + "_")
            if nested:
                found[name] = nested
        elif env_name in env:
            found[name] = env[env_name]
    return found


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


#: Keys whose values are credentials: an error about them must not print the value.
SECRET_KEYS = frozenset(
    {"secret", "token", "api_token", "encoding_aes_key", "client_secret", "robot_secret", "robot_webhook_key", "robot_webhook", "password"}
)


def shown_value(key: str, value: Any) -> str:
    """What an error message may show of a bad value: secrets masked, URL passwords and keys redacted.

    A typo'd AES key or database URL is exactly when someone pastes the error into a chat.
    """
    from bot.redact import redact

    if key.rsplit(".", 1)[-1] in SECRET_KEYS:
        length = len(value) if isinstance(value, str) else 0
        return f"<secret, {length} characters>" if length else "<secret>"
    return redact(repr(value))


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (check the spelling against config.example.toml)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key}: {message} (got {shown_value(key, error.get('input'))})"


def parse_config(data: Mapping[str, Any], source: str, env: Mapping[str, str] | None = None) -> Config:
    """Validate already-parsed TOML data plus environment overrides."""
    merged = _merge(dict(data), _env_overrides(Config, os.environ if env is None else env, ENV_PREFIX))
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError([f"{source}: {_describe(err)}" for err in exc.errors()]) from None


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (default ``./genjin.toml``); a missing default file means all defaults."""
    explicit = path is not None
    file = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if not file.exists():
        if explicit:
            raise ConfigError([f"{file}: file not found"])
        return parse_config({}, f"{file} (defaults)", env)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{file}: not valid TOML: {exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}: cannot read: {exc}"]) from None
    return parse_config(data, str(file), env)
