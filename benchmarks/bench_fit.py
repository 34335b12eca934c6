"""Side-by-side fit times of synthinfer, statsmodels and ppi-python in one process.

Run ``python benchmarks/bench_fit.py --docs docs/performance.md`` (full grid:
N = 1e4, 1e5, 1e6; p = 5, 20; also renders the documentation page) or
``python benchmarks/bench_fit.py --quick`` (small N, used by the test suite to
keep the script working). Writes ``results.csv`` and ``results.md`` to
``--output`` (default ``benchmarks/results/``).

Every time is the median of ``--repeats`` rounds (default 5) of the fit alone: the model
objects (design matrices) are built once before timing, for every library;
within a round the libraries take turns.
Building the gmm_synth model from its formula and frames is timed separately,
against statsmodels' ``from_formula`` on the proxy frame.
Ratios are to statsmodels' fit on the N proxy rows measured in the same run:
``Logit(y, X).fit()`` for logit, ``OLS(y, X).fit(cov_type="HC0")`` for ols.
ppi-python is timed after one warm-up call, so its numba compilation is
excluded. Peak memory is measured with tracemalloc during one gmm_synth fit
and reported relative to the bytes of its input design matrices.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smformula
from scipy.special import expit

import synthinfer.api as smf


def make_frames(model: str, n_units: int, p: int, n_labeled: int, seed: int = 0):
    """Real (n rows), proxy (N rows) and synthetic (N rows, one per unit) frames with p columns."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_units, p - 1))
    beta = np.linspace(0.5, -0.5, p - 1) / np.sqrt(p)
    lin = 0.2 + X @ beta
    if model == "logit":
        y = rng.binomial(1, expit(lin)).astype(float)
        y_proxy = np.where(rng.random(n_units) < 0.1, 1 - y, y)
        y_synth = np.where(rng.random(n_units) < 0.15, 1 - y, y)
    else:
        y = lin + rng.normal(size=n_units)
        y_proxy = y + rng.normal(scale=0.5, size=n_units)
        y_synth = y + 0.1 + rng.normal(scale=0.7, size=n_units)
    columns = [f"x{j}" for j in range(1, p)]
    units = pd.RangeIndex(n_units, name="unit")
    covariates = pd.DataFrame(X, index=units, columns=columns)
    proxy = covariates.assign(y=y_proxy)
    synth = (covariates + rng.normal(scale=0.2, size=X.shape)).assign(y=y_synth)
    labeled = rng.choice(n_units, size=n_labeled, replace=False)
    real = covariates.iloc[labeled].assign(y=y[labeled])
    formula = "y ~ " + " + ".join(columns)
    return formula, real, proxy, synth


#: set by ``--cpu-time``: every library is timed by the CPU time of this process
#: with one BLAS thread, which other jobs on the machine do not inflate
CPU_TIME = {"on": False}


def clock_note() -> str:
    """How the times were taken, for the results' header."""
    if CPU_TIME["on"]:
        return ("Times are CPU seconds of this process with BLAS limited to one thread for every "
                "library (`--cpu-time`: the machine was running other jobs, whose load inflates "
                "wall-clock times unevenly).")
    return "Times are wall-clock seconds."


def median_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function over ``repeats`` rounds.

    The functions take turns within a round, so a slow spell of the machine
    (another process, the memory system) hits every library alike instead of
    whichever happened to be timed then. With ``CPU_TIME["on"]`` the seconds are
    the process's CPU time, with one BLAS thread.
    """
    clock = time.process_time if CPU_TIME["on"] else time.perf_counter
    limits = contextlib.nullcontext()
    if CPU_TIME["on"]:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=1, user_api="blas")
    times: dict[str, list[float]] = {name: [] for name in fns}
    with limits:
        for _ in range(repeats):
            for name, fn in fns.items():
                gc.collect()
                start = clock()
                fn()
                times[name].append(clock() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory_ratio(model, design_bytes: int) -> float:
    gc.collect()
    tracemalloc.start()
    model.fit()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / design_bytes


def _import_ppi_py():
    try:
        with warnings.catch_warnings():  # ppi_py silences all warnings on import
            import ppi_py
    except ImportError:
        return None
    return ppi_py


def run(sizes: list[int], ps: list[int], repeats: int, n_labeled: int, with_ppi_python: bool) -> pd.DataFrame:
    ppi_py = _import_ppi_py() if with_ppi_python else None
    rows = []
    for model in ("logit", "ols"):
        for p in ps:
            for n_units in sizes:
                formula, real, proxy, synth = make_frames(model, n_units, p, min(n_labeled, n_units // 2))
                sm_from_formula = smformula.logit if model == "logit" else smformula.ols
                build = median_times({
                    "statsmodels": lambda: sm_from_formula(formula, data=proxy),
                    "gmm_synth": lambda: smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth, model=model),
                }, repeats)
                gmm = smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth, model=model)
                proxy_only = smf.gmm_proxy(formula, real=real, proxy=proxy, model=model)
                ppi = smf.ppi(formula, real=real, proxy=proxy, model=model, lam="auto")
                X = sm.add_constant(proxy.drop(columns="y").to_numpy())
                yp = proxy["y"].to_numpy()
                if model == "logit":
                    def reference():
                        return sm.Logit(yp, X).fit(disp=0)
                else:
                    def reference():
                        return sm.OLS(yp, X).fit(cov_type="HC0")
                fits: dict[str, Callable[[], object]] = {
                    "statsmodels": reference,
                    "gmm_synth": gmm.fit,
                    # the paper's plain two-step, the engine without the small-sample
                    # default: the "must not get slower" comparison of the estimating-function refactor
                    "gmm_synth (plain)": lambda: gmm.fit(correction=None, shrinkage=None),
                    "gmm_proxy": proxy_only.fit,
                    "ppi (auto)": ppi.fit,
                }
                if ppi_py is not None:
                    data = gmm.model_data
                    labeled = np.zeros(n_units, dtype=bool)
                    labeled[data.labeled_pos] = True
                    source = data.sources[0]
                    args = (data.X, data.y, source.y[data.labeled_pos], source.X[~labeled], source.y[~labeled])
                    reference_ppi = ppi_py.ppi_logistic_ci if model == "logit" else ppi_py.ppi_ols_ci

                    def ppi_fn():
                        with warnings.catch_warnings():  # sklearn deprecations inside ppi-python
                            warnings.simplefilter("ignore", FutureWarning)
                            return reference_ppi(*args)

                    ppi_fn()  # warm-up: numba compiles here
                    fits["ppi-python (warm)"] = ppi_fn
                timings = median_times(fits, repeats)
                design_bytes = data_bytes(gmm)
                memory = peak_memory_ratio(gmm, design_bytes)
                for estimator, seconds in timings.items():
                    rows.append({
                        "model": model, "p": p, "N": n_units, "n_labeled": gmm.n_labeled,
                        "estimator": estimator, "seconds": seconds,
                        "ratio_to_statsmodels": seconds / timings["statsmodels"],
                        # building the model from the formula and frames, not in "seconds"
                        "build_seconds": build.get(estimator, np.nan),
                        "build_ratio_to_statsmodels": (
                            build[estimator] / build["statsmodels"] if estimator in build else np.nan
                        ),
                        "peak_memory_ratio": memory if estimator == "gmm_synth" else np.nan,
                    })
                print(f"{model} p={p} N={n_units}: " + ", ".join(
                    f"{k} {v:.3f}s ({v / timings['statsmodels']:.2f}x)" for k, v in timings.items()
                ) + f"; gmm_synth peak memory {memory:.2f}x design; model from formula "
                  f"{build['gmm_synth']:.3f}s ({build['gmm_synth'] / build['statsmodels']:.2f}x)",
                  file=sys.stderr)
    return pd.DataFrame(rows)


def data_bytes(model) -> int:
    data = model.model_data
    return data.X.nbytes + sum(s.X.nbytes for s in data.sources)


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def to_markdown(table: pd.DataFrame) -> str:
    wide = table.pivot_table(
        index=["model", "p", "N"], columns="estimator", values="ratio_to_statsmodels", sort=False
    )
    seconds = table[table.estimator == "statsmodels"].set_index(["model", "p", "N"])["seconds"]
    gmm = table[table.estimator == "gmm_synth"].set_index(["model", "p", "N"])
    memory, build = gmm["peak_memory_ratio"], gmm["build_ratio_to_statsmodels"]
    lines = [
        f"Machine: {machine()}. {clock_note()}",
        "",
        "Time of each fit relative to statsmodels on the N proxy rows (median of repeats; "
        "statsmodels seconds in the first column); peak memory of a gmm_synth fit relative to "
        "its input design matrices; time to build the gmm_synth model from its formula and "
        "frames relative to statsmodels' `from_formula` on the proxy frame.",
        "",
    ]
    header = ["model", "p", "N", "statsmodels (s)", *wide.columns, "gmm_synth memory", "gmm_synth model from formula"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for key, row in wide.iterrows():
        cells = [str(key[0]), str(key[1]), f"{key[2]:,}", f"{seconds[key]:.3f}"]
        cells += [f"{row[c]:.2f}x" if pd.notna(row[c]) else "" for c in wide.columns]
        cells.append(f"{memory[key]:.2f}x")
        cells.append(f"{build[key]:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_docs_page(table: pd.DataFrame, markdown: str, path: Path) -> None:
    """Fill benchmarks/performance_page.md.in with this run's numbers."""
    at_1e6 = table[table.N == table.N.max()].set_index(["model", "p", "estimator"])["ratio_to_statsmodels"]

    def ratio(model: str, p: int) -> str:
        key = (model, p, "gmm_synth")
        return f"{at_1e6[key]:.2f}x" if key in at_1e6.index else "not measured"

    memory = table["peak_memory_ratio"].max()
    seconds = table.set_index(["model", "p", "N", "estimator"])["seconds"]

    def speedup_over_ppi_python(estimator: str) -> str:
        rows = [key[:3] for key in seconds.index if key[0] == "logit" and key[2] >= 100_000 and key[3] == estimator]
        if not rows or (rows[0] + ("ppi-python (warm)",)) not in seconds.index:
            return "not measured"
        ratios = {key: seconds[key + ("ppi-python (warm)",)] / seconds[key + (estimator,)] for key in rows}
        worst = min(ratios, key=ratios.get)
        return f"{ratios[worst]:.1f}x (slowest case: p = {worst[1]}, N = {worst[2]:,})"

    text = (Path(__file__).parent / "performance_page.md.in").read_text()
    for placeholder, value in {
        "@RESULTS@": markdown.strip(),
        "@LOGIT5@": ratio("logit", 5), "@LOGIT20@": ratio("logit", 20),
        "@OLS5@": ratio("ols", 5), "@OLS20@": ratio("ols", 20),
        "@MEMORY@": f"{memory:.2f}x",
        "@BUILD@": f"{table['build_ratio_to_statsmodels'].max():.2f}x",
        "@PPI_SPEEDUP@": speedup_over_ppi_python("ppi (auto)"),
        "@GMM_SPEEDUP@": speedup_over_ppi_python("gmm_synth"),
    }.items():
        text = text.replace(placeholder, value)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N, one repeat (for the test suite)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--p", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-labeled", type=int, default=1000)
    parser.add_argument("--no-ppi-python", action="store_true")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--docs", type=Path, help="also write the documentation page (docs/performance.md)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by CPU seconds with one BLAS thread (for a machine running other jobs)")
    args = parser.parse_args(argv)
    CPU_TIME["on"] = args.cpu_time
    if args.quick:
        args.sizes, args.p, args.repeats, args.n_labeled = [2_000], [5], 1, 200
    table = run(args.sizes, args.p, args.repeats, args.n_labeled, not args.no_ppi_python)
    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / "results.csv", index=False)
    markdown = to_markdown(table)
    (args.output / "results.md").write_text(markdown)
    if args.docs is not None:
        render_docs_page(table, markdown, args.docs)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
