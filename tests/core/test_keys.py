"""Ed25519 key ids and key files: permissions, refusal to overwrite, clear failures."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deletion_audit.core import keys
from deletion_audit.core.errors import FormatError, KeyFileError


def _re(path: Path) -> str:
    return re.escape(str(path))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestKeyId:
    def test_is_hex_sha256_of_the_raw_public_key(self) -> None:
        key = keys.generate()
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        assert keys.key_id(key.public_key()) == hashlib.sha256(raw).hexdigest()

    def test_private_and_public_key_give_the_same_id(self) -> None:
        key = keys.generate()
        assert keys.key_id(key) == keys.key_id(key.public_key())

    def test_rfc8032_test_vector_1(self) -> None:
        # RFC 8032 §7.1, TEST 1: the public key of a known secret key.
        secret = bytes.fromhex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
        )
        public = bytes.fromhex(
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        )
        key = Ed25519PrivateKey.from_private_bytes(secret)
        assert keys.raw_public(key) == public
        assert keys.key_id(key) == hashlib.sha256(public).hexdigest()


class TestRawPublicKey:
    def test_round_trip(self) -> None:
        public = keys.generate().public_key()
        assert keys.raw_public(keys.public_key_from_raw(keys.raw_public(public))) == (
            keys.raw_public(public)
        )

    @pytest.mark.parametrize("size", [0, 31, 33, 64])
    def test_wrong_length_is_a_format_error(self, size: int) -> None:
        with pytest.raises(FormatError, match=f"got {size}"):
            keys.public_key_from_raw(b"\x01" * size)


class TestSavePrivateKey:
    def test_file_is_mode_0600_and_loads_back(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        key = keys.generate()
        keys.save_private_key(path, key)
        assert _mode(path) == 0o600
        assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert keys.raw_public(keys.load_private_key(path)) == keys.raw_public(key)

    def test_refuses_to_overwrite_and_leaves_the_old_key(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        keys.save_private_key(path, keys.generate())
        before = path.read_bytes()
        with pytest.raises(KeyFileError, match=f"{_re(path)} already exists"):
            keys.save_private_key(path, keys.generate())
        assert path.read_bytes() == before

    def test_refuses_to_write_through_a_symlink(self, tmp_path: Path) -> None:
        target = tmp_path / "elsewhere"
        link = tmp_path / "k"
        link.symlink_to(target)
        with pytest.raises(KeyFileError, match="already exists"):
            keys.save_private_key(link, keys.generate())
        assert not target.exists()

    def test_missing_directory_names_the_path(self, tmp_path: Path) -> None:
        path = tmp_path / "no-such-dir" / "k"
        with pytest.raises(KeyFileError, match=_re(path)):
            keys.save_private_key(path, keys.generate())

    def test_encrypted_key_round_trip(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        key = keys.generate()
        keys.save_private_key(path, key, passphrase=b"correct horse")
        assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
        loaded = keys.load_private_key(path, passphrase=b"correct horse")
        assert keys.raw_public(loaded) == keys.raw_public(key)

    def test_empty_passphrase_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(KeyFileError, match="empty passphrase"):
            keys.save_private_key(tmp_path / "k", keys.generate(), passphrase=b"")
        assert not (tmp_path / "k").exists()


class TestLoadPrivateKey:
    def test_wrong_passphrase_names_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        keys.save_private_key(path, keys.generate(), passphrase=b"right")
        with pytest.raises(KeyFileError, match=f"wrong passphrase for {_re(path)}"):
            keys.load_private_key(path, passphrase=b"wrong")

    def test_missing_passphrase_says_it_is_encrypted(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        keys.save_private_key(path, keys.generate(), passphrase=b"right")
        with pytest.raises(KeyFileError, match=f"{_re(path)} is encrypted"):
            keys.load_private_key(path)

    def test_passphrase_for_a_plain_key_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        keys.save_private_key(path, keys.generate())
        with pytest.raises(KeyFileError, match="not encrypted"):
            keys.load_private_key(path, passphrase=b"x")

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "absent"
        with pytest.raises(KeyFileError, match=f"{_re(path)} does not exist"):
            keys.load_private_key(path)

    def test_not_pem(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        path.write_bytes(b"\x00\x01 not a key")
        with pytest.raises(KeyFileError, match=f"{_re(path)} is not a PEM file"):
            keys.load_private_key(path)

    def test_damaged_pem(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        path.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        with pytest.raises(KeyFileError, match=f"{_re(path)} does not hold a readable private key"):
            keys.load_private_key(path)

    def test_a_public_key_file_is_not_a_private_key(self, tmp_path: Path) -> None:
        path = tmp_path / "k.pub"
        keys.save_public_key(path, keys.generate().public_key())
        with pytest.raises(KeyFileError, match="not a private key file"):
            keys.load_private_key(path)

    def test_not_ed25519(self, tmp_path: Path) -> None:
        path = tmp_path / "ec"
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        with pytest.raises(KeyFileError, match="holds a key of type EC; an Ed25519 key is"):
            keys.load_private_key(path)


class TestPublicKeyFiles:
    def test_save_and_load(self, tmp_path: Path) -> None:
        path = tmp_path / "k.pub"
        public = keys.generate().public_key()
        keys.save_public_key(path, public)
        assert path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
        assert keys.raw_public(keys.load_public_key(path)) == keys.raw_public(public)

    def test_save_refuses_to_overwrite(self, tmp_path: Path) -> None:
        path = tmp_path / "k.pub"
        keys.save_public_key(path, keys.generate().public_key())
        with pytest.raises(KeyFileError, match="already exists"):
            keys.save_public_key(path, keys.generate().public_key())

    def test_a_private_key_file_gives_its_public_half(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        key = keys.generate()
        keys.save_private_key(path, key)
        assert keys.raw_public(keys.load_public_key(path)) == keys.raw_public(key)

    def test_an_encrypted_private_key_points_at_the_pub_file(self, tmp_path: Path) -> None:
        path = tmp_path / "k"
        keys.save_private_key(path, keys.generate(), passphrase=b"pw")
        with pytest.raises(KeyFileError, match=r"encrypted private key; give .*k\.pub"):
            keys.load_public_key(path)

    def test_not_ed25519(self, tmp_path: Path) -> None:
        path = tmp_path / "ec.pub"
        pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        path.write_bytes(pem)
        with pytest.raises(KeyFileError, match=f"{_re(path)} holds a key of type EC; an Ed25519"):
            keys.load_public_key(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(KeyFileError, match="does not exist"):
            keys.load_public_key(tmp_path / "absent.pub")


class TestWriteKeypair:
    def test_writes_both_files_and_returns_the_key_id(self, tmp_path: Path) -> None:
        path = tmp_path / "signer"
        kid = keys.write_keypair(path)
        assert _mode(path) == 0o600
        assert (tmp_path / "signer.pub").exists()
        assert keys.key_id(keys.load_private_key(path)) == kid
        assert keys.key_id(keys.load_public_key(tmp_path / "signer.pub")) == kid

    def test_pub_suffix_is_appended_not_substituted(self, tmp_path: Path) -> None:
        keys.write_keypair(tmp_path / "signer.pem")
        assert (tmp_path / "signer.pem.pub").exists()

    def test_refuses_if_the_private_file_exists(self, tmp_path: Path) -> None:
        path = tmp_path / "signer"
        path.write_text("keep me")
        with pytest.raises(KeyFileError, match="already exists"):
            keys.write_keypair(path)
        assert path.read_text() == "keep me"
        assert not (tmp_path / "signer.pub").exists()

    def test_refuses_if_the_public_file_exists_without_writing_half(
        self, tmp_path: Path
    ) -> None:
        # Regression: a stale PATH.pub must not leave a fresh private key behind whose
        # public half is someone else's.
        (tmp_path / "signer.pub").write_text("stale")
        with pytest.raises(KeyFileError, match=r"signer\.pub already exists"):
            keys.write_keypair(tmp_path / "signer")
        assert not (tmp_path / "signer").exists()

    def test_encrypted_pair(self, tmp_path: Path) -> None:
        path = tmp_path / "signer"
        kid = keys.write_keypair(path, passphrase=b"pw")
        assert keys.key_id(keys.load_private_key(path, passphrase=b"pw")) == kid
