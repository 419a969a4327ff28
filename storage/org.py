"""The organisation as data: people, teams and who manages whom, imported from TOML or CSV.

Import is an upsert keyed on each person's and team's ``key``, so sales ops can fix a
file and import it again without creating duplicates. Problems are reported all at
once with the file, the entry and what is wrong, and nothing is written unless the
whole file is valid.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Person, Team

ROLES = ("rep", "manager", "director", "sales_ops", "marketing", "finance", "admin")
_KEY = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class OrgError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class TeamSpec:
    key: str
    name: str
    region: str = ""
    manager: str = ""
    robot_webhook: str = ""


@dataclass
class PersonSpec:
    key: str
    name: str
    role: str
    team: str = ""
    manager: str = ""
    wecom_userid: str = ""
    dingtalk_staff_id: str = ""
    regions: list[str] = field(default_factory=list)
    product_lines: list[str] = field(default_factory=list)
    capacity: int = 20
    active: bool = True


@dataclass
class OrgSpec:
    teams: list[TeamSpec]
    people: list[PersonSpec]


@dataclass(frozen=True)
class ImportReport:
    teams_created: int
    teams_updated: int
    people_created: int
    people_updated: int


def _str(entry: dict[str, Any], key: str, where: str, problems: list[str], required: bool = False) -> str:
    value = entry.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        problems.append(f"{where}.{key}: must be text")
        return ""
    value = str(value).strip()
    if required and not value:
        problems.append(f"{where}.{key}: is required")
    return value


def _list(entry: dict[str, Any], key: str, where: str, problems: list[str]) -> list[str]:
    value = entry.get(key, [])
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[;；,，|]", value) if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}.{key}: must be a list of text")
        return []
    return [v.strip() for v in value if v.strip()]


def _parse(raw_teams: list[Any], raw_people: list[Any], source: str) -> OrgSpec:
    problems: list[str] = []
    teams: list[TeamSpec] = []
    for i, entry in enumerate(raw_teams):
        where = f"{source}: teams[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a table")
            continue
        unknown = set(entry) - {"key", "name", "region", "manager", "robot_webhook"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        key = _str(entry, "key", where, problems, required=True)
        if key and not _KEY.match(key):
            problems.append(f"{where}.key: {key!r} may only use letters, digits and _.@-")
        teams.append(
            TeamSpec(
                key=key,
                name=_str(entry, "name", where, problems) or key,
                region=_str(entry, "region", where, problems),
                manager=_str(entry, "manager", where, problems),
                robot_webhook=_str(entry, "robot_webhook", where, problems),
            )
        )
    people: list[PersonSpec] = []
    allowed = {f for f in PersonSpec.__dataclass_fields__}
    for i, entry in enumerate(raw_people):
        where = f"{source}: people[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a table")
            continue
        unknown = set(entry) - allowed
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        key = _str(entry, "key", where, problems, required=True)
        if key and not _KEY.match(key):
            problems.append(f"{where}.key: {key!r} may only use letters, digits and _.@-")
        role = _str(entry, "role", where, problems, required=True)
        if role and role not in ROLES:
            problems.append(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
        capacity_raw = entry.get("capacity", 20)
        try:
            capacity = int(capacity_raw) if capacity_raw not in ("", None) else 20
            if capacity < 0:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"{where}.capacity: must be a whole number >= 0 (got {capacity_raw!r})")
            capacity = 20
        active_raw = entry.get("active", True)
        active = active_raw if isinstance(active_raw, bool) else str(active_raw).strip().lower() not in ("false", "0", "no", "否")
        people.append(
            PersonSpec(
                key=key,
                name=_str(entry, "name", where, problems, required=True),
                role=role,
                team=_str(entry, "team", where, problems),
                manager=_str(entry, "manager", where, problems),
                wecom_userid=_str(entry, "wecom_userid", where, problems),
                dingtalk_staff_id=_str(entry, "dingtalk_staff_id", where, problems),
                regions=_list(entry, "regions", where, problems),
                product_lines=_list(entry, "product_lines", where, problems),
                capacity=capacity,
                active=active,
            )
        )
    _cross_check(teams, people, source, problems)
    if problems:
        raise OrgError(problems)
    return OrgSpec(teams, people)


def _cross_check(teams: list[TeamSpec], people: list[PersonSpec], source: str, problems: list[str]) -> None:
    def dupes(values: list[str], what: str) -> None:
        seen: set[str] = set()
        for value in values:
            if value and value in seen:
                problems.append(f"{source}: {what} {value!r} appears more than once")
            seen.add(value)

    dupes([t.key for t in teams], "team key")
    dupes([p.key for p in people], "person key")
    dupes([p.wecom_userid for p in people], "wecom_userid")
    dupes([p.dingtalk_staff_id for p in people], "dingtalk_staff_id")
    team_keys = {t.key for t in teams} | {p.team for p in people if p.team and not teams}
    person_keys = {p.key for p in people}
    for p in people:
        if p.team and teams and p.team not in team_keys:
            problems.append(f"{source}: person {p.key!r}: team {p.team!r} is not defined in [[teams]]")
        if p.manager and p.manager not in person_keys:
            problems.append(f"{source}: person {p.key!r}: manager {p.manager!r} is not a person in this file")
        if p.manager == p.key and p.key:
            problems.append(f"{source}: person {p.key!r}: cannot manage themselves")
    for t in teams:
        if t.manager and t.manager not in person_keys:
            problems.append(f"{source}: team {t.key!r}: manager {t.manager!r} is not a person in this file")


def parse_org_file(path: str | Path) -> OrgSpec:
    file = Path(path)
    try:
        content = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise OrgError([f"{file}: cannot read: {exc}"]) from None
    if file.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(content)))
        if not rows:
            raise OrgError([f"{file}: no rows (the first line must be the header)"])
        people = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in rows]
        teams: list[dict[str, Any]] = []
        for person in people:
            team_name = person.pop("team_name", "")
            if person.get("team") and not any(t["key"] == person["team"] for t in teams):
                teams.append({"key": person["team"], "name": team_name or person["team"]})
        for person in people:
            for k in [k for k, v in person.items() if v == ""]:
                del person[k]
        for team in teams:
            managers = [p["key"] for p in people if p.get("team") == team["key"] and p.get("role") == "manager"]
            if managers:
                team["manager"] = managers[0]
        return _parse(teams, people, str(file))
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise OrgError([f"{file}: not valid TOML: {exc}"]) from None
    unknown = set(data) - {"teams", "people"}
    if unknown:
        raise OrgError([f"{file}: unknown top-level keys {sorted(unknown)} (expected [[teams]] and [[people]])"])
    teams_raw, people_raw = data.get("teams", []), data.get("people", [])
    if not isinstance(teams_raw, list) or not isinstance(people_raw, list):
        raise OrgError([f"{file}: teams and people must be arrays of tables ([[teams]], [[people]])"])
    return _parse(teams_raw, people_raw, str(file))


async def import_org(session: AsyncSession, spec: OrgSpec) -> ImportReport:
    """Upsert teams and people by key. Runs inside the caller's transaction."""
    teams_by_key = {t.key: t for t in (await session.scalars(select(Team))).all()}
    tc = tu = pc = pu = 0
    for spec_team in spec.teams:
        team = teams_by_key.get(spec_team.key)
        if team is None:
            team = Team(key=spec_team.key, name=spec_team.name)
            session.add(team)
            teams_by_key[team.key] = team
            tc += 1
        else:
            tu += 1
        team.name, team.region = spec_team.name, spec_team.region
        team.manager_key, team.robot_webhook = spec_team.manager, spec_team.robot_webhook
    await session.flush()

    people_by_key = {p.key: p for p in (await session.scalars(select(Person))).all()}
    # Free platform ids first so swapping an id between two people does not collide.
    for spec_person in spec.people:
        existing = people_by_key.get(spec_person.key)
        if existing is not None:
            existing.wecom_userid = None
            existing.dingtalk_staff_id = None
    await session.flush()
    for spec_person in spec.people:
        person = people_by_key.get(spec_person.key)
        if person is None:
            person = Person(key=spec_person.key, name=spec_person.name, role=spec_person.role)
            session.add(person)
            people_by_key[person.key] = person
            pc += 1
        else:
            pu += 1
        person.name, person.role = spec_person.name, spec_person.role
        team = teams_by_key.get(spec_person.team) if spec_person.team else None
        person.team_id = team.id if team else None
        person.wecom_userid = spec_person.wecom_userid or None
        person.dingtalk_staff_id = spec_person.dingtalk_staff_id or None
        person.regions, person.product_lines = spec_person.regions, spec_person.product_lines
        person.capacity, person.active = spec_person.capacity, spec_person.active
    await session.flush()
    for spec_person in spec.people:
        manager = people_by_key.get(spec_person.manager) if spec_person.manager else None
        people_by_key[spec_person.key].manager_id = manager.id if manager else None
    await session.flush()
    return ImportReport(tc, tu, pc, pu)
