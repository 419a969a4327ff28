"""``genjin leads import / check / simulate`` against a SQLite file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import DEMO_ORG
from tests.test_leads_flow import rules_file


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``main`` configures structlog to print to the (captured) stderr; later tests must not inherit it."""
    import structlog

    yield
    structlog.reset_defaults()


HEADER = "id,hospital,department,contact,phone,region,product_line,grade,source\n"


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "genjin.db"
    cfg = tmp_path / "genjin.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{db}"\n[leads]\nrules = "{rules_file(tmp_path)}"\n'
                   '[logging]\nlevel = "WARNING"\n', encoding="utf-8")
    assert main(["--config", str(cfg), "org", "import", str(DEMO_ORG)]) == 0
    return cfg, db


def _count(db: Path, where: str = "1=1") -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM leads WHERE {where}").fetchone()[0])


def test_an_import_with_one_bad_row_imports_nothing_and_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, db = _setup(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "A1,瑞金医院,心内科,王主任,13812345678,上海,心血管,三甲,展会\n"
                   "A2,华山医院,心内科,李主任,13812345679,上海,心血管,三甲,展会,多余\n"
                   "A3,中山医院,心内科,赵主任,13812345670,上海,心血管,三甲,展会\n", encoding="utf-8")
    assert main(["--config", str(cfg), "leads", "import", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "第3行" in err and "nothing imported" in err
    assert _count(db) == 0


def test_import_routes_every_row_and_is_idempotent_on_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, db = _setup(tmp_path)
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "".join(f"B{i},第{i}医院,心内科,王{i},1390000{i:04d},上海,心血管,三甲,展会\n" for i in range(8))
                    + "B8,第8医院,心内科,王8,,上海,心血管,三甲,展会\n", encoding="utf-8")
    assert main(["--config", str(cfg), "leads", "import", str(good), "--quiet"]) == 0
    assert "已派发 8" in capsys.readouterr().out
    assert _count(db, "status = 'offered'") == 8 and _count(db, "status = 'quarantined'") == 1
    assert main(["--config", str(cfg), "leads", "import", str(good), "--quiet"]) == 0
    assert "已存在（跳过） 9" in capsys.readouterr().out
    assert _count(db) == 9
    with sqlite3.connect(db) as conn:
        live = conn.execute("SELECT count(*) FROM lead_offers WHERE status = 'offered'").fetchone()[0]
    assert live == 8


def test_check_and_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, db = _setup(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text('[[pool]]\nid = "p"\nmembers = [{rep = "nobody"}]\n[[rule]]\nid = "all"\nwhen = {}\npool = "p"\n',
                      encoding="utf-8")
    assert main(["--config", str(cfg), "leads", "check"]) == 0
    assert main(["--config", str(cfg), "leads", "check", str(broken)]) == 1
    assert "'nobody' is not a person in the org" in capsys.readouterr().err
    csv = tmp_path / "s.csv"
    csv.write_text(HEADER + "S1,瑞金医院,心内科,王主任,13812345678,上海,心血管,三甲,展会\n", encoding="utf-8")
    assert main(["--config", str(cfg), "leads", "simulate", "--leads", str(csv), "--at", "2026-11-23T10:00"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert line["lead"] == "S1" and line["status"] == "offered"
    assert _count(db) == 0  # nothing stored
