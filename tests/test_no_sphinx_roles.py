"""Docstrings render in the mkdocs site (mkdocstrings), which shows Sphinx roles
such as ``:func:`x``` as raw text: the package must not use them."""

from __future__ import annotations

import re
from pathlib import Path

import synthinfer

PACKAGE = Path(synthinfer.__file__).parent
# any reStructuredText role, ``:name:`text``` or ``:py:name:`text```
ROLE = re.compile(r"(?<![\w:]):(?:[a-z]+:)?[a-z]+:`[^`]+`")


def test_role_pattern_catches_roles() -> None:
    for text in (":func:`f`", ":class:`~a.B`", ":py:meth:`C.d`", "see :mod:`m`."):
        assert ROLE.search(text), text
    for text in ("``x``", "a: `b`", "dict[str, int]: ``d``", "http://x.org/`y`"):
        assert not ROLE.search(text), text


def test_no_sphinx_roles_in_the_package() -> None:
    hits = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ROLE.search(line)
    ]
    assert not hits, "raw Sphinx roles (use ``name``):\n" + "\n".join(hits)
