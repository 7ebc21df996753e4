"""Profile files: TOML read strictly, stacked with `extends`, overridden by `--set` and flags.

A profile reaches the model in layers — base files first (`extends`), then the file
itself, each `--set`, and the command-line flags — and every error names the layer that
set the offending key: its file and line (`profiles/x.toml:12: load.rte: unknown key
(did you mean 'rate'?)`), or the `--set` or flag. tomllib keeps no positions, so a small
scanner over the file's text (`loadgen.toml_lines`) maps each key path to the line that
defines it.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from loadgen.profile import Profile, ProfileError
from loadgen.toml_lines import KeyPath, key_lines

COMMAND_LINE = "command line"
SET = "--set"


@dataclass(frozen=True)
class Layer:
    """One source of profile data, laid over the layers before it; `lines` maps its key paths to lines."""

    data: dict[str, Any]
    source: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def label(self, path: KeyPath) -> str:
        """Where a key was set, for the front of an error line: 'x.toml:12: load.rate', '--set load.rate'."""
        dotted = ".".join(str(part) for part in path)
        if self.source == SET:
            return f"{SET} {dotted}"
        line = self.line_of(path)
        where = f"{self.source}:{line}" if line else self.source
        return f"{where}: {dotted}" if dotted else where

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the key, or of its nearest enclosing key or table (inline tables, missing keys)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


def load_profile(path: str | Path | None, overrides: dict[str, Any] | None = None,
                 sets: Iterable[str] = ()) -> Profile:
    """Read a profile file (with its bases), lay each `--set`, then the flags' overrides over it, validate."""
    layers = _file_layers(Path(path)) if path is not None else []
    layers += [_parse_set(item) for item in sets]
    if overrides:
        layers.append(Layer(overrides, COMMAND_LINE))
    root = str(path) if path is not None else COMMAND_LINE
    return validate(reduce(_overlay, (layer.data for layer in layers), {}), root, layers)


def validate(data: dict[str, Any], root: str, layers: Iterable[Layer] = ()) -> Profile:
    """The profile, or a ProfileError with one complete line per bad key."""
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError("\n".join(_error_lines(exc, data, root, layers))) from None


def build_profile(data: dict[str, Any], source: str = "<profile>") -> Profile:
    """Validate profile data; each error line names `source` and the key path."""
    return validate(data, source)


def file_schema() -> dict[str, Any]:
    """The JSON Schema of a profile file: the model's, with the file-only key `extends`."""
    schema = Profile.model_json_schema(by_alias=True)
    schema["properties"]["extends"] = {
        "description": "profile file(s) this one is laid over, relative to this file",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    }
    return schema


# --- layers: merging -----------------------------------------------------------------


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of base with override laid over it, tables merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _overlay(data: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A later layer wins; one that picks another load kind or length replaces it whole."""
    data = dict(data)
    new_load = over.get("load")
    if isinstance(new_load, dict) and isinstance(data.get("load"), dict):
        if new_load.get("kind", data["load"].get("kind")) != data["load"].get("kind", "constant"):
            data.pop("load")
    if "operations" in over:
        data.pop("duration", None)
    if "duration" in over:
        data.pop("operations", None)
    return _deep_merge(data, over)


# --- layers: reading -------------------------------------------------------------------


def _file_layers(path: Path, chain: tuple[Path, ...] = ()) -> list[Layer]:
    """The file's bases (recursively, in order), then the file itself."""
    text = _read_text(path)
    data = _parse(path, text)
    layer = Layer(data, str(path), key_lines(text))
    layers: list[Layer] = []
    seen = chain + (path.resolve(),)
    for name in _extends(layer, data.pop("extends", [])):
        base = path.parent / name
        if base.resolve() in seen:
            names = [p.name for p in seen[seen.index(base.resolve()):]] + [base.name]
            raise ProfileError(f"{layer.label(('extends',))}: cycle {' → '.join(names)}")
        if not base.is_file():
            raise ProfileError(f"{layer.label(('extends',))}: no such profile file {name!r}")
        layers += _file_layers(base, seen)
    return layers + [layer]


def _extends(layer: Layer, value: Any) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ProfileError(f"{layer.label(('extends',))}: expected a file name or a list of file names")
    return names


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile file") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: TOML syntax error: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None


_AT = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$", re.S)


def _parse(path: Path, text: str) -> dict[str, Any]:
    """tomllib's parse, its error moved to the front as file:line (it ends '(at line N, column M)')."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _AT.match(message)
        if at:
            where = f"{path}:{at['line']}"
            message = f"{at['message']} (column {at['column']})"
        else:  # '(at end of document)'
            where = f"{path}:{max(1, len(text.splitlines()))}"
        raise ProfileError(f"{where}: TOML syntax error: {message}") from None


_SET = re.compile(r"^\s*(?P<key>[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\s*=\s*(?P<value>.*?)\s*$", re.S)


def _parse_set(item: str) -> Layer:
    """`--set load.rate=50`: the value is read as TOML when it is one (50, true, "x", [..], {..}), else as text."""
    match = _SET.match(item)
    if not match:
        raise ProfileError(f"{SET} {item!r}: expected KEY.PATH=VALUE (e.g. load.rate=50)")
    try:
        parsed = tomllib.loads(f"v = {match['value']}")
        value = parsed["v"] if parsed.keys() == {"v"} else match["value"]
    except tomllib.TOMLDecodeError:
        value = match["value"]
    for key in reversed(match["key"].split(".")):
        value = {key: value}
    return Layer(value, SET)


# --- errors ------------------------------------------------------------------------------


def _error_lines(exc: ValidationError, data: dict[str, Any], root: str, layers: Iterable[Layer]) -> list[str]:
    """One line per key: who set it, the key path as written, and what is wrong (alternatives joined)."""
    layers = list(layers)
    grouped: dict[str, list[str]] = {}
    for item in exc.errors():
        path, message = _describe(item)
        label = _locate(path, data, root, layers)
        grouped.setdefault(label, []).append(message.replace("\n", " "))
    return [f"{label}: {'; or '.join(dict.fromkeys(messages))}" for label, messages in grouped.items()]


def _locate(path: KeyPath, data: dict[str, Any], root: str, layers: list[Layer]) -> str:
    """The label of the last layer that set the key — or, for a missing key, its nearest enclosing table."""
    if not path:
        return root
    end = len(path)
    while end > 1 and not _has(data, path[:end]):
        end -= 1
    for layer in reversed(layers):
        if _has(layer.data, path[:end]):
            return layer.label(path)
    return f"{root}: {'.'.join(str(part) for part in path)}"


def _has(data: Any, path: KeyPath) -> bool:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def _describe(item: dict[str, Any]) -> tuple[KeyPath, str]:
    """A pydantic error as (key path as written in TOML, message), with a suggestion where one is close."""
    path, node, parent = _walk(item["loc"])
    kind, message = item["type"], item["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return path, "unknown key" + _suggest(path[-1], _keys(parent))
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        key = item["ctx"]["discriminator"].strip("'")
        tags = [tag for member in _members(node) for tag in _tags(member)]
        if kind == "union_tag_not_found":
            return path + (key,), f"Field required (one of {', '.join(tags)})"
        tag = item["ctx"]["tag"]
        return path + (key,), f"unknown {key} {tag!r}" + (_suggest(tag, tags) or f" (one of {', '.join(tags)})")
    if kind == "literal_error":
        return path, message + _suggest(item["input"], re.findall(r"'([^']*)'", item["ctx"]["expected"]))
    return path, message


def _suggest(word: Any, choices: list[str]) -> str:
    match = difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


# --- errors: the model's shape -------------------------------------------------------


def _walk(loc: Iterable[str | int]) -> tuple[KeyPath, Any, Any]:
    """Follow a pydantic error's loc down the Profile model.

    Returns the key path as the user wrote it — without the tags pydantic inserts for a
    union (load.constant.rate → load.rate; workers.int → workers) — the type at the end,
    and the type holding the last key (whose keys an unknown key is compared with).
    """
    node, parent, path = Profile, None, []
    for part in loc:
        parent = node
        node, written = _step(node, part)
        if written:
            path.append(part)
    return tuple(path), node, parent


def _step(node: Any, part: str | int) -> tuple[Any, bool]:
    """One step down: (the type found, whether `part` is a key or index the user wrote)."""
    if node is None:
        return None, True
    members = _members(node)
    for member in members:
        if isinstance(part, int) and get_origin(member) is list:
            return get_args(member)[0], True
        if isinstance(part, str) and _is_model(member) and _field(member, part) is not None:
            return _field(member, part), True
        if isinstance(part, str) and get_origin(member) is dict:
            return get_args(member)[1], True
    for member in members:
        if part in _tags(member):  # a discriminated union's tag
            return member, False
    if not any(_is_model(m) or get_origin(m) in (list, dict) for m in members):
        return None, False  # a plain union's member label: 'int', "literal['auto']"
    return None, True


def _members(tp: Any) -> list[Any]:
    """The alternatives a type allows: X | None → [X]; Annotated[A | B, …] → [A, B]."""
    if get_origin(tp) is Annotated:
        return _members(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        return [member for arg in get_args(tp) for member in _members(arg)]
    return [] if tp is type(None) else [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _keys(node: Any) -> list[str]:
    """The keys a table accepts, as written in TOML (aliases: thresholds' `pass`, outputs' `json`)."""
    models = [member for member in _members(node) if _is_model(member)]
    return [info.alias or name for model in models for name, info in model.model_fields.items()]


def _tags(model: Any) -> tuple[str, ...]:
    info = model.model_fields.get("kind") if _is_model(model) else None
    return get_args(info.annotation) if info and get_origin(info.annotation) is Literal else ()

