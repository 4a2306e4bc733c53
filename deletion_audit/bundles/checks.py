"""The checks behind ``verify``, one method per part of the bundle.

Each reports problems through one callback (code, message) and carries on, so a tampered
bundle shows every check that catches it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deletion_audit.bundles import layout, sessions
from deletion_audit.bundles.layout import BundleIndex, EventLine, Tier, decode_event_line
from deletion_audit.bundles.manifest_check import ManifestPass, Pass
from deletion_audit.bundles.reading import BundleUnreadable, LazyEnvelopes, Members
from deletion_audit.bundles.rederive import CaseEvent, rederive
from deletion_audit.core import dsse, merkle
from deletion_audit.core.b64 import b64decode
from deletion_audit.core.canonical import parse_json
from deletion_audit.core.checkpoint import Checkpoint, parse_checkpoint_text
from deletion_audit.core.errors import CoreError
from deletion_audit.core.keys import public_key_from_raw, raw_public
from deletion_audit.core.leaves import Disclosure, Leaf, decode_leaf, opens
from deletion_audit.core.predicates import (
    KeyRegistrationPredicate,
    VerdictPredicate,
)
from deletion_audit.core.statements import parse_statement, statement_id
from deletion_audit.core.tlog_proof import parse_tlog_proof
from deletion_audit.verdicts.replay_store import (
    ItemsLoaded,
    LoadedManifest,
    ManifestFileError,
    create_items_database,
)

# Fields of the signed verdict left out of the comparison with the re-derived one. None: the
# replay takes the version and the domain time from the logged verdict event, so even
# ``asOf`` must match.
SIGNING_FIELDS: frozenset[str] = frozenset()


# Verified statement payloads kept for the replay, which would otherwise read, hash and
# decode each envelope again: all of a 1,000,000-item case's (67 MB), a bounded part of a
# larger one's.
KEPT_PAYLOADS = 96 << 20


class _Signed(NamedTuple):
    statement_id: str
    predicate: dict[str, Any]
    payload: bytes


@dataclass(frozen=True)
class _Key:
    public: Ed25519PublicKey
    subject_type: str
    subject_id: str
    index: int


@dataclass(frozen=True)
class _Event:
    index: int
    type: str
    body: Mapping[str, Any] | None


def _case_of(body: Mapping[str, Any]) -> object:
    value = body.get("caseId", body.get("case"))
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _loaded(job: ManifestPass, path: Path) -> LoadedManifest:
    """The items the manifest's pass loaded for the replay (waiting for it)."""
    outcome = job.outcome()
    if outcome.loaded is None:
        raise ManifestFileError(f"{path}: {outcome.load_error or 'no items were loaded'}")
    return LoadedManifest(header=dict(outcome.loaded["header"]),
                          count=int(outcome.loaded["count"]),
                          sha256=str(outcome.loaded["sha256"]))


class NoConsistencyProof(Exception):
    """The bundle cannot be anchored to the kept checkpoint: it proves nothing wrong."""


class Checker:
    def __init__(self, members: Members, *, report_problem: Callable[[str, str], None]) -> None:
        self.members = members
        self.problem = report_problem
        self.checkpoint: Checkpoint | None = None
        self.tier: Tier | None = None
        self.case_id: int | None = None
        self.log_vkey: str | None = None
        self.counts: dict[str, int] = {}
        self._key_lines: list[tuple[EventLine, Leaf]] = []
        self.keys: dict[str, _Key] = {}
        self.revoked: dict[str, int] = {}
        self.events: list[_Event] = []
        self.envelope_paths: dict[str, str] = {}
        self.manifest_path: Path | None = None
        self.service_key: Ed25519PublicKey | None = None
        self._manifest_pass: ManifestPass | None = None
        self.manifest_items: ItemsLoaded | None = None
        self.verified: dict[tuple[str, bytes], bytes | None] = {}
        """(SHA-256, raw public key) of each envelope whose signature verified with the key
        its event's signer registered — the replay need not verify those bytes again —
        with its payload while :data:`KEPT_PAYLOADS` allows (nor read it again)."""

    # -- the log ---------------------------------------------------------------------

    def _lines(self, name: str) -> list[tuple[int, bytes]]:
        if not self.members.has(name):
            self.problem("file_missing", f"the bundle has no {name}")
            return []
        return [(n, raw) for n, raw in enumerate(self.members.lines(name), start=1)]

    def read_keys(self) -> None:
        for number, raw in self._lines(layout.KEYS):
            try:
                line = decode_event_line(raw, where=f"{layout.KEYS} line {number}")
                leaf = decode_leaf(line.leaf)
            except CoreError as exc:
                self.problem("key_registration", str(exc))
                continue
            if leaf.type == "key-registration" and leaf.event is not None and \
                    leaf.event.get("subjectType") == "log":
                self.log_vkey = str(leaf.event.get("noteVerifierKey"))
            self._key_lines.append((line, leaf))

    def _included(self, line: EventLine, where: str) -> bool:
        assert self.checkpoint is not None  # noqa: S101 - checked before any proof
        try:
            merkle.verify_inclusion(merkle.leaf_hash(line.leaf), line.index,
                                    self.checkpoint.size, list(line.proof),
                                    self.checkpoint.root_hash)
        except CoreError as exc:
            self.problem("inclusion_proof", f"{where} (log index {line.index}): {exc}")
            return False
        return True

    def check_consistency_file(self, trusted: Checkpoint | None = None) -> None:
        """Every proof in consistency.jsonl, and (with a kept checkpoint) the one from it."""
        assert self.checkpoint is not None  # noqa: S101 - set by the caller
        found = trusted is None or trusted.size == self.checkpoint.size
        if trusted is not None and found and trusted.root_hash != self.checkpoint.root_hash:
            self.problem("consistency", f"the kept checkpoint and the bundle's have the same "
                         f"size {trusted.size} and different roots: the log forked")
        for number, raw in self._lines(layout.CONSISTENCY):
            try:
                obj = parse_json(raw, what=f"{layout.CONSISTENCY} line {number}")
                size, root = int(obj["size"]), b64decode(obj["root"])
                proof = [b64decode(h) for h in obj["proof"]]
                merkle.verify_consistency(size, self.checkpoint.size, proof, root,
                                          self.checkpoint.root_hash)
            except (CoreError, KeyError, TypeError, ValueError) as exc:
                self.problem("consistency", f"{layout.CONSISTENCY} line {number}: {exc}")
                continue
            if trusted is not None and size == trusted.size:
                found = True
                if root != trusted.root_hash:
                    self.problem("consistency", f"the bundle's log does not extend the kept "
                                 f"checkpoint of size {size}: their roots differ")
        if not found:
            assert trusted is not None  # noqa: S101 - found starts true without one
            raise NoConsistencyProof(
                f"the bundle has no consistency proof from your checkpoint of size "
                f"{trusted.size}: ask for a bundle exported with --consistent-with it")

    def check_keys(self, *, proven: bool = True) -> None:
        """Each key event's inclusion, and the keys they register (``proven=False``: keys
        read without their proofs, only to report what else was changed)."""
        for line, leaf in self._key_lines:
            where = f"{layout.KEYS}: {leaf.type}"
            if proven and not self._included(line, where):
                continue
            if leaf.event is None or leaf.type not in ("key-registration", "key-revocation"):
                self.problem("key_registration", f"{where} at {line.index} is not a key event")
                continue
            if leaf.type == "key-revocation":
                self.revoked[str(leaf.event.get("keyId"))] = line.index
                continue
            try:
                reg = KeyRegistrationPredicate.model_validate(dict(leaf.event))
            except ValueError as exc:
                self.problem("key_registration", f"{where} at {line.index}: {exc}")
                continue
            self.keys[reg.key_id] = _Key(public_key_from_raw(b64decode(reg.public_key)),
                                         reg.subject_type, reg.subject_id, line.index)
        self.counts["keys"] = len(self.keys)
        self.counts["revocations"] = len(self.revoked)
        service = [k for k in self.keys.values() if k.subject_type == "service"]
        if not service:
            self.problem("key_registration", "the bundle has no logged service key "
                         "registration")
        else:
            self.service_key = service[0].public
        if self.log_vkey is None:
            self.problem("key_registration", "the bundle has no logged log key registration")

    def _key_of(self, subject_type: str, subject_id: str, before: int) -> _Key | None:
        for key in self.keys.values():
            if key.subject_type == subject_type and key.subject_id == subject_id \
                    and key.index < before:
                return key
        return None

    def _signer(self, body: Mapping[str, Any], before: int) -> _Key | None:
        """The key a statement event names (a person's) or its agent's key."""
        # Registered before the statement was logged. A revocation does not void what ingest
        # accepted after it (a decommissioned agent flushes its outbox within a grace
        # period); the replay weighs revocations as the verdict does.
        key_id = body.get("keyId")
        if isinstance(key_id, str):
            key = self.keys.get(key_id)
            return key if key is not None and key.index < before else None
        return self._key_of("agent", str(body.get("agentId")), before)

    # -- the index -------------------------------------------------------------------

    def read_index(self) -> BundleIndex | None:
        if not self.members.has(layout.INDEX):
            self.problem("file_missing", f"the bundle has no {layout.INDEX}")
            return None
        try:
            envelope = dsse.Envelope.from_json(self.members.read(layout.INDEX))
            if envelope.payload_type != layout.INDEX_PAYLOAD_TYPE:
                raise CoreError(f"payload type is {envelope.payload_type}")
            if self.service_key is None:
                raise CoreError("no service key to check it with")
            verified = dsse.verify(envelope, [self.service_key])
            return layout.parse_index(verified.payload)
        except CoreError as exc:
            self.problem("index_signature", f"{layout.INDEX} is not signed by the logged "
                         f"service key: {exc}")
            return None

    def check_files(self, index: BundleIndex) -> None:
        listed = {f.path: f for f in index.files}
        present = self.members.names - {layout.INDEX}
        for name in self.members.duplicates:
            self.problem("file_added", f"{name} is in the zip more than once")
        for name in sorted(present - set(listed)):
            self.problem("file_added", f"{name} is not in the signed index")
        for name in sorted(set(listed) - present):
            self.problem("file_missing", f"{name} is in the signed index but not in the "
                         "bundle")
        for name in sorted(present & set(listed)):
            sha, size = self.members.digest(name)
            if (sha, size) != (listed[name].sha256, listed[name].size):
                self.problem("file_altered", f"{name} differs from the signed index "
                             f"(SHA-256 {sha}, {size} bytes)")
        self.counts["files"] = len(listed)

    # -- events ----------------------------------------------------------------------

    def check_events(self) -> None:
        last = -1
        for number, raw in self._lines(layout.EVENTS):
            where = f"{layout.EVENTS} line {number}"
            try:
                line = decode_event_line(raw, where=where)
                leaf = decode_leaf(line.leaf)
            except CoreError as exc:
                self.problem("event", str(exc))
                continue
            if line.index <= last:
                self.problem("event", f"{where}: log index {line.index} out of order")
            last = line.index
            self._included(line, where)
            body = self._open(line, leaf, where)
            # Events that name no case (a signer's key registration) may belong to it.
            if body is not None and self.case_id is not None \
                    and _case_of(body) not in (self.case_id, None):
                self.problem("event", f"{where}: a {leaf.type} event of another case")
            self.events.append(_Event(line.index, leaf.type, body))
        self.counts["events"] = len(self.events)

    def _open(self, line: EventLine, leaf: Leaf, where: str) -> Mapping[str, Any] | None:
        if leaf.disclosure is Disclosure.PUBLIC:
            if line.body is not None or line.salt is not None:
                self.problem("event", f"{where}: a public event carries a body beside its leaf")
            return leaf.event
        if line.body is None or line.salt is None:
            if self.tier is Tier.COURT:
                self.problem("event_opening", f"{where}: the court bundle does not open this "
                             f"{leaf.type} event")
            return None
        if self.tier is Tier.PUBLIC:
            self.problem("disclosure", f"{where}: the public bundle opens a restricted "
                         f"{leaf.type} event")
        try:
            ok = opens(leaf, line.body, line.salt)
        except CoreError:
            ok = False
        if not ok:
            self.problem("event_opening", f"{where}: the body and salt do not open the logged "
                         f"commitment of this {leaf.type} event")
            return None
        return line.body

    # -- statements ------------------------------------------------------------------

    def _statement(self, data: bytes, keys: list[Ed25519PublicKey], where: str,
                   code: str, *, parse: bool = True) -> _Signed | None:
        """The statement id, predicate and payload of a signed envelope (``parse=False``: no
        predicate — an agent's statement is parsed by the replay, which needs its fields)."""
        try:
            envelope = dsse.Envelope.from_json(data)
            verified = dsse.verify(envelope, keys)
            predicate = dict(parse_statement(verified.payload).predicate) if parse else {}
        except CoreError as exc:
            self.problem(code, f"{where}: {exc}")
            return None
        return _Signed(statement_id(verified.payload), predicate, verified.payload)

    def check_envelopes(self) -> None:
        if self.tier is not Tier.COURT:
            return
        kept_bytes = 0
        for event in self.events:
            if event.type not in layout.ENVELOPE_EVENTS or event.body is None:
                continue
            sha = str(event.body.get("envelopeSha256"))
            path = layout.envelope_path(sha)
            if not self.members.has(path):
                self.problem("envelope", f"the {event.type} at log index {event.index} names "
                             f"envelope {sha}, which the bundle lacks")
                continue
            data = self.members.read(path)
            # Members.read hashed it on the way.
            if self.members.digests[path][0] != sha:
                self.problem("envelope", f"{path} is not the envelope its event names")
                continue
            self.envelope_paths[sha] = path
            key = self._signer(event.body, event.index)
            if key is None:
                if event.type == "attestation":
                    self.problem("key_registration", f"the signer of log index {event.index} "
                                 "has no live key logged before it")
                continue  # a refusal is no evidence; its signer may be unknown
            signed = self._statement(data, [key.public], path, "envelope", parse=False)
            if signed is None:
                continue
            kept = signed.payload if kept_bytes + len(signed.payload) <= KEPT_PAYLOADS else None
            kept_bytes += len(kept or b"")
            self.verified[(sha, raw_public(key.public))] = kept
            if signed.statement_id != event.body.get("statementId"):
                self.problem("envelope", f"{path}: its statement id is not the logged one")
        self.counts["envelopes"] = len(self.envelope_paths)

    def check_manifest(self, workdir: Path) -> None:
        logged = [e for e in self.events if e.type == "manifest" and e.body is not None]
        if not self.members.has(layout.MANIFEST_ENVELOPE):
            if logged or (self.tier is Tier.COURT and self.members.has(layout.MANIFEST)):
                self.problem("manifest", f"the bundle has no {layout.MANIFEST_ENVELOPE}")
            return
        try:
            envelope = dsse.Envelope.from_json(self.members.read(layout.MANIFEST_ENVELOPE))
            predicate = parse_statement(envelope.payload).predicate
        except CoreError as exc:
            self.problem("manifest", f"{layout.MANIFEST_ENVELOPE}: {exc}")
            return
        key = self.keys.get(str(predicate.get("examinerKeyId")))
        if key is None:
            self.problem("key_registration", "the manifest's examiner key has no logged "
                         "registration in the bundle")
            return
        if self.tier is not Tier.COURT:
            self._statement(self.members.read(layout.MANIFEST_ENVELOPE), [key.public],
                            layout.MANIFEST_ENVELOPE, "manifest")
            return
        if not self.members.has(layout.MANIFEST):
            self.problem("manifest", f"the court bundle has no {layout.MANIFEST}")
            return
        # The replay names the member in its errors; nothing reads it from disk.
        path = Path(layout.MANIFEST)
        self.manifest_path = path
        registered = logged[-1].body if logged else None
        manifest_id = registered.get("manifest") if registered is not None else None
        items = None
        if isinstance(manifest_id, int) and not isinstance(manifest_id, bool):
            # The replay's items, loaded on the same pass (it attaches this database).
            items = workdir / "manifest-items.sqlite3"
            create_items_database(items)
        job = ManifestPass(Pass(
            bundle=str(self.members.path), member=layout.MANIFEST,
            envelope=self.members.read(layout.MANIFEST_ENVELOPE),
            examiner_key=raw_public(key.public),
            registered=dict(registered) if registered is not None else None,
            items=str(items) if items is not None else None,
            manifest_id=manifest_id if items is not None else None,
        ), size=self.members.size(layout.MANIFEST))
        self._manifest_pass = job
        if items is not None and isinstance(manifest_id, int):
            self.manifest_items = ItemsLoaded(items, manifest_id, lambda: _loaded(job, path))

    def finish_manifest(self) -> None:
        """The manifest's digest, count, root, header and signature, against the examiner's
        statement and the case's registration (checked beside the replay)."""
        if self._manifest_pass is None:
            return
        job, self._manifest_pass = self._manifest_pass, None
        outcome = job.outcome()
        if outcome.unreadable is not None:
            raise BundleUnreadable(outcome.unreadable)
        if outcome.digest is not None:
            self.members.digests[layout.MANIFEST] = outcome.digest
        if outcome.problem is not None:
            self.problem("manifest", f"{layout.MANIFEST}: {outcome.problem}")
        else:
            self.counts["items"] = outcome.count

    def check_verdict(self) -> dict[str, Any] | None:
        logged = [e for e in self.events if e.type == "verdict" and e.body is not None]
        if not self.members.has(layout.VERDICT):
            self.problem("verdict", f"the bundle has no {layout.VERDICT}")
            return None
        data = self.members.read(layout.VERDICT)
        sha = layout.sha256_hex(data)
        event = next((e for e in logged if e.body is not None
                      and e.body.get("envelopeSha256") == sha), None)
        if event is None or event.body is None:
            self.problem("verdict", f"{layout.VERDICT} is not a logged verdict of the case")
            return None
        if event is not logged[-1]:
            self.problem("verdict", "the bundle's verdict is not the latest one it logs")
        self._check_verdict_proof(event.index)
        if self.service_key is None:
            return None
        signed = self._statement(data, [self.service_key], layout.VERDICT, "verdict")
        if signed is None:
            return None
        predicate = signed.predicate
        try:
            VerdictPredicate.model_validate(predicate, by_alias=True, by_name=False)
        except ValueError as exc:
            self.problem("verdict", f"{layout.VERDICT}: {exc}")
            return None
        if (predicate.get("outcome"), predicate.get("version"),
                predicate.get("asOfLogSize")) != (event.body.get("outcome"),
                                                  event.body.get("version"),
                                                  event.body.get("asOfLogSize")):
            self.problem("verdict", "the signed verdict and its logged event disagree")
        return predicate

    def _check_verdict_proof(self, index: int) -> None:
        """The verdict's event as a C2SP tlog-proof: the same leaf, the same checkpoint."""
        if not (self.members.has(layout.VERDICT_PROOF) and self.members.has(
                layout.VERDICT_LEAF)):
            self.problem("verdict", f"the bundle has no {layout.VERDICT_PROOF} and "
                         f"{layout.VERDICT_LEAF}")
            return
        assert self.checkpoint is not None  # noqa: S101 - checked before any proof
        try:
            proof = parse_tlog_proof(self.members.read(layout.VERDICT_PROOF).decode())
            leaf = self.members.read(layout.VERDICT_LEAF)
            merkle.verify_inclusion(merkle.leaf_hash(leaf), proof.index,
                                    self.checkpoint.size, list(proof.hashes),
                                    self.checkpoint.root_hash)
            if parse_checkpoint_text(proof.checkpoint) != self.checkpoint:
                raise CoreError("its checkpoint is not the bundle's")
        except (CoreError, UnicodeDecodeError) as exc:
            self.problem("inclusion_proof", f"{layout.VERDICT_PROOF}: {exc}")
            return
        if proof.index != index:
            self.problem("verdict", f"{layout.VERDICT_PROOF} proves log index {proof.index}, "
                         f"the verdict's event is at {index}")

    def check_judgments(self) -> None:
        """Court tier: each judgment and review outcome named by an opened event is in the
        bundle, signed with the service key, with the logged statement id and finding."""
        if self.tier is not Tier.COURT:
            return
        count = 0
        for event in self.events:
            if not layout.judges(event.type, event.body):
                continue
            assert event.body is not None  # noqa: S101 - judges() says so
            path = layout.judgment_path(str(event.body.get("envelopeSha256")))
            if not self.members.has(path):
                self.problem("judgment", f"the {event.type} at log index {event.index} has "
                             f"no envelope {path}")
                continue
            data = self.members.read(path)
            if layout.sha256_hex(data) != event.body.get("envelopeSha256"):
                self.problem("judgment", f"{path} is not the envelope its event names")
                continue
            signed = self._statement(data, [self.service_key] if self.service_key else [],
                                     path, "judgment")
            if signed is None:
                continue
            sid, predicate = signed.statement_id, signed.predicate
            finding = event.body.get("finding")
            if event.type == "review":
                finding = f"review-{str(event.body.get('outcome')).replace('_', '-')}"
            if sid != event.body.get("statementId") or predicate.get("finding") != finding:
                self.problem("judgment", f"{path} and its logged event disagree")
                continue
            count += 1
        self.counts["judgments"] = count

    def check_summaries(self) -> None:
        count = 0
        for event in self.events:
            if event.type != "summary" or event.body is None:
                continue
            path = layout.summary_path(str(event.body.get("envelopeSha256")))
            if not self.members.has(path):
                self.problem("summary", f"the summary at log index {event.index} has no "
                             f"envelope {path}")
                continue
            signed = self._statement(self.members.read(path),
                                     [self.service_key] if self.service_key else [],
                                     path, "summary") if self.service_key else None
            if signed is None:
                continue
            predicate = signed.predicate
            if (predicate.get("objects"), predicate.get("itemsPresent"),
                    predicate.get("scanId")) != (event.body.get("objects"),
                                                 event.body.get("itemsPresent"),
                                                 event.body.get("scanId")):
                self.problem("summary", f"{path} and its logged event disagree")
            count += 1
        self.counts["summaries"] = count

    def check_sessions(self) -> list[sessions.BundledSession]:
        """Each on-site session record: its co-signatures against the participants' logged
        key registrations and its sign-off rule; in a court bundle, that it is the record
        the session logged and that its item lists open its commitment."""
        logged = None
        if self.tier is Tier.COURT:
            logged = {str(e.body.get("recordDigest")) for e in self.events
                      if e.type == "session" and e.body is not None
                      and e.body.get("action") == "recorded"}
        found = sessions.check_sessions(self.members, keys=self.keys, case_id=self.case_id,
                                        tier=self.tier, logged_records=logged,
                                        problem=self.problem)
        self.counts["sessions"] = len(found)
        return found

    def check_chains(self) -> None:
        """Each agent's statements, numbered and linked: a gap or a broken link means a
        statement is missing from the bundle."""
        chains: dict[str, dict[int, tuple[str, str | None, str]]] = defaultdict(dict)
        for event in self.events:
            body = event.body
            if event.type not in layout.ENVELOPE_EVENTS or body is None:
                continue
            seq = body.get("seq")
            if isinstance(seq, int):
                chains[str(body.get("agentId"))][seq] = (
                    str(body.get("statementId")), body.get("prev"), event.type)
        for agent, by_seq in chains.items():
            seqs = sorted(by_seq)
            missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))
            if missing:
                self.problem("chain", f"agent {agent}: statement(s) {missing[:5]} are missing")
            for seq in seqs:
                _, prev, kind = by_seq[seq]
                before = by_seq.get(seq - 1)
                if kind == "attestation" and before is not None and prev != before[0]:
                    self.problem("chain", f"agent {agent}: statement {seq} does not follow "
                                 f"statement {seq - 1}")

    # -- the verdict, re-derived ------------------------------------------------------

    def rederive(self, signed: Mapping[str, Any],
                 workdir: Path) -> tuple[dict[str, Any] | None, bool]:
        events = [CaseEvent(e.index, e.type, e.body) for e in self.events
                  if e.body is not None]
        (workdir / "replay").mkdir(exist_ok=True)
        try:
            result = rederive(events, envelopes=LazyEnvelopes(self.members,
                                                              self.envelope_paths),
                              manifest_path=self.manifest_path,
                              as_of_size=int(signed["asOfLogSize"]),
                              workdir=workdir / "replay", items=self.manifest_items,
                              verified=self.verified)
        except (CoreError, ValueError, KeyError, LookupError) as exc:
            self.problem("verdict_mismatch", f"the verdict cannot be re-derived from the "
                         f"bundle's contents: {exc}")
            return None, True
        if result is None:
            return None, False
        differ = sorted(k for k in set(result) | set(signed) if k not in SIGNING_FIELDS
                        and result.get(k) != signed.get(k))
        if differ:
            self.problem("verdict_mismatch", "the verdict re-derived from the bundle differs "
                         f"from the signed one in: {', '.join(differ)}")
        return result, True
