"""mkdocs hook: serve MathJax from the site itself, so formulas render offline.

The MathJax 3.2.2 browser bundle comes from the ``django-static-mathjax``
package (the docs and test extras; it has no dependencies, Django included,
and ships MathJax's own ``es5`` build unchanged). This hook adds the files the
pages use to the build under ``javascripts/mathjax/``, keeping MathJax's
directory layout, which its loader resolves relative to the bundle: the
``tex-mml-chtml`` bundle, the CHTML output and its woff fonts, the TeX
extensions it autoloads, and the menu and accessibility components it loads
on demand. ``mkdocs serve`` serves them the same way. The speech rule engine
(``sre``, 4 MB) is left out: only the menu's optional speech explorer uses it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

#: where the site serves MathJax (mkdocs.yml's extra_javascript names the bundle here)
SITE_DIR = "javascripts/mathjax"
#: the bundle, and the directories (relative to MathJax's es5/) it loads from
BUNDLE = "tex-mml-chtml.js"
DIRECTORIES = ("output/chtml", "input/tex/extensions", "ui", "a11y", "adaptors")


def mathjax_root() -> Path:
    """MathJax's ``es5`` directory inside the installed ``django-static-mathjax``."""
    spec = importlib.util.find_spec("mathjax")
    root = None
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    if root is None or not (root / BUNDLE).is_file():
        raise PluginError(
            "MathJax is not installed: the docs serve it from the site and take it from the "
            "django-static-mathjax package; pip install -e '.[docs]' (or '.[test]')"
        )
    return root


def on_files(files: Files, config) -> Files:
    root = mathjax_root()
    paths = [root / BUNDLE]
    for directory in DIRECTORIES:
        paths += sorted(p for p in (root / directory).rglob("*") if p.is_file())
    for path in paths:
        uri = f"{SITE_DIR}/{path.relative_to(root).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
