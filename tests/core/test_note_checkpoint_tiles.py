"""Signed notes, checkpoints and tile paths, against the C2SP examples and real notes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.core import keys, tiles
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.checkpoint import (
    Checkpoint,
    open_checkpoint,
    parse_checkpoint_text,
    sign_checkpoint,
)
from deletion_audit.core.errors import FormatError, SignatureError
from deletion_audit.core.note import (
    NoteError,
    NoteSigner,
    NoteVerifier,
    note_key_id,
    open_note,
    parse_note,
    sign_note,
)

# C2SP signed-note.md, "Examples".
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXs"
    "YjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# transparency-dev/formats log/note_test.go: a checkpoint of the Go checksum database.
GO_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
GO_NOTE = (
    "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n"
    "\u2014 sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949r"
    "j4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)


class TestSpecVectors:
    def test_spec_example_verifies(self) -> None:
        verifier = NoteVerifier.from_vkey(SPEC_VKEY)
        assert verifier.vkey() == SPEC_VKEY
        assert verifier.key_id == note_key_id(verifier.name, verifier.public_key)
        note = open_note(SPEC_NOTE, verifier)
        assert note.text == "This is an example message.\n"
        assert note.verified_by == (verifier,)

    def test_go_checksum_database_checkpoint(self) -> None:
        verifier = NoteVerifier.from_vkey(GO_VKEY)
        note = open_note(GO_NOTE, verifier)
        cp = parse_checkpoint_text(note.text)
        assert (cp.origin, cp.size) == ("go.sum database tree", 6476701)
        assert cp.text() == note.text

    def test_one_changed_byte_fails(self) -> None:
        verifier = NoteVerifier.from_vkey(GO_VKEY)
        with pytest.raises(SignatureError, match="does not verify"):
            open_note(GO_NOTE.replace("6476701", "6476702"), verifier)

    def test_unknown_key_is_ignored_but_one_known_is_needed(self) -> None:
        spec = NoteVerifier.from_vkey(SPEC_VKEY)
        with pytest.raises(SignatureError, match="not signed by a known key"):
            open_note(GO_NOTE, spec)
        # Both verifiers known: the Go note verifies, the example key is simply absent.
        assert open_note(GO_NOTE, [spec, NoteVerifier.from_vkey(GO_VKEY)]).text


class TestNotes:
    def test_sign_and_open_with_two_keys(self) -> None:
        a = NoteSigner("log.example/a", keys.generate())
        b = NoteSigner("witness.example/b", keys.generate())
        note = sign_note("hello\n", a, b)
        opened = open_note(note, [b.verifier])
        assert opened.verified_by == (b.verifier,)
        assert len(opened.signatures) == 2

    def test_wrong_signature_by_known_key_is_refused_even_with_a_good_one(self) -> None:
        key = keys.generate()
        a = NoteSigner("a.example", key)
        good = sign_note("text\n", a)
        forged_line = NoteSigner("a.example", key).signature_line("other\n")
        with pytest.raises(SignatureError):
            open_note(good + forged_line, a.verifier)

    @pytest.mark.parametrize(
        ("note", "message"),
        [
            ("no blank line\n\u2014 a AAAA\n", "blank line"),
            ("text\n\n- a AAAAAAAA\n", "does not start"),
            ("text\n\n\u2014 a\n", "must be"),
            ("text\n\n\u2014 a AA==\n", "too short"),
            ("text\n\n\u2014 a !!!!!!!!\n", "outside the alphabet"),
            ("text\n\n\u2014 a AAAAAAAA", "end with a newline"),
            ("te\x01xt\n\n\u2014 a AAAAAAAA\n", "control character"),
        ],
    )
    def test_malformed_notes_get_precise_errors(self, note: str, message: str) -> None:
        with pytest.raises(NoteError, match=message):
            parse_note(note)

    @pytest.mark.parametrize(
        "vkey",
        [
            "example.com/foo+530d903a",
            "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        ],
    )
    def test_bad_verifier_keys_are_refused(self, vkey: str) -> None:
        with pytest.raises(NoteError):
            NoteVerifier.from_vkey(vkey)

    def test_note_error_is_a_format_error(self) -> None:
        assert issubclass(NoteError, FormatError)


class TestCheckpoints:
    def test_roundtrip_and_origin_must_match_key(self) -> None:
        signer = NoteSigner("log.example/x", keys.generate())
        cp = Checkpoint("log.example/x", 12, bytes(range(32)))
        note = sign_checkpoint(cp, signer)
        assert open_checkpoint(note, signer.verifier) == cp
        other = NoteSigner("log.example/y", signer.private_key)
        forged = sign_note(Checkpoint("log.example/x", 12, bytes(32)).text(), other)
        with pytest.raises(NoteError, match="origin"):
            open_checkpoint(forged, other.verifier)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("origin\n12\n", "needs"),
            ("origin\n012\n" + b64encode(bytes(32)) + "\n", "leading zeros"),
            ("origin\n-1\n" + b64encode(bytes(32)) + "\n", "decimal"),
            ("origin\n1\n" + b64encode(bytes(31)) + "\n", "31 bytes"),
            ("\n1\n" + b64encode(bytes(32)) + "\n", "origin"),
        ],
    )
    def test_malformed_checkpoints(self, text: str, message: str) -> None:
        with pytest.raises(NoteError, match=message):
            parse_checkpoint_text(text)

    def test_extensions_survive(self) -> None:
        cp = Checkpoint("o", 1, bytes(32), ("ext one",))
        assert parse_checkpoint_text(cp.text()) == cp


class TestTiles:
    @pytest.mark.parametrize(
        ("index", "path"),
        [(0, "000"), (7, "007"), (999, "999"), (1000, "x001/000"), (1234067, "x001/x234/067")],
    )
    def test_index_encoding(self, index: int, path: str) -> None:
        assert tiles.encode_index(index) == path
        assert tiles.parse_tile_path(f"tile/0/{path}").index == index

    def test_paths_roundtrip(self) -> None:
        assert tiles.tile_path(1, 1234067, 5) == "tile/1/x001/x234/067.p/5"
        assert tiles.parse_tile_path("tile/1/x001/x234/067.p/5") == tiles.TileRef(1, 1234067, 5)
        assert tiles.entries_path(3) == "tile/entries/003"
        assert tiles.parse_tile_path("tile/entries/003.p/255").width == 255

    @pytest.mark.parametrize(
        "path",
        ["tile/0/1", "tile/0/x1/000", "tile/0/x000/001", "tile/0/000.p/0", "tile/0/000.p/256",
         "tile/0/000.p/07", "tile/9/000", "tile/a/000", "tiles/0/000", "tile/0/", "tile/0/1000"],
    )
    def test_bad_paths(self, path: str) -> None:
        with pytest.raises(FormatError):
            tiles.parse_tile_path(path)

    @given(st.integers(min_value=0, max_value=10**12))
    def test_any_index_roundtrips(self, index: int) -> None:
        assert tiles.parse_tile_path(tiles.tile_path(2, index)).index == index

    def test_widths(self) -> None:
        assert tiles.tile_width_for(0, 0, 560) == 256
        assert tiles.tile_width_for(0, 2, 560) == 48
        assert tiles.tile_width_for(0, 3, 560) is None
        assert tiles.tile_width_for(1, 0, 560) == 2
        assert tiles.tile_width_for(1, 0, 255) is None
        assert tiles.tile_width_for(1, 0, 256**2) == 256

    def test_entry_bundles(self) -> None:
        entries = [b"", b"a", bytes(300)]
        data = tiles.encode_entry_bundle(entries)
        assert data[:2] == b"\x00\x00"
        assert tiles.decode_entry_bundle(data) == entries
        with pytest.raises(FormatError):
            tiles.decode_entry_bundle(data[:-1])
        with pytest.raises(FormatError):
            tiles.encode_entry_bundle([bytes(70000)])
