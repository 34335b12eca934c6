"""The small-sample study behind fit()'s default (docs/small-samples.md).

    python benchmarks/small_sample_study.py                  # full run (about an hour on 2 cores)
    python benchmarks/small_sample_study.py --quick --output DIR   # the test suite's check

Every cell draws seeded studies (N = 1,000 units, n labeled by simple random
sampling, a proxy and k synthetic samples per unit unless the cell says
otherwise) from a correctly specified target model with known coefficients,
and records for each coefficient whether the nominal 95% interval covers the
truth, the estimate's squared error and the reported standard error, for:

- ``default``: ``fit()`` (Stein shrinkage + small-sample correction);
- ``plain``: ``fit(correction=None, shrinkage=None)``, the paper's two-step;
- ``windmeijer``: ``fit(correction="windmeijer", shrinkage=None)``;
- ``human default`` / ``human HC0``: the human-only fit, default (HC1 with t) and HC0 with z;
- ``fast t`` / ``fast percentile``: ``fit().bootstrap(B, method="fast")``
  intervals, on the first ``--boot-studies`` studies of a cell;
- the J test's rejection rate at 5% (default fit; plain fit).

Cells: OLS and logit at n = 30, 50, 100, 200, 500 with informative and
pure-noise sources; biased and anti-correlated sources; heavy-tailed errors
(t with 3 df) with a skewed (log-normal) covariate; a rare binary covariate
(5% prevalence); k = 1 and 3 synthetic samples; one source and three
sources; 40 clusters with cluster-robust covariance. A failed fit is counted
per method, never dropped silently. Writes ``cells.csv`` (one row per cell,
method and coefficient; the default's rows also carry ``paired_diff``, its
coverage minus the human-only default's in the same studies, with
``paired_diff_se``) and ``summary.md`` to ``--output`` (default
``docs/results/small_sample_study``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

import synthinfer.api as smf

N_UNITS = 1000
COEFS = np.array([0.5, 1.0, -0.5])
NAMES = ["Intercept", "x1", "x2"]
FIT_METHODS = ["default", "plain", "windmeijer", "human default", "human HC0"]
BOOT_METHODS = ["fast t", "fast percentile"]
METHODS = FIT_METHODS + BOOT_METHODS


@dataclass(frozen=True)
class Cell:
    model: str
    n: int
    aux: str = "useful"  # useful | noise | biased | anti
    design: str = "normal"  # normal | heavy | rare | cluster
    sources: str = "proxy+synth"  # proxy | proxy+synth | three
    k: int = 2

    @property
    def label(self) -> str:
        parts = [self.model, f"n={self.n}", self.aux]
        if self.design != "normal":
            parts.append(self.design)
        if self.sources != "proxy+synth":
            parts.append(self.sources)
        if self.k != 2:
            parts.append(f"k={self.k}")
        return " ".join(parts)


def cells(quick: bool = False) -> list[Cell]:
    if quick:
        return [Cell("ols", 50), Cell("logit", 100, "noise"), Cell("ols", 50, design="cluster")]
    out = [Cell(m, n, aux) for m in ("ols", "logit") for aux in ("useful", "noise") for n in (30, 50, 100, 200, 500)]
    out += [Cell(m, n, aux) for m in ("ols", "logit") for aux in ("biased", "anti") for n in (50, 200)]
    out += [Cell("ols", n, aux, design="heavy") for aux in ("useful", "noise") for n in (50, 100, 200)]
    out += [Cell(m, n, design="rare") for m in ("ols", "logit") for n in (50, 100, 200)]
    out += [Cell(m, n, aux, sources=s) for m in ("ols", "logit") for s in ("proxy", "three")
            for aux in ("useful", "noise") for n in (50, 200)]
    out += [Cell(m, 50, k=k) for m in ("ols", "logit") for k in (1, 3)]
    out += [Cell(m, n, aux, design="cluster") for m in ("ols", "logit") for aux in ("useful", "noise") for n in (100, 200)]
    return out


def _outcome(model: str, lin: np.ndarray, latent: np.ndarray) -> np.ndarray:
    """The outcome at a latent draw: OLS lin + error, logit 1{U < expit(lin)} with U = Phi(latent)."""
    if model == "ols":
        return lin + latent
    return (stats.norm.cdf(latent) < expit(lin)).astype(float)


def draw(cell: Cell, seed: int) -> tuple[str, pd.DataFrame, dict, dict, dict]:
    """One study: formula, real frame, proxies, synthetic samples and fit options."""
    rng = np.random.default_rng(seed)
    N = N_UNITS
    units = pd.Index([f"u{i:05d}" for i in range(N)], name="unit")
    cluster = rng.integers(0, 40, size=N) if cell.design == "cluster" else None
    x1 = rng.normal(size=N)
    if cell.design == "heavy":
        x1 = (np.exp(x1) - np.exp(0.5)) / np.sqrt((np.e - 1) * np.e)  # log-normal, mean 0, sd 1
    if cluster is not None:
        x1 = 0.6 * x1 + 0.8 * rng.normal(size=40)[cluster]
    x2 = (rng.random(N) < 0.05).astype(float) if cell.design == "rare" else rng.normal(size=N)
    lin = COEFS[0] + COEFS[1] * x1 + COEFS[2] * x2
    if cell.design == "heavy" and cell.model == "ols":
        latent = rng.standard_t(3, size=N) / np.sqrt(3.0)
    else:
        latent = rng.normal(size=N)
    if cluster is not None:
        latent = np.sqrt(0.6) * latent + np.sqrt(0.4) * rng.normal(size=40)[cluster]
    y = _outcome(cell.model, lin, latent)
    frame = pd.DataFrame({"y": y, "x1": x1, "x2": x2}, index=units)
    if cluster is not None:
        frame["cluster"] = cluster

    def auxiliary(error: float, shift: float) -> np.ndarray:
        """An LLM outcome for every unit, of the cell's quality."""
        if cell.aux == "noise":
            return _outcome(cell.model, np.full(N, lin.mean()), rng.normal(size=N))
        sign = -1.0 if cell.aux == "anti" else 1.0
        bias = 2 * 0.5 * expit(x1) if cell.aux == "biased" else 0.0
        mixed = sign * (latent * np.sqrt(1 - error**2) + error * rng.normal(size=N))
        aux_lin = (COEFS[0] + sign * (COEFS[1] * x1 + COEFS[2] * x2) if cell.aux == "anti" else lin) + shift + bias
        return _outcome(cell.model, aux_lin, mixed)

    proxies = {"proxy": frame.assign(y=auxiliary(0.5, 0.0))}
    if cell.sources == "three":
        proxies["proxy_b"] = frame.assign(y=auxiliary(0.7, 0.1))
    synth = {}
    if cell.sources in ("proxy+synth", "three"):
        samples = []
        for _ in range(cell.k):
            sample = frame.assign(
                y=auxiliary(0.7, 0.05), x1=x1 + 0.3 * rng.normal(size=N), x2=x2 if cell.design == "rare" else x2 + 0.3 * rng.normal(size=N)
            )
            samples.append(sample)
        synth["synth"] = pd.concat(samples)
    labeled = np.sort(rng.choice(N, size=cell.n, replace=False))
    real = frame.iloc[labeled].copy()
    options = {}
    if cluster is not None:
        options = {"cov_type": "cluster", "cov_kwds": {"groups": "cluster"}}
    return "y ~ x1 + x2", real, proxies, synth, options


def one_study(cell: Cell, seed: int, n_boot: int) -> dict:
    """Per method: (covers, squared error, se) arrays, or None where the fit failed; J rejections."""
    formula, real, proxies, synth, options = draw(cell, seed)
    out: dict = dict.fromkeys(METHODS)
    out["j default"] = out["j plain"] = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        def record(name: str, res) -> None:
            ci = np.asarray(res.conf_int())
            b = np.asarray(res.params, dtype=float)
            out[name] = ((ci[:, 0] <= COEFS) & (COEFS <= ci[:, 1]), (b - COEFS) ** 2, np.asarray(res.bse, dtype=float))

        try:
            model = smf.gmm_synth(formula, real=real, proxy=proxies, synth=synth or None, model=cell.model)
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            model = None
        fits = {
            "default": {}, "plain": {"correction": None, "shrinkage": None},
            "windmeijer": {"correction": "windmeijer", "shrinkage": None},
        }
        default = None
        for name, kwds in fits.items():
            if model is None:
                break
            try:
                res = model.fit(**options, **kwds)
                record(name, res)
                if name == "default":
                    default = res
                    out["j default"] = res.jtest()[1] < 0.05
                if name == "plain":
                    out["j plain"] = res.jtest()[1] < 0.05
            except (ValueError, RuntimeError, np.linalg.LinAlgError):
                pass
        try:
            human = smf.classical(formula, real=real, model=cell.model)
            record("human default", human.fit(**options))
            record("human HC0", human.fit(**options, correction=None))
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            pass
        if n_boot and default is not None:
            try:
                boot = default.bootstrap(n_boot, seed=seed, method="fast")
                b = np.asarray(default.params, dtype=float)
                for name, kind in (("fast t", "t"), ("fast percentile", "percentile")):
                    ci = np.asarray(boot.conf_int(method=kind))
                    out[name] = ((ci[:, 0] <= COEFS) & (COEFS <= ci[:, 1]), (b - COEFS) ** 2, np.asarray(boot.bse))
            except (ValueError, RuntimeError, np.linalg.LinAlgError):
                pass
    return out


def run(cell_list: list[Cell], studies: int, boot_studies: int, n_boot: int, jobs: int, progress: bool) -> pd.DataFrame:
    from joblib import Parallel, delayed

    tasks = [(cell, seed, n_boot if seed < boot_studies else 0) for cell in cell_list for seed in range(studies)]
    iterator = tasks
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(tasks, desc="studies", unit="study")
    outcomes = Parallel(n_jobs=jobs, batch_size=8)(delayed(one_study)(*task) for task in iterator)
    rows = []
    for cell in cell_list:
        cell_out = [(task, out) for task, out in zip(tasks, outcomes) if task[0] == cell]
        human_mse = None
        for method in METHODS:
            attempted = [out[method] for task, out in cell_out if method in FIT_METHODS or task[2]]
            good = [h for h in attempted if h is not None]
            covers = np.array([h[0] for h in good]) if good else np.full((0, 3), np.nan)
            sq = np.array([h[1] for h in good]) if good else np.full((0, 3), np.nan)
            se = np.array([h[2] for h in good]) if good else np.full((0, 3), np.nan)
            if method == "human HC0":
                pass
            for j, name in enumerate(NAMES):
                coverage = covers[:, j].mean() if len(good) else np.nan
                rows.append({
                    "cell": cell.label, "model": cell.model, "n": cell.n, "aux": cell.aux, "design": cell.design,
                    "sources": cell.sources, "k": cell.k, "method": method, "coefficient": name,
                    "coverage": coverage,
                    "mc_se": np.sqrt(coverage * (1 - coverage) / len(good)) if len(good) else np.nan,
                    "mse": sq[:, j].mean() if len(good) else np.nan,
                    "mean_se": se[:, j].mean() if len(good) else np.nan,
                    "sd_estimate": np.sqrt(sq[:, j].mean()) if len(good) else np.nan,
                    "studies": len(good), "failed": len(attempted) - len(good),
                })
        del human_mse
        # the default's coverage minus the human-only fit's in the same studies: the
        # difference the criterion is about, with its (paired) Monte Carlo SE,
        # much smaller than that of two independent coverages
        pairs = [(out["default"][0], out["human default"][0]) for _, out in cell_out
                 if out["default"] is not None and out["human default"] is not None]
        if pairs:
            diff = np.array([d for d, _ in pairs], dtype=float) - np.array([h for _, h in pairs], dtype=float)
            for row in rows[-len(METHODS) * len(NAMES):]:
                if row["method"] == "default":
                    j = NAMES.index(row["coefficient"])
                    row["paired_diff"] = diff[:, j].mean()
                    row["paired_diff_se"] = diff[:, j].std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
                    row["paired_studies"] = len(diff)
        for which in ("j default", "j plain"):
            rejections = [out[which] for _, out in cell_out if out[which] is not None]
            rate = float(np.mean(rejections)) if rejections else np.nan
            rows.append({
                "cell": cell.label, "model": cell.model, "n": cell.n, "aux": cell.aux, "design": cell.design,
                "sources": cell.sources, "k": cell.k, "method": which, "coefficient": "J test",
                "coverage": rate, "mc_se": np.sqrt(0.05 * 0.95 / len(rejections)) if rejections else np.nan,
                "studies": len(rejections), "failed": len(cell_out) - len(rejections),
            })
    table = pd.DataFrame(rows)
    # MSE relative to the human-only fit of the same cell and coefficient
    human = table[table.method == "human HC0"].set_index(["cell", "coefficient"])["mse"]
    table["rel_mse"] = [
        row.mse / human.get((row.cell, row.coefficient), np.nan) if np.isfinite(row.mse) else np.nan
        for row in table.itertuples()
    ]
    return table


def to_markdown(table: pd.DataFrame) -> str:
    """Per cell: coverage of the three coefficients by method, relative MSE, J rejection."""
    shown = ["default", "plain", "windmeijer", "human default", "human HC0", "fast t", "fast percentile"]
    lines = [
        "Coverage of the nominal 95% intervals (Intercept, x1, x2); relative MSE is the",
        "default estimator's over the human-only fit's (x1); J is the 5%-level rejection rate",
        "of the default fit's J test. Monte Carlo SE of a coverage near 0.95: "
        + ", ".join(f"{int(s)} studies {np.sqrt(0.95 * 0.05 / s):.3f}" for s in sorted(table.studies.dropna().unique()) if s > 0)[:200] + ".",
        "",
        "\"default - human\" is the lowest over the three coefficients of the default's coverage",
        "minus the human-only default's in the same studies, with its paired Monte Carlo SE.",
        "",
        "| cell | " + " | ".join(shown) + " | default - human | rel. MSE (x1) | J |",
        "|---|" + "---|" * (len(shown) + 3),
    ]
    for cell, by_cell in table.groupby("cell", sort=False):
        cells_txt = []
        for method in shown:
            rows = by_cell[by_cell.method == method]
            if rows.empty or rows.coverage.isna().all():
                cells_txt.append("--")
                continue
            text = " ".join(f"{c:.3f}" for c in rows.coverage)
            failed = int(rows.failed.iloc[0])
            cells_txt.append(text + (f" ({failed} failed)" if failed else ""))
        paired = by_cell[by_cell.method == "default"]
        if "paired_diff" in paired and paired.paired_diff.notna().any():
            worst = paired.loc[paired.paired_diff.idxmin()]
            cells_txt.append(f"{worst.paired_diff:+.3f} ({worst.paired_diff_se:.3f})")
        else:
            cells_txt.append("--")
        rel = by_cell[(by_cell.method == "default") & (by_cell.coefficient == "x1")].rel_mse
        j = by_cell[by_cell.method == "j default"].coverage
        lines.append(
            f"| {cell} | " + " | ".join(cells_txt)
            + f" | {rel.iloc[0]:.3f} | " + (f"{j.iloc[0]:.3f}" if len(j) and np.isfinite(j.iloc[0]) else "--") + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="three small cells (for the test suite)")
    parser.add_argument("--studies", type=int, default=400)
    parser.add_argument("--boot-studies", type=int, default=200)
    parser.add_argument("--n-boot", type=int, default=199)
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--only", nargs="*", default=None, help="run the cells whose label contains every given word")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "results" / "small_sample_study")
    args = parser.parse_args(argv)
    if args.quick:
        args.studies, args.boot_studies, args.n_boot, args.jobs = 6, 2, 19, 1
    chosen = [c for c in cells(args.quick) if not args.only or all(w in c.label.split() for w in args.only)]
    table = run(chosen, args.studies, args.boot_studies, args.n_boot, args.jobs, not args.quick)
    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / "cells.csv", index=False)
    markdown = to_markdown(table)
    (args.output / "summary.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
