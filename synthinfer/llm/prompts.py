"""Prompt templates: one template for every unit, and never a human label in it.

A template is a ``str.format`` string whose ``{fields}`` name columns of the
units frame (``{text}`` is the text column whatever its name; ``{category}``
is the category a synthetic sample is asked for). Literal braces are doubled
(``{{`` and ``}}``). A field that names the outcome (the human-label column)
or a protected column is a `PromptLeakError`: the LLM must never see the
human labels.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import PromptLeakError, SpecificationError

__all__ = ["Prompt", "as_prompt", "SCHEMA_MARKER"]

# The fake server (synthinfer.llm.testing) finds the schema after this phrase.
SCHEMA_MARKER = "matches this JSON schema:"


@dataclass(frozen=True)
class Prompt:
    """A chat prompt: an optional system message and a user-message template.

    Parameters
    ----------
    user : str
        The user message, with ``{column}`` fields filled from each unit.
    system : str, optional
        The system message (a template too).

    Examples
    --------
    >>> p = Prompt("Rate the politeness of this request: <request>{text}</request>",
    ...            system="You are a careful annotator.")
    >>> p.fields
    ('text',)
    """

    user: str
    system: str | None = None

    def __post_init__(self) -> None:
        for name, template in (("user", self.user), ("system", self.system)):
            if template is None:
                continue
            if not isinstance(template, str) or not template.strip():
                raise SpecificationError(f"prompt: the {name} template must be a non-empty string, got {template!r}")
            try:
                list(string.Formatter().parse(template))
            except ValueError as exc:
                raise SpecificationError(
                    f"prompt: the {name} template is not a valid format string ({exc}); "
                    f"write literal braces as {{{{ and }}}}"
                ) from None

    @property
    def fields(self) -> tuple[str, ...]:
        """The field names the templates use, in order of first use."""
        seen: dict[str, None] = {}
        for template in (self.system, self.user):
            for _, name, _, _ in string.Formatter().parse(template or ""):
                if name is None:
                    continue
                if name == "" or name.isdigit():
                    raise SpecificationError("prompt: positional fields ({} or {0}) are not allowed; name a column, e.g. {text}")
                seen[name.split(".")[0].split("[")[0]] = None
        return tuple(seen)

    def check(self, available: Iterable[str], forbidden: Iterable[str], where: str) -> None:
        """Raise if a field names a forbidden (human-label) column or an unknown one."""
        fields = self.fields
        forbidden = [f for f in forbidden if f is not None]
        leaks = [f for f in fields if f in forbidden]
        if leaks:
            raise PromptLeakError(
                f"{where}: the template names {leaks}, the outcome / human-label column(s) {forbidden}; "
                f"the LLM must never see the human labels, so no template may name them"
            )
        available = list(available)
        unknown = [f for f in fields if f not in available]
        if unknown:
            raise SpecificationError(
                f"{where}: the template names {unknown}, which the units do not provide "
                f"(available fields: {available})"
            )

    def render(self, values: Mapping[str, Any], schema: dict | None = None) -> list[dict[str, str]]:
        """The chat messages for one unit; with ``schema``, the system message asks for it."""
        messages = []
        system = self.system.format_map(values) if self.system else None
        if schema is not None:
            ask = f"Answer with a single JSON object that {SCHEMA_MARKER} {json.dumps(schema, sort_keys=True)}"
            system = f"{system}\n\n{ask}" if system else ask
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": self.user.format_map(values)})
        return messages

    def to_dict(self) -> dict[str, Any]:
        """The template texts and their sha256, for provenance."""
        return {"system": self.system, "user": self.user, "sha256": self.sha256}

    @property
    def sha256(self) -> str:
        blob = json.dumps({"system": self.system, "user": self.user}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def as_prompt(prompt: Prompt | str, where: str) -> Prompt:
    """A `Prompt` from a `Prompt` or a user-message template string."""
    if isinstance(prompt, Prompt):
        return prompt
    if isinstance(prompt, str):
        return Prompt(prompt)
    raise SpecificationError(f"{where}: prompt must be a Prompt or a template string, got {type(prompt).__name__}")
