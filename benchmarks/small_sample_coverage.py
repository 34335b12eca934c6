"""Coverage of the small-sample remedies with few human labels (docs/when-it-helps.md).

    python benchmarks/small_sample_coverage.py              # full run, ~20 minutes on 2 cores
    python benchmarks/small_sample_coverage.py --quick --output DIR   # the test suite's check

For each model (OLS, logit) and labeled n (50, 100) it draws seeded studies
``make_study(model, n_units=1000, n_labeled=n, seed=i)`` (a useful proxy and
two synthetic samples per unit) and records whether the nominal 95% interval
of each coefficient covers the truth, for:

- ``plain``: the two-step GMM interval, ``fit(correction=None, shrinkage=None)``;
- ``windmeijer``: ``fit(correction="windmeijer", shrinkage=None)``;
- ``bootstrap percentile`` / ``bootstrap normal``: ``res.bootstrap(B, seed=i,
  method="refit")`` of the plain fit (on the first ``--boot-studies`` studies:
  each costs B refits);
- ``human only``: the classical fit on the labeled units, HC0 (``correction=None``).

These were the package's options before the small-sample default; the study
of the default is ``benchmarks/small_sample_study.py``.

A fit that fails (e.g. perfect separation in a small logit sample) is
counted per method, never dropped silently. Writes ``coverage.csv`` and
``coverage.md`` to ``--output`` (default ``docs/results/small_sample``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import synthinfer.api as smf
from synthinfer.simulate import make_study

METHODS = ["plain", "windmeijer", "bootstrap percentile", "bootstrap normal", "human only"]
N_UNITS = 1000


def _covers(ci: pd.DataFrame, truth: pd.Series) -> np.ndarray:
    return ((ci[0] <= truth) & (truth <= ci[1])).to_numpy()


def one_study(model: str, n_labeled: int, seed: int, n_boot: int) -> dict[str, np.ndarray | None]:
    """Coverage indicators per method for one seeded study (None where the fit failed)."""
    study = make_study(model, n_units=N_UNITS, n_labeled=n_labeled, seed=seed)
    hits: dict[str, np.ndarray | None] = dict.fromkeys(METHODS)
    with warnings.catch_warnings():
        # failed fits and refits are counted below; their warnings would repeat it
        warnings.simplefilter("ignore")
        fitted = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model=model)
        try:
            res = fitted.fit(correction=None, shrinkage=None)
            hits["plain"] = _covers(res.conf_int(), study.truth)
            hits["windmeijer"] = _covers(fitted.fit(correction="windmeijer", shrinkage=None).conf_int(), study.truth)
            if n_boot:
                boot = res.bootstrap(n_boot, seed=seed, method="refit")
                hits["bootstrap percentile"] = _covers(boot.conf_int(), study.truth)
                hits["bootstrap normal"] = _covers(boot.conf_int(method="normal"), study.truth)
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            pass
        try:
            human = smf.classical(study.formula, real=study.real, model=model).fit(correction=None)
            hits["human only"] = _covers(human.conf_int(), study.truth)
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            pass
    return hits


def run(
    models: list[str], sizes: list[int], studies: int, boot_studies: int, n_boot: int,
    jobs: int, progress: bool,
) -> pd.DataFrame:
    from joblib import Parallel, delayed

    tasks = [
        (model, n, seed, n_boot if seed < boot_studies else 0)
        for model in models for n in sizes for seed in range(studies)
    ]
    iterator = tasks
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(tasks, desc="studies", unit="study")
    outcomes = Parallel(n_jobs=jobs)(delayed(one_study)(*task) for task in iterator)
    names = ["Intercept", "x1", "x2"]
    rows = []
    for model in models:
        for n in sizes:
            cell = [(task, out) for task, out in zip(tasks, outcomes) if task[:2] == (model, n)]
            for method in METHODS:
                attempted = [out[method] for task, out in cell if method not in ("bootstrap percentile", "bootstrap normal") or task[3]]
                good = np.array([h for h in attempted if h is not None])
                for j, name in enumerate(names):
                    coverage = good[:, j].mean() if len(good) else np.nan
                    rows.append({
                        "model": model, "n_labeled": n, "method": method, "coefficient": name,
                        "coverage": coverage,
                        "mc_se": np.sqrt(coverage * (1 - coverage) / len(good)) if len(good) else np.nan,
                        "studies": len(good), "failed": len(attempted) - len(good),
                        "n_boot": n_boot if method.startswith("bootstrap") else np.nan,
                    })
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    lines = []
    for n, by_n in table.groupby("n_labeled", sort=True):
        models = list(dict.fromkeys(by_n["model"]))
        lines += [
            f"n = {n} labeled units (N = {N_UNITS:,}); coverage of the intercept, x1 and x2:",
            "",
            "| intervals | " + " | ".join(models) + " | studies |",
            "|---|" + "---|" * len(models) + "---|",
        ]
        for method in METHODS:
            cells, studies = [], []
            for model in models:
                rows = by_n[(by_n.model == model) & (by_n.method == method)]
                cells.append(", ".join(f"{c:.3f}" for c in rows["coverage"]))
                fails = int(rows["failed"].iloc[0])
                studies.append(f"{int(rows['studies'].iloc[0])}" + (f" ({fails} failed)" if fails else ""))
            label = method + (f" (B = {int(by_n['n_boot'].dropna().iloc[0])})" if method.startswith("bootstrap") else "")
            lines.append(f"| {label} | " + " | ".join(cells) + " | " + " / ".join(studies) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few small studies (for the test suite)")
    parser.add_argument("--models", nargs="+", default=["ols", "logit"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--boot-studies", type=int, default=300)
    parser.add_argument("--n-boot", type=int, default=199)
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "results" / "small_sample")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.studies, args.boot_studies, args.n_boot, args.jobs = [50], 4, 2, 9, 1
    table = run(args.models, args.sizes, args.studies, args.boot_studies, args.n_boot, args.jobs, not args.quick)
    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / "coverage.csv", index=False)
    markdown = to_markdown(table)
    (args.output / "coverage.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
