"""Issue 16, item 1: uncertainty is visible, never stored as fact.

A voice memo's date, hospital, contact or amount said in low-confidence (or corrected) words is
shown on the card with a question mark and 确认/改 buttons, and is not written as fact until the
rep answers. The memos go through the real voice preprocessor (``handlers.notes.voice``) with a
fake speech service that returns a :class:`Transcript` with chosen word probabilities.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import FakeClock
from bot.messages import Kind
from cards.model import Card
from handlers.tasks.jobs import send_due_reminders
from nlp.speech import Transcript
from nlp.speech.spans import Span
from storage.models import (
    Account,
    AuditLog,
    Contact,
    DialogState,
    InboxRow,
    Note,
    Opportunity,
    Task,
)
from tests.harness import MONDAY, SH, Harness, rows

FRIDAY = date(2026, 11, 27)  # MONDAY is 2026-11-23
THURSDAY = date(2026, 11, 26)
HIGH = 0.97


def transcript(text: str, low: dict[str, float] | None = None) -> Transcript:
    """``text`` as whisper might return it: one span per character run, ``low`` words at their probability."""
    prob = [HIGH] * len(text)
    for word, p in (low or {}).items():
        i = text.index(word)
        prob[i : i + len(word)] = [p] * len(word)
    spans: list[Span] = []
    i = 0
    while i < len(text):
        j = i + 1
        while j < len(text) and prob[j] == prob[i] and (prob[i] == HIGH or j - i < 2):
            j += 1
        spans.append(Span(i, j, text[i:j], prob[i], False))
        i = j
    return Transcript(text=text, audio_seconds=3.0, seconds=0.1, backend="fake", spans=tuple(spans))


class FakeSpeech:
    """Stands in for ``app.services.stt``: returns the next prepared transcript."""

    def __init__(self) -> None:
        self.queue: list[Transcript] = []

    async def transcribe(self, audio: Any, *, hotwords: Any = ()) -> Transcript:
        return self.queue.pop(0)

    def close(self) -> None:
        pass


@pytest.fixture
async def h(make_runtime) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=FakeClock(MONDAY)))


@pytest.fixture
def speech(h: Harness) -> FakeSpeech:
    fake = FakeSpeech()
    h.app.services._stt = fake  # noqa: SLF001 - the lazily built speech service, replaced for the test
    return fake


async def memo(h: Harness, speech: FakeSpeech, tmp_path: Path, user: str, tr: Transcript) -> list[Any]:
    """Send a voice memo whose transcription is ``tr``; returns what was delivered to ``user``."""
    speech.queue.append(tr)
    path = tmp_path / f"memo-{len(speech.queue)}-{id(tr)}.amr"
    path.write_bytes(b"#!AMR\n" + b"\0" * 64)  # fetched by the local channel; the fake never decodes it
    out = await h.send(h.message(user, kind=Kind.VOICE, media=str(path), media_format="amr"))
    return [d for d in out if d.recipient == user]


async def note_card(h: Harness, speech: FakeSpeech, tmp_path: Path, user: str, tr: Transcript) -> tuple[str, Card]:
    [delivered] = await memo(h, speech, tmp_path, user, tr)
    card = delivered.out.reply.card
    assert card is not None, delivered.text
    return delivered.text, card


async def tick(h: Harness) -> int:
    sent = await send_due_reminders(h.app)
    await h.settle()
    return sent


def nine_am(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=SH).astimezone(timezone.utc)


FRIDAY_MEMO = "今天去华山医院见了张科长，周五前把报价发给他"


async def test_an_unsure_due_date_is_asked_and_stored_only_when_confirmed(
        h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    text, card = await note_card(h, speech, tmp_path, "zhangwei", transcript(FRIDAY_MEMO, {"周五": 0.31}))
    assert "截止：11月27日 周五？" in text
    assert "没听清" in text and "「确认 1」确认" in text and "「改 1」改" in text
    assert [b.command for b in card.buttons][:2] == ["确认 1", "改 1"]
    # the rest of the note is stored at once; the task has its action but no date and no reminder
    [note] = await rows(h, Note)
    [task] = await rows(h, Task)
    assert note.account_id is not None and note.contact_id is not None
    assert task.text and task.due_date is None and task.remind_at is None
    assert note.fields["unsure"]["due"]["due"] == FRIDAY.isoformat()
    assert note.fields["next_action"]["due"] is None  # the stored dump holds no unconfirmed date either
    h.app.clock.set(datetime(2026, 11, 27, 10, 0, tzinfo=SH))  # type: ignore[attr-defined]
    assert await tick(h) == 0, "an unconfirmed date never reminds"
    h.app.clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=SH))  # type: ignore[attr-defined]

    [done] = await h.say("zhangwei", "确认 1")
    assert "已确认" in done and "11月27日 周五" in done and "提醒" in done
    [task] = await rows(h, Task)
    assert task.due_date == FRIDAY and task.remind_at == nine_am(FRIDAY)
    [note] = await rows(h, Note)
    assert "unsure" not in note.fields and note.fields["unsure_settled"] == {"due": "confirmed"}
    assert all(d.state.get("kind") != "confirm_account" for d in await rows(h, DialogState)), done

    # a repeated tap changes nothing and says so
    audits = len(await rows(h, AuditLog))
    [again] = await h.say("zhangwei", "确认 1")
    assert "已经确认过" in again
    assert len(await rows(h, AuditLog)) == audits
    h.app.clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=SH))  # type: ignore[attr-defined]
    assert await tick(h) == 1, "the confirmed date reminds like a typed one"


async def test_a_typed_fix_stores_the_corrected_date_and_the_old_button_answers_politely(
        h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    await note_card(h, speech, tmp_path, "zhangwei", transcript(FRIDAY_MEMO, {"周五": 0.31}))
    [fixed] = await h.say("zhangwei", "截止改成周四")
    assert "11月26日" in fixed
    [task] = await rows(h, Task)
    assert task.due_date == THURSDAY and task.remind_at == nine_am(THURSDAY)
    [note] = await rows(h, Note)
    assert "unsure" not in note.fields and note.fields["unsure_settled"] == {"due": "fixed"}
    [old] = await h.say("zhangwei", "确认 1")  # the card's button, tapped after the fix
    assert "更正过" in old and "截止" in old
    [task] = await rows(h, Task)
    assert task.due_date == THURSDAY, "the old button never brings back the misheard date"


async def test_the_fix_button_asks_for_the_one_unsure_field(h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    await note_card(h, speech, tmp_path, "zhangwei", transcript(FRIDAY_MEMO, {"周五": 0.31}))
    click = h.message("zhangwei", kind=Kind.EVENT, event="card_click", event_key="改 1")
    [ask] = [d.text for d in await h.send(click) if d.recipient == "zhangwei"]
    assert "截止改成哪天" in ask
    [answer] = await h.say("zhangwei", "周四")
    assert "11月26日" in answer
    [task] = await rows(h, Task)
    assert task.due_date == THURSDAY and task.remind_at == nine_am(THURSDAY)


async def test_an_unknown_hospital_in_a_memo_creates_no_account_before_confirmation(
        h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    text, _ = await note_card(h, speech, tmp_path, "lina", transcript("今天在阳光医院心内科见了李主任，周三前发报价"))
    assert "新客户『阳光医院』，确认建档吗？" in text and "「确认建档 1」确认" in text
    assert await rows(h, Account) == [] and await rows(h, Opportunity) == []
    [done] = await h.say("lina", "确认建档 1")
    assert "阳光医院" in done
    [account] = await rows(h, Account)
    assert account.name == "阳光医院"
    [note] = await rows(h, Note)
    assert note.account_id == account.id
    await h.say("lina", "确认建档 1")
    assert len(await rows(h, Account)) == 1


async def test_a_known_hospital_heard_unsure_is_not_filed_until_confirmed(
        h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    text, _ = await note_card(h, speech, tmp_path, "lina",
                              transcript("今天去华山医院见了张科长，周五前把报价发给他", {"华山": 0.2}))
    assert "医院：华山医院？" in text and "周五？" not in text
    assert await rows(h, Account) == [] and await rows(h, Opportunity) == []
    [note] = await rows(h, Note)
    assert note.account_id is None
    [task] = await rows(h, Task)
    assert task.due_date == FRIDAY, "only the unsure field waits; the date was heard clearly"
    click = h.message("lina", kind=Kind.EVENT, event="card_click", event_key="确认 1")
    await h.send(click)
    [account] = await rows(h, Account)
    assert account.name == "复旦大学附属华山医院"
    [note] = await rows(h, Note)
    assert note.account_id == account.id and len(await rows(h, Opportunity)) == 1
    await h.send(h.message("lina", kind=Kind.EVENT, event="card_click", event_key="确认 1"))
    assert len(await rows(h, Account)) == 1 and len(await rows(h, Opportunity)) == 1


async def test_unsure_amount_and_repaired_surname_wait_for_one_answer(
        h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    # "留主任" is repaired to "刘主任" by the voice preprocessor: a repaired surname is a guess
    tr = transcript("华山医院设备科留主任说预算八十万，下周三前把方案发过去", {"八十": 0.22})
    text, _ = await note_card(h, speech, tmp_path, "zhangwei", tr)
    assert "联系人：刘主任？" in text and "金额：80万？" in text, text
    assert text.count("没听清") == 1, "one question for all unsure fields"
    [opp] = await rows(h, Opportunity)
    assert opp.amount is None
    assert await rows(h, Contact) == []
    [note] = await rows(h, Note)
    assert note.contact_id is None and not note.fields.get("amount") and note.fields.get("contacts") == []
    extra = (await rows(h, InboxRow))[0].payload["extra"]
    assert any(row[3] for row in extra["transcript_unsure"]), "the repair is a corrected span in the inbox row"

    [done] = await h.say("zhangwei", "对")
    assert "已确认" in done
    [opp] = await rows(h, Opportunity)
    assert opp.amount == 800_000
    [contact] = await rows(h, Contact)
    [note] = await rows(h, Note)
    assert contact.name == "刘主任" and note.contact_id == contact.id and note.fields["amount"] == 800_000


async def test_a_clearly_heard_memo_is_recorded_like_typed_text(h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    said = "今天去华山医院设备科见了张科长，预算八十万，周五前把报价发给他"
    voice, _ = await note_card(h, speech, tmp_path, "zhangwei", transcript(said))
    [typed] = await h.say("lina", said)
    assert "？" not in voice and "没听清" not in voice and "「确认" not in voice
    body = [line for line in voice.splitlines() if not line.startswith("🎤")]
    assert body == [line.replace("撤销 2", "撤销 1") for line in typed.splitlines()]
    first, second = await rows(h, Task)
    assert (first.due_date, first.remind_at) == (second.due_date, second.remind_at) == (FRIDAY, nine_am(FRIDAY))
    [note_v, note_t] = await rows(h, Note)
    assert "unsure" not in note_v.fields
    assert {k: v for k, v in note_v.fields.items()} == {k: v for k, v in note_t.fields.items()}


async def test_a_typed_note_is_never_held(h: Harness) -> None:
    [card] = await h.say("zhangwei", FRIDAY_MEMO)
    assert "？" not in card.split("❓")[0]
    [task] = await rows(h, Task)
    assert task.due_date == FRIDAY


async def test_the_unsure_buttons_render_on_wecom_and_dingtalk(h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    from cards.render_dingtalk import dingtalk_message, dingtalk_webhook_payload
    from cards.render_wecom import wecom_messages

    _, card = await note_card(h, speech, tmp_path, "zhangwei", transcript(FRIDAY_MEMO, {"周五": 0.31}))
    [message] = wecom_messages(card, task_id="genjin-1")
    assert message["msgtype"] == "template_card"
    tc = message["template_card"]
    assert tc["card_type"] == "button_interaction"
    keys = {b["text"]: b["key"] for b in tc["button_list"]}
    assert keys["确认"] == "确认 1" and keys["改"] == "改 1"
    assert any("周五？" in item.get("value", "") for item in tc["horizontal_content_list"])

    key, param = dingtalk_message(card)
    assert key.startswith("sampleActionCard")
    titles = [param[k] for k in sorted(param) if k.startswith("actionTitle")]
    urls = [param[k] for k in sorted(param) if k.startswith("actionURL")]
    assert titles[:2] == ["确认", "改"]
    from urllib.parse import unquote

    assert "确认 1" in unquote(urls[0]) and "改 1" in unquote(urls[1])
    assert "周五？" in param["text"]
    payload = dingtalk_webhook_payload(card)
    assert [b["title"] for b in payload["actionCard"]["btns"]][:2] == ["确认", "改"]


async def test_an_ignored_question_is_not_repeated_and_stores_nothing(
        h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    await note_card(h, speech, tmp_path, "zhangwei", transcript(FRIDAY_MEMO, {"周五": 0.31}))
    [card] = await h.say("zhangwei", "今天在瑞金医院见了王主任，下周二前发资料")  # a new note: the question lapses
    assert "没听清" not in card
    first, _second = await rows(h, Task)
    assert first.due_date is None and first.remind_at is None
    [late] = await h.say("zhangwei", "确认 1")  # the card's button still works later
    assert "已确认" in late
    first, _second = await rows(h, Task)
    assert first.due_date == FRIDAY


async def test_spans_survive_the_round_trip_through_the_inbox_row(
        h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    await memo(h, speech, tmp_path, "zhangwei", transcript(FRIDAY_MEMO, {"周五": 0.31}))
    async with h.app.sessions() as s:
        row = (await s.scalars(select(InboxRow))).one()
    extra = row.payload["extra"]
    start = FRIDAY_MEMO.index("周五")
    assert extra["transcript"] == FRIDAY_MEMO
    assert extra["transcript_unsure"] == [[start, start + 2, 0.31, False]]


@pytest.mark.slow  # the real speech model
async def test_a_real_memo_spans_reach_the_card(make_runtime) -> None:  # type: ignore[no-untyped-def]
    """dev-019 ("东方医院采购办通知我们中标了！下周一去签合同。"): whisper base hears "东" at ~0.06,
    so the hospital rests on a low-confidence word at the default threshold."""
    h = Harness(await make_runtime({"speech": {"beam_size": 1, "max_seconds": 30}}, clock=FakeClock(MONDAY)))
    [text] = await h.voice("zhangwei", Path(__file__).parent / "fixtures" / "voice" / "dev-019.amr")
    extra = (await rows(h, InboxRow))[0].payload["extra"]
    assert extra["transcript_source"] == "local" and extra["transcript_unsure"], "spans travel with the message"
    [note] = await rows(h, Note)
    held = note.fields["unsure"]
    assert "account" in held and "东方医院" in held["account"]["value"]
    assert "医院：东方医院？" in text and "没听清" in text and "「确认 1」确认" in text
    assert await rows(h, Account) == [] and note.account_id is None
    [done] = await h.say("zhangwei", "确认 1")
    assert "东方医院" in done
    [account] = await rows(h, Account)
    [note] = await rows(h, Note)
    assert note.account_id == account.id and "unsure" not in note.fields


def test_packed_spans_are_checked_against_the_text() -> None:
    from nlp.speech.spans import pack, unpack

    text = "周五前发报价"
    spans = [Span(0, 2, "周五", 0.3, False), Span(4, 6, "报价", None, True)]
    assert unpack(pack(spans), text) == spans
    assert unpack([[0, 9, 0.1, False], [3, 2, 0.1, False], ["0", 2, 0.1, False], [0, 2, "x", False], [0, 2]], text) == []
    assert unpack("junk", text) == []


async def test_a_memo_whose_only_contact_is_unsure_is_still_recorded(
        h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    text, _ = await note_card(h, speech, tmp_path, "zhangwei", transcript("留主任说预算批下来了"))
    assert "联系人：刘主任？" in text and "没有记录" not in text
    assert await rows(h, Contact) == []
    [note] = await rows(h, Note)
    assert note.fields["unsure"]["contacts"]["value"] == ["刘主任"]


async def test_a_new_hospital_and_an_unsure_date_are_one_question_and_one_tap(
        h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    text, card = await note_card(h, speech, tmp_path, "lina",
                                 transcript("今天在阳光医院见了李主任，周五前把报价发给他", {"周五": 0.4}))
    assert text.count("❓") == 1 and "截止 11月27日 周五？" in text and "新客户『阳光医院』待建档" in text
    assert [b.command for b in card.buttons][:2] == ["确认 1", "改 1"]
    assert await rows(h, Account) == []
    [task] = await rows(h, Task)
    assert task.due_date is None
    [done] = await h.say("lina", "确认 1")
    assert "已确认" in done and "已归档到 阳光医院" in done
    [account] = await rows(h, Account)
    [task] = await rows(h, Task)
    [note] = await rows(h, Note)
    assert note.account_id == account.id and task.due_date == FRIDAY and task.remind_at == nine_am(FRIDAY)
    assert task.opportunity_id is not None
    [again] = await h.say("lina", "确认 1")
    assert "已经确认过" in again and len(await rows(h, Account)) == 1


async def test_another_reps_confirm_or_fix_changes_nothing(h: Harness, speech: FakeSpeech, tmp_path: Path) -> None:
    """The buttons carry the note id, which anyone could type: only the note's author may settle it."""
    text, _ = await note_card(h, speech, tmp_path, "lina",
                              transcript("今天去华山医院见了张科长，周五前把报价发给他", {"华山": 0.2}))
    assert "医院：华山医院？" in text
    for said in ("确认 1", "改 1", "确认建档 1", "改名 1 复旦大学附属中山医院"):
        replies = await h.say("zhangwei", said)
        assert replies and "华山" not in "".join(replies), said
    assert await rows(h, Account) == [] and await rows(h, Opportunity) == []
    [note] = await rows(h, Note)
    assert note.account_id is None and (note.fields or {}).get("account_pending") == "华山医院"
    await h.say("lina", "确认 1")
    [account] = await rows(h, Account)
    assert account.name == "复旦大学附属华山医院"
