"""Reading an LLM's answer: a JSON object checked against a schema, with a regex fallback.

The schema is a small JSON schema: an object whose properties are
``integer``, ``number``, ``boolean`` or ``string``, optionally with ``enum``,
``minimum`` and ``maximum``. An answer is read as JSON first (code fences
and text around the object are tolerated); if that fails, each property is
looked for as ``name: value`` (or ``"name" = value``); a one-property schema
also accepts a bare value. A value of the wrong type or outside its range is
an error, never coerced silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import SpecificationError

__all__ = ["OutputSchema", "ParseError", "Parsed"]

_TYPES = ("integer", "number", "boolean", "string")
_VALUE = r'("(?:[^"\\]|\\.)*"|\'[^\']*\'|[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|yes|no|[A-Za-z_][\w-]*)'


class ParseError(ValueError):
    """An answer that could not be read; the message says why (it is sent back in a re-ask)."""


@dataclass(frozen=True)
class Parsed:
    """A parsed answer: the values, and ``"json"`` or ``"regex"``."""

    values: dict[str, Any]
    method: str


class OutputSchema:
    """The fields an answer must carry.

    Parameters
    ----------
    spec : dict
        Either a JSON schema of an object (``{"type": "object", "properties":
        {...}}``) or just its properties, e.g. ``{"polite": {"type":
        "integer", "enum": [0, 1]}, "confidence": {"type": "number",
        "minimum": 0, "maximum": 1}}``. A property may also be given as a type
        name: ``{"polite": "integer"}``.

    Attributes
    ----------
    properties : dict
        Field name -> its JSON schema, in order.
    """

    def __init__(self, spec: Mapping[str, Any] | OutputSchema) -> None:
        if isinstance(spec, OutputSchema):
            spec = spec.properties
        if not isinstance(spec, Mapping) or not spec:
            raise SpecificationError(f"output: expected a non-empty dict (a JSON schema or its properties), got {spec!r}")
        props = spec.get("properties", spec) if spec.get("type") == "object" or "properties" in spec else spec
        if not isinstance(props, Mapping) or not props:
            raise SpecificationError("output: the schema has no properties")
        self.properties: dict[str, dict[str, Any]] = {}
        for name, prop in props.items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w]*", name):
                raise SpecificationError(f"output: field names must be identifiers, got {name!r}")
            prop = {"type": prop} if isinstance(prop, str) else dict(prop)
            kind = prop.get("type")
            if kind not in _TYPES:
                raise SpecificationError(
                    f"output: field {name!r} has type {kind!r}; use one of {list(_TYPES)}"
                )
            if "enum" in prop and not prop["enum"]:
                raise SpecificationError(f"output: field {name!r} has an empty enum")
            self.properties[name] = prop

    @property
    def names(self) -> list[str]:
        return list(self.properties)

    def json_schema(self) -> dict[str, Any]:
        """The strict JSON schema sent with ``response_format``."""
        return {
            "type": "object",
            "properties": self.properties,
            "required": self.names,
            "additionalProperties": False,
        }

    def to_dict(self) -> dict[str, Any]:
        return self.json_schema()

    def cast(self, frame: Any) -> Any:
        """``frame`` with its integer, number and boolean answer columns as int64, float64 and bool."""
        if len(frame) == 0:
            return frame
        dtypes = {"integer": "int64", "number": "float64", "boolean": "bool"}
        return frame.astype({n: dtypes[p["type"]] for n, p in self.properties.items()
                             if n in frame.columns and p["type"] in dtypes})

    # -- parsing ------------------------------------------------------------------------------

    def parse(self, content: str | None) -> Parsed:
        """Read ``content``; raise `ParseError` saying what is wrong."""
        if content is None or not content.strip():
            raise ParseError("the answer is empty")
        obj = _json_object(content)
        if obj is not None:
            return Parsed(self._check(obj), "json")
        found = self._regex(content)
        if found is not None:
            return Parsed(self._check(found), "regex")
        raise ParseError(f"the answer is not a JSON object with the fields {self.names}: {content[:200]!r}")

    def _regex(self, content: str) -> dict[str, Any] | None:
        found: dict[str, Any] = {}
        for name in self.names:
            match = re.search(rf"""["']?\b{re.escape(name)}\b["']?\s*[:=]\s*{_VALUE}""", content, re.I)
            if match:
                found[name] = _literal(match.group(1))
        if len(found) == len(self.names):
            return found
        if len(self.names) == 1:
            bare = content.strip().strip("`").strip()
            if re.fullmatch(_VALUE, bare):
                return {self.names[0]: _literal(bare)}
        return None

    def _check(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        missing = [n for n in self.names if n not in obj]
        if missing:
            raise ParseError(f"the answer lacks the field(s) {missing}")
        return {name: _coerce(name, obj[name], prop) for name, prop in self.properties.items()}


def _json_object(content: str) -> dict | None:
    text = content.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        return obj if isinstance(obj, dict) else None
    return None


def _literal(raw: str) -> Any:
    raw = raw.strip()
    if raw[:1] in "\"'" and raw[-1:] == raw[:1]:
        return raw[1:-1]
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def _coerce(name: str, value: Any, prop: Mapping[str, Any]) -> Any:
    kind = prop["type"]
    if isinstance(value, str) and kind != "string":
        value = _literal(value)
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise ParseError(f"field {name!r} must be an integer, got {value!r}")
        value = int(value)
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise ParseError(f"field {name!r} must be a finite number, got {value!r}")
        value = float(value)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ParseError(f"field {name!r} must be true or false, got {value!r}")
    elif not isinstance(value, str):
        raise ParseError(f"field {name!r} must be a string, got {value!r}")
    if "enum" in prop and value not in prop["enum"]:
        raise ParseError(f"field {name!r} must be one of {list(prop['enum'])}, got {value!r}")
    if "minimum" in prop and value < prop["minimum"]:
        raise ParseError(f"field {name!r} must be >= {prop['minimum']}, got {value!r}")
    if "maximum" in prop and value > prop["maximum"]:
        raise ParseError(f"field {name!r} must be <= {prop['maximum']}, got {value!r}")
    return value
