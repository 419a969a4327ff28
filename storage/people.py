"""Who is who across platforms: platform sender ids ↔ people in the org."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Person

_ID_COLUMN = {"local": Person.key, "wecom": Person.wecom_userid, "dingtalk": Person.dingtalk_staff_id}


def platform_id(person: Person, platform: str) -> str | None:
    return {"local": person.key, "wecom": person.wecom_userid, "dingtalk": person.dingtalk_staff_id}.get(platform)


async def find_person(session: AsyncSession, platform: str, sender: str) -> Person | None:
    column = _ID_COLUMN.get(platform)
    if column is None or not sender:
        return None
    return await session.scalar(select(Person).where(column == sender, Person.active.is_(True)))


async def person_by_key(session: AsyncSession, key: str) -> Person | None:
    return await session.scalar(select(Person).where(Person.key == key))


def route_to(person: Person, enabled: Iterable[str]) -> tuple[str, str] | None:
    """Pick the platform to reach ``person`` on: where they last wrote from, else the first enabled."""
    enabled = list(enabled)
    order = ([person.last_platform] if person.last_platform in enabled else []) + enabled
    for platform in order:
        ident = platform_id(person, platform)
        if ident:
            return platform, ident
    return None
