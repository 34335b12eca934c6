"""Reading answers: JSON against the schema, the regex fallback, and errors instead of coercion."""

from __future__ import annotations

import pytest

from synthinfer.exceptions import SpecificationError
from synthinfer.llm.parse import OutputSchema, ParseError
from synthinfer.llm.prompts import Prompt

SCHEMA = OutputSchema({
    "polite": {"type": "integer", "enum": [0, 1]},
    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
})


@pytest.mark.parametrize("content, method", [
    ('{"polite": 1, "confidence": 0.8}', "json"),
    ('```json\n{"polite": 1, "confidence": 0.8}\n```', "json"),
    ('Here you go: {"polite": 1, "confidence": 0.8, "note": "x"} Hope it helps', "json"),
    ('{"polite": "1", "confidence": "0.8"}', "json"),
    ('{"polite": 1.0, "confidence": 0.8}', "json"),
    ("polite: 1, confidence: 0.8", "regex"),
    ('"polite" = 1\n"confidence" = .8'.replace(".8", "0.8"), "regex"),
    ("Polite: 1 (I think), Confidence: 0.8", "regex"),
])
def test_answers_that_are_read(content, method):
    parsed = SCHEMA.parse(content)
    assert parsed.values == {"polite": 1, "confidence": 0.8}
    assert parsed.method == method
    assert isinstance(parsed.values["polite"], int) and isinstance(parsed.values["confidence"], float)


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    (None, "empty"),
    ("I am not sure.", "not a JSON object"),
    ('{"polite": 2, "confidence": 0.5}', r"one of \[0, 1\]"),
    ('{"polite": 1, "confidence": 1.5}', "<= 1"),
    ('{"polite": 1}', r"lacks the field\(s\) \['confidence'\]"),
    ('{"polite": true, "confidence": 0.5}', "must be an integer"),
    ('{"polite": 0.5, "confidence": 0.5}', "must be an integer"),
    ('{"polite": 1, "confidence": "high"}', "finite number"),
    ("polite: 1", "not a JSON object"),  # a field missing in the fallback too
])
def test_answers_that_are_not(content, message):
    with pytest.raises(ParseError, match=message):
        SCHEMA.parse(content)


def test_one_field_schema_accepts_a_bare_value():
    schema = OutputSchema({"label": {"type": "string", "enum": ["polite", "impolite"]}})
    assert schema.parse("polite").values == {"label": "polite"}
    assert schema.parse("`impolite`").values == {"label": "impolite"}
    with pytest.raises(ParseError, match="one of"):
        schema.parse("rude")
    assert OutputSchema({"score": "integer"}).parse("7").values == {"score": 7}
    assert OutputSchema({"ok": "boolean"}).parse('{"ok": "true"}').values == {"ok": True}


def test_schema_forms_and_strict_json_schema():
    full = OutputSchema({"type": "object", "properties": {"y": {"type": "number"}}})
    assert full.names == ["y"]
    assert full.json_schema() == {"type": "object", "properties": {"y": {"type": "number"}}, "required": ["y"],
                                  "additionalProperties": False}
    assert OutputSchema({"y": "number"}).properties == {"y": {"type": "number"}}
    for bad, message in [({}, "non-empty"), ({"y": "list"}, "type 'list'"), ({"1y": "number"}, "identifiers"),
                         ({"y": {"type": "integer", "enum": []}}, "empty enum")]:
        with pytest.raises(SpecificationError, match=message):
            OutputSchema(bad)


def test_prompt_fields_render_and_hash():
    p = Prompt("Rate <request>{text}</request> from {site}; JSON like {{\"a\": 1}}", system="You rate {site}.")
    assert p.fields == ("site", "text")
    messages = p.render({"text": "hi", "site": "wiki"}, {"type": "object"})
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith("You rate wiki.")
    assert "matches this JSON schema:" in messages[0]["content"]
    assert messages[1] == {"role": "user", "content": 'Rate <request>hi</request> from wiki; JSON like {"a": 1}'}
    assert p.sha256 == Prompt(p.user, system=p.system).sha256 != Prompt(p.user).sha256
    assert Prompt("x {text}").render({"text": "t"}) == [{"role": "user", "content": "x t"}]
