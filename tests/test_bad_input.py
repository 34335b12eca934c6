"""Every row of the bad-input table (tests/bad_input_cases.py) and the docs page made from it."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

from bad_input_cases import CASES, Case, Context, render

DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"

pytestmark = pytest.mark.filterwarnings(
    # ill-conditioned solves on purpose, in the singular cases
    "ignore::scipy.linalg.LinAlgWarning",
    "ignore:divide by zero:RuntimeWarning",
    "ignore:invalid value:RuntimeWarning",
)


def _message_names_all(message: str, words: tuple[str, ...]) -> None:
    missing = [w for w in words if w not in message]
    assert not missing, f"message lacks {missing}: {message}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_its_named_answer(case: Case, tmp_path: Path, capsys) -> None:
    ctx = Context(tmp_path)
    if issubclass(case.error, Warning):
        with pytest.warns(case.error) as caught:
            case.run(ctx)
        message = " ".join(str(w.message) for w in caught if issubclass(w.category, case.error))
    else:
        # other warnings on the way (e.g. few labeled units) are not what the row is about
        with warnings.catch_warnings(record=True), pytest.raises(case.error) as raised:
            warnings.simplefilter("always")
            case.run(ctx)
        message = str(raised.value)
    _message_names_all(message, case.words)
    for passed, before in ctx.frames:
        pd.testing.assert_frame_equal(passed, before)
    for path, content in ctx.files.items():
        assert path.read_bytes() == content, f"{path} was changed"
    capsys.readouterr()


def test_the_docs_page_is_the_rendered_table() -> None:
    assert DOCS_PAGE.read_text() == render(), (
        "docs/bad-input.md is out of date: python tests/bad_input_cases.py > docs/bad-input.md"
    )


def test_every_case_id_is_unique_and_every_row_has_words() -> None:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids)
    assert all(c.words and re.fullmatch(r"[a-z0-9-]+", c.id) for c in CASES)
