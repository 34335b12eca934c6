"""A logit fit on Dask sources against the same fit in memory, as N grows.

For each N it writes a simulated data set as Parquet in chunks (N proxy rows
and N synthetic rows, one per unit, p = 5 design columns with the intercept,
indexed by unit id so the files give known, equal divisions), samples
``--labeled`` human-labeled units, and fits ``gmm_synth(..., model="logit")``

- on a ``dask.distributed`` LocalCluster of ``--workers`` process workers
  (one thread each, ``--memory-limit`` each), reading the Parquet files lazily;
- in memory (pandas frames read from the same files), where ``N <=
  --max-in-memory``.

It reports wall times (model build + fit), the number of passes over the
partitions, the peak memory of the largest worker and of the cluster, the
ratio of the two wall times and the largest relative difference of params,
bse and J. Run ``python benchmarks/dask_scaling.py`` (defaults: N = 1e5, 1e6)
or e.g. ``--n-units 1e7 1e8 --no-persist --data-dir /scratch/dask_bench``
(out of core: every pass reads the Parquet files again); outputs go to
``benchmarks/results/dask/`` (``results.csv``, ``results.md``), where a run
replaces the rows of the same N and persist setting and keeps the others.
The Parquet files are deleted after each N. The peak memory is sampled from
the scheduler's view of each worker's process memory (every 0.5 s): the
largest single worker (``peak_worker_memory_gb``) and the cluster's total.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

import synthinfer.api as smf

P = 5
FORMULA = "y ~ " + " + ".join(f"x{j}" for j in range(1, P))


def write_parquet(root: Path, n_units: int, n_labeled: int, rows_per_file: int, seed: int) -> pd.DataFrame:
    """Write proxy/ and synth/ Parquet files in chunks; return the labeled units' real frame."""
    rng = np.random.default_rng(seed)
    labeled = np.sort(rng.choice(n_units, n_labeled, replace=False))
    beta = np.linspace(0.5, -0.5, P - 1) / np.sqrt(P)
    real_parts = []
    for kind in ("proxy", "synth"):
        (root / kind).mkdir(parents=True)
    for number, start in enumerate(range(0, n_units, rows_per_file)):
        stop = min(start + rows_per_file, n_units)
        chunk_rng = np.random.default_rng([seed, number])
        X = chunk_rng.normal(size=(stop - start, P - 1))
        y = chunk_rng.binomial(1, expit(0.2 + X @ beta)).astype(float)
        units = pd.Index(np.arange(start, stop, dtype=np.int64), name="unit")  # a column in the files
        columns = {f"x{j}": X[:, j - 1] for j in range(1, P)}
        flip_proxy = chunk_rng.random(len(y)) < 0.1
        flip_synth = chunk_rng.random(len(y)) < 0.15
        for kind, flip in (("proxy", flip_proxy), ("synth", flip_synth)):
            frame = pd.DataFrame({"y": np.where(flip, 1 - y, y), **columns}, index=units)
            frame.to_parquet(root / kind / f"part-{number:05d}.parquet")
        inside = labeled[(labeled >= start) & (labeled < stop)] - start
        real_parts.append(pd.DataFrame({"y": y[inside], **{k: v[inside] for k, v in columns.items()}},
                                       index=units[inside]))
    return pd.concat(real_parts)


def relative(a, b) -> float:
    a, b = np.atleast_1d(np.asarray(a, dtype=float)), np.atleast_1d(np.asarray(b, dtype=float))
    return float(np.max(np.abs(a - b) / np.abs(a)))


class WorkerMemory:
    """The peak process memory of each worker and of the cluster, polled from the scheduler."""

    def __init__(self, client, interval: float = 0.5) -> None:
        self.client, self.interval = client, interval
        self.worker_peak, self.cluster_peak = 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            workers = self.client.scheduler_info()["workers"].values()
            memory = [w["metrics"]["memory"] for w in workers]
            if memory:
                self.worker_peak = max(self.worker_peak, max(memory))
                self.cluster_peak = max(self.cluster_peak, sum(memory))
            self._stop.wait(self.interval)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run(n_units: int, args: argparse.Namespace, client, root: Path) -> dict:
    import dask
    import dask.dataframe as dd

    from synthinfer.distributed.reduction import PASSES

    data_dir = root / f"n{n_units}"
    t = time.perf_counter()
    real = write_parquet(data_dir, n_units, args.labeled, args.rows_per_file, args.seed)
    write_time = time.perf_counter() - t
    proxy = dd.read_parquet(data_dir / "proxy", index="unit", calculate_divisions=True)
    synth = dd.read_parquet(data_dir / "synth", index="unit", calculate_divisions=True)
    row = {"N": n_units, "persist": not args.no_persist, "partitions": proxy.npartitions,
           "write_s": write_time}
    PASSES["count"] = 0
    with dask.config.set({"synthinfer.persist": not args.no_persist}), WorkerMemory(client) as memory_use:
        t = time.perf_counter()
        on_dask = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit").fit()
        row["dask_s"] = time.perf_counter() - t
    # every pass over the partitions: the levels pass (only with a categorical variable,
    # none here), the build pass, step 1, S, step 2, Windmeijer
    row["passes"] = PASSES["count"]
    row["s_per_pass"] = row["dask_s"] / row["passes"]
    row["peak_worker_memory_gb"] = memory_use.worker_peak / 1e9
    row["peak_cluster_memory_gb"] = memory_use.cluster_peak / 1e9
    dask_params, dask_bse, dask_j = np.asarray(on_dask.params), np.asarray(on_dask.bse), on_dask.jtest()[0]
    del on_dask.model.model_data.sources[0].chunks[:]  # free the persisted designs
    client.run(lambda: __import__("gc").collect())
    if n_units <= args.max_in_memory:
        proxy_mem, synth_mem = pd.read_parquet(data_dir / "proxy"), pd.read_parquet(data_dir / "synth")
        t = time.perf_counter()
        memory = smf.gmm_synth(FORMULA, real=real, proxy=proxy_mem, synth=synth_mem, model="logit").fit()
        row["memory_s"] = time.perf_counter() - t
        row["ratio"] = row["dask_s"] / row["memory_s"]
        row["max_rel_diff_params"] = relative(memory.params, dask_params)
        row["max_rel_diff_bse"] = relative(memory.bse, dask_bse)
        row["rel_diff_J"] = relative(memory.jtest()[0], dask_j)
        del proxy_mem, synth_mem, memory
    shutil.rmtree(data_dir)
    return row


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table without the tabulate package."""
    def cell(value) -> str:
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value))
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.3g}"
        return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-units", type=float, nargs="+", default=[1e5, 1e6])
    parser.add_argument("--labeled", type=int, default=1000)
    parser.add_argument("--rows-per-file", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--max-in-memory", type=float, default=1e7)
    parser.add_argument("--no-persist", action="store_true", help="read the partitions at every pass")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the Parquet files are written (default: a temporary directory)")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/dask"))
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    warnings.simplefilter("ignore")
    rows = []
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp, LocalCluster(
        n_workers=args.workers, threads_per_worker=1, memory_limit=args.memory_limit, dashboard_address=None,
    ) as cluster, Client(cluster) as client:
        for n in args.n_units:
            rows.append(run(int(n), args, client, Path(tmp)))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    args.output.mkdir(parents=True, exist_ok=True)
    previous = args.output / "results.csv"
    if previous.exists():
        # keep the rows of other N / persist settings (earlier runs)
        old = pd.read_csv(previous)
        if "persist" not in old:
            old.insert(1, "persist", True)
        keep = ~old.set_index(["N", "persist"]).index.isin(table.set_index(["N", "persist"]).index)
        table = pd.concat([old[keep], table], ignore_index=True).sort_values(["persist", "N"], ascending=[False, True])
    table.to_csv(previous, index=False)
    header = (
        f"# gmm_synth logit on Dask vs in memory\n\n"
        f"{args.workers} process workers x 1 thread, memory limit {args.memory_limit} each, "
        f"p = {P}, n = {args.labeled} labeled units, {args.rows_per_file} rows per Parquet file; "
        f"Python {platform.python_version()} on {platform.machine()}, last command: "
        f"`python {' '.join(sys.argv)}`. Times are build + fit wall seconds, on a shared "
        f"2-core machine; persist = False reads the Parquet files at every pass (out of core). "
        f"memory_s and ratio are empty where the in-memory fit was not run.\n\n"
    )
    (args.output / "results.md").write_text(header + markdown(table) + "\n")


if __name__ == "__main__":
    main()
