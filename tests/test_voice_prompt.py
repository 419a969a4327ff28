"""Issue 16, per-rep prompt: a memo's hotwords start with what this rep is most likely to say.

The rep's own accounts (aliases and names) and contacts from their notes, leads and open deals,
then the products of their lines, then the lexicon. Only the sender's own records are read: one
rep's prompt never names another rep's (or team's) accounts. No speech model is needed: the
hotword list is checked directly and through the voice preprocessor with a fake recogniser.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.messages import Kind
from handlers.notes.voice import REP_TERM_CHARS, REP_TERM_DAYS, memo_hotwords, rep_terms
from nlp.speech import Transcript
from nlp.speech.text import MAX_PROMPT_HOTWORD_CHARS, prompt_hotwords
from storage.db import transaction
from storage.models import Account, Contact, Lead, Note, Opportunity, Person
from storage.people import person_by_key
from tests.harness import MONDAY, Harness

OWN = "宿迁市钟吾医院"  # outside the lexicon, the default prompt and the alias list
OWN_ALIAS = "钟吾医院"
OTHER_TEAM = "兴隆县滦阳医院"  # a north-team rep's account
SAME_TEAM = "邳州市运河医院"  # another east-team rep's account


class RecordingSpeech:
    """Stands in for ``app.services.stt``: remembers the hotwords of each call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def transcribe(self, audio: Any, *, hotwords: Any = ()) -> Transcript:
        self.calls.append(list(hotwords))
        return Transcript(text="今天去钟吾医院见了孙主任，下周一送样机", audio_seconds=3.0, seconds=0.1, backend="fake")

    def close(self) -> None:
        pass


@pytest.fixture
async def h(make_runtime) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(await make_runtime(clock=FakeClock(MONDAY)))


async def _person(session: Any, key: str) -> Person:
    person = await person_by_key(session, key)
    assert person is not None
    return person


async def _seed(h: Harness) -> None:
    async with transaction(h.app.sessions) as session:
        zhangwei, lina, liuyang = [await _person(session, k) for k in ("zhangwei", "lina", "liuyang")]
        own = Account(name=OWN, aliases=[OWN_ALIAS])
        other, same, led = Account(name=OTHER_TEAM), Account(name=SAME_TEAM), Account(name="睢宁县人民医院")
        old = Account(name="沭阳县中医院")
        session.add_all([own, other, same, led, old])
        await session.flush()
        contact = Contact(account_id=own.id, name="孙主任")
        session.add(contact)
        await session.flush()
        now = h.app.clock.now()
        session.add_all([
            Note(author_id=zhangwei.id, account_id=own.id, contact_id=contact.id, raw_text="…", created_at=now),
            Note(author_id=zhangwei.id, account_id=old.id, raw_text="…", created_at=now - timedelta(days=REP_TERM_DAYS + 5)),
            Note(author_id=lina.id, account_id=same.id, raw_text="…", created_at=now),
            Note(author_id=liuyang.id, account_id=other.id, raw_text="…", created_at=now),
            Opportunity(account_id=led.id, owner_id=zhangwei.id, stage="needs", status="open",
                        last_activity_at=now - timedelta(days=2)),
            Opportunity(account_id=other.id, owner_id=liuyang.id, stage="needs", status="open",
                        last_activity_at=now - timedelta(days=2)),
            Lead(hospital="新沂市第二人民医院", contact="葛科长", assignee_id=zhangwei.id, status="claimed",
                 created_at=now - timedelta(days=1)),
            Lead(hospital="丰宁县中医院", contact="骆主任", assignee_id=liuyang.id, status="claimed", created_at=now),
        ])


async def test_a_reps_own_account_outside_the_default_prompt_leads_the_prompt(h: Harness) -> None:
    await _seed(h)
    default = prompt_hotwords(h.app.services.lexicon.hotwords(), MAX_PROMPT_HOTWORD_CHARS)
    assert OWN_ALIAS not in default and OWN not in default
    terms = await rep_terms(h.app, "local", "zhangwei")
    assert {OWN_ALIAS, OWN, "孙主任", "睢宁县人民医院", "新沂市第二人民医院", "葛科长"} <= set(terms.accounts)
    assert "沭阳县中医院" not in terms.accounts, "notes older than REP_TERM_DAYS do not count"
    assert "支架" in terms.products and "CT" not in terms.products, "the products of the rep's own line (心血管) only"
    words = memo_hotwords(h.app, terms)
    prompt = prompt_hotwords(words, MAX_PROMPT_HOTWORD_CHARS)
    assert prompt[0] == OWN_ALIAS, "the most recent account first"
    assert OWN in prompt and "孙主任" in prompt
    priority = h.app.services.lexicon.speech_priority
    first_lexicon = prompt.index(priority[0])
    assert sum(len(t) + 1 for t in prompt[:first_lexicon]) <= REP_TERM_CHARS, "the rep's share is bounded"
    assert {"主任", "招标", "报价", "美敦力", "迈瑞"} <= set(prompt), "the lexicon's priority terms follow"
    assert {*terms.accounts, *terms.products} <= set(words), "every rep term still corrects near-misses"


async def test_no_other_reps_or_teams_accounts_reach_a_prompt(h: Harness) -> None:
    await _seed(h)
    east = (await rep_terms(h.app, "local", "zhangwei")).accounts
    north_terms = await rep_terms(h.app, "local", "liuyang")
    north = north_terms.accounts
    assert OTHER_TEAM not in east and "丰宁县中医院" not in east and "骆主任" not in east
    assert SAME_TEAM not in east, "not even a teammate's: only the rep's own records"
    assert OTHER_TEAM in north and "丰宁县中医院" in north and OWN not in north and OWN_ALIAS not in north
    assert "CT" in north_terms.products and "支架" not in north_terms.products
    assert await rep_terms(h.app, "local", "nobody") == ([], [])


async def test_the_voice_preprocessor_passes_the_reps_prompt(h: Harness, tmp_path: Path) -> None:
    await _seed(h)
    speech = RecordingSpeech()
    h.app.services._stt = speech  # the lazily built speech service, replaced for the test
    path = tmp_path / "memo.amr"
    path.write_bytes(b"#!AMR\n" + b"\0" * 64)
    await h.send(h.message("zhangwei", kind=Kind.VOICE, media=str(path), media_format="amr"))
    await h.send(h.message("liuyang", kind=Kind.VOICE, media=str(path), media_format="amr"))
    zhangwei, liuyang = speech.calls
    assert zhangwei[0] == OWN_ALIAS and OTHER_TEAM not in zhangwei
    assert liuyang[0] != OWN_ALIAS and OWN_ALIAS not in liuyang and OWN not in liuyang
    assert set(h.app.services.lexicon.hotwords()) <= set(zhangwei)
