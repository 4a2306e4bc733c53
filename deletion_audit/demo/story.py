"""Case 1 of CASES.md told end to end over real processes: the examiner's manifest, the
prosecutor's case, the company's agents (on its main host and its backup server) finding
the leftovers, deletion, a challenged re-scan, the verdict, the month after (the +30-day
follow-up review, demo/month_after.py), the bundles and their offline verification.

Everything goes through the product's own surfaces — ``deletion-audit`` commands, the
HTTP API with each person's bearer token, ``deletion-audit-agent`` with its TOML
configuration — so the demo shows what its users would do, and fails where they would.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from deletion_audit.demo import company, summary
from deletion_audit.demo.api import Api, Person
from deletion_audit.demo.evidence import Evidence, generate
from deletion_audit.demo.layout import Layout, write_secret
from deletion_audit.demo.month_after import MonthAfter
from deletion_audit.demo.processes import (
    Commands,
    DemoError,
    Process,
    child_env,
    start_s3,
    start_server,
)
from deletion_audit.demo.say import Narrator

T = TypeVar("T")

CASE_NUMBER = "(2024)沪03民特25号"
LOCATION = "SH-QP/NVR1"
BEIJING = timezone(timedelta(hours=8))
OUTCOME_ZH = {"verified": "已证实删除", "insufficient_evidence": "证据不足",
              "not_verified": "未证实删除"}
# (user, organisation, organisation kind, shown organisation, shown person)
PEOPLE = (
    ("prosecutor", "qingpu-procuratorate", "procuratorate", "上海市青浦区人民检察院", "检察官"),
    ("examiner", "forensic-lab", "forensic_lab", "司法鉴定中心", "鉴定人"),
    ("officer", "sales-office", "company", "某房地产销售中心", "公司负责人"),
)
# tick(now) every second, so the reviews the domain clock makes due open and close at once.
TICK_SECONDS = "1"


@dataclass(frozen=True)
class Options:
    out: Path
    scale: str
    seed: int = 2024
    s3: bool = True
    jobs: int | None = None


@dataclass
class Scope:
    id: int
    name: str
    label: str
    agent: Path
    """The configuration of the agent bound to it (on the host that holds it)."""


@dataclass
class Result:
    outcome: str = ""
    case_id: int = 0
    written: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    """Every verdict shown, in order."""
    review: dict[str, Any] = field(default_factory=dict)
    """The +30-day follow-up review as the server shows it once closed."""
    restored: int = 0
    """Copies an old backup brought back onto the backup server in the month after."""


class Story:
    def __init__(self, options: Options, narrator: Narrator) -> None:
        self.options = options
        self.say = narrator
        self.layout = Layout(options.out.resolve())
        self.commands = Commands(env=child_env())
        self.stack = ExitStack()
        self.people: dict[str, Person] = {}
        self.result = Result()
        self.scopes: list[Scope] = []
        self.vkey = ""
        self.api: Api
        self.evidence: Evidence
        self.parties: dict[str, int] = {}
        self.s3_endpoint: str | None = None
        self.nvr: Path
        self.backup: Path
        self.crm: Path
        self.backup_server: Path
        self.leftovers: company.Leftovers
        self.server: Process
        self.port: int | None = None
        self.clock_env: dict[str, str] = {}
        """The domain clock offset the server runs with (set for the month after)."""

    def run(self) -> Result:
        with self.stack:
            self.generate_evidence()
            self.install()
            self.serve()
            self.build_manifest()
            self.open_case()
            self.register_and_oblige()
            self.company_systems()
            self.declare_scopes()
            self.enroll_agent()
            found = self.first_scan()
            self.verdict("删除前", "before deletion")
            self.delete(found)
            self.challenge()
            self.final_verdict()
            MonthAfter(self).run()
            self.bundles()
            summary.write(self)
        return self.result

    # -- the setting ------------------------------------------------------------------------

    def generate_evidence(self) -> None:
        opts = self.options
        self.say.step(f"生成合成证据（规模 {opts.scale}）",
                      f"Generating synthetic evidence (scale {opts.scale})")
        self.layout.prepare()
        started = time.monotonic()
        self.evidence = generate(self.layout.evidence, scale=opts.scale, seed=opts.seed,
                                 jobs=opts.jobs)
        counts = self.evidence.counts
        how = ("沿用上次生成的文件", "reused from an earlier run") if self.evidence.reused \
            else (f"用时 {time.monotonic() - started:.1f} 秒",
                  f"in {time.monotonic() - started:.1f} s")
        self.say.detail(f"{counts.images:,} 张人脸图片、{counts.videos:,} 个视频，"
                        f"{counts.people:,} 名合成人员，{how[0]}",
                        f"{counts.images:,} face images, {counts.videos:,} videos of "
                        f"{counts.people:,} synthetic people, {how[1]}")
        self.say.detail("全部为程序绘制的卡通脸并标注 SYNTHETIC，从不使用真实人脸",
                        "all drawn cartoon faces labelled SYNTHETIC, never real faces")
        self.result.written["evidence"] = self.layout.evidence

    def install(self) -> None:
        self.say.step("初始化数据库和透明日志，建立机构、人员、令牌和签名密钥",
                      "Setting up the database, the transparency log, organisations, "
                      "people, tokens and signing keys")
        data = ["--data-dir", str(self.layout.data)]
        self.commands.cli("db", "upgrade", *data)
        init = self.commands.cli("log", "init", *data).stdout
        self.vkey = next((line.split(": ", 1)[1] for line in init.splitlines()
                          if line.startswith("log key: ")), "")
        if not self.vkey:
            raise DemoError("`deletion-audit log init` printed no log key")
        self.layout.verifier_key.write_text(self.vkey + "\n", encoding="utf-8")
        self.result.written["log verifier key"] = self.layout.verifier_key
        for user, org, kind, shown, role in PEOPLE:
            self.commands.cli("org", "add", org, "--kind", kind, "--display-name", shown, *data)
            self.commands.cli("user", "add", user, "--org", org, "--display-name", role, *data)
            # 90 days: the people still sign in for the month after (the +30-day review).
            token = self.commands.cli("token", "create", user, "--days", "90", "--note",
                                      "demo", *data).stdout.strip()
            write_secret(self.layout.token_file(user), token + "\n")
            key = self.layout.key(user)
            self.commands.cli("keygen", str(key))
            self.people[user] = Person(name=user, organisation=org, token=token, key=key)
        self.say.detail(f"日志验证密钥 {self.vkey}", "the log's verifier key")
        self.say.detail("检察官、鉴定人、公司负责人各有令牌和 Ed25519 密钥（权限 0600）",
                        "prosecutor, examiner and company officer each have a token and an "
                        "Ed25519 key (mode 0600)")
        self.result.written["keys"] = self.layout.keys

    def serve(self) -> None:
        self.say.step("启动服务（本机 127.0.0.1）", "Starting the server on 127.0.0.1")
        base = self.start_server("server.log")
        served = self.api.call(None, "GET", "/api/v1/log/key").strip()
        if served != self.vkey:
            raise DemoError("the server's log key is not the one `log init` created")
        for person in self.people.values():
            self.commands.cli("key", "register", f"{person.key}.pub", "--server", base,
                              "--token-file", str(self.layout.token_file(person.name)),
                              "--label", "demo")
        self.say.detail(f"{base}，API 文档 {base}/docs；三把签名公钥已登记为公开日志事件",
                        "three signing keys registered as public log events")

    @property
    def server_env(self) -> dict[str, str]:
        """The server's (and scheduler's) environment: tick(now) every second, and the
        domain clock offset of the month after once it is set."""
        return dict(self.commands.env, DELETION_AUDIT_TICK_INTERVAL_SECONDS=TICK_SECONDS,
                    **self.clock_env)

    def start_server(self, log: str, *, clock_offset: str | None = None,
                     jobs: bool = True) -> str:
        """Start the server (again on the same port, so the agents find it); with
        ``clock_offset`` its domain clock runs that far ahead (development only)."""
        self.clock_env = ({"DELETION_AUDIT_DOMAIN_CLOCK_OFFSET": clock_offset}
                          if clock_offset else {})
        self.server, base = start_server(self.layout.data, log=self.layout.logs / log,
                                         env=self.server_env, port=self.port, jobs=jobs)
        self.stack.callback(self.server.stop)
        self.port = int(base.rsplit(":", 1)[1])
        self.api = Api(base)
        self.stack.callback(self.api.close)
        return base

    def stop_server(self) -> None:
        self.api.close()
        self.server.stop()

    def build_manifest(self) -> None:
        self.say.step("鉴定人制作并签署证据清单", "The examiner builds and signs the evidence "
                      "manifest")
        layout = self.layout
        subjects = self.evidence.subjects_csv(layout.manifest_dir / "subjects.csv")
        built = json.loads(self.commands.cli(
            "manifest", "build", f"{layout.evidence}={LOCATION}", "--case", CASE_NUMBER,
            "-o", str(layout.manifest), "--subjects", str(subjects), "--subject-key",
            str(layout.keys / "subject.key"), "--examiner-pub", f"{layout.key('examiner')}.pub",
            "--json").stdout)
        self.commands.cli("manifest", "sign", str(layout.manifest), "--key",
                          str(layout.key("examiner")), "-o", str(layout.envelope))
        counts = self.evidence.counts
        if built["count"] != counts.items or built["people"] != counts.people:
            raise DemoError(f"the manifest holds {built['count']} items of {built['people']} "
                            f"people; the evidence has {counts.items} of {counts.people}")
        kinds = built["kinds"]
        self.say.detail(f"{built['count']:,} 项（图片 {kinds.get('image', 0):,}，视频 "
                        f"{kinds.get('video', 0):,}），{built['people']} 人（以假名计），"
                        f"根哈希 {built['root'][:16]}…",
                        f"{built['count']:,} items of {built['people']} people (counted by "
                        "pseudonym); only digests, never the images")
        self.result.written["manifest"] = layout.manifest
        self.result.written["manifest envelope"] = layout.envelope

    # -- the case -----------------------------------------------------------------------------

    def _case(self, path: str = "") -> str:
        return f"/api/v1/cases/{self.result.case_id}{path}"

    def open_case(self) -> None:
        self.say.step("检察官立案，加入鉴定机构和公司为当事方",
                      "The prosecutor opens the case and adds the lab and the company as "
                      "parties")
        prosecutor = self.people["prosecutor"]
        case = self.api.call(prosecutor, "POST", "/api/v1/cases", expect=201, json={
            "case_number": CASE_NUMBER, "title": "售楼处违法收集人脸信息的删除"})
        self.result.case_id = int(case["id"])
        for org, role, user, case_role in (
                ("forensic-lab", "forensic_lab", "examiner", "examiner"),
                ("sales-office", "respondent", "officer", "company_officer")):
            party = self.api.call(prosecutor, "POST", self._case("/parties"), expect=201,
                                  json={"organisation": org, "role": role})
            self.parties[role] = int(party["id"])
            self.api.call(prosecutor, "POST", self._case("/members"), expect=201,
                          json={"user": user, "party_id": party["id"], "role": case_role})
        self.say.detail(f"案号 {CASE_NUMBER}，案件编号 {self.result.case_id}",
                        f"case {self.result.case_id}")

    def register_and_oblige(self) -> None:
        self.say.step("检察官登记证据清单，设定删除义务和期限",
                      "The prosecutor registers the manifest and sets the deletion "
                      "obligation with its deadline")
        prosecutor = self.people["prosecutor"]
        with self.layout.manifest.open("rb") as manifest:
            registered = self.api.call(prosecutor, "POST", self._case("/manifests"),
                                       expect=201, files={
                                           "manifest": ("manifest.jsonl", manifest),
                                           "envelope": ("manifest.dsse.json",
                                                        self.layout.envelope.read_bytes())})
        served_on = datetime.now(BEIJING).date().isoformat()
        obligation = self.api.call(prosecutor, "POST", self._case("/obligations"), expect=201,
                                   json={"kind": "delete-manifest",
                                         "title": "永久删除违法收集的人脸图片和视频",
                                         "deadline": {"start_event": "检察建议书送达",
                                                      "served_on": served_on,
                                                      "preset": "reply-2-months"}})
        self.api.call(prosecutor, "POST", self._case("/status"),
                      json={"status": "remediating"})
        due = datetime.fromisoformat(obligation["due_at"]).astimezone(BEIJING)
        self.say.detail(f"清单 {registered['count']:,} 项已登记（鉴定人签名已核对）；"
                        f"删除义务 {served_on} 送达，期限至北京时间 {due:%Y-%m-%d %H:%M}",
                        f"manifest registered (examiner's signature checked); deletion due "
                        f"{due:%Y-%m-%d} (two months from service)")

    # -- the company --------------------------------------------------------------------------

    def company_systems(self) -> None:
        self.say.step("公司声称已删除，但其系统中仍有残留",
                      "The company claims deletion, but copies remain on its systems")
        self.leftovers = leftovers = company.choose_leftovers(self.evidence)
        root = self.layout.company
        self.nvr, self.backup = company.build_directories(self.evidence, leftovers, root)
        self.crm = company.build_database(self.evidence, leftovers, root / "crm.sqlite3")
        self.backup_server = company.build_second_host(self.evidence, root)
        self.say.detail(f"录像机目录只剩其他文件；备份目录里有 {len(leftovers.backup)} 份清单"
                        f"项目的副本；访客数据库里有 {len(leftovers.rows)} 行照片",
                        f"the recorder's directory holds other files only; the backup "
                        f"directory holds {len(leftovers.backup)} copies; the visitor "
                        f"database {len(leftovers.rows)} photo rows")
        self.say.detail("另一台主机——备份服务器——上只有其他文件",
                        "the second host, a backup server, holds other files only")
        self.s3_endpoint = self._bucket(leftovers) if self.options.s3 else None
        if self.s3_endpoint is not None:
            self.say.detail(f"对象存储桶里有 {len(leftovers.objects)} 个对象是清单项目",
                            f"the object-store bucket holds {len(leftovers.objects)} of them")
        elif not self.options.s3:
            self.say.detail("按 --no-s3 跳过对象存储", "object store skipped (--no-s3)")

    def _bucket(self, leftovers: company.Leftovers) -> str | None:
        """Start SeaweedFS and fill the bucket; None (said plainly) when it cannot run."""
        try:
            company.boto3_module()
            weed, endpoint = start_s3(self.layout.company / "s3",
                                      log=self.layout.logs / "weed.log", env=self.commands.env)
        except DemoError as exc:
            self._no_s3(str(exc))
            return None
        self.stack.callback(weed.stop)
        company.fill_bucket_when_ready(company.s3_client(endpoint), self.evidence,
                                       leftovers.objects)
        return endpoint

    def _no_s3(self, why: str) -> None:
        self.say.detail(f"没有可用的 S3 服务，跳过对象存储范围（{why}）",
                        "no S3 server available: the object-store scope is skipped")
        self.result.notes.append(f"object store skipped: {why}")

    def declare_scopes(self) -> None:
        self.say.step("公司申报数据可能存放的范围", "The company declares where the data may "
                      "live (scopes)")
        declared: list[tuple[str, str, str, dict[str, Any], str]] = [
            ("nvr", "录像机目录 recorder", "directory", {"root": str(self.nvr)}, LOCATION),
            ("backup", "备份目录 backup", "directory", {"root": str(self.backup)},
             "SH-QP/NAS1"),
            ("crm", "访客数据库 visitor database", "sql",
             {"table": company.TABLE, "key_columns": ["id"], "content_column": "photo",
              "encoding": "raw"}, "SH-QP/DB1"),
            ("backup-server", "备份服务器 backup server", "directory",
             {"root": str(self.backup_server)}, "SH-QP/BAK2"),
        ]
        if self.s3_endpoint is not None:
            declared.append(("bucket", "对象存储 bucket", "object_store",
                             {"endpoint": self.s3_endpoint, "bucket": company.BUCKET,
                              "prefix": company.PREFIX}, "SH-QP/OSS1"))
        officer = self.people["officer"]
        for name, label, kind, spec, code in declared:
            row = self.api.call(officer, "POST", self._case("/scopes"), expect=201, json={
                "name": name, "kind": kind, "spec": spec, "expects_data": True,
                "location_codes": [code]})
            agent = (self.layout.second_agent_config if name == "backup-server"
                     else self.layout.agent_config)
            self.scopes.append(Scope(id=int(row["id"]), name=name, label=label, agent=agent))
        self.say.detail("、".join(s.label.split()[0] for s in self.scopes),
                        ", ".join(s.label.split(maxsplit=1)[1] for s in self.scopes))

    @property
    def agents(self) -> list[Path]:
        """The agents' configurations: the main host's, then the backup server's."""
        return [self.layout.agent_config, self.layout.second_agent_config]

    def _agent_config(self, config: Path) -> Path:
        lines = [f"server = {json.dumps(self.api.base)}",
                 f"state_dir = {json.dumps(str(config.parent / 'state'))}",
                 "retry_attempts = 3", ""]
        for scope in (s for s in self.scopes if s.agent == config):
            if scope.name == "crm":
                lines += [f'[scopes."{scope.id}"]', f"url = {json.dumps(f'sqlite:///{self.crm}')}"]
            if scope.name == "bucket":
                lines += [f'[scopes."{scope.id}"]', f'access_key_id = "{company.S3_KEYS[0]}"',
                          f'secret_access_key = "{company.S3_KEYS[1]}"']
        # It holds credentials: readable by the agent's user only.
        return write_secret(config, "\n".join(lines) + "\n")

    def enroll_agent(self) -> None:
        self.say.step("检察官为公司的两台主机各签发一次性注册令牌，两个代理程序分别注册",
                      "The prosecutor issues a one-time enrollment token per company host; "
                      "each host's agent enrolls")
        fingerprint = hashlib.sha256(self.vkey.encode()).hexdigest()[:16]
        for config, host_zh in zip(self.agents, ("主机", "备份服务器"), strict=True):
            token = self.api.call(self.people["prosecutor"], "POST",
                                  self._case("/enrollment-tokens"), expect=201, json={
                                      "party_id": self.parties["respondent"],
                                      "scope_ids": [s.id for s in self.scopes
                                                    if s.agent == config],
                                      "expires_in_hours": 24})["token"]
            if not token.endswith("." + fingerprint):
                raise DemoError("the enrollment token does not carry this log's key "
                                "fingerprint")
            enrolled = self.commands.agent(self._agent_config(config), "enroll", "--token",
                                           token).stdout.strip()
            scopes = "、".join(s.label.split()[0] for s in self.scopes if s.agent == config)
            self.say.detail(f"{host_zh}（{scopes}）：代理程序先核对了日志密钥指纹 "
                            f"{fingerprint}，再生成自己的密钥",
                            f"the agent checked the log key fingerprint before trusting the "
                            f"server; {enrolled}")
        self.result.written["agent configuration"] = self.layout.agent_config
        self.result.written["backup server's agent configuration"] = \
            self.layout.second_agent_config

    # -- finding, deleting, checking ------------------------------------------------------------

    def _scope(self, scope_id: str | int) -> Scope:
        scope = next((s for s in self.scopes if str(s.id) == str(scope_id)), None)
        if scope is None:
            raise DemoError(f"scope {scope_id} is not one the company declared")
        return scope

    def _label(self, scope_id: str | int) -> str:
        return next((s.label for s in self.scopes if str(s.id) == str(scope_id)), str(scope_id))

    def _receipt(self, config: Path) -> dict[str, Any]:
        status = self.commands.agent_json(config, "status")
        if status.get("outbox") or status.get("dead_letters"):
            raise DemoError(f"the agent has {status.get('outbox')} statement(s) unsent and "
                            f"{len(status.get('dead_letters') or [])} refused; see "
                            "`deletion-audit-agent status`")
        receipt = status.get("last_receipt")
        if not isinstance(receipt, dict):
            raise DemoError("the agent has sent no statement yet")
        return receipt

    def first_scan(self) -> dict[str, int]:
        self.say.step("代理程序扫描公司的系统", "The company's agents scan its systems")
        found: dict[str, int] = {}
        scans: list[dict[str, Any]] = []
        for done in self.each_agent(lambda config: self.commands.agent_json(config, "scan")):
            if done.get("failed"):
                raise DemoError(f"the scan failed for scope(s): {done['failed']}")
            scans += done["scans"]
        for scan in scans:
            found[str(scan["scope_id"])] = int(scan["present"])
            self.say.detail(f"{self._label(scan['scope_id'])}：{scan['objects']:,} 个对象，"
                            f"其中 {scan['present']:,} 个是清单项目（覆盖 {scan['coverage']}）",
                            f"{scan['objects']:,} objects, {scan['present']:,} manifest items "
                            "present")
        self.say.detail(f"共发现 {sum(found.values()):,} 份残留；每次扫描都回应了挑战并已签名上报",
                        f"{sum(found.values()):,} leftovers found; each scan answered a "
                        "challenge and was signed and sent")
        return found

    def verdict(self, when_zh: str, when_en: str,
                receipts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Wait for the verdict that covers each agent's newest statement (or the given
        receipts: leaf hash and time received), and show it."""
        self.say.step(f"等待服务重新计算裁决（{when_zh}）",
                      f"Waiting for the server's verdict ({when_en})")
        verdict: dict[str, Any] = {}
        # Versions only grow: the verdict covering the last receipt covers the earlier ones.
        for receipt in receipts or self.each_agent(self._receipt):
            verdict = self.api.verdict_covering(self.people["prosecutor"],
                                                self.result.case_id, receipt)
        self.show_verdict(verdict)
        return verdict

    def show_verdict(self, verdict: dict[str, Any]) -> None:
        outcome = verdict["outcome"]
        self.say.detail(f"裁决：{OUTCOME_ZH[outcome]}", f"the verdict: {outcome}")
        report, as_of = verdict["report"], verdict["as_of"]
        items, people = report["items"], report["people"]
        self.say.detail(f"第 {verdict['version']} 版，依据日志前 {as_of['log_size']} 条；"
                        f"清单 {items['total']:,} 项：仍存在 {items['present']:,}，"
                        f"已删除 {items['deleted']:,}，未见 {items['unseen']:,}；"
                        f"{people['total']} 人中 {people['all_deleted']} 人的全部项目已删除",
                        f"version {verdict['version']} as of log size {as_of['log_size']}: "
                        f"{items['present']:,} present, {items['deleted']:,} deleted, "
                        f"{items['unseen']:,} never seen")
        if items["unseen"]:
            self.say.detail("“未见”是在申报范围内从未发现的项目：只如实报告，不计为已删除",
                            "'never seen' items were not found in any declared scope: reported "
                            "as such, never counted as deleted")
        for reason in report["reasons"]:
            self.say.detail(f"原因 {reason['code']}：{reason['zh']}", reason["en"])
        self.result.outcome = outcome
        self.result.outcomes.append(outcome)

    def delete(self, found: dict[str, int]) -> None:
        self.say.step("公司删除残留，代理程序签署删除声明并重新扫描",
                      "The company deletes the leftovers; its agent attests the deletion and "
                      "re-scans")
        for scope_id, present in found.items():
            if not present:
                continue
            done = self.commands.agent_json(self._scope(scope_id).agent, "delete",
                                            "--scope", scope_id, "--yes")
            self.say.detail(f"{self._label(scope_id)}：删除 {done['deleted']:,} 份，"
                            f"重新扫描仍存在 {done['rescan']['present']}",
                            f"deleted {done['deleted']:,}, "
                            f"{done['rescan']['present']} left on re-scan")
        self.api.call(self.people["prosecutor"], "POST", self._case("/status"),
                      json={"status": "verifying"})

    def challenge(self) -> None:
        self.say.step("检察官发出新的挑战，代理程序据此重新扫描（复查）",
                      "The prosecutor issues fresh challenges; the agents answer each with a "
                      "new scan (re-check)")
        issued = self.api.call(self.people["prosecutor"], "POST", self._case("/challenges"),
                               expect=201, json={"ttl_hours": 1})["challenges"]
        self.answer(len(issued))

    def each_agent(self, work: Callable[[Path], T]) -> list[T]:
        """``work`` for each host's agent, side by side (they are separate machines); the
        results in the order of :attr:`agents`."""
        with ThreadPoolExecutor(max_workers=len(self.agents)) as pool:
            return list(pool.map(work, self.agents))

    def run_agents(self) -> list[dict[str, Any]]:
        """Each host's agent runs one cycle (``run --once``: a heartbeat, its open challenges
        answered, its outbox sent); their log events."""
        runs = self.each_agent(lambda config: self.commands.agent(config, "run", "--once"))
        return [json.loads(line) for run in runs for line in run.stderr.splitlines()
                if line.startswith("{")]

    def answer(self, issued: int) -> list[dict[str, Any]]:
        """The agents answer their open challenges with new scans; the scans, one line per
        scope."""
        events = self.run_agents()
        done = [e for e in events if e.get("event") == "task_done"]
        if len(done) != issued:
            failed = [e.get("error") for e in events if e.get("event", "").endswith("failed")]
            raise DemoError(f"the agents answered {len(done)} of {issued} challenges"
                            f"{': ' + str(failed[0]) if failed else ''}")
        for event in done:
            self.say.detail(f"{self._label(event['scope_id'])}：{event['objects']:,} 个对象，"
                            f"清单项目 {event['present']}",
                            f"{event['objects']:,} objects, {event['present']} manifest items")
        return done

    def final_verdict(self) -> None:
        verdict = self.verdict("删除并经挑战复查后", "after deletion and the challenged re-scan")
        if verdict["outcome"] != "verified":
            codes = ", ".join(r["code"] for r in verdict["report"]["reasons"])
            raise DemoError(f"the verdict is {verdict['outcome']}, not verified: {codes}")

    # -- evidence for anyone ------------------------------------------------------------------

    def bundles(self) -> None:
        from deletion_audit.cli import COMMANDS

        self.say.step("导出法庭版和公开版证据包", "Exporting the court and public bundles")
        if "export" not in COMMANDS or "verify" not in COMMANDS:
            self.say.detail("此版本尚无 export / verify 命令：证据包和离线核验跳过",
                            "this build has no export/verify commands yet: bundles and "
                            "offline verification skipped")
            self.result.notes.append("bundles skipped: no export/verify command in this build")
            return
        case = str(self.result.case_id)
        paths = {}
        # Exported on the server's domain clock: after the events it holds.
        commands = Commands(env=dict(self.commands.env, **self.clock_env))
        for tier in ("court", "public"):
            path = self.layout.bundles / f"case-{case}-{tier}.zip"
            commands.cli("export", case, "--tier", tier, "-o", str(path), "--data-dir",
                         str(self.layout.data))
            paths[tier] = path
            self.result.written[f"{tier} bundle"] = path
            self.say.detail(f"{path.name}（{path.stat().st_size:,} 字节）",
                            f"{path.name} ({path.stat().st_size:,} bytes)")
        self.say.step("离线核验两个证据包（只需日志验证密钥，无需服务器）",
                      "Verifying both bundles offline (the log's verifier key is the only "
                      "anchor; no server)")
        with ThreadPoolExecutor(max_workers=len(paths)) as pool:  # offline: side by side
            checks = list(pool.map(lambda path: self.commands.cli(
                "verify", str(path), "--log-key", self.vkey, "--lang", "zh", check=False),
                paths.values()))
        for tier, checked in zip(paths, checks, strict=True):
            last = (checked.stdout.strip().splitlines() or ["(no output)"])[-1]
            if checked.returncode != 0:
                raise DemoError(f"`deletion-audit verify` of the {tier} bundle exited "
                                f"{checked.returncode}: {(checked.stderr or last).strip()}")
            self.say.detail(f"{tier}: {last}")
