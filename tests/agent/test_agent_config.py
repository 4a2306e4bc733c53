"""The local configuration narrows the server's scopes and never widens them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from deletion_audit_agent.config import (
    ConfigError,
    DirectoryAccess,
    ObjectStoreAccess,
    ScopeAccess,
    SqlAccess,
    load_config,
    resolve_access,
)

SQL_SPEC = {"table": "app.faces", "key_columns": ["id"], "content_column": "jpeg",
            "encoding": "base64", "filter": "deleted = 0"}
S3_SPEC = {"endpoint": "http://127.0.0.1:9000", "bucket": "cams", "prefix": "store-7/"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


class TestLoadConfig:
    def test_reads_every_setting(self, tmp_path: Path) -> None:
        config = load_config(write(tmp_path, f'''
server = "https://audit.example"
state_dir = "{tmp_path}/state"
allow_remote_delete = true
throttle_bytes_per_second = 1048576
jobs = 3

[scopes."12"]
path = "/srv/cams/store-7"
'''))
        assert config.server == "https://audit.example"
        assert config.state_dir == tmp_path / "state"
        assert config.allow_remote_delete is True
        assert config.throttle_bytes_per_second == 1048576
        assert config.jobs == 3
        assert config.scopes["12"].settings == {"path": "/srv/cams/store-7"}

    def test_remote_deletion_is_off_by_default(self, tmp_path: Path) -> None:
        config = load_config(write(tmp_path, f'state_dir = "{tmp_path}"\n'))
        assert config.allow_remote_delete is False
        assert config.throttle_bytes_per_second is None

    def test_missing_file_says_what_to_do(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"no configuration at .*agent\.toml\.example"):
            load_config(tmp_path / "absent.toml")

    def test_unknown_setting_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"unknown setting.*alow_remote_delete"):
            load_config(write(tmp_path, "alow_remote_delete = true\n"))

    def test_boolean_is_not_a_throttle(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="throttle_bytes_per_second must be a int"):
            load_config(write(tmp_path, "throttle_bytes_per_second = true\n"))


class TestDirectoryNarrowing:
    spec: ClassVar[dict[str, Any]] = {"root": "/srv/cams", "exclude": ["*.tmp"]}

    def test_defaults_to_the_spec_root(self) -> None:
        access = resolve_access("1", "directory", self.spec, None)
        assert access == DirectoryAccess(root="/srv/cams", exclude=("*.tmp",), narrowed=False,
                                         spec_root="/srv/cams")

    def test_a_subdirectory_narrows(self) -> None:
        access = resolve_access("1", "directory", self.spec,
                                ScopeAccess("1", {"path": "/srv/cams/store-7"}))
        assert isinstance(access, DirectoryAccess)
        assert access.narrowed is True

    @pytest.mark.parametrize("path", ["/srv", "/srv/cams-old", "/srv/cams/../other", "/"])
    def test_a_path_outside_the_root_is_refused(self, path: str) -> None:
        with pytest.raises(ConfigError, match="outside the scope's root"):
            resolve_access("1", "directory", self.spec, ScopeAccess("1", {"path": path}))

    def test_a_local_exclude_is_not_a_setting(self) -> None:
        with pytest.raises(ConfigError, match="unknown local setting"):
            resolve_access("1", "directory", self.spec, ScopeAccess("1", {"exclude": ["*"]}))


class TestSqlNarrowing:
    def test_takes_the_spec_and_the_local_url(self) -> None:
        access = resolve_access("2", "sql", SQL_SPEC,
                                ScopeAccess("2", {"url": "postgresql://u:p@db/app"}))
        assert access == SqlAccess(url="postgresql://u:p@db/app", table="app.faces",
                                   key_columns=("id",), content_column="jpeg",
                                   encoding="base64", filter="deleted = 0")

    def test_another_table_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="not the scope's table"):
            resolve_access("2", "sql", SQL_SPEC,
                           ScopeAccess("2", {"url": "sqlite://", "table": "app.users"}))

    def test_a_url_is_required(self) -> None:
        with pytest.raises(ConfigError, match="needs url"):
            resolve_access("2", "sql", SQL_SPEC, None)


class TestObjectStoreNarrowing:
    def test_a_longer_prefix_narrows(self) -> None:
        access = resolve_access("3", "object_store", S3_SPEC,
                                ScopeAccess("3", {"prefix": "store-7/2026/"}))
        assert isinstance(access, ObjectStoreAccess)
        assert (access.prefix, access.narrowed) == ("store-7/2026/", True)

    def test_another_bucket_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="not the scope's bucket"):
            resolve_access("3", "object_store", S3_SPEC, ScopeAccess("3", {"bucket": "other"}))

    @pytest.mark.parametrize("prefix", ["", "store-", "store-8/"])
    def test_a_wider_or_other_prefix_is_refused(self, prefix: str) -> None:
        with pytest.raises(ConfigError, match="outside the scope's prefix"):
            resolve_access("3", "object_store", S3_SPEC, ScopeAccess("3", {"prefix": prefix}))


class TestExample:
    def test_the_deployed_example_loads(self) -> None:
        example = Path(__file__).resolve().parents[2] / "deploy" / "agent.toml.example"
        config = load_config(example)
        assert config.allow_remote_delete is False
        assert set(config.scopes) == {"12", "13", "14"}
