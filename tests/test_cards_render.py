"""Every card we ship, rendered for WeCom, DingTalk and plain text, checked against the
platforms' documented limits and shapes; hostile text must not break the markup."""

from __future__ import annotations

import json
import random
import re
from urllib.parse import unquote

import pytest

from cards.model import Button, Card, CardField
from cards.playbook import load_playbook, talk_track_buttons
from cards.render_dingtalk import (
    PARAM_MAX_BYTES,
    command_url,
    dingtalk_markdown,
    dingtalk_message,
    dingtalk_message_json,
    dingtalk_text,
    dingtalk_webhook_payload,
)
from cards.render_text import render_text
from cards.render_wecom import (
    split_markdown,
    wecom_markdown,
    wecom_messages,
    wecom_task_id,
    wecom_template_card,
)

PLAYBOOK = load_playbook()
HOSTILE = (
    '**粗体** <font color="warning">红字</font> [点我](http://evil.example) `code` ~删除~ _斜体_\n'
    "# 假标题\n> 假引用\n---\n\"引号\" 'single' \\反斜杠 | 竖线 &amp; \r\n第二行"
)


def sample_cards() -> list[Card]:
    """Every default playbook card, the help/not-found cards, and note/reminder/question cards."""
    cards = [PLAYBOOK.card(e) for e in PLAYBOOK.entries]
    cards += [PLAYBOOK.help_card(role) for role in ("rep", "manager", "sales_ops")]
    cards.append(PLAYBOOK.not_found_card("价钱", "rep"))
    note = Card(
        title="已记录：华山医院 · 王主任",
        kind="note",
        subtitle="🎤 王主任说下个月招标，价格可以谈，竞品是迈瑞",
        fields=(
            CardField("阶段", "招标采购"),
            CardField("下一步", "下周三前把参数表发给设备科"),
            CardField("顾虑", "价格异议、竞品对比"),
            CardField("科室", "设备科、心内科"),
            CardField("医院", "复旦大学附属华山医院"),
            CardField("金额", "80万"),
            CardField("竞品", "迈瑞"),
        ),
        blocks=("❓ 下一步是什么时候？",),
        buttons=(*talk_track_buttons(PLAYBOOK, ["price", "competitor"]), Button("撤销", command="撤销 17")),
        meta={"note_id": "17"},
    )
    reminder = Card(
        title="提醒：给华山医院设备科发参数表",
        kind="reminder",
        subtitle="今天 09:00 到期",
        fields=(CardField("客户", "华山医院"), CardField("联系人", "王主任")),
        buttons=(Button("完成", command="完成 12", primary=True), Button("推迟一天", command="推迟 12 一天")),
    )
    question = Card(
        title="还差一点：下一步是什么时候？",
        kind="question",
        blocks=("请回复日期，例如“下周三”。不需要提醒请回复“不用”。",),
        buttons=(Button("明天", command="明天"), Button("下周一", command="下周一"), Button("不用", command="不用")),
    )
    hostile = Card(
        title=HOSTILE,
        kind="note",
        subtitle=HOSTILE,
        fields=(CardField(HOSTILE, HOSTILE),),
        blocks=(HOSTILE, "正常的一段"),
        buttons=(Button(HOSTILE, command="#价格"), Button("资料", url="https://example.com/a b(c)\"<x>")),
        link="https://example.com/doc?q=1&x=(y)",
        link_label=HOSTILE,
    )
    many_buttons = Card(title="很多按钮", buttons=tuple(Button(f"按钮{i}", command=f"完成 {i}") for i in range(9)))
    empty = Card(title="")
    return [*cards, note, reminder, question, hostile, many_buttons, empty]


CARDS = sample_cards()
HOSTILE_CARD = next(c for c in CARDS if c.title == HOSTILE)
MANY_BUTTONS = next(c for c in CARDS if c.title == "很多按钮")
IDS = [f"{i}-{c.kind}-{c.title[:6]}" for i, c in enumerate(CARDS)]
TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")


def chars(s: str) -> int:
    return len(s)


def check_template_card(tc: dict, card: Card) -> None:
    assert tc["card_type"] in {"text_notice", "button_interaction"}
    title = tc["main_title"].get("title", "")
    assert title or tc.get("sub_title_text"), "main_title.title or sub_title_text is required"
    assert chars(title) <= 26 and "\n" not in title
    assert chars(tc["main_title"].get("desc", "")) <= 30
    assert chars(tc.get("sub_title_text", "")) <= 112
    assert chars(tc["source"]["desc"]) <= 13
    horizontal = tc.get("horizontal_content_list", [])
    assert len(horizontal) <= 6
    for item in horizontal:
        assert 1 <= chars(item["keyname"]) <= 5 and chars(item["value"]) <= 26
    for jump in tc.get("jump_list", []):
        assert jump["type"] == 1 and jump["url"].startswith("http") and chars(jump["title"]) <= 13
    assert len(tc.get("jump_list", [])) <= 3
    if tc["card_type"] == "text_notice":
        assert tc["card_action"]["type"] == 1 and tc["card_action"]["url"].startswith("http")
        assert "button_list" not in tc
    else:
        assert TASK_ID.match(tc["task_id"])
        buttons = tc["button_list"]
        assert 1 <= len(buttons) <= 6
        keys = [b["key"] for b in buttons if b["type"] == 0]
        assert len(keys) == len(set(keys)), "button keys must be unique"
        for b in buttons:
            assert chars(b["text"]) <= 10 and b["style"] in (1, 2, 3, 4)
            if b["type"] == 0:
                assert 0 < len(b["key"].encode()) <= 1024
                assert b["key"] in {x.command.strip() for x in card.buttons}
            else:
                assert b["type"] == 1 and b["url"].startswith("http") and " " not in b["url"]
    json.dumps(tc)  # serializable


@pytest.mark.parametrize("card", CARDS, ids=IDS)
def test_wecom_template_card_shape_and_limits(card: Card) -> None:
    tc = wecom_template_card(card, task_id="genjin-42")
    check_template_card(tc, card)
    usable = [b for b in card.buttons if b.command]
    if usable:
        assert tc["card_type"] == "button_interaction"


@pytest.mark.parametrize("card", CARDS, ids=IDS)
def test_wecom_messages_fit_and_show_everything(card: Card) -> None:
    messages = wecom_messages(card, task_id="genjin-7")
    assert messages
    for m in messages:
        if m["msgtype"] == "markdown":
            assert 0 < len(m["markdown"]["content"].encode("utf-8")) <= 2048
        else:
            assert m["msgtype"] == "template_card"
            check_template_card(m["template_card"], card)
    markdown = "".join(m["markdown"]["content"] for m in messages if m["msgtype"] == "markdown")
    if markdown:  # long cards: nothing of the content is clipped away
        squashed = re.sub(r"\s", "", markdown)
        for block in card.blocks:
            for line in block.splitlines():
                plain = re.sub(r"[\s*`\[\]<>|~\\_#＊｀［］＜＞｜～＼＿＃－]", "", line)
                assert re.sub(r"[*`\[\]<>|~\\_#＊｀［］＜＞｜～＼＿＃－]", "", squashed).find(plain) >= 0


@pytest.mark.parametrize("card", CARDS, ids=IDS)
def test_dingtalk_message_shapes(card: Card) -> None:
    key, param = dingtalk_message(card)
    assert all(isinstance(v, str) for v in param.values())
    buttons = [k for k in param if k.startswith("actionTitle")]
    if key == "sampleMarkdown":
        assert set(param) == {"title", "text"}
    elif key == "sampleActionCard":
        assert set(param) == {"title", "text", "singleTitle", "singleURL"}
        assert len(param["singleTitle"]) <= 20
    else:
        n = int(key.removeprefix("sampleActionCard"))
        assert 2 <= n <= 5
        assert set(param) == {"title", "text"} | {f"actionTitle{i}" for i in range(1, n + 1)} | {f"actionURL{i}" for i in range(1, n + 1)}
        assert len(buttons) == n
    assert 0 < len(param["title"]) <= 64 and "\n" not in param["title"]
    for name, value in param.items():
        if name.startswith(("actionURL", "singleURL")):
            assert value.startswith(("https://", "http://", "dtmd://dingtalkclient/sendMessage?content="))
    for ensure_ascii in (True, False):
        assert len(json.dumps(param, ensure_ascii=ensure_ascii).encode("utf-8")) <= PARAM_MAX_BYTES
    key2, as_json = dingtalk_message_json(card)
    assert key2 == key and isinstance(as_json, str) and json.loads(as_json) == param


@pytest.mark.parametrize("card", CARDS, ids=IDS)
def test_dingtalk_webhook_shapes(card: Card) -> None:
    payload = dingtalk_webhook_payload(card)
    assert len(json.dumps(payload).encode()) <= 20000  # the webhook's documented body limit
    if payload["msgtype"] == "markdown":
        assert set(payload["markdown"]) == {"title", "text"}
    else:
        assert payload["msgtype"] == "actionCard"
        action = payload["actionCard"]
        assert {"title", "text"} <= set(action)
        if "btns" in action:
            assert 2 <= len(action["btns"]) <= 5 and action["btnOrientation"] in ("0", "1")
            assert all(set(b) == {"title", "actionURL"} for b in action["btns"])
        else:
            assert {"singleTitle", "singleURL"} <= set(action)


@pytest.mark.parametrize("card", CARDS, ids=IDS)
def test_plain_text_shows_every_command(card: Card) -> None:
    text = render_text(card)
    for button in card.buttons:
        if button.command:
            assert f"「{button.command}」" in text
    assert card.title.split("\n")[0].strip()[:5] in text


def test_playbook_cards_need_no_clipping() -> None:
    """Default talk tracks arrive whole: ≤ 2 WeCom markdown messages, DingTalk untruncated."""
    for entry in PLAYBOOK.entries:
        card = PLAYBOOK.card(entry)
        assert len(split_markdown(wecom_markdown(card))) <= 2, entry.tag
        assert "已截断" not in dingtalk_message(card)[1]["text"], entry.tag


def test_command_buttons_round_trip_through_dtmd() -> None:
    key, param = dingtalk_message(MANY_BUTTONS)  # nine buttons
    assert key == "sampleActionCard5"
    urls = [param[f"actionURL{i}"] for i in range(1, 6)]
    assert [unquote(u.split("content=", 1)[1]) for u in urls] == [f"完成 {i}" for i in range(5)]
    for i in range(5, 9):  # the rest are still reachable as links in the text
        assert command_url(f"完成 {i}") in param["text"]
    tc = wecom_template_card(MANY_BUTTONS, task_id="x")
    assert [b["key"] for b in tc["button_list"]] == [f"完成 {i}" for i in range(6)]


def test_hostile_text_cannot_break_markup() -> None:
    card = HOSTILE_CARD
    md = wecom_markdown(card)
    # the only markup is ours: one bold title, our <font> tags, our link(s)
    assert md.count("<font") == md.count("</font>") == 2
    assert md.count("**") == 2
    quotes = [line for line in md.splitlines() if line.lstrip().startswith(">")]
    assert len(quotes) == len(card.fields)  # only our field lines are quotes
    for line in md.splitlines():
        assert not line.lstrip().startswith("#"), line
    links = re.findall(r"\[([^\]]*)\]\(([^)]*)\)", md)
    assert links and all(url.startswith("https://example.com/") for _, url in links)
    assert all(" " not in url and '"' not in url and "<" not in url for _, url in links)
    dt = dingtalk_markdown(card)["text"]
    for line in dt.splitlines():
        assert not line.lstrip().startswith(("#", ">")) or line.startswith(("#### ", "> ")), line
    assert dt.count("#### ") == 1 and dt.count("**") == 2  # title + the one field label
    assert "<font" not in dt
    assert "\n" not in wecom_template_card(card, task_id="t")["main_title"]["title"]
    assert "\n" not in dingtalk_message(card)[1]["title"]


def test_unusable_buttons_are_dropped_not_sent() -> None:
    card = Card(
        title="t",
        buttons=(Button("坏链接", url="javascript:alert(1)"), Button("长", command="x" * 2000), Button("好", command="#价格")),
    )
    tc = wecom_template_card(card, task_id="t")
    assert [b["key"] for b in tc["button_list"]] == ["#价格"]
    key, param = dingtalk_message(card)
    assert key == "sampleActionCard" and param["singleURL"] == command_url("#价格")


def test_task_id_is_always_valid() -> None:
    assert wecom_task_id("genjin-12") == "genjin-12"
    assert TASK_ID.match(wecom_task_id("任务 #1/2"))
    assert len(wecom_task_id("a" * 500)) == 128
    assert TASK_ID.match(wecom_task_id("")) and TASK_ID.match(wecom_task_id("中文"))
    assert wecom_task_id("中文") != wecom_task_id("英文")


def test_split_markdown_respects_limit_and_loses_nothing() -> None:
    rng = random.Random(7)
    alphabet = "价格异议客户说太贵了abcXYZ123 **[]<>😀\t"
    for _ in range(200):
        lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 900))) for _ in range(rng.randint(1, 12))]
        text = "\n".join(lines)
        limit = rng.choice([64, 300, 2048])
        parts = split_markdown(text, limit)
        assert all(0 < len(p.encode("utf-8")) <= limit for p in parts)
        assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)
    # line boundaries are preferred: short lines are never cut
    text = "\n".join(f"第{i}行内容" for i in range(400))
    parts = split_markdown(text)
    assert len(parts) > 1
    assert all(re.fullmatch(r"第\d+行内容", line) for p in parts for line in p.split("\n"))


def test_dingtalk_text_and_huge_cards_are_clipped_cleanly() -> None:
    key, param = dingtalk_text("很长" * 10000)
    assert key == "sampleText" and len(json.dumps(param).encode()) <= PARAM_MAX_BYTES
    huge = Card(title="大", blocks=tuple("段落" * 400 for _ in range(20)))
    _key, p = dingtalk_message(huge)
    assert p["text"].endswith("已截断）") and len(json.dumps(p).encode()) <= PARAM_MAX_BYTES
    assert all(len(m["markdown"]["content"].encode()) <= 2048 for m in wecom_messages(huge, task_id="t"))


@pytest.mark.parametrize("card", CARDS, ids=IDS)
def test_card_dict_round_trip(card: Card) -> None:
    assert Card.from_dict(json.loads(json.dumps(card.to_dict()))) == card
