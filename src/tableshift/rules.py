"""Load and validate a rules file (TOML) into an immutable RuleSet."""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tableshift.errors import UsageError
from tableshift.schema import TargetSchema, load_schema

_TOP_KEYS = {"version", "name", "description", "schema", "table"}
_TABLE_KEYS = {"legacy", "target", "group", "notes", "renames", "drop", "where", "set", "key"}
Scalar = str | int | float | bool
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
# a group names a file under --split-dir: no separators, no leading dot, nothing a shell or a path reads twice
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SUPPORTED_VERSION = 1


@dataclass(frozen=True, slots=True)
class TableRule:
    """One legacy table and where it goes."""

    legacy: str
    target: str
    group: str
    schema: str | None = None  # None: the default (public) schema
    notes: str = ""
    renames: tuple[tuple[str, str], ...] = ()
    drop: frozenset[str] = frozenset()
    where: tuple[tuple[str, Scalar], ...] = ()  # equality filters added to reads, updates, deletes
    set: tuple[tuple[str, Scalar], ...] = ()  # values added to insert / upsert payloads
    key: tuple[str, ...] = ()  # legacy columns by which a legacy row finds its twin in the target (`sql`)

    def rename(self, column: str) -> str | None:
        """The new name of a renamed column, or None when it keeps its name."""
        for old, new in self.renames:
            if old == column:
                return new
        return None


@dataclass(frozen=True, slots=True)
class RuleSet:
    name: str
    path: str
    description: str = ""
    tables: tuple[TableRule, ...] = ()
    digest: str = ""
    target_schema: TargetSchema | None = None
    schema_path: str = ""  # the target DDL file, for `sql`
    _index: dict[tuple[str | None, str], TableRule] = field(default_factory=dict, repr=False, compare=False)
    # functions in the database whose bodies use legacy tables (from --legacy-schema / --database-url):
    # name -> ((legacy table, how), ...); an `.rpc()` of one uses those tables through it
    functions: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def with_functions(self, functions: dict[str, list[tuple[str, str]]]) -> RuleSet:
        """These rules, knowing which database functions use which legacy tables (the cache key
        follows: a verdict on an rpc call depends on it)."""
        import dataclasses

        frozen = tuple(sorted((name, tuple(uses)) for name, uses in functions.items()))
        digest = hashlib.sha256(f"{self.digest}\0{frozen!r}".encode()).hexdigest()[:16]
        return dataclasses.replace(self, functions=frozen, digest=digest, _index=self._index)

    def function(self, name: str | None) -> tuple[tuple[str, str], ...]:
        """The legacy tables database function `name` uses, and how."""
        return next((uses for fn, uses in self.functions if fn == name), ())

    def lookup(self, table: str | None, schema: str | None = None) -> TableRule | None:
        """The rule for `table` as a call in `schema` names it, if that table is legacy."""
        if table is None:
            return None
        return self._index.get((_norm_schema(schema), table))

    @property
    def groups(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for rule in self.tables:
            seen.setdefault(rule.group)
        return tuple(seen)

    @property
    def targets(self) -> frozenset[str]:
        return frozenset(rule.target for rule in self.tables)


def _norm_schema(schema: str | None) -> str | None:
    return None if schema in (None, "public") else schema


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a rules file; every mistake is a UsageError naming file and key."""
    p = Path(path)
    from tableshift.fsutil import read_input

    try:
        raw = read_input(p, "rules file")
    except FileNotFoundError:
        raise UsageError(f"{p}: rules file not found") from None
    return parse_rules(raw, str(p), base=p.parent)


def parse_rules(raw: bytes, where: str, *, base: Path | None = None) -> RuleSet:
    """Validate rules from bytes; `where` names the file in messages."""
    data = read_toml(raw, where, what="rules file")

    def fail(key: str, what: str) -> UsageError:
        return UsageError(f"{where}: {key}: {what}")

    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key (expected one of: {', '.join(sorted(_TOP_KEYS))})")
    version = data.get("version", SUPPORTED_VERSION)
    if type(version) is not int or version != SUPPORTED_VERSION:  # `true == 1` in Python: not a version
        raise fail("version", f"unsupported rules version {version!r} (this tableshift reads {SUPPORTED_VERSION})")
    name = data.get("name", Path(where).stem)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise fail("name" if not isinstance(name, str) else "description", "must be a string")
    entries = data.get("table", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise fail("table", "must be an array of tables: [[table]]")
    if not entries:
        raise fail("table", "no [[table]] entries: nothing is legacy")
    schema_name = data.get("schema")
    if schema_name is not None and not isinstance(schema_name, str):
        raise fail("schema", "must be the path of a SQL file, relative to the rules file")

    rules = [_table_rule(entry, f"table[{i + 1}]", fail) for i, entry in enumerate(entries)]
    index: dict[tuple[str | None, str], TableRule] = {}
    first_key: dict[tuple[str | None, str], str] = {}
    for i, rule in enumerate(rules):
        key = (_norm_schema(rule.schema), rule.legacy)
        here = f"table[{i + 1}]"
        if key in index:
            raise fail(f"{here}.legacy", f"table {rule.legacy!r} is mapped twice (also in {first_key[key]})")
        index[key] = rule
        first_key[key] = here
    legacy_names = {r.legacy for r in rules}
    for i, rule in enumerate(rules):
        if rule.target in legacy_names:
            raise fail(f"table[{i + 1}].target", f"target {rule.target!r} is itself a legacy table in this file")
    target_schema = None
    schema_path = None
    if schema_name is not None:
        schema_path = _schema_path(base or Path("."), schema_name, fail)
        target_schema = load_schema(schema_path)
        for i, rule in enumerate(rules):
            _against_schema(rule, target_schema, f"table[{i + 1}]", fail)
    return RuleSet(
        name=name,
        path=where,
        description=description,
        tables=tuple(rules),
        digest=hashlib.sha256(raw + (target_schema.fingerprint.encode() if target_schema else b"")).hexdigest()[:16],
        target_schema=target_schema,
        schema_path=str(schema_path) if schema_path is not None else "",
        _index=index,
    )


def read_toml(raw: bytes, where: str, *, what: str) -> dict[str, Any]:
    """TOML from bytes; any mistake, however deep or long, is one line naming the file."""
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{where}: {what} is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: invalid TOML: {exc}") from None
    except (RecursionError, MemoryError, ValueError):  # 5,000-deep arrays, 5,000-digit integers
        raise UsageError(f"{where}: invalid TOML: nested too deeply or a value too large") from None


def _schema_path(base: Path, name: str, fail: Any) -> Path:
    """The target DDL: a regular .sql file beside the rules or inside their repository, nothing else.

    A rules file can come from a pull request; it must not make tableshift read (and quote in
    CI logs) a file of the machine such as /etc/shadow or /proc/self/environ.
    """
    path = base / name
    if path.suffix.lower() != ".sql":
        raise fail("schema", f"{name!r} is not a .sql file")
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise fail("schema", f"schema file {str(path)!r} not found") from None
    if real.is_dir():
        raise fail("schema", f"{str(path)!r} is a directory, not a SQL file")
    if not real.is_file():
        raise fail("schema", f"{str(path)!r} is not a regular file")
    home = base.resolve()
    repository = _repository_of(home)
    if not real.is_relative_to(home) and (repository is None or not real.is_relative_to(repository)):
        raise fail("schema", f"{str(path)!r} is outside the rules file's folder and repository")
    return path


def _repository_of(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _against_schema(rule: TableRule, schema: TargetSchema, key: str, fail: Any) -> None:
    """Every column the rules name in the target must exist there: found at load, not call by call."""
    target = schema.table(rule.target)
    if target is None:
        raise fail(f"{key}.target", f"table {rule.target!r} is not in the schema {schema.path}")
    for old, new in rule.renames:
        if new not in target.columns:
            raise fail(f"{key}.renames.{old}", f"target {rule.target!r} has no column {new!r}")
    for name, pairs in (("where", rule.where), ("set", rule.set)):
        for column, _ in pairs:
            if column not in target.columns:
                raise fail(f"{key}.{name}.{column}", f"target {rule.target!r} has no column {column!r}")


def _table_rule(entry: dict[str, Any], key: str, fail: Any) -> TableRule:
    unknown = sorted(set(entry) - _TABLE_KEYS)
    if unknown:
        raise fail(f"{key}.{unknown[0]}", f"unknown key (expected one of: {', '.join(sorted(_TABLE_KEYS))})")
    for required in ("legacy", "target"):
        if required not in entry:
            raise fail(key, f"missing required key {required!r}")
    for name in ("legacy", "target", "group", "notes"):
        if name in entry and not isinstance(entry[name], str):
            raise fail(f"{key}.{name}", "must be a string")
    legacy, target = entry["legacy"], entry["target"]
    if "group" in entry and not _GROUP.match(entry["group"]):
        raise fail(f"{key}.group", f"{entry['group']!r} is not a group name (letters, digits, '.', '_', '-'; names a patch file)")
    for name, value in (("legacy", legacy), ("target", target)):
        if not _IDENT.match(value):
            raise fail(f"{key}.{name}", f"{value!r} is not a table name")
    schema = None
    if "." in legacy:
        schema, legacy = legacy.split(".", 1)
    if legacy == target.split(".")[-1] and _norm_schema(schema) == _norm_schema(
        target.split(".")[0] if "." in target else None
    ):
        raise fail(f"{key}.target", f"target is the same table as legacy {legacy!r}")

    renames_raw = entry.get("renames", {})
    if not isinstance(renames_raw, dict):
        raise fail(f"{key}.renames", "must be a table of old_column = \"new_column\"")
    renames: list[tuple[str, str]] = []
    seen_new: dict[str, str] = {}
    for old, new in renames_raw.items():
        where = f"{key}.renames.{old}"
        if not isinstance(new, str) or not _IDENT.match(new) or "." in new:
            raise fail(where, "must be a column name string")
        if new == old:
            raise fail(where, "column is renamed to itself")
        if new in seen_new:
            raise fail(where, f"column {new!r} is the new name of {seen_new[new]!r} already: renamed twice")
        seen_new[new] = old
        renames.append((old, new))

    drop_raw = entry.get("drop", [])
    if not isinstance(drop_raw, list) or not all(isinstance(c, str) for c in drop_raw):
        raise fail(f"{key}.drop", "must be a list of column names")
    renamed = {old for old, _ in renames}
    for column in drop_raw:
        if column in renamed:
            raise fail(f"{key}.drop", f"column {column!r} is both renamed and dropped")
    if len(set(drop_raw)) != len(drop_raw):
        raise fail(f"{key}.drop", "lists a column twice")

    where_values = _scalars(entry, "where", key, fail)
    # a merged table's rows are told apart by `where`; new rows must get the same values, so `set`
    # defaults to `where` (`set = {}` says there is nothing to set)
    set_values = _scalars(entry, "set", key, fail) if "set" in entry else where_values
    key_raw = entry.get("key", [])
    if not isinstance(key_raw, list) or not all(isinstance(c, str) and _IDENT.match(c) and "." not in c for c in key_raw):
        raise fail(f"{key}.key", "must be a list of legacy column names")
    if len(set(key_raw)) != len(key_raw):
        raise fail(f"{key}.key", "lists a column twice")
    for column in key_raw:
        if column in drop_raw:
            raise fail(f"{key}.key", f"column {column!r} is dropped: it cannot match rows")
    return TableRule(
        legacy=legacy,
        target=target,
        group=entry.get("group", target),
        schema=schema,
        notes=entry.get("notes", ""),
        renames=tuple(renames),
        drop=frozenset(drop_raw),
        where=where_values,
        set=set_values,
        key=tuple(key_raw),
    )


def _scalars(entry: dict[str, Any], name: str, key: str, fail: Any) -> tuple[tuple[str, Scalar], ...]:
    raw = entry.get(name, {})
    if not isinstance(raw, dict):
        raise fail(f"{key}.{name}", "must be a table of column = value")
    out = []
    for column, value in raw.items():
        if not _IDENT.match(column) or "." in column:
            raise fail(f"{key}.{name}.{column}", "is not a column name")
        if not isinstance(value, str | int | float | bool):
            raise fail(f"{key}.{name}.{column}", "must be a string, number or boolean")
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(f"{key}.{name}.{column}", f"must be a finite number, not {value!r}")
        out.append((column, value))
    return tuple(out)
