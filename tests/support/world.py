"""A populated installation for API tests: organisations, people with tokens, one case.

    world = make_world(env)
    client.get(f"/api/v1/cases/{world.case_id}", headers=world.prosecutor.headers)

Every case role of the permission table has a person (``world.by_role(role)``), plus an
``outsider`` who is a member of nothing. Later issues' tests reuse it; ``add_agent`` makes a
minimal enrolled agent until the agent issue provides enrollment.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from deletion_audit.cases import service as cases
from deletion_audit.cases.access import case_access
from deletion_audit.cases.permissions import (
    CUSTODIAN,
    EXAMINER,
    LAB_EXAMINER,
    PROSECUTOR,
    REGULATOR,
    RESPONDENT,
    VENDOR,
    WITNESS,
    Role,
)
from deletion_audit.core import keys
from deletion_audit.identity import service as people
from deletion_audit.identity import tokens
from deletion_audit.models import Agent, AgentStatus, Organisation, OrgKind, PartyRole, User
from tests.support.log import LogEnv

CASE_NUMBER = "(2024)沪03民特25号"


@dataclass(frozen=True)
class Person:
    user_id: int
    name: str
    token: str
    organisation: str
    role: Role | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    env: LogEnv
    case_id: int
    case_number: str
    people: dict[str, Person]
    parties: dict[PartyRole, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The case's API path: ``f"{world.url}/scopes"``."""
        return f"/api/v1/cases/{self.case_id}"

    def __getitem__(self, name: str) -> Person:
        return self.people[name]

    def by_role(self, role: Role) -> Person:
        return next(p for p in self.people.values() if p.role == role)

    @property
    def prosecutor(self) -> Person:
        return self.people["prosecutor"]

    @property
    def examiner(self) -> Person:
        return self.people["examiner"]

    @property
    def company(self) -> Person:
        return self.people["officer"]

    @property
    def witness(self) -> Person:
        return self.people["witness"]

    @property
    def outsider(self) -> Person:
        return self.people["outsider"]


# (person, organisation, organisation kind, display name, party role, role in the case)
CAST: list[tuple[str, str, OrgKind, str, Role | None]] = [
    ("prosecutor", "qingpu-procuratorate", OrgKind.PROCURATORATE, "上海市青浦区人民检察院",
     PROSECUTOR),
    ("examiner", "qingpu-procuratorate", OrgKind.PROCURATORATE, "上海市青浦区人民检察院",
     EXAMINER),
    ("lab-examiner", "forensic-lab", OrgKind.FORENSIC_LAB, "司法鉴定中心", LAB_EXAMINER),
    ("officer", "sales-office", OrgKind.COMPANY, "某房地产销售中心", RESPONDENT),
    ("vendor-officer", "camera-vendor", OrgKind.COMPANY, "某摄像头供应商", VENDOR),
    ("custodian-officer", "cdc", OrgKind.GOVERNMENT, "疾病预防控制中心", CUSTODIAN),
    ("regulator", "cac-office", OrgKind.GOVERNMENT, "网信办", REGULATOR),
    ("witness", "peoples-congress", OrgKind.OTHER, "区人大常委会", WITNESS),
    ("outsider", "other-company", OrgKind.COMPANY, "无关公司", None),
]


def make_person(
    session: Session, *, name: str, org: Organisation, now: datetime, read_only: bool = False
) -> tuple[User, str]:
    """A user of ``org`` and a fresh token of theirs (the secret)."""
    user = people.create_user(session, name=name, organisation=org, actor="test", now=now)
    issued = tokens.create_token(session, user=user, read_only=read_only, actor="test", now=now)
    return user, issued.secret


def make_world(env: LogEnv, *, case_number: str = CASE_NUMBER) -> World:
    """Organisations, one person per case role (each with a read-write token), and a case
    with every party and member in it, opened by ``prosecutor``."""
    now = env.clock.now()
    found: dict[str, Person] = {}
    parties: dict[PartyRole, int] = {}
    with env.db.write() as session:
        orgs: dict[str, Organisation] = {}
        users: dict[str, User] = {}
        for person, org_name, kind, shown, role in CAST:
            if org_name not in orgs:
                orgs[org_name] = people.create_organisation(
                    session, name=org_name, display_name=shown, kind=kind, actor="test", now=now
                )
            user, secret = make_person(session, name=person, org=orgs[org_name], now=now)
            users[person] = user
            found[person] = Person(user_id=user.id, name=person, token=secret,
                                   organisation=org_name, role=role)
        case = cases.create_case(session, creator=users["prosecutor"], case_number=case_number,
                                 title="售楼处人脸信息删除", now=now).row
        access = case_access(session, user_id=users["prosecutor"].id, case_id=case.id)
        parties[PartyRole.PROCURATORATE] = access.party.id
        for person, org_name, _, _, role in CAST:
            if role is None or person == "prosecutor":
                continue
            party_role, case_role = role
            if party_role not in parties:
                parties[party_role] = cases.add_party(
                    session, access=access, organisation=org_name, role=party_role, now=now
                ).row.id
            cases.add_member(session, access=access, user_name=person,
                             party_id=parties[party_role], role=case_role, now=now)
        case_id = case.id
    return World(env=env, case_id=case_id, case_number=case_number, people=found,
                 parties=parties)


def add_agent(
    world: World, *, party: PartyRole = PartyRole.RESPONDENT,
    status: AgentStatus = AgentStatus.ACTIVE,
) -> str:
    """A minimal enrolled agent of the world's case; returns its public id."""
    key = keys.generate()
    public_id = "agt_" + secrets.token_hex(8)
    with world.env.db.write() as session:
        session.add(Agent(
            public_id=public_id, case_id=world.case_id, party_id=world.parties[party],
            key_id=keys.key_id(key), public_key=keys.raw_public(key), status=status.value,
            enrolled_at=world.env.clock.now(),
        ))
    return public_id
