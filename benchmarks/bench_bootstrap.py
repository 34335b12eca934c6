"""Bootstrap cost in units of one fit, measured in one run (docs/small-samples.md).

    python benchmarks/bench_bootstrap.py                 # N = 1e5 and 1e6, B = 999
    python benchmarks/bench_bootstrap.py --quick --output DIR    # the test suite's check

Logit with p = 5 (an intercept and 4 covariates), a proxy and one synthetic
sample per unit (benchmarks/bench_fit.py's frames), n labeled units. For
each N: the median time of one default ``fit()`` (the model built once), then
``res.bootstrap(B, method=...)`` for the fast one-step bootstrap (and, with
``--replicate``, the per-replicate two-step one), reported as seconds and as
the ratio to one fit. Writes ``results.csv`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import machine, make_frames  # noqa: E402

import synthinfer.api as smf  # noqa: E402


def run(sizes: list[int], n_labeled: int, n_boot: int, repeats: int, methods: list[str]) -> pd.DataFrame:
    rows = []
    for n_units in sizes:
        formula, real, proxy, synth = make_frames("logit", n_units, 5, min(n_labeled, n_units // 2))
        model = smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth, model="logit")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            res = model.fit()
            times.append(time.perf_counter() - start)
        fit_time = statistics.median(times)
        for method in methods:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                boot = res.bootstrap(n_boot, seed=0, method=method)
            elapsed = time.perf_counter() - start
            rows.append({
                "N": n_units, "n_labeled": model.n_labeled, "B": n_boot, "method": method,
                "fit_seconds": fit_time, "bootstrap_seconds": elapsed, "ratio_to_one_fit": elapsed / fit_time,
                "failed": boot.n_failed,
            })
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    lines = [
        f"Machine: {machine()}. Logit, p = 5, a proxy and one synthetic sample per unit.",
        "",
        "| N | n | B | bootstrap | one fit (s) | bootstrap (s) | bootstrap / one fit |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.N:,} | {row.n_labeled:,} | {row.B} | {row.method} | {row.fit_seconds:.3f} | "
            f"{row.bootstrap_seconds:.2f} | {row.ratio_to_one_fit:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--n-labeled", type=int, default=1000)
    parser.add_argument("--n-boot", type=int, default=999)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replicate", action="store_true", help="also time method='replicate'")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "results" / "bootstrap")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.n_labeled, args.n_boot, args.repeats = [5_000], 200, 49, 1
    methods = ["fast"] + (["replicate"] if args.replicate else [])
    table = run(args.sizes, args.n_labeled, args.n_boot, args.repeats, methods)
    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / "results.csv", index=False)
    markdown = to_markdown(table)
    (args.output / "results.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
