"""GPT-4o's confidence as a second proxy source on the politeness data (docs/estimands.md).

    python benchmarks/politeness_soft_labels.py             # 500 labeled subsets per n
    python benchmarks/politeness_soft_labels.py --quick --output DIR

Every request of the politeness data has a human label, so the logit
``polite ~ hedging + first_person_plural`` on all 5,480 is the truth. For
repeated random labeled subsets (n = 300 and 1000) it fits GMM-Proxy with
GPT-4o's hard label alone, with its confidence turned into a probability of
"polite" alone (``confidence`` if GPT-4o said polite, else ``1 - confidence``;
a logit auxiliary outcome may be a probability), and with both as two
sources, and reports each coefficient's MSE against the truth relative to the
human-only fit, and the 95% interval's coverage.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import synthinfer.api as smf
from synthinfer.datasets import load_politeness

METHODS = ["human only", "hard label", "probability", "hard label + probability"]


def _sources(data) -> dict[str, pd.DataFrame]:
    frame = data.frame
    probability = np.where(frame["polite_gpt4o"] == 1, frame["confidence_gpt4o"], 1 - frame["confidence_gpt4o"])
    return {"hard": data.proxy, "probability": data.proxy.assign(polite=probability)}


def one_subset(n: int, seed: int) -> list[dict]:
    data = load_politeness()
    sources = _sources(data)
    real, _ = data.sample(n, seed=seed)
    rows = []
    for method in METHODS:
        proxy = {"human only": None, "hard label": {"hard": sources["hard"]},
                 "probability": {"probability": sources["probability"]},
                 "hard label + probability": sources}[method]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if proxy is None:
                    res = smf.classical(data.formula, real=real, model="logit").fit()
                else:
                    res = smf.gmm_proxy(data.formula, real=real, proxy=proxy, model="logit").fit()
            ci = res.conf_int()
            for term in res.params.index:
                rows.append({"n": n, "seed": seed, "method": method, "term": term,
                             "estimate": res.params[term], "se": res.bse[term],
                             "lower": ci.loc[term, 0], "upper": ci.loc[term, 1]})
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            rows.append({"n": n, "seed": seed, "method": method, "term": None})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subsets", type=int, default=500)
    parser.add_argument("--n-labeled", default="300,1000")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path, default=Path("docs/results/politeness_soft"))
    args = parser.parse_args(argv)
    subsets, ns = (3, [300]) if args.quick else (args.subsets, [int(v) for v in args.n_labeled.split(",")])
    data = load_politeness()
    truth = smf.classical(data.formula, real=data.human, model="logit").fit().params
    start = time.perf_counter()
    tasks = [(n, seed) for n in ns for seed in range(subsets)]
    if args.jobs == 1:
        results = [one_subset(*t) for t in tasks]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=args.jobs, batch_size=4)(delayed(one_subset)(*t) for t in tasks)
    trials = pd.DataFrame([r for rows in results for r in rows])
    failed = trials[trials["term"].isna()].groupby(["n", "method"]).size()
    fits = trials.dropna(subset=["term"]).copy()
    fits["truth"] = fits["term"].map(truth)
    fits["sq_error"] = (fits["estimate"] - fits["truth"]) ** 2
    fits["covered"] = (fits["lower"] <= fits["truth"]) & (fits["truth"] <= fits["upper"])
    # each method's MSE relative to the human-only fit on the subsets where every method fitted
    complete = fits.groupby(["n", "seed"])["method"].transform("nunique") == len(METHODS)
    fits = fits[complete]
    summary = fits.groupby(["n", "term", "method"], sort=False).agg(
        mse=("sq_error", "mean"), coverage=("covered", "mean"), subsets=("seed", "nunique")
    ).reset_index()
    human = summary[summary.method == "human only"].set_index(["n", "term"])["mse"]
    summary["mse vs human only"] = summary["mse"] / human.loc[list(zip(summary.n, summary.term))].to_numpy()
    args.output.mkdir(parents=True, exist_ok=True)
    trials.to_csv(args.output / "trials.csv", index=False)
    summary.to_csv(args.output / "summary.csv", index=False)
    lines = ["| n | term | estimator | subsets | MSE vs human only | 95% coverage |", "|---|---|---|---|---|---|"]
    for r in summary.itertuples(index=False):
        lines.append(f"| {r.n} | {r.term} | {r.method} | {r.subsets} | {r[6]:.3f} | {r.coverage:.3f} |")
    text = "\n".join(lines) + "\n"
    if len(failed):
        text += "\nFailed fits (left out with their whole subset): " + ", ".join(
            f"n={n} {m}: {c}" for (n, m), c in failed.items()) + "\n"
    (args.output / "summary.md").write_text(text)
    print(text)
    print(f"{len(tasks)} subsets in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
