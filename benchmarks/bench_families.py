"""Fit times of every built-in family against its statsmodels counterpart, in one process.

    python benchmarks/bench_families.py                 # N = 1e6 (the committed run)
    python benchmarks/bench_families.py --quick --output DIR   # small N, one repeat: a smoke run

For each family, N proxy rows and N synthetic rows (one per unit) with an
intercept and 4 covariates, n = 1,000 labeled units: the median time of a
default ``gmm_synth(...).fit()`` and of ``gmm_proxy(...).fit()`` (models
built once before timing), against statsmodels' fit on the N proxy rows:

========================  ==========================================================
family                    statsmodels
========================  ==========================================================
probit                    ``Probit(y, X).fit(disp=0)``
poisson                   ``Poisson(y, X).fit(disp=0)``
negbin                    ``NegativeBinomial(y, X).fit(disp=0)`` (NB2)
fractional_logit          ``GLM(y, X, family=Binomial()).fit()`` (y in [0, 1])
mnlogit                   ``MNLogit(y, X).fit(disp=0)`` (3 classes)
quantile (q = 0.5)        ``QuantReg(y, X).fit(q=0.5)``
========================  ==========================================================

The libraries take turns within each round (``bench_fit.median_times``), so
a slow spell of the machine hits them alike. Writes ``families.csv`` and
``families.md`` to ``--output`` (default ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import CPU_TIME, clock_note, median_times  # noqa: E402

import synthinfer.api as smf  # noqa: E402
from synthinfer.families import Quantile  # noqa: E402

P = 5
FAMILIES = ("probit", "poisson", "negbin", "fractional_logit", "mnlogit", "quantile")


def outcomes(family: str, lin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A human outcome of the family for linear index ``lin``."""
    if family == "probit":
        return (lin + rng.normal(size=len(lin)) > 0).astype(float)
    if family == "poisson":
        return rng.poisson(np.exp(lin)).astype(float)
    if family == "negbin":
        mu = np.exp(lin)
        return rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)
    if family == "fractional_logit":
        return np.clip(expit(lin) + rng.normal(scale=0.1, size=len(lin)), 0.0, 1.0)
    if family == "mnlogit":
        return np.clip(np.round(lin + rng.normal(size=len(lin))).astype(int) + 1, 0, 2).astype(float)
    return lin + rng.standard_t(5, size=len(lin))


def frames(family: str, n_units: int, n_labeled: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_units, P - 1))
    lin = 0.2 + X @ (np.linspace(0.5, -0.5, P - 1) / np.sqrt(P))
    y = outcomes(family, lin, rng)
    y_proxy = outcomes(family, lin + rng.normal(scale=0.3, size=n_units), rng)
    y_synth = outcomes(family, lin + rng.normal(scale=0.5, size=n_units), rng)
    columns = [f"x{j}" for j in range(1, P)]
    units = pd.RangeIndex(n_units, name="unit")
    covariates = pd.DataFrame(X, index=units, columns=columns)
    labeled = rng.choice(n_units, size=n_labeled, replace=False)
    formula = "y ~ " + " + ".join(columns)
    return (formula, covariates.iloc[labeled].assign(y=y[labeled]), covariates.assign(y=y_proxy),
            covariates.assign(y=y_synth))


def reference(family: str, y: np.ndarray, X: np.ndarray) -> Callable[[], object]:
    if family == "probit":
        return lambda: sm.Probit(y, X).fit(disp=0)
    if family == "poisson":
        return lambda: sm.Poisson(y, X).fit(disp=0)
    if family == "negbin":
        return lambda: sm.NegativeBinomial(y, X).fit(disp=0)
    if family == "fractional_logit":
        return lambda: sm.GLM(y, X, family=sm.families.Binomial()).fit()
    if family == "mnlogit":
        return lambda: sm.MNLogit(y, X).fit(disp=0)
    return lambda: sm.regression.quantile_regression.QuantReg(y, X).fit(q=0.5)


def run(n_units: int, n_labeled: int, repeats: int, families: list[str]) -> pd.DataFrame:
    rows = []
    for family in families:
        formula, real, proxy, synth = frames(family, n_units, n_labeled)
        spec = Quantile(0.5) if family == "quantile" else family
        X = sm.add_constant(proxy.drop(columns="y").to_numpy())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels' convergence chatter is not what is timed
            gmm = smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth, model=spec)
            proxy_only = smf.gmm_proxy(formula, real=real, proxy=proxy, model=spec)
            times = median_times({
                "statsmodels": reference(family, proxy["y"].to_numpy(), X),
                "gmm_synth": gmm.fit,
                "gmm_proxy": proxy_only.fit,
            }, repeats)
        rows.append({
            "family": family, "N": n_units, "n": n_labeled, "statsmodels_s": times["statsmodels"],
            "gmm_synth_s": times["gmm_synth"], "gmm_proxy_s": times["gmm_proxy"],
            "gmm_synth_ratio": times["gmm_synth"] / times["statsmodels"],
            "gmm_proxy_ratio": times["gmm_proxy"] / times["statsmodels"],
        })
        print(rows[-1], file=sys.stderr)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, command: str) -> str:
    lines = [
        "# Fit time of every family against statsmodels",
        "",
        f"`{command}`. Machine: {platform.machine()}, {platform.python_version()}, "
        f"numpy {np.__version__}. gmm_synth has a proxy and a synthetic source (2N rows), "
        "gmm_proxy the proxy (N rows); statsmodels fits the N proxy rows. Median of the "
        f"repeats, the libraries taking turns within each round. {clock_note()}",
        "",
        "| family | N | statsmodels (s) | gmm_synth (s) | gmm_synth / statsmodels | gmm_proxy (s) | gmm_proxy / statsmodels |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.family} | {r.N:,} | {r.statsmodels_s:.3f} | {r.gmm_synth_s:.3f} | {r.gmm_synth_ratio:.2f}x "
            f"| {r.gmm_proxy_s:.3f} | {r.gmm_proxy_ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 5,000, one repeat")
    parser.add_argument("--n-units", type=int, default=1_000_000)
    parser.add_argument("--n-labeled", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by CPU seconds with one BLAS thread (for a machine running other jobs)")
    args = parser.parse_args(argv)
    CPU_TIME["on"] = args.cpu_time
    n_units, repeats = (5_000, 1) if args.quick else (args.n_units, args.repeats)
    table = run(n_units, min(args.n_labeled, n_units // 5), repeats, args.families.split(","))
    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / "families.csv", index=False)
    command = "python benchmarks/bench_families.py" + ("" if argv is None else " " + " ".join(argv))
    (args.output / "families.md").write_text(to_markdown(table, command), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
