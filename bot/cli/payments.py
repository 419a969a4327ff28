"""``genjin payments import FILE``: finance's receivables (CSV or XLSX) → installments watched by the receivable ladder.

Columns (header row, Chinese or English): 发票号/invoice_no, 医院/hospital, 金额/amount,
到期日/due_date (YYYY-MM-DD), optional 已收金额/received, 销售/owner (key or name), 合同号/contract_no.
Idempotent on the invoice number (a re-import changes nothing; a higher 已收金额 records the
difference as received), all-or-nothing per file: any bad row → nothing is imported, and
every problem is printed with its line number (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.config import Config


class _Discard(Exception):
    """Leave the transaction without writing anything."""


async def run_import(config: Config, path: Path, *, dry_run: bool = False) -> tuple[int, list[str], str]:
    """(exit code, problems, summary) — shared by the command and the tests."""
    from bot.app import build_runtime
    from handlers.escalations.payments import import_rows, read_table

    try:
        rows = read_table(path)
    except (OSError, ValueError) as exc:
        return 1, [f"{path}: {exc}"], ""
    runtime = build_runtime(config)
    try:
        await runtime.start(http=False, workers=False)
        app = runtime.app
        async with app.sessions() as session:
            try:
                async with session.begin():
                    result = await import_rows(app, session, rows, now=app.clock.now())
                    if result.errors or dry_run:
                        raise _Discard
            except _Discard:
                pass  # rolled back: all-or-nothing
        summary = f"{'检查' if dry_run else '导入'}完成：新增 {result.created}，更新 {result.updated}，未变 {result.unchanged}"
        if result.errors:
            return 1, [f"{path}: {e}" for e in result.errors], "未导入任何数据（整份文件需全部正确）"
        return 0, [], summary
    finally:
        await runtime.stop()


def cmd_import(args: argparse.Namespace) -> int:
    from bot.cli import _config, configure_logging

    config = _config(args)
    configure_logging("WARNING", config.logging.format)
    code, problems, summary = asyncio.run(run_import(config, Path(args.file), dry_run=args.dry_run))
    for problem in problems:
        print(problem, file=sys.stderr)
    if summary:
        print(summary, file=sys.stderr if code else sys.stdout)
    return code


def register_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    payments = sub.add_parser("payments", help="receivables from finance").add_subparsers(dest="payments_command", required=True)
    p = payments.add_parser("import", help="import invoices / installments from a CSV or XLSX file (all-or-nothing)")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="check the file and report, write nothing")
    p.set_defaults(func=cmd_import)
