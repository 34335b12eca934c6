"""Seeded Monte Carlo: coverage of PPI++ with cross-fitted lambda and of DSL for the logit (docs/baselines.md).

    nice -n 10 python benchmarks/crossfit_dsl_coverage.py                 # the committed run
    python benchmarks/crossfit_dsl_coverage.py --reps 5 --output DIR      # a smoke run

Two parts, coefficient x1, N = 2000 units, seeded trials per cell:

- **PPI++ cross-fitted** (``smf.ppi(..., tuning="crossfit")``, 5 folds) beside
  the in-sample tuned PPI++ and the human-only fit, on
  `synthinfer.simulate.make_study` studies (a simple random sample of n = 200
  or 500 labeled units; proxy "useful", a noisy copy of the human outcome),
  OLS and logit.
- **DSL logit** (``smf.dsl(..., model="logit", labeling_prob=...)``) with known
  unequal labeling probabilities: pi_i = 2c for x1 > 0 and c otherwise
  (c set so that the expected number labeled is n = 200 or 500), an LLM
  annotation that flips the label with probability 0.1 for x1 > 0 and 0.25
  otherwise; beside the inverse-probability-weighted human-only logit
  (``smf.classical(..., labeling_prob=...)``) and the unweighted one (which is
  still consistent here: pi depends on x1 only, a covariate of the model).

Writes ``trials.csv``, ``summary.csv`` and ``summary.md`` to ``--output``
(default docs/results/crossfit_dsl). Coverage's Monte Carlo SE is
``sqrt(c (1 - c) / trials)``; a failed fit is counted, never dropped silently.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats

import synthinfer.api as smf
from synthinfer.simulate import make_study

N_UNITS = 2000
TERM = "x1"
COEFS = (-0.5, 1.0, -0.5)


def _ppi_fits(study, model: str) -> dict:
    kwargs = dict(real=study.real, model=model)
    return {
        "classical": lambda: smf.classical(study.formula, **kwargs).fit(),
        "ppi": lambda: smf.ppi(study.formula, proxy=study.proxy, **kwargs).fit(),
        "ppi_crossfit": lambda: smf.ppi(study.formula, proxy=study.proxy, tuning="crossfit", **kwargs).fit(),
    }


def dsl_study(n: int, rng: np.random.Generator):
    """Logit study with labeling probabilities pi = 2c (x1 > 0), c (x1 <= 0), E[labeled] = n."""
    x1, x2 = rng.normal(size=N_UNITS), rng.normal(size=N_UNITS)
    y = (rng.uniform(size=N_UNITS) < scipy.special.expit(COEFS[0] + COEFS[1] * x1 + COEFS[2] * x2)).astype(float)
    annotation = np.where(rng.uniform(size=N_UNITS) < np.where(x1 > 0, 0.9, 0.75), y, 1.0 - y)
    c = n / N_UNITS / 1.5
    pi = np.where(x1 > 0, 2 * c, c)
    labeled = rng.uniform(size=N_UNITS) < pi
    ids = pd.Index(np.arange(N_UNITS), name="unit")
    proxy = pd.DataFrame({"y": annotation, "x1": x1, "x2": x2, "pi": pi}, index=ids)
    real = pd.DataFrame({"y": y[labeled], "x1": x1[labeled], "x2": x2[labeled], "pi": pi[labeled]}, index=ids[labeled])
    return real, proxy


def _dsl_fits(real: pd.DataFrame, proxy: pd.DataFrame) -> dict:
    formula = "y ~ x1 + x2"
    return {
        "classical": lambda: smf.classical(formula, real=real, model="logit").fit(),
        "classical_ipw": lambda: smf.classical(formula, real=real, model="logit", labeling_prob="pi").fit(),
        "dsl": lambda: smf.dsl(formula, real=real, proxy=proxy, model="logit", labeling_prob="pi").fit(),
    }


def run_cell(cell: tuple[str, str, int, int, int]) -> list[dict]:
    part, model, n, reps, seed = cell
    rng = np.random.default_rng(seed)
    rows = []
    for trial in range(reps):
        if part == "ppi":
            study = make_study(model, n_units=N_UNITS, n_labeled=n, aux="useful", coefs=COEFS, seed=rng)
            fits, n_lab = _ppi_fits(study, model), n
        else:
            real, proxy = dsl_study(n, rng)
            fits, n_lab = _dsl_fits(real, proxy), len(real)
        truth = COEFS[1]
        for name, fit in fits.items():
            row = {"part": part, "model": model, "n": n, "trial": trial, "n_labeled": n_lab,
                   "estimator": name, "truth": truth, "error": ""}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = fit()
                lo, hi = np.asarray(res.conf_int(0.05).loc[TERM])
                row.update(estimate=float(res.params[TERM]), se=float(res.bse[TERM]),
                           covered=bool(lo <= truth <= hi), lam=float(getattr(res, "lam", np.nan)))
            except Exception as error:  # counted as a failure, reported in the summary
                row.update(estimate=np.nan, se=np.nan, covered=np.nan, lam=np.nan, error=type(error).__name__)
            rows.append(row)
    return rows


def summarise(trials: pd.DataFrame) -> pd.DataFrame:
    def one(group: pd.DataFrame) -> pd.Series:
        ok = group.dropna(subset=["estimate"])
        err = ok["estimate"] - ok["truth"]
        cov = ok["covered"].astype(float).mean()
        return pd.Series({
            "trials": len(group), "failed": len(group) - len(ok),
            "coverage": cov, "coverage_mc_se": np.sqrt(cov * (1 - cov) / len(ok)),
            "bias": err.mean(), "mse": (err**2).mean(), "mse_mc_se": (err**2).std() / np.sqrt(len(ok)),
            "mean_se": ok["se"].mean(), "sd_estimate": ok["estimate"].std(), "mean_lam": ok["lam"].mean(),
        })

    keys = ["part", "model", "n", "estimator"]
    summary = trials.groupby(keys, sort=False).apply(one, include_groups=False).reset_index()
    human = summary[summary["estimator"] == "classical"].set_index(keys[:3])["mse"]
    summary["rel_mse"] = summary["mse"].to_numpy() / human.loc[
        list(zip(summary["part"], summary["model"], summary["n"]))].to_numpy()
    return summary


def to_markdown(summary: pd.DataFrame, reps: int, seconds: float) -> str:
    lo, hi = scipy.stats.binom.ppf([0.025, 0.975], reps, 0.95) / reps
    lines = [
        "# Coverage of cross-fitted PPI++ and of DSL for the logit",
        "",
        f"Coefficient {TERM} (truth {COEFS[1]}); N = {N_UNITS} units; {reps} seeded trials per cell. "
        f"95% intervals; with {reps} trials the",
        f"coverage's Monte Carlo SE at 0.95 is {np.sqrt(0.95 * 0.05 / reps):.4f}, and coverage inside "
        f"[{lo:.3f}, {hi:.3f}] is within binomial error",
        "(central 95% of Binomial(trials, 0.95)). rel MSE = MSE / MSE of the unweighted human-only fit in the cell.",
        "Part `ppi`: simple random sample of n labeled units, proxy 'useful'. Part `dsl`: labeling",
        "probabilities 2c (x1 > 0) and c (x1 <= 0), n = expected number labeled; `classical_ipw` weights",
        "the human-only logit by 1/pi.",
        f"Generated by benchmarks/crossfit_dsl_coverage.py in {seconds / 60:.1f} min.",
        "",
        "| part | model | n | estimator | coverage (MC SE) | rel MSE | bias | mean se | sd | mean lambda | failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.to_dict("records"):
        lam = "" if not np.isfinite(r["mean_lam"]) else f"{r['mean_lam']:.3f}"
        lines.append(
            f"| {r['part']} | {r['model']} | {r['n']} | {r['estimator']} | {r['coverage']:.3f} "
            f"({r['coverage_mc_se']:.3f}) | {r['rel_mse']:.3f} | {r['bias']:+.4f} | {r['mean_se']:.4f} | "
            f"{r['sd_estimate']:.4f} | {lam} | {int(r['failed'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--output", type=Path, default=Path(__file__).parents[1] / "docs" / "results" / "crossfit_dsl")
    args = parser.parse_args(argv)
    cells, seed = [], args.seed
    for part, model in (("ppi", "ols"), ("ppi", "logit"), ("dsl", "logit")):
        for n in (200, 500):
            cells.append((part, model, n, args.reps, seed))
            seed += 1
    start = time.time()
    results = []
    for cell in cells:
        results.append(run_cell(cell))
        print(f"{cell[:3]} done after {(time.time() - start) / 60:.1f} min", file=sys.stderr, flush=True)
    seconds = time.time() - start
    trials = pd.DataFrame([row for rows in results for row in rows])
    summary = summarise(trials)
    args.output.mkdir(parents=True, exist_ok=True)
    trials.to_csv(args.output / "trials.csv", index=False)
    summary.to_csv(args.output / "summary.csv", index=False)
    (args.output / "summary.md").write_text(to_markdown(summary, args.reps, seconds))
    print((args.output / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
