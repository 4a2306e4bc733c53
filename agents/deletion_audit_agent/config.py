"""The agent's local configuration (TOML) and how it narrows the server's scopes.

The server holds every scope's specification; the local file only says how this host
reaches it (a path, a database URL with credentials, S3 credentials). It may narrow a scope
(a subdirectory, a longer prefix: the scan then reports ``partial`` coverage) but never
widen it: another root, table or bucket is refused, because a scan must obey the very
specification whose digest it signs.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deletion_audit_agent.client import Backoff

DEFAULT_STATE_DIR = Path("/var/lib/deletion-audit-agent")


class ConfigError(Exception):
    """The configuration is missing, malformed, or would widen a scope."""


@dataclass(frozen=True)
class ScopeAccess:
    """The local half of one scope: how this host reaches it. Values are as written."""

    scope_id: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class AgentConfig:
    path: Path
    server: str | None
    state_dir: Path
    allow_remote_delete: bool = False
    throttle_bytes_per_second: int | None = None
    jobs: int = 2
    overwrite_before_unlink: bool = False
    retry_attempts: int = 6
    """Tries per request (network errors, 5xx, 429, clock_skew), with jittered backoff."""
    retry_base_seconds: float = 0.5
    scopes: Mapping[str, ScopeAccess] = field(default_factory=dict)

    @property
    def backoff(self) -> Backoff:
        return Backoff(base=self.retry_base_seconds, attempts=self.retry_attempts)


_TOP_KEYS = {"server", "state_dir", "allow_remote_delete", "throttle_bytes_per_second", "jobs",
             "overwrite_before_unlink", "retry_attempts", "retry_base_seconds", "scopes"}


def _typed(data: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = data.get(key, default)
    # bool is an int in Python; a throttle of `true` is a typo, not one byte per second.
    if value is not default and (not isinstance(value, kind) or
                                 (kind is int and isinstance(value, bool))):
        raise ConfigError(f"{key} must be a {kind.__name__}, got {value!r}")
    return value


def load_config(path: Path) -> AgentConfig:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"no configuration at {path}; write one (see "
                          "deploy/agent.toml.example) or pass --config") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    throttle = _typed(data, "throttle_bytes_per_second", int, None)
    if throttle is not None and throttle <= 0:
        raise ConfigError("throttle_bytes_per_second must be positive (omit it for no limit)")
    jobs = _typed(data, "jobs", int, 2)
    if jobs < 1:
        raise ConfigError("jobs must be at least 1")
    attempts = _typed(data, "retry_attempts", int, 6)
    base = _typed(data, "retry_base_seconds", float, 0.5)
    if attempts < 1 or base < 0:
        raise ConfigError("retry_attempts must be at least 1 and retry_base_seconds >= 0")
    raw_scopes = _typed(data, "scopes", dict, {})
    scopes = {}
    for scope_id, settings in raw_scopes.items():
        if not isinstance(settings, dict):
            raise ConfigError(f'[scopes."{scope_id}"] must be a table')
        scopes[str(scope_id)] = ScopeAccess(str(scope_id), dict(settings))
    return AgentConfig(
        path=path,
        server=_typed(data, "server", str, None),
        state_dir=Path(_typed(data, "state_dir", str, str(DEFAULT_STATE_DIR))),
        allow_remote_delete=_typed(data, "allow_remote_delete", bool, False),
        throttle_bytes_per_second=throttle,
        jobs=jobs,
        overwrite_before_unlink=_typed(data, "overwrite_before_unlink", bool, False),
        retry_attempts=attempts, retry_base_seconds=base,
        scopes=scopes,
    )


# -- binding a server scope to local access ---------------------------------------------


@dataclass(frozen=True)
class DirectoryAccess:
    root: str
    exclude: tuple[str, ...]
    narrowed: bool
    spec_root: str | None = None
    """The scope's own root: exclude patterns are relative to it, however narrowed."""


@dataclass(frozen=True)
class SqlAccess:
    url: str
    table: str
    key_columns: tuple[str, ...]
    content_column: str
    encoding: Literal["raw", "base64", "hex"]
    filter: str | None
    timestamp_column: str | None = None
    """The scope's declared timestamp field (its ``timestamp_field``), read for the age
    summary of a scope under a retention rule."""


@dataclass(frozen=True)
class ObjectStoreAccess:
    endpoint: str
    bucket: str
    prefix: str
    access_key_id: str | None
    secret_access_key: str | None
    region: str | None
    narrowed: bool


@dataclass(frozen=True)
class SealedContainerAccess:
    """One sealed file (a backup archive a custodian holds): hashed whole, never opened."""

    path: str


Access = DirectoryAccess | SqlAccess | ObjectStoreAccess | SealedContainerAccess


def _allowed(settings: Mapping[str, Any], scope_id: str, allowed: set[str]) -> None:
    unknown = set(settings) - allowed
    if unknown:
        raise ConfigError(f"scope {scope_id}: unknown local setting(s) "
                          f"{', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")


def _str(settings: Mapping[str, Any], key: str, scope_id: str) -> str | None:
    value = settings.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"scope {scope_id}: {key} must be a string")
    return value


def resolve_access(scope_id: str, kind: str, spec: Mapping[str, Any],
                   local: ScopeAccess | None) -> Access:
    """The access to use for a server scope: its spec, narrowed by the local settings."""
    settings: Mapping[str, Any] = local.settings if local else {}
    if kind == "directory":
        return _directory(scope_id, spec, settings)
    if kind == "sql":
        return _sql(scope_id, spec, settings)
    if kind == "object_store":
        return _object_store(scope_id, spec, settings)
    if kind == "sealed_container":
        _allowed(settings, scope_id, set())
        path = os.path.normpath(str(spec["path"]))
        if not os.path.isabs(path):
            raise ConfigError(f"scope {scope_id}: path {path!r} must be absolute")
        return SealedContainerAccess(path=path)
    raise ConfigError(f"scope {scope_id}: this agent cannot scan scopes of kind {kind!r}")


def _directory(scope_id: str, spec: Mapping[str, Any], settings: Mapping[str, Any]
               ) -> DirectoryAccess:
    _allowed(settings, scope_id, {"path"})
    root = os.path.normpath(str(spec["root"]))
    path = os.path.normpath(_str(settings, "path", scope_id) or root)
    if not os.path.isabs(path):
        raise ConfigError(f"scope {scope_id}: path {path!r} must be absolute")
    if os.path.commonpath([root, path]) != root:
        raise ConfigError(f"scope {scope_id}: local path {path} is outside the scope's root "
                          f"{root}; the local configuration may narrow a scope, never widen it")
    return DirectoryAccess(root=path, exclude=tuple(spec.get("exclude") or ()),
                           narrowed=path != root, spec_root=root)


def _sql(scope_id: str, spec: Mapping[str, Any], settings: Mapping[str, Any]) -> SqlAccess:
    _allowed(settings, scope_id, {"url", "table"})
    url = _str(settings, "url", scope_id)
    if not url:
        raise ConfigError(f'scope {scope_id}: a SQL scope needs url = "dialect://user:pass@host/'
                          f'db" in [scopes."{scope_id}"]')
    table = _str(settings, "table", scope_id)
    if table is not None and table != spec["table"]:
        raise ConfigError(f"scope {scope_id}: local table {table!r} is not the scope's table "
                          f"{spec['table']!r}; the local configuration may not widen a scope")
    return SqlAccess(url=url, table=str(spec["table"]),
                     key_columns=tuple(spec["key_columns"]),
                     content_column=str(spec["content_column"]),
                     encoding=spec.get("encoding", "raw"), filter=spec.get("filter"))


def _object_store(scope_id: str, spec: Mapping[str, Any], settings: Mapping[str, Any]
                  ) -> ObjectStoreAccess:
    _allowed(settings, scope_id, {"endpoint", "bucket", "prefix", "access_key_id",
                                  "secret_access_key", "region"})
    bucket = _str(settings, "bucket", scope_id)
    if bucket is not None and bucket != spec["bucket"]:
        raise ConfigError(f"scope {scope_id}: local bucket {bucket!r} is not the scope's bucket "
                          f"{spec['bucket']!r}; the local configuration may not widen a scope")
    base = str(spec.get("prefix") or "")
    prefix = _str(settings, "prefix", scope_id)
    if prefix is not None and not prefix.startswith(base):
        raise ConfigError(f"scope {scope_id}: local prefix {prefix!r} is outside the scope's "
                          f"prefix {base!r}; the local configuration may not widen a scope")
    return ObjectStoreAccess(
        endpoint=_str(settings, "endpoint", scope_id) or str(spec["endpoint"]),
        bucket=str(spec["bucket"]), prefix=prefix if prefix is not None else base,
        access_key_id=_str(settings, "access_key_id", scope_id),
        secret_access_key=_str(settings, "secret_access_key", scope_id),
        region=_str(settings, "region", scope_id),
        narrowed=prefix is not None and prefix != base)
