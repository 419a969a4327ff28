"""Organisation import: TOML and CSV, re-importable without duplicates, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import create_engine, session_factory, transaction, upgrade
from storage.models import Person, Team
from storage.org import OrgError, import_org, parse_org_file
from tests.conftest import DEMO_ORG

CSV = """key,name,role,team,team_name,manager,wecom_userid,dingtalk_staff_id,regions,product_lines,capacity
mgr1,周经理,manager,south,华南组,,ZhouJL,d-100,广东;广西,心血管,10
rep1,吴敏,rep,south,华南组,mgr1,WuMin,d-101,广东,心血管;影像,30
rep2,郑强,rep,south,华南组,mgr1,ZhengQ,,广西,,
"""


async def _people(factory) -> dict[str, Person]:  # type: ignore[no-untyped-def]
    async with factory() as session:
        return {p.key: p for p in (await session.scalars(select(Person))).all()}


async def test_import_toml_twice_without_duplicates(db_url: str) -> None:
    await upgrade(db_url)
    engine = create_engine(db_url)
    factory = session_factory(engine)
    try:
        spec = parse_org_file(DEMO_ORG)
        async with transaction(factory) as session:
            first = await import_org(session, spec)
        async with transaction(factory) as session:
            second = await import_org(session, spec)
        assert (first.people_created, second.people_created, second.people_updated) == (12, 0, 12)
        people = await _people(factory)
        assert len(people) == 12
        assert people["zhangwei"].manager_id == people["wang_jl"].id
        async with factory() as session:
            assert len((await session.scalars(select(Team))).all()) == 2
    finally:
        await engine.dispose()


async def test_import_csv_and_swap_ids(db_url: str, tmp_path: Path) -> None:
    await upgrade(db_url)
    engine = create_engine(db_url)
    factory = session_factory(engine)
    file = tmp_path / "org.csv"
    file.write_text(CSV, encoding="utf-8")
    try:
        async with transaction(factory) as session:
            await import_org(session, parse_org_file(file))
        people = await _people(factory)
        assert people["rep1"].regions == ["广东"] and people["rep1"].product_lines == ["心血管", "影像"]
        assert people["rep1"].capacity == 30 and people["rep2"].dingtalk_staff_id is None
        # two people swap WeCom ids in the next import: no unique-key collision
        file.write_text(CSV.replace("WuMin", "TMP").replace("ZhengQ", "WuMin").replace("TMP", "ZhengQ"), encoding="utf-8")
        async with transaction(factory) as session:
            await import_org(session, parse_org_file(file))
        people = await _people(factory)
        assert people["rep1"].wecom_userid == "ZhengQ" and people["rep2"].wecom_userid == "WuMin"
    finally:
        await engine.dispose()


def test_org_errors_are_specific(tmp_path: Path) -> None:
    file = tmp_path / "org.toml"
    file.write_text(
        """
[[teams]]
key = "t1"
name = "一组"
manager = "ghost"

[[people]]
key = "a"
name = "甲"
role = "boss"
team = "t9"

[[people]]
key = "a"
role = "rep"
capacity = "lots"
""",
        encoding="utf-8",
    )
    with pytest.raises(OrgError) as err:
        parse_org_file(file)
    text = "\n".join(err.value.problems)
    assert "people[0].role: 'boss' is not one of" in text
    assert "people[1].name: is required" in text
    assert "people[1].capacity: must be a whole number" in text
    assert "person key 'a' appears more than once" in text
    assert "team 't9' is not defined" in text
    assert "team 't1': manager 'ghost' is not a person" in text
