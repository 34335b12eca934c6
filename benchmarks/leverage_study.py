"""The default's leverage adjustment (``fit(leverage="HC3")``) against the factor it replaces.

    nice -n 10 python benchmarks/leverage_study.py                   # the committed run
    python benchmarks/leverage_study.py --studies 20 --output /tmp/x  # a quick look

Per study of a `small_sample_study` cell (its ``draw``, seeds 0, 1, ...), on
the same data: the default fit with each leverage adjustment (``"HC3"``, the
default; ``"HC2"``; ``None``, the ``n / (n - p - s q M)`` factor of before),
and the human-only fit with each. The estimate does not depend on the
adjustment (it enters the parameters' covariance only), so MSE and gain are
the same in every column by construction; the study checks coverage and
interval width. A study where any fit fails is left out of its cell (counted
in ``failed``). Coverage differences are paired (same studies) with their
Monte Carlo SE. Writes ``cells.csv`` and ``summary.md`` to ``--output``
(default ``docs/results/leverage_study``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import small_sample_study as sss  # noqa: E402

import synthinfer.api as smf  # noqa: E402

VARIANTS = {"HC3": "HC3", "HC2": "HC2", "factor": None}
METHODS = [f"default {v}" for v in VARIANTS] + [f"human {v}" for v in VARIANTS]
#: (cell label, studies)
PLAN = [
    ("ols n=50 useful rare", 2000), ("ols n=100 useful rare", 2000), ("ols n=200 useful rare", 1500),
    ("ols n=100 useful", 1000), ("ols n=200 useful", 1000), ("ols n=100 noise", 1000), ("ols n=200 noise", 1000),
    ("ols n=100 useful heavy", 1000), ("ols n=200 useful heavy", 1000),
    ("ols n=100 noise heavy", 1000), ("ols n=200 noise heavy", 1000),
    ("ols n=50 useful", 1000), ("ols n=500 useful", 500), ("ols n=200 useful three", 500),
    ("logit n=50 useful rare", 500), ("logit n=100 useful rare", 500), ("logit n=200 useful rare", 500),
]


def one_study(cell: sss.Cell, seed: int) -> dict | None:
    formula, real, proxies, synth, options = sss.draw(cell, seed)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = smf.gmm_synth(formula, real=real, proxy=proxies, synth=synth or None, model=cell.model)
            human = smf.classical(formula, real=real, model=cell.model)
            for kind, fitted in (("default", model), ("human", human)):
                for name, leverage in VARIANTS.items():
                    res = fitted.fit(**options, leverage=leverage)
                    ci = np.asarray(res.conf_int())
                    b = np.asarray(res.params, dtype=float)
                    out[f"{kind} {name}"] = (
                        (ci[:, 0] <= sss.COEFS) & (sss.COEFS <= ci[:, 1]), (b - sss.COEFS) ** 2,
                        np.asarray(res.bse, dtype=float),
                    )
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            return None
    return out


def summarize(label: str, studies: list[dict], failed: int) -> list[dict]:
    rows = []
    k = len(studies)
    cover = {m: np.array([s[m][0] for s in studies], dtype=float) for m in METHODS}
    sq = {m: np.array([s[m][1] for s in studies]) for m in METHODS}
    se = {m: np.array([s[m][2] for s in studies]) for m in METHODS}
    for m in METHODS:
        for j, coef in enumerate(sss.NAMES):
            row = {
                "cell": label, "method": m, "coef": coef, "studies": k, "failed": failed,
                "coverage": cover[m][:, j].mean(), "coverage_se": np.sqrt(cover[m][:, j].mean() * (1 - cover[m][:, j].mean()) / k),
                "mse": sq[m][:, j].mean(), "mean_se": se[m][:, j].mean(), "sd_estimate": np.sqrt(sq[m][:, j].mean()),
                "se_ratio_to_factor": (se[m][:, j] / se[f"{m.split()[0]} factor"][:, j]).mean(),
            }
            for ref in ("default factor", "human factor", "human HC3"):
                d = cover[m][:, j] - cover[ref][:, j]
                row[f"diff_vs_{ref.replace(' ', '_')}"] = d.mean()
                row[f"diff_vs_{ref.replace(' ', '_')}_se"] = d.std(ddof=1) / np.sqrt(k) if k > 1 else np.nan
            rows.append(row)
    return rows


def write_summary(frame: pd.DataFrame, path: Path, elapsed: float) -> None:
    lines = [
        "# Leverage adjustment of the default small-sample correction",
        "",
        "`python benchmarks/leverage_study.py` (seeds 0, 1, ... of each `small_sample_study` cell; every fit on the",
        "same data; a study where any fit fails is left out and counted). Coverage of the 95% interval of",
        "Intercept / x1 / x2; `HC3` is the new default (`fit()`), `factor` the default before it",
        "(`fit(leverage=None)`: covariance x n/(n - p - s q M)); `human` the human-only fit with the same",
        "option. Paired differences (same studies) with their Monte Carlo SE in parentheses. SE ratio: mean",
        "over studies of the SE over the `factor` variant's SE, x1 / x2. The estimate is the same in every",
        "column, so MSE and the gain over the human-only fit are unchanged by construction.",
        "",
        "| cell | studies (failed) | default HC3 | default HC2 | default factor | human HC3 | human factor | HC3 - factor (default) | default HC3 - human factor | SE ratio HC3 x1 x2 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, g in frame.groupby("cell", sort=False):
        def cov(m: str) -> str:
            return " ".join(f"{v:.3f}" for v in g[g.method == m].coverage)

        def diff(m: str, ref: str) -> str:
            s = g[g.method == m]
            return " ".join(f"{d:+.3f}({e:.3f})" for d, e in zip(s[f"diff_vs_{ref}"], s[f"diff_vs_{ref}_se"]))

        hc3 = g[g.method == "default HC3"]
        ratio = " ".join(f"{v:.3f}" for v in hc3.se_ratio_to_factor.iloc[1:])
        lines.append(
            f"| {label} | {int(hc3.studies.iloc[0])} ({int(hc3.failed.iloc[0])}) | {cov('default HC3')} | {cov('default HC2')} | "
            f"{cov('default factor')} | {cov('human HC3')} | {cov('human factor')} | {diff('default HC3', 'default_factor')} | "
            f"{diff('default HC3', 'human_factor')} | {ratio} |"
        )
    lines += ["", f"Elapsed: {elapsed / 60:.1f} minutes.", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=None, help="studies per cell (default: the plan's)")
    parser.add_argument("--only", default=None, help="cells whose label contains this")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
    parser.add_argument("--output", type=Path, default=Path("docs/results/leverage_study"))
    args = parser.parse_args(argv)
    by_label = {c.label: c for c in sss.cells()}
    args.output.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    started = time.time()
    for label, planned in PLAN:
        if args.only and args.only not in label:
            continue
        cell = by_label[label]
        count = args.studies or planned
        results = [one_study(cell, seed) for seed in range(args.first_seed, args.first_seed + count)]
        studies = [r for r in results if r is not None]
        rows += summarize(label, studies, count - len(studies))
        frame = pd.DataFrame(rows)
        frame.to_csv(args.output / "cells.csv", index=False)
        write_summary(frame, args.output / "summary.md", time.time() - started)
        print(f"{label}: {len(studies)} studies, {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
