"""One note field contract and one stage order, from the lexicon sales ops edit.

A stage added only in an override ``stages.toml`` must work end to end: extraction picks
it, the opportunity moves to it (forward only, in the override's order), and the card
shows its label.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.clock import FakeClock
from handlers.opportunities.service import set_stage
from nlp.extract import Extractor
from nlp.fields import FIELDS, LIST_FIELDS, NOTE_FIELDS, REQUIRABLE
from nlp.lexicon import load_lexicon
from storage.models import Opportunity
from tests.conftest import RuntimeFactory
from tests.harness import MONDAY, Harness, rows

ORDER = ["first_contact", "needs", "demo", "trial", "evaluation", "tender", "negotiation", "contract", "delivery", "payment", "lost"]
OVERRIDE = f"""
order = {ORDER!r}

[stages.evaluation]
label = "院内论证"
keywords = ["论证会", "院内论证", "专家论证"]
"""


def _override(tmp_path: Path) -> Path:
    folder = tmp_path / "lexicon"
    folder.mkdir()
    (folder / "stages.toml").write_text(OVERRIDE.replace("'", '"'), encoding="utf-8")
    (folder / "required.toml").write_text('[required]\nevaluation = ["account", "next_action"]\n', encoding="utf-8")
    return folder


def test_the_contract_matches_the_extract_output() -> None:
    note = Extractor(load_lexicon()).extract("王主任说下周三前要报价", datetime(2026, 11, 23, 9, 30))
    out = note.to_dict()
    contract = {f.name for f in NOTE_FIELDS} - {"due"}  # due is nested in next_action in the JSON contract
    assert contract <= set(out), contract - set(out)
    assert set(out) - contract == {"missing", "confidence"}
    for name in LIST_FIELDS:
        assert isinstance(out[name], list), name


def test_required_fields_and_questions_use_the_contract() -> None:
    lexicon = load_lexicon()
    for stage, names in lexicon.required.items():
        assert set(names) <= set(REQUIRABLE), stage
    for name in REQUIRABLE:
        assert lexicon.question_for(name), f"no question for {name}"
    assert FIELDS["due"].label == "截止" and FIELDS["products"].label == "产品"


def test_override_stage_order_comes_from_the_toml(tmp_path: Path) -> None:
    lexicon = load_lexicon(_override(tmp_path))
    assert list(lexicon.stage_order) == ORDER
    note = Extractor(lexicon).extract("今天开了院内论证会，下周去设备科", datetime(2026, 11, 23, 9, 30))
    assert note.stage == "evaluation"
    assert "evaluation" not in load_lexicon().stage_order


async def test_an_override_stage_works_end_to_end(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = await make_runtime({"nlp": {"lexicon_dir": str(_override(tmp_path))}}, clock=FakeClock(MONDAY))
    h = Harness(runtime)
    await h.say("zhangwei", "今天去华山医院做了演示，王主任很满意")
    [reply] = await h.say("zhangwei", "华山医院今天开了院内论证会，下周三前把论证材料发给王主任")
    assert "院内论证" in reply, reply
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "evaluation"
    # the override's order decides what "forward" means: trial is before evaluation, tender after
    async with runtime.app.sessions() as session:
        async with session.begin():
            opp = await session.get(Opportunity, opp.id)
            assert opp is not None
            stages = runtime.app.services.lexicon.stage_order
            assert not await set_stage(session, opp, "trial", stages=stages, actor_id=None, note_id=None, now=MONDAY)
            assert await set_stage(session, opp, "tender", stages=stages, actor_id=None, note_id=None, now=MONDAY)
    [opp] = await rows(h, Opportunity)
    assert opp.stage == "tender"
