"""Build the documentation site with ``mkdocs build --strict``.

The build renders the Markdown pages, the API reference from the docstrings
(mkdocstrings) and the stored notebooks (mkdocs-jupyter, without executing
them). Strict mode turns every warning (a broken link, a missing page, a
docstring mkdocstrings cannot resolve) into a failure. The tools come with the
package's ``test`` extra; the tests skip only where mkdocs is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[test]' to build the docs")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mkdocs.yml"

# Every page of the nav, as built, and a phrase it must contain.
PAGES = {
    "index.html": "drop-in for",
    "getting-started/index.html": "A first fit",
    "command-line/index.html": "exit code 2",
    "data-layout/index.html": "What errors you get",
    "synthetic-data/index.html": "Condition each sample on one real unit",
    "how-it-works/index.html": "Hansen",
    "when-it-helps/index.html": "cannot fix a biased labeled sample",
    "baselines/index.html": "ddof=1",
    "politeness-data/index.html": "Kristina Gligoric",
    "method/index.html": "Facts the tests can lean on",
    "notebooks/quickstart/index.html": "data.sample",
    "notebooks/synthetic_data/index.html": "simulate_study",
    "reference/api/index.html": "Create the model from a formula",
    "reference/models/index.html": "Two-step GMM estimate",
    "reference/results/index.html": "Hansen",
    "reference/comparison/index.html": "Forest plot",
    "reference/datasets/index.html": "Draw a simple random subset",
    "reference/simulate/index.html": "make_study",
    "reference/experiments/index.html": "Repeated-sampling experiments on simulated studies",
    "simulation-results/index.html": "Monte Carlo standard error",
    "reference/exceptions/index.html": "SpecificationError",
    "estimands/index.html": "AIPW",
    "architecture/index.html": "Where to add what",
    "llm/index.html": "It runs against a fake LLM",
    "notebooks/llm_politeness/index.html": "The LLM in this notebook is a fake",
    "reference/llm/index.html": "Annotate every unit with an LLM",
    "labeling-design/index.html": "Why inference stays valid",
    "reference/design/index.html": "variance-optimal labeling probabilities",
    "notebooks/labeling_design/index.html": "optimal_design",
    "from-statsmodels/index.html": "What is identical, what differs",
    "notebooks/reporting_tables/index.html": "summary_col_info",
    "changelog/index.html": "Keep a Changelog",
    "survey-weights/index.html": "freq_weights",
    "dask/index.html": "equal known divisions",
}


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env.pop("SYNTHINFER_DOCS_EXECUTE", None)  # render the notebooks as stored
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&quot;", '"').replace("&#39;", "'")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    result = build(CONFIG, site)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    assert "WARNING" not in log, log
    return site


def test_config_is_strict() -> None:
    assert re.search(r"^strict:\s*true\s*$", CONFIG.read_text(), re.M), "mkdocs.yml must set strict: true"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_is_built(site: Path, page: str) -> None:
    path = site / page
    assert path.is_file(), f"{page} was not built"
    assert PAGES[page] in visible_text(path.read_text(encoding="utf-8")), f"{page} lacks {PAGES[page]!r}"


def test_notebooks_are_published_with_their_outputs(site: Path) -> None:
    """The build renders the notebooks as stored (it does not execute them), and
    they are stored executed, so the site shows their outputs."""
    for name in ("quickstart", "synthetic_data", "reporting_tables"):
        text = visible_text((site / "notebooks" / name / "index.html").read_text(encoding="utf-8"))
        # the last cell prints "notebook ran in N s" when executed
        assert re.search(r"notebook ran in \d+ s", text), f"{name} is published without its outputs"
    tables = visible_text((site / "notebooks" / "reporting_tables" / "index.html").read_text(encoding="utf-8"))
    for needle in ("N units", "n labeled", "effective n", "J p-value", r"\begin{tabular}"):
        assert needle in tables, needle


def test_citation_file_cites_the_package_and_the_paper() -> None:
    """CITATION.cff is CFF 1.2.0 (validated with cffconvert when it was written)
    and cites the paper by the title docs/method.md gives."""
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "type", "version", "license"):
        assert cff[key], key
    assert cff["version"] in (ROOT / "pyproject.toml").read_text()
    (paper,) = cff["references"]
    method = re.sub(r"\s+", " ", (ROOT / "docs" / "method.md").read_text(encoding="utf-8"))
    assert f'"{paper["title"]}"' in method
    assert "arXiv:2508.06635" in paper["identifiers"][0]["value"] and "2508.06635" in method
    surnames = [a["family-names"] for a in paper["authors"]]
    assert f"Source: {', '.join(surnames)}," in method


def test_changelog_follows_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text
    sections = re.findall(r"^### (\w+)$", text, re.M)
    assert sections and set(sections) <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_api_reference_renders_docstrings(site: Path) -> None:
    text = visible_text((site / "reference" / "api" / "index.html").read_text(encoding="utf-8"))
    for phrase in ("gmm_synth", "gmm_proxy", "classical", "naive", "ppi", "human-labeled units"):
        assert phrase in text, phrase


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    """The strict build is not a formality: a link to a missing page fails it."""
    shutil.copy(CONFIG, tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", symlinks=True)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    with open(tmp_path / "docs" / "index.md", "a", encoding="utf-8") as handle:
        handle.write("\nSee [the missing page](no-such-page.md).\n")
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def rendered_dom(page: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium (no network needed)."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_formulas_render_offline_with_mathjax_served_by_the_site(site: Path) -> None:
    """MathJax comes from the site (no CDN): the built page typesets its TeX from file://."""
    source = (site / "method" / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', source)
    assert any(s.endswith("javascripts/mathjax/tex-mml-chtml.js") for s in scripts), scripts
    assert not [s for s in scripts if re.match(r"(https?:)?//", s)], f"scripts from the network: {scripts}"
    assert (site / "javascripts" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff").is_file()
    raw = re.findall(r'class="arithmatex">(.*?)</', source, re.S)
    assert any("\\pi_i" in tex for tex in raw), "docs/method.md should hold a TeX formula"
    dom = rendered_dom(site / "method" / "index.html")
    assert dom.count("<mjx-container") >= len(raw) > 0, (dom.count("<mjx-container"), len(raw))
    # the TeX source is gone from the page: MathJax replaced every delimiter
    left = [tex for tex in re.findall(r'class="arithmatex">(.*?)</', dom, re.S) if "\\(" in tex or "\\[" in tex]
    assert not left, left[:3]
    assert "\\frac{1}{k_i}" not in visible_text(dom)
