"""The PPI family, DSL and GMM side by side: which estimator wins where (docs/baselines.md).

    nice -n 10 python benchmarks/baselines_study.py --jobs 1     # the committed run
    python benchmarks/baselines_study.py --trials 5 --output DIR   # a quick look

Runs ``synthinfer.experiments.run_simulation`` with every estimator
(``estimators="all"``: human-only, naive pooling, PPI++ with in-sample and
cross-fitted lambda, the infeasible oracle PPI++, RePPI, DSL, GMM-Proxy and
GMM-Synth) on simulated studies: N = 2,000 units, n = 200 labeled,
OLS and logit, three scenarios of the auxiliary data (informative proxy and
synthetic samples, pure noise, one-directional bias), target coefficient x1,
seeds derived from base seed 0; and ``run_politeness`` (``synthinfer simulate
--politeness``) with every estimator that takes a proxy, n = 200 labeled
requests of the bundled politeness data, targets hedging and
first_person_plural. Writes ``trials.csv`` and ``summary.csv``
(``synthinfer simulate``'s files) in ``simulation/`` and ``politeness/``, and
``table.md``: per cell the MSE relative to human-only and the coverage of the
95% interval of every estimator, the feasible estimator with the smallest MSE
among those whose coverage is not below 0.95 by more than two Monte Carlo SE,
and where GMM-Synth (politeness: GMM-Proxy) stands. A rerun in the same
directory resumes (trials already there are skipped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from synthinfer.experiments import ESTIMATORS, run_politeness, run_simulation

SCENARIOS = ("proxy+synth", "noise", "biased")
N_LABELED = (200,)
N_UNITS = 2000
INFEASIBLE = ("ppi_oracle_proxy", "ppi_oracle_synth")
# estimators whose intervals claim validity (naive pooling does not)
VALID = tuple(e for e in ESTIMATORS if e != "naive")


def _covers(row: pd.Series) -> bool:
    """Coverage not below 95% by more than two Monte Carlo standard errors."""
    return bool(row["coverage"] >= 0.95 - 2 * max(row["coverage_mc_se"], np.sqrt(0.95 * 0.05 / row["fits"])))


def table(summary: pd.DataFrame, gmm: str = "gmm_synth") -> str:
    """Markdown: one row per cell; rel. MSE / coverage per estimator; the winner."""
    names = [e for e in ESTIMATORS if e in set(summary["estimator"])]
    head = "| model | scenario | n | target | " + " | ".join(names) + f" | best feasible (covering) | {gmm} rank |"
    lines = [head, "|---|---|---|---|" + "---|" * len(names) + "---|---|"]
    for (model, scenario, n, target), cell in summary.groupby(["model", "scenario", "n_labeled", "target"], sort=False):
        by = cell.set_index("estimator")
        texts = []
        for name in names:
            if name not in by.index:
                texts.append("")
                continue
            row = by.loc[name]
            texts.append(f"{row['rel_mse']:.2f} / {row['coverage']:.2f}")
        feasible = by[[e in VALID and e not in INFEASIBLE for e in by.index]]
        covering = feasible[[_covers(r) for _, r in feasible.iterrows()]]
        best = covering["mse"].idxmin() if len(covering) else "none"
        ranked = list(feasible.sort_values("mse").index)
        rank = f"{ranked.index(gmm) + 1} of {len(ranked)}" if gmm in ranked else ""
        lines.append(f"| {model} | {scenario} | {n} | {target} | " + " | ".join(texts) + f" | {best} | {rank} |")
    return "\n".join(lines)


def versus(trials: pd.DataFrame, gmm: str = "gmm_synth") -> str:
    """Markdown: per cell, GMM's MSE minus each other valid estimator's, paired over trials, with its MC SE."""
    ok = trials[~trials["failed"].astype(bool)].assign(sq=lambda f: (f["estimate"] - f["truth"]) ** 2)
    wide = ok.pivot_table(index=["model", "scenario", "n_labeled", "target", "trial"], columns="estimator", values="sq")
    others = [e for e in ESTIMATORS if e in wide.columns and e != gmm and e != "naive"]
    lines = [f"| model | scenario | n | target | " + " | ".join(others) + " |",
             "|---|---|---|---|" + "---|" * len(others)]
    for key, cell in wide.groupby(level=[0, 1, 2, 3], sort=False):
        texts = []
        for name in others:
            d = (cell[gmm] - cell[name]).dropna()
            se = d.std(ddof=1) / np.sqrt(len(d))
            mark = " **loses**" if d.mean() > 2 * se else (" wins" if d.mean() < -2 * se else "")
            texts.append(f"{d.mean() / cell['classical'].mean():+.2f} ({se / cell['classical'].mean():.2f}){mark}")
        lines.append("| " + " | ".join(str(k) for k in key) + " | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="docs/results/baselines_study")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--politeness-trials", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    result = run_simulation(
        Path(args.output, "simulation"), n_labeled=N_LABELED, n_units=N_UNITS, models=("ols", "logit"),
        scenarios=SCENARIOS, trials=args.trials, seed=0, jobs=args.jobs, target="x1",
        estimators="all", progress=False,
    )
    summary = result.summary
    order = {s: i for i, s in enumerate(SCENARIOS)}
    summary = summary.assign(_s=summary["scenario"].map(order)).sort_values(
        ["model", "_s", "n_labeled"], kind="stable").drop(columns="_s")
    text = (
        f"Each cell: MSE of x1 relative to human-only / coverage of the 95% interval, "
        f"{int(summary['trials'].max())} trials (N = {N_UNITS}; coverage Monte Carlo SE about "
        f"{np.sqrt(0.95 * 0.05 / summary['trials'].max()):.3f}). Failed fits: "
        f"{int(summary['failures'].sum())}. The oracle PPI++ is infeasible (it picks lambda by the "
        f"truth) and is never the 'best feasible'; naive pooling does not claim coverage and is left "
        f"out of it too.\n\n" + table(summary) + "\n"
    )
    polite = run_politeness(
        Path(args.output, "politeness"), n_labeled=(200,), trials=args.politeness_trials, seed=0,
        jobs=args.jobs, estimators="all", progress=False,
    ).summary
    text += (
        f"\nPoliteness data (n = 200 labeled requests of 5,480, the truth the full-data human-only "
        f"fit; proxy GPT-4o's labels), {int(polite['trials'].max())} trials, failed fits: "
        f"{int(polite['failures'].sum())}:\n\n" + table(polite, gmm="gmm_proxy") + "\n"
    )
    text += (
        f"\n{'GMM-Synth'} minus each estimator, paired MSE difference over trials in units of the "
        f"human-only MSE (its Monte Carlo SE); 'loses'/'wins' where it exceeds 2 SE "
        f"(negative: GMM-Synth better; the oracle included for reference):\n\n" + versus(result.trials) + "\n"
        f"\nPoliteness, GMM-Proxy minus each:\n\n"
        + versus(run_politeness(Path(args.output, "politeness"), n_labeled=(200,), trials=args.politeness_trials,
                                seed=0, jobs=args.jobs, estimators="all", progress=False).trials, gmm="gmm_proxy")
        + "\n"
    )
    Path(args.output, "table.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
