"""tlog-proof files: written, parsed and verified against a log we build here."""

from __future__ import annotations

import pytest

from deletion_audit.core import keys, merkle
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.checkpoint import Checkpoint, sign_checkpoint
from deletion_audit.core.errors import ProofError, SignatureError
from deletion_audit.core.note import NoteSigner
from deletion_audit.core.tlog_proof import TlogProof, TlogProofError, parse_tlog_proof

ORIGIN = "audit.example/log"


def _log(n: int) -> tuple[list[bytes], merkle.MemoryTree, NoteSigner, str]:
    data = [f"entry {i}".encode() for i in range(n)]
    tree = merkle.MemoryTree()
    for d in data:
        tree.append(merkle.leaf_hash(d))
    signer = NoteSigner(ORIGIN, keys.generate())
    note = sign_checkpoint(Checkpoint(ORIGIN, n, tree.root()), signer)
    return data, tree, signer, note


class TestTlogProof:
    @pytest.mark.parametrize("extra", [None, b"\x00context"])
    def test_roundtrip_and_verify(self, extra: bytes | None) -> None:
        data, tree, signer, note = _log(13)
        proof = TlogProof(index=6, hashes=tuple(tree.inclusion_proof(6, 13)), checkpoint=note,
                          extra=extra)
        text = proof.text()
        assert text.startswith("c2sp.org/tlog-proof@v1\n")
        parsed = parse_tlog_proof(text)
        assert parsed == proof
        assert parsed.verify(data[6], signer.verifier).size == 13

    def test_wrong_entry_or_key_fails(self) -> None:
        data, tree, signer, note = _log(5)
        proof = TlogProof(index=2, hashes=tuple(tree.inclusion_proof(2, 5)), checkpoint=note)
        with pytest.raises(ProofError):
            proof.verify(data[3], signer.verifier)
        with pytest.raises(SignatureError):
            proof.verify(data[2], NoteSigner(ORIGIN, keys.generate()).verifier)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("c2sp.org/tlog-proof@v1\nindex 1\n", "blank line"),
            ("c2sp.org/tlog-proof@v2\nindex 1\n\nx", "start with"),
            ("c2sp.org/tlog-proof@v1\nindex 01\n\nx", "index"),
            ("c2sp.org/tlog-proof@v1\n\nx", "index"),
            ("c2sp.org/tlog-proof@v1\nindex 1\n" + b64encode(bytes(31)) + "\n\nx", "31 bytes"),
            ("c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\nx", "extra"),
        ],
    )
    def test_malformed(self, text: str, message: str) -> None:
        with pytest.raises(TlogProofError, match=message):
            parse_tlog_proof(text)
