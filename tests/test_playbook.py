"""The playbook: loading, validation that names file/entry/problem, lookup, suggestions,
hot reload that keeps the last good version, and ``genjin playbook check``."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from bot.cli import main as genjin
from cards.playbook import (
    CONCERNS,
    PACKAGED_DIR,
    PlaybookError,
    PlaybookService,
    load_playbook,
    talk_track_buttons,
)

ENTRY = """
[[entry]]
tag = "{tag}"
aliases = [{aliases}]
title = "{title}"
when = "客户提到{tag}时"
steps = ["第一步：问清楚。", "第二步：给方案。"]
phrases = ["“您看这样可以吗？”"]
"""
HELP = '[[command]]\ntag = "帮助"\ndescription = "列出命令"\nhandler = "playbook"\n'


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def entry(tag: str, title: str = "标题", aliases: str = "", **extra: str) -> str:
    text = ENTRY.format(tag=tag, title=title, aliases=aliases)
    return text + "".join(f"{k} = {v}\n" for k, v in extra.items())


def problems_for(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(PlaybookError) as info:
        load_playbook(tmp_path)
    return info.value.problems


def test_default_playbook_is_complete() -> None:
    playbook = load_playbook()
    tags = {e.tag for e in playbook.entries}
    assert {"价格", "竞品", "招标", "试用", "采购流程", "回款", "资质", "售后", "预算"} <= tags
    assert {"美敦力", "迈瑞", "雅培", "波科"} <= tags
    for code in CONCERNS:  # every concern the extractor reports has a talk track
        assert playbook.for_concern(code) is not None, code
    for e in playbook.entries:
        assert e.steps and e.phrases and e.cases, e.tag
        assert all("示例" in c for c in e.cases), f"#{e.tag}: cases must be marked as examples"
    ours = [c for c in playbook.commands if c.ours]
    assert [c.tag for c in ours] == ["帮助"]
    # commands answered by other features, and the typed wordings (撤销, 更正, 改期, 完成) listed in #帮助
    assert {c.tag for c in playbook.commands if not c.ours} == {
        "待办", "客户", "撤销", "更正", "改期", "完成", "预警", "卡单", "逾期", "团队", "漏斗", "健康", "审计", "看板",
        "线索", "请假", "销假",
    }


@pytest.mark.parametrize("typed", ["#价格", "价格", "＃价格", "#PRICE", "#Price", "＃ｐｒｉｃｅ", "#报价", "#降价"])
def test_find_by_tag_alias_case_and_width(typed: str) -> None:
    found = load_playbook().find(typed)
    assert found is not None and found.tag == "价格"


def test_suggestions() -> None:
    playbook = load_playbook()
    assert playbook.find("#价钱") is None
    assert playbook.suggest("#价钱")[0] == "#价格"
    assert playbook.suggest("招投标")[0] == "#招标"
    assert playbook.suggest("#代办")[0] == "#待办"  # commands of other features are suggested too
    assert playbook.suggest("#zzzz") == []
    assert len(playbook.suggest("#价", n=2)) <= 2


def test_talk_track_buttons_for_concerns() -> None:
    playbook = load_playbook()
    buttons = talk_track_buttons(playbook, ["price", "competitor", "price", "nonsense"])
    assert [b.command for b in buttons] == ["#价格", "#竞品"]
    assert all(len(b.label) <= 10 for b in buttons)
    assert talk_track_buttons(None, ["price"]) == []
    branded = talk_track_buttons(playbook, ["competitor", "price"], competitors=["Mindray", "不认识的牌子"])
    assert [b.command for b in branded] == ["#迈瑞", "#价格"]


def test_prefix_split_for_tags_typed_without_space() -> None:
    assert load_playbook().split_known_prefix("价格客户嫌贵") == ("价格", "客户嫌贵")
    assert load_playbook().split_known_prefix("随便") is None


def test_validation_names_file_entry_and_problem(tmp_path: Path) -> None:
    long_steps = "[" + ", ".join(['"' + "很长的步骤内容" * 25 + '"'] * 8) + "]"
    problems = problems_for(
        tmp_path,
        {
            "a.toml": HELP + entry("价格", aliases='"price"', concerns='["price"]') + 'colour = "red"\n',
            "b.toml": entry("报价", title="重复的标签") + entry("竞品", concerns='["price", "weather"]'),
            "c.toml": "[[entry]]\ntag = \"空的\"\n",
            "d.toml": entry("长", title="这是一个非常非常非常非常非常非常非常非常长的标题超过了限制").replace(
                'steps = ["第一步：问清楚。", "第二步：给方案。"]', "steps = " + long_steps
            ),
            "e.toml": "[[entry]\ntag=",
            "f.toml": entry("有 空格") + entry("相关", related='["不存在"]'),
        },
    )
    text = "\n".join(problems)

    def has(*parts: str) -> bool:
        return any(all(p in line for p in parts) for line in problems)

    assert has("a.toml", "#价格", "unknown key 'colour'"), text
    assert has("b.toml", "#竞品", "unknown concern 'weather'"), text
    assert has("b.toml", "#竞品", "concern 'price' is already answered by #价格"), text
    assert has("c.toml", "#空的", "missing required key 'title'"), text
    assert has("c.toml", "#空的", "missing required key 'steps'"), text
    assert has("d.toml", "#长", "title is"), text
    assert has("d.toml", "#长", "steps item is"), text
    assert has("e.toml", "not valid TOML"), text
    assert has("f.toml", "cannot be typed as a #tag"), text
    assert has("f.toml", "#相关", "related tag #不存在"), text


def test_duplicate_alias_across_files(tmp_path: Path) -> None:
    problems = problems_for(
        tmp_path, {"a.toml": HELP + entry("价格", aliases='"price"'), "b.toml": entry("报价", aliases='"PRICE"')}
    )
    assert any("b.toml" in p and "#PRICE is already used by" in p and "a.toml" in p for p in problems), problems


def test_over_long_card_is_rejected_for_chat(tmp_path: Path) -> None:
    step = '"' + "这是一个很长的步骤说明，" * 12 + '"'
    big = entry("长话术").replace('steps = ["第一步：问清楚。", "第二步：给方案。"]', f"steps = [{', '.join([step] * 8)}]")
    big += f"phrases = [{', '.join([step] * 6)}]\ncases = [{', '.join([step] * 3)}]\n"
    big = big.replace('phrases = ["“您看这样可以吗？”"]\n', "", 1)
    problems = problems_for(tmp_path, {"a.toml": HELP + big})
    assert any("a.toml" in p and "#长话术" in p and "too long for chat" in p for p in problems), problems


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="no \\*.toml"):
        load_playbook(tmp_path)
    with pytest.raises(PlaybookError, match="not found"):
        load_playbook(tmp_path / "nope")


def copy_default(target: Path) -> Path:
    shutil.copytree(PACKAGED_DIR, target)
    return target


def test_service_reloads_and_keeps_last_good(tmp_path: Path) -> None:
    directory = copy_default(tmp_path / "pb")
    service = PlaybookService(directory, watch=True)
    assert service.current.find("价格").title == "价格异议：客户说太贵了"
    price = directory / "10-price.toml"
    price.write_text(price.read_text(encoding="utf-8").replace("价格异议：客户说太贵了", "价格：新版话术"), encoding="utf-8")
    assert service.current.find("价格").title == "价格：新版话术"
    assert service.reloads == 1
    write(directory, "50-broken.toml", entry("价格", title="抢标签"))
    assert service.current.find("价格").title == "价格：新版话术"  # last good keeps serving
    assert any("50-broken.toml" in p and "#价格" in p and "already used" in p for p in service.problems)
    (directory / "50-broken.toml").unlink()
    assert service.current.find("价格").title == "价格：新版话术" and service.problems == []


def test_service_without_watch_does_not_reload(tmp_path: Path) -> None:
    directory = copy_default(tmp_path / "pb")
    service = PlaybookService(directory, watch=False)
    _ = service.current
    price = directory / "10-price.toml"
    price.write_text(price.read_text(encoding="utf-8").replace("价格异议：客户说太贵了", "改了"), encoding="utf-8")
    assert service.current.find("价格").title == "价格异议：客户说太贵了"


def test_invalid_directory_at_start_serves_packaged_default(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", "not toml [[[")
    service = PlaybookService(tmp_path, watch=True)
    assert service.current.find("价格") is not None
    assert any("a.toml" in p for p in service.problems)


async def test_background_watcher_picks_up_changes(tmp_path: Path) -> None:
    directory = copy_default(tmp_path / "pb")
    service = PlaybookService(directory, watch=True, interval=0.05)
    await service.start()
    try:
        price = directory / "10-price.toml"
        price.write_text(price.read_text(encoding="utf-8").replace("价格异议：客户说太贵了", "后台加载的版本"), encoding="utf-8")
        for _ in range(100):
            if service.reloads:
                break
            await asyncio.sleep(0.05)
        assert service.reloads == 1
        assert service._playbook is not None and service._playbook.find("价格").title == "后台加载的版本"
    finally:
        await service.stop()


def test_cli_check_default_passes(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no genjin.toml here: defaults
    assert genjin(["playbook", "check"]) == 0
    assert "检查通过" in capsys.readouterr().out


def test_cli_check_broken_exits_1_naming_the_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    directory = copy_default(tmp_path / "pb")
    price = directory / "10-price.toml"
    price.write_text(price.read_text(encoding="utf-8").replace("title =", "titel =", 1), encoding="utf-8")
    assert genjin(["playbook", "check", "--dir", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "10-price.toml" in err and "#价格" in err and "unknown key 'titel'" in err and "missing required key 'title'" in err
    assert genjin(["playbook", "reload", "--dir", str(directory)]) == 1
    assert "上一版" in capsys.readouterr().err


def test_cli_uses_config_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    directory = copy_default(tmp_path / "pb")
    config = write(tmp_path, "genjin.toml", f'[playbook]\ndir = "{directory}"\nwatch = false\n')
    assert genjin(["--config", str(config), "playbook", "reload"]) == 0
    out = capsys.readouterr().out
    assert str(directory) in out and "重启" in out
    assert genjin(["--config", str(config), "playbook", "show", "#price", "--platform", "dingtalk"]) == 0
    assert "sampleActionCard" in capsys.readouterr().out
