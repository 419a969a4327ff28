"""``genjin playbook …``: let sales ops check their edits before (and after) they go live.

* ``check [--dir DIR]`` validates the playbook (exit 1 and every problem, naming file,
  entry and what is wrong).
* ``reload [--dir DIR]`` is for a running server. The server re-reads the files itself
  (``[playbook] watch = true``: on every use and every second), so there is nothing to
  signal; this command checks the files exactly as the server will and says honestly
  whether the running service will take them (valid + watch) or keep the last good
  version (invalid), or needs a restart (watch = false).
* ``show TAG [--platform text|wecom|dingtalk]`` previews a card as a rep would get it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cards.playbook import PACKAGED_DIR, Playbook, PlaybookError, load_playbook


def _directory(args: argparse.Namespace) -> tuple[Path, bool]:
    """The playbook directory and whether the server watches it."""
    if args.dir:
        return Path(args.dir), True
    from bot.config import load_config

    config = load_config(args.config)
    return (Path(config.playbook.dir) if config.playbook.dir else PACKAGED_DIR), config.playbook.watch


def _load(directory: Path) -> Playbook | None:
    try:
        return load_playbook(directory)
    except PlaybookError as exc:
        print(f"话术库有误 / playbook is invalid ({directory}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _summary(playbook: Playbook, directory: Path) -> str:
    return f"{len(playbook.entries)} 条话术、{len(playbook.commands)} 个命令（{directory}）"


def cmd_check(args: argparse.Namespace) -> int:
    directory, _watch = _directory(args)
    playbook = _load(directory)
    if playbook is None:
        return 1
    print(f"话术库检查通过：{_summary(playbook, directory)}")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    directory, watch = _directory(args)
    playbook = _load(directory)
    if playbook is None:
        print("运行中的服务会拒绝这些修改，继续使用上一版有效的话术库。请修正后再保存。", file=sys.stderr)
        return 1
    if watch:
        print(f"话术库有效：{_summary(playbook, directory)}。运行中的服务会在约 1 秒内自动加载，无需重启。")
    else:
        print(f"话术库有效：{_summary(playbook, directory)}。配置中 [playbook] watch = false，需重启服务才会生效。")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    directory, _watch = _directory(args)
    playbook = _load(directory)
    if playbook is None:
        return 1
    entry = playbook.find(args.tag)
    if entry is None:
        suggestions = playbook.suggest(args.tag)
        hint = f"，最接近的：{' '.join(suggestions)}" if suggestions else ""
        print(f"没有找到 #{args.tag.lstrip('#＃')}{hint}", file=sys.stderr)
        return 1
    card = playbook.card(entry)
    if args.platform == "wecom":
        from cards.render_wecom import wecom_messages

        print(json.dumps(wecom_messages(card, task_id="preview"), ensure_ascii=False, indent=2))
    elif args.platform == "dingtalk":
        from cards.render_dingtalk import dingtalk_message

        key, param = dingtalk_message(card)
        print(json.dumps({"msgKey": key, "msgParam": param}, ensure_ascii=False, indent=2))
    else:
        from cards.render_text import render_text

        print(render_text(card))
    return 0


def register_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    playbook = sub.add_parser("playbook", help="sales playbook (talk tracks): check, reload, show").add_subparsers(
        dest="playbook_command", required=True
    )
    p = playbook.add_parser("check", help="validate the playbook TOML files (exit 1 naming file/entry/problem)")
    p.add_argument("--dir", default=None, help="playbook directory (default: [playbook] dir, else the packaged one)")
    p.set_defaults(func=cmd_check)

    p = playbook.add_parser("reload", help="check the files and tell whether the running server will take them")
    p.add_argument("--dir", default=None)
    p.set_defaults(func=cmd_reload)

    p = playbook.add_parser("show", help="preview one talk-track card")
    p.add_argument("tag", help="tag or alias, e.g. 价格 or '#price'")
    p.add_argument("--dir", default=None)
    p.add_argument("--platform", choices=("text", "wecom", "dingtalk"), default="text")
    p.set_defaults(func=cmd_show)
