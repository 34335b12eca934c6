"""The worked examples of the docs run as written (their asserts are the checks).

Each page's ```python blocks are executed in order in one namespace, so a
page cannot show code that does not run or numbers it does not reproduce.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["estimands.md", "from-statsmodels.md", "survey-weights.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text())


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_of_the_page_run(page: str, capsys) -> None:
    code = blocks(page)
    assert code, f"{page} has no python example"
    namespace: dict = {"__name__": f"docs_{page}"}
    for i, block in enumerate(code):
        exec(compile(block, f"{page}[{i}]", "exec"), namespace)
