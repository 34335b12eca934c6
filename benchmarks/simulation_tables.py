"""Markdown tables of a ``synthinfer simulate`` summary, for docs/simulation-results.md.

    python benchmarks/simulation_tables.py docs/results/summary.csv > tables.md

Prints, per (mode, model, target): coverage (with its Monte Carlo SE),
MSE relative to human-only, mean interval width, and J-test rejection rate,
one row per scenario and labeled n, one column per estimator.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from synthinfer.experiments import ESTIMATORS


def _table(frame: pd.DataFrame, value: str, fmt) -> str:
    estimators = [e for e in ESTIMATORS if e in set(frame["estimator"])]
    if value == "j_reject":
        estimators = [e for e in estimators if e.startswith("gmm")]
    lines = [
        "| scenario | n | trials | " + " | ".join(estimators) + " |",
        "|---|---|---|" + "---|" * len(estimators),
    ]
    for (scenario, n), group in frame.groupby(["scenario", "n_labeled"], sort=False):
        by = group.set_index("estimator")
        cells = []
        for name in estimators:
            if name not in by.index:
                cells.append("")
                continue
            row = by.loc[name]
            text = fmt(row)
            if row["failures"]:
                text += f" ({int(row['failures'])} failed)"
            cells.append(text)
        trials = int(group["trials"].max())
        lines.append(f"| {scenario} | {n} | {trials} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


FORMATS = {
    "coverage": lambda r: f"{r['coverage']:.3f} ± {r['coverage_mc_se']:.3f}",
    "rel_mse": lambda r: f"{r['rel_mse']:.2f}",
    "bias": lambda r: f"{r['bias']:+.3f}",
    "mean_width": lambda r: f"{r['mean_width']:.3f}",
    "j_reject": lambda r: f"{r['j_reject']:.3f}",
}
TITLES = {
    "coverage": "Coverage of the 95% interval (± its Monte Carlo SE)",
    "rel_mse": "MSE relative to human-only (classical)",
    "bias": "Bias",
    "mean_width": "Mean width of the 95% interval",
    "j_reject": "Rejection rate of the J test at 5%",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", help="summary.csv written by synthinfer simulate")
    parser.add_argument("--values", default="coverage,rel_mse,bias,mean_width,j_reject")
    args = parser.parse_args(argv)
    summary = pd.read_csv(args.summary)
    summary = summary.sort_values(["mode", "model", "target", "scenario", "n_labeled"], kind="stable")
    order = {s: i for i, s in enumerate(
        ["proxy", "synth", "proxy+synth", "noise", "biased", "anti", "differential", "politeness"])}
    summary = summary.assign(_s=summary["scenario"].map(order)).sort_values(
        ["mode", "model", "target", "_s", "n_labeled"], kind="stable")
    for (mode, model, target), frame in summary.groupby(["mode", "model", "target"], sort=False):
        where = "politeness data" if mode == "politeness" else f"simulated, {model}"
        for value in args.values.split(","):
            sys.stdout.write(f"#### {TITLES[value]}: {target} ({where})\n\n")
            sys.stdout.write(_table(frame, value, FORMATS[value]) + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
