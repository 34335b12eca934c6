"""Repeated-sampling experiments: coverage, error and interval width of every estimator.

Two modes:

- ``run_simulation``: studies drawn with ``synthinfer.simulate.simulate_study``
  over a grid of labeled n, total N, model (``"ols"``, ``"logit"``) and scenario
  of the auxiliary data's quality (``SCENARIOS``); the truth is the model's
  known coefficient.
- ``run_politeness``: repeated random labeled subsets of the bundled
  politeness data (``synthinfer.datasets.load_politeness``); the truth is
  the full-data human-only fit.

Every (cell, trial) gets its own seed, derived from the base seed, the cell's
settings and the trial number with ``numpy.random.SeedSequence``, so a
trial's data do not depend on which other cells or trials are run, on the
number of workers or on the order in which they finish. Within a trial every
estimator sees the same data. The per-trial rows (one per trial, estimator and
target coefficient) are appended to ``trials.csv`` in the output directory as
they finish; a rerun with the same output directory skips the trials already
there (so a run can be interrupted and resumed, or extended with more trials
or cells). A fit that fails (e.g. perfect separation in a small logit sample)
is recorded as a failed row with its error message, counted per cell by
``summarize``, and left out of the cell's statistics.

Beside the default estimators, ``estimators=`` adds PPI++ with cross-fitted
power tuning (``ppi_cf_*``), RePPI (``reppi_*``, ``smf.reppi`` with its
defaults), DSL (``dsl_proxy``) and the paper's oracle PPI++
(``ppi_oracle_*``, `oracle_ppi`): lambda picked on a grid by its distance to
the known truth. The oracle is infeasible (no study knows its truth); it is an
upper bound for the PPI family in simulation and lives here, never in
``synthinfer.api``.

Per cell, estimator and target, ``summarize`` reports bias, MSE, MSE
relative to the human-only (classical) fit, coverage of the 95% interval with
its Monte Carlo standard error, mean interval width and, for the GMM
estimators, the rejection rate of Hansen's J test at the 5% level.
``plot_summary`` draws coverage and relative MSE against labeled n per
scenario.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import api as smf
from .exceptions import OutputDirectoryError
from .simulate import simulate_study

__all__ = [
    "SCENARIOS",
    "ESTIMATORS",
    "DEFAULT_ESTIMATORS",
    "ORACLE_GRID",
    "oracle_ppi",
    "ExperimentResult",
    "run_simulation",
    "run_politeness",
    "summarize",
    "plot_summary",
    "trial_seed",
    "check_output_dir",
]

#: Scenarios of ``run_simulation``: the ``synthinfer.simulate.simulate_study``
#: arguments and the auxiliary sources the estimators use.
SCENARIOS: dict[str, dict[str, Any]] = {
    # informative proxy: the LLM's annotation of every unit tracks the human label
    "proxy": {"study": {"proxy": "useful"}, "sources": ("proxy",)},
    # informative synthetic data, each sample conditioned on one real unit
    "synth": {"study": {"synth": "useful"}, "sources": ("synth",)},
    # both
    "proxy+synth": {"study": {"proxy": "useful", "synth": "useful"}, "sources": ("proxy", "synth")},
    # pure noise: the auxiliary outcomes are independent of everything
    "noise": {"study": {"proxy": "noise", "synth": "noise"}, "sources": ("proxy", "synth")},
    # noise in one direction: the auxiliary outcomes err upwards, more for large x1
    "biased": {"study": {"proxy": "biased", "synth": "biased"}, "sources": ("proxy", "synth")},
    # anti-correlated: the auxiliary outcomes run against the human ones
    "anti": {"study": {"proxy": "anti", "synth": "anti"}, "sources": ("proxy", "synth")},
    # generated differently for labeled units: violates the design; the J test should reject
    "differential": {
        "study": {"proxy": "differential", "synth": "differential"},
        "sources": ("proxy", "synth"),
    },
}

#: Every estimator, in reporting order. Which ones run depends on the sources
#: of a scenario: ``classical`` always; ``naive`` pools every source; those
#: ending in ``_proxy`` need a proxy, those ending in ``_synth`` synthetic data;
#: ``gmm_synth`` uses the synthetic data and the proxy if there is one.
#: ``ppi_cf_*`` is PPI++ with cross-fitted lambda (``tuning="crossfit"``),
#: ``ppi_oracle_*`` the infeasible oracle PPI++ (`oracle_ppi`), ``reppi_*``
#: RePPI with its default learner and folds, ``dsl_proxy`` DSL with the default
#: labeling probability n/N.
ESTIMATORS = (
    "classical", "naive", "ppi_proxy", "ppi_synth", "ppi_cf_proxy", "ppi_cf_synth",
    "ppi_oracle_proxy", "ppi_oracle_synth", "reppi_proxy", "reppi_synth", "dsl_proxy",
    "gmm_proxy", "gmm_synth",
)
#: The estimators a run fits unless ``estimators=`` says otherwise.
DEFAULT_ESTIMATORS = ("classical", "naive", "ppi_proxy", "ppi_synth", "gmm_proxy", "gmm_synth")
GMM_ESTIMATORS = ("gmm_proxy", "gmm_synth")

#: The lambda grid of the oracle PPI++: 0, 0.05, ..., 1.
ORACLE_GRID = tuple(i / 20 for i in range(21))

MODELS = ("ols", "logit")
POLITENESS_TARGETS = ("hedging", "first_person_plural")
ALPHA = 0.05

TRIALS_FILE = "trials.csv"
SUMMARY_FILE = "summary.csv"

# the columns that identify one trial (a cell and a trial number)
KEY = ["mode", "scenario", "model", "n_units", "n_labeled", "seed", "trial"]
CELL = ["mode", "scenario", "model", "n_units", "n_labeled"]
ROW_COLUMNS = KEY + [
    "trial_seed", "estimator", "target", "truth", "estimate", "std_err", "ci_lower",
    "ci_upper", "covered", "width", "j_stat", "j_pvalue", "j_df", "failed", "error", "warnings",
]


def estimators_for(sources: Sequence[str], estimators: Sequence[str] = DEFAULT_ESTIMATORS) -> tuple[str, ...]:
    """The ``estimators`` that apply to a scenario with the given auxiliary sources, in reporting order."""
    def applies(name: str) -> bool:
        if name == "gmm_synth":
            return "synth" in sources
        if name.endswith("_proxy"):
            return "proxy" in sources
        if name.endswith("_synth"):
            return "synth" in sources
        return True

    return tuple(name for name in ESTIMATORS if name in estimators and applies(name))


def _check_estimators(estimators: Sequence[str] | str) -> tuple[str, ...]:
    names = [estimators] if isinstance(estimators, str) else list(estimators)
    if names == ["all"]:
        return ESTIMATORS
    for name in names:
        if name not in ESTIMATORS:
            raise ValueError(f"estimators must be among {list(ESTIMATORS)} (or 'all'), got {name!r}")
    if not names:
        raise ValueError("estimators must not be empty")
    return tuple(names)


def trial_seed(seed: int, cell: Sequence[Any], trial: int) -> int:
    """The seed of one trial: a 63-bit integer from the base seed, the cell and the trial.

    ``SeedSequence([seed, h1, h2, trial])`` with ``h1, h2`` two 32-bit words of
    the SHA-256 digest of the cell's settings (``mode|scenario|model|N|n``).
    The returned integer reproduces the trial's data: pass it as ``seed=`` to
    ``synthinfer.simulate.simulate_study`` (or to
    ``synthinfer.datasets.Politeness.sample``) with the cell's settings.
    """
    text = "|".join(str(v) for v in cell).encode()
    digest = hashlib.sha256(text).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in (0, 4)]
    sequence = np.random.SeedSequence([int(seed), *words, int(trial)])
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


# -- one trial ---------------------------------------------------------------------------------


def oracle_ppi(
    formula: str,
    real: pd.DataFrame,
    proxy: pd.DataFrame | None = None,
    synth: pd.DataFrame | None = None,
    *,
    truth: pd.Series | Mapping[str, float],
    model: str = "ols",
    targets: Sequence[str] | None = None,
    grid: Sequence[float] = ORACLE_GRID,
    eval_env: int | Mapping[str, Any] = 0,
) -> Any:
    """The paper's oracle PPI++: INFEASIBLE, for simulation studies only.

    PPI++ (``smf.ppi``) at every lambda of ``grid``; the fit reported is the
    one whose estimate is closest to the known ``truth`` (Euclidean distance
    over ``targets``; ties go to the smaller lambda). Because it looks at the
    truth, its squared error on the targets is, study by study, the smallest
    of any grid lambda, so over repeated studies its MSE is at most that of
    PPI++ at any fixed grid lambda (and of the power-tuned PPI++ when its
    lambda is on the grid): an upper bound on what the PPI family could reach,
    not an estimator. Its interval is the fixed-lambda interval at the chosen
    lambda, which ignores the choice.

    Parameters
    ----------
    formula, real, proxy, synth, model, eval_env
        As in ``smf.ppi`` (one auxiliary source).
    truth : Series or mapping
        The true coefficients, by name.
    targets : sequence of str, optional
        The coefficients whose distance to the truth picks lambda (default: all).
    grid : sequence of float
        The lambdas tried (default ``ORACLE_GRID``, 0 to 1 by 0.05).

    Returns
    -------
    BaselineResultsWrapper
        ``smf.ppi(..., lam=best).fit()``, with ``oracle_lam`` (the chosen
        lambda), ``oracle_grid``, ``oracle_distance`` (per grid lambda; inf
        where the rectified equation has no root) and ``infeasible = True``.

    Raises
    ------
    SpecificationError
        An empty grid, a lambda that is not a finite number, or a target that
        is not a coefficient or has no truth.
    ConvergenceError
        No grid lambda has an estimate.
    """
    from .estimators.ppi import PPI
    from .exceptions import ConvergenceError, SpecificationError
    from .formula import capture_namespace

    env = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
    lams = np.asarray(list(grid), dtype=float)
    if lams.ndim != 1 or not len(lams) or not np.all(np.isfinite(lams)):
        raise SpecificationError(f"the oracle's grid must be a non-empty sequence of finite numbers, got {grid!r}")
    model_ = PPI.from_formula(formula, real, proxy=proxy, synth=synth, model=model, lam=0.0, eval_env=env)
    names = list(model_.model_data.param_names)
    targets = names if targets is None else list(targets)
    truth = pd.Series(dict(truth) if isinstance(truth, Mapping) else truth, dtype=float)
    missing = [t for t in targets if t not in names or t not in truth.index]
    if missing or not targets:
        raise SpecificationError(
            f"oracle targets {missing or targets} must be coefficients ({names}) with a value in truth"
        )
    where = [names.index(t) for t in targets]
    goal = truth[targets].to_numpy()
    distance = np.full(len(lams), np.inf)
    for i, lam in enumerate(lams):
        try:
            params = model_._point_estimate(float(lam))
        except ConvergenceError:
            continue  # no PPI++ estimate at this lambda: not a candidate
        distance[i] = float(np.linalg.norm(params[where] - goal))
    if not np.isfinite(distance).any():
        raise ConvergenceError("the oracle PPI++ has no estimate at any lambda of its grid")
    best = float(lams[distance == distance.min()].min())  # ties: the smaller lambda
    res = smf.ppi(formula, real=real, proxy=proxy, synth=synth, model=model, lam=best, eval_env=env).fit()
    for name, value in {
        "oracle_lam": best, "oracle_grid": lams, "oracle_distance": distance, "infeasible": True,
    }.items():
        setattr(res._results, name, value)
    return res


def _fit_one(
    name: str, formula: str, family: str, real: pd.DataFrame,
    proxy: pd.DataFrame | None, synth: pd.DataFrame | None,
    truth: pd.Series | None = None, targets: Sequence[str] | None = None,
) -> Any:
    env: dict = {}
    if name == "classical":
        return smf.classical(formula, real=real, model=family, eval_env=env).fit()
    if name == "naive":
        return smf.naive(formula, real=real, proxy=proxy, synth=synth, model=family, eval_env=env).fit()
    if name == "ppi_proxy":
        return smf.ppi(formula, real=real, proxy=proxy, model=family, eval_env=env).fit()
    if name == "ppi_synth":
        return smf.ppi(formula, real=real, synth=synth, model=family, eval_env=env).fit()
    if name == "ppi_cf_proxy":
        return smf.ppi(formula, real=real, proxy=proxy, model=family, tuning="crossfit", eval_env=env).fit()
    if name == "ppi_cf_synth":
        return smf.ppi(formula, real=real, synth=synth, model=family, tuning="crossfit", eval_env=env).fit()
    if name in ("ppi_oracle_proxy", "ppi_oracle_synth"):
        source: dict[str, Any] = {"proxy": proxy} if name.endswith("proxy") else {"synth": synth}
        return oracle_ppi(formula, real, **source, truth=truth, model=family, targets=targets, eval_env=env)
    if name == "reppi_proxy":
        return smf.reppi(formula, real=real, proxy=proxy, model=family, eval_env=env).fit()
    if name == "reppi_synth":
        return smf.reppi(formula, real=real, synth=synth, model=family, eval_env=env).fit()
    if name == "dsl_proxy":
        return smf.dsl(formula, real=real, proxy=proxy, model=family, eval_env=env).fit()
    if name == "gmm_proxy":
        return smf.gmm_proxy(formula, real=real, proxy=proxy, model=family, eval_env=env).fit()
    if name == "gmm_synth":
        return smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth, model=family, eval_env=env).fit()
    raise ValueError(f"unknown estimator {name!r}")


def _fit_rows(
    base: dict, estimators: Sequence[str], formula: str, family: str, real: pd.DataFrame,
    proxy: pd.DataFrame | None, synth: pd.DataFrame | None, truth: pd.Series,
    targets: Sequence[str],
) -> list[dict]:
    """Fit every estimator on one trial's data; one row per estimator and target."""
    rows = []
    for name in estimators:
        record: dict[str, Any] = {"failed": False, "error": ""}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = _fit_one(name, formula, family, real, proxy, synth, truth, targets)
                table = res.tidy(ALPHA)
                jtest = res.jtest() if name in GMM_ESTIMATORS else (np.nan, np.nan, np.nan)
            except Exception as exc:  # a failed fit is data: recorded, counted, reported
                record.update(failed=True, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        record["warnings"] = " | ".join(
            sorted({f"{w.category.__name__}: {w.message}".splitlines()[0][:200] for w in caught})
        )
        for target in targets:
            row = dict(base, estimator=name, target=target, truth=float(truth[target]), **record)
            if not record["failed"]:
                est, se, lo, hi = (
                    float(v) for v in table.loc[target, ["estimate", "std_error", "conf_low", "conf_high"]]
                )
                if not all(np.isfinite([est, se, lo, hi])):
                    row.update(failed=True, error="non-finite estimate or standard error")
                else:
                    row.update(
                        estimate=est, std_err=se, ci_lower=lo, ci_upper=hi,
                        covered=bool(lo <= row["truth"] <= hi), width=hi - lo,
                        j_stat=float(jtest[0]), j_pvalue=float(jtest[1]), j_df=float(jtest[2]),
                    )
            rows.append(row)
    return rows


def _simulation_trial(task: dict) -> list[dict]:
    spec = SCENARIOS[task["scenario"]]
    study = simulate_study(
        task["model"], task["n_units"], task["n_labeled"], seed=task["trial_seed"], **spec["study"]
    )
    sources = spec["sources"]
    return _fit_rows(
        {k: task[k] for k in KEY + ["trial_seed"]},
        task["estimators"], study.formula, task["model"], study.real,
        study.proxy if "proxy" in sources else None,
        study.synth if "synth" in sources else None,
        study.truth, task["targets"],
    )


@functools.lru_cache(maxsize=1)
def _politeness() -> tuple[Any, pd.Series]:
    """The politeness data and its full-data human-only fit (the truth), once per process."""
    from .datasets import load_politeness

    data = load_politeness()
    truth = smf.classical(data.formula, real=data.human, model=data.model, eval_env={}).fit().params
    return data, truth


def _politeness_trial(task: dict) -> list[dict]:
    data, truth = _politeness()
    real, proxy = data.sample(task["n_labeled"], seed=task["trial_seed"])
    return _fit_rows(
        {k: task[k] for k in KEY + ["trial_seed"]},
        task["estimators"], data.formula, data.model, real, proxy, None,
        truth, task["targets"],
    )


def _run_task(task: dict) -> list[dict]:
    runner = _politeness_trial if task["mode"] == "politeness" else _simulation_trial
    return runner(task)


# -- running a grid ----------------------------------------------------------------------------


@dataclass
class ExperimentResult:
    """What a run produced.

    Attributes
    ----------
    trials : DataFrame
        The per-trial rows of the requested grid (including rows found in the
        output directory from earlier runs), sorted by cell, trial, estimator
        and target.
    summary : DataFrame
        ``summarize`` of ``trials``.
    output : Path or None
        The output directory (``trials.csv``, ``summary.csv``), if any.
    n_run, n_skipped : int
        Trials run now, and trials skipped because the output directory
        already had them.
    """

    trials: pd.DataFrame
    summary: pd.DataFrame
    output: Path | None
    n_run: int
    n_skipped: int


def _read_trials(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"error": str, "warnings": str, "estimator": str, "target": str})
    missing = set(ROW_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path} is not a trials file of this module (missing columns {sorted(missing)})")
    for column in ("error", "warnings"):
        frame[column] = frame[column].fillna("")
    frame["failed"] = frame["failed"].astype(bool)
    return frame


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    frame["covered"] = frame["covered"].astype(float)
    return frame


def _check_positive_ints(name: str, values: Iterable[Any]) -> list[int]:
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be positive integers, got {value!r}")
        out.append(int(value))
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


def _plot_file(name: str, mode: str) -> bool:
    """Whether ``name`` is a figure `plot_summary` writes for this mode."""
    stem, _, suffix = name.rpartition(".")
    return suffix in _NO_STAMP and stem.startswith((f"coverage_{mode}_", f"rel_mse_{mode}_"))


def check_output_dir(out_dir: Path, mode: str) -> None:
    """Refuse a directory that is not empty and not a previous run of this study (mode).

    A previous run holds ``trials.csv`` (of the same mode), perhaps ``summary.csv``
    and figures, and nothing else (hidden files aside). Links are refused
    too: appending to ``trials.csv`` or writing ``summary.csv`` through a link
    would change the file it points to.
    """
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputDirectoryError(f"the output {str(out_dir)!r} exists and is not a directory")
    entries = [e for e in out_dir.iterdir() if not e.name.startswith(".")]
    links = sorted(e.name for e in entries if e.is_symlink())
    if links:
        raise OutputDirectoryError(
            f"the output directory {str(out_dir)!r} holds symbolic link(s) {links}; results are "
            f"never written through links. Use a directory without them"
        )
    foreign = sorted(
        e.name for e in entries
        if e.name not in (TRIALS_FILE, SUMMARY_FILE) and not (e.is_file() and _plot_file(e.name, mode))
    )
    trials = out_dir / TRIALS_FILE
    if not foreign and entries and not trials.is_file():
        foreign = sorted(e.name for e in entries)
    if foreign:
        raise OutputDirectoryError(
            f"the output directory {str(out_dir)!r} is not empty and is not a previous run of "
            f"this study: it holds {foreign}, which would be overwritten or mixed with the "
            f"results. Choose a new or empty directory"
        )
    if trials.is_file() and trials.stat().st_size > 0:
        modes = set(pd.read_csv(trials, usecols=lambda c: c == "mode", dtype=str).get("mode", []))
        if modes and modes != {mode}:
            raise OutputDirectoryError(
                f"the output directory {str(out_dir)!r} holds a run of another study (mode "
                f"{sorted(modes)}, this one is {mode!r}); choose a new or empty directory"
            )


def _run(
    tasks: list[dict], output: str | Path | None, jobs: int, progress: bool, grid_keys: pd.DataFrame
) -> ExperimentResult:
    out_dir = None if output is None else Path(output)
    existing = pd.DataFrame(columns=ROW_COLUMNS)
    if out_dir is not None:
        mode = str(grid_keys["mode"].iloc[0]) if len(grid_keys) else "simulation"
        check_output_dir(out_dir, mode)
        out_dir.mkdir(parents=True, exist_ok=True)
        previous = out_dir / TRIALS_FILE
        if previous.exists() and previous.stat().st_size > 0:
            existing = _read_trials(previous)
    # a trial is done for an estimator once the directory has its rows (failed or not);
    # a trial runs again only for the requested estimators it lacks
    done = set(map(tuple, existing[KEY + ["estimator"]].astype(str).to_numpy())) if len(existing) else set()
    todo = []
    for task in tasks:
        key = tuple(str(task[k]) for k in KEY)
        missing = [e for e in _task_estimators(task) if key + (e,) not in done]
        if missing:
            todo.append(dict(task, estimators=tuple(missing)))
    n_skipped = len(tasks) - len(todo)

    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs == 0 or jobs < -1:
        raise ValueError(f"jobs must be a positive integer or -1 (every core), got {jobs!r}")
    from tqdm.auto import tqdm

    show = bool(progress) and sys.stderr.isatty()
    new_rows: list[dict] = []
    path = None if out_dir is None else out_dir / TRIALS_FILE
    header = path is not None and (not path.exists() or path.stat().st_size == 0)

    def flush(batch: list[dict]) -> None:
        nonlocal header
        if path is None or not batch:
            return
        _frame(batch).to_csv(path, mode="a", header=header, index=False)
        header = False

    with tqdm(total=len(todo), disable=not show, desc="trials", unit="trial") as bar:
        if jobs == 1:
            results: Iterable[list[dict]] = map(_run_task, todo)
        else:
            from joblib import Parallel, delayed

            results = Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size="auto")(
                delayed(_run_task)(t) for t in todo
            )
        batch: list[dict] = []
        for rows in results:
            batch += rows
            bar.update(1)
            if len(batch) >= 500:
                flush(batch)
                new_rows += batch
                batch = []
        flush(batch)
        new_rows += batch

    frames = [f for f in (existing, _frame(new_rows)) if len(f)]
    trials = pd.concat(frames, ignore_index=True) if frames else _frame([])
    # keep only the requested grid
    keys = trials[KEY].astype(str)
    wanted = set(map(tuple, grid_keys.astype(str).to_numpy()))
    requested = set(tasks[0]["requested"]) if tasks else set()
    in_grid = np.array([tuple(k) in wanted for k in keys.to_numpy()], dtype=bool)
    trials = trials[in_grid & trials["estimator"].isin(requested).to_numpy()]
    trials = _in_estimator_order(trials, KEY + ["estimator", "target"])
    summary = summarize(trials)
    if out_dir is not None:
        everything = _read_trials(out_dir / TRIALS_FILE) if (out_dir / TRIALS_FILE).exists() else trials
        summarize(everything).to_csv(out_dir / SUMMARY_FILE, index=False)
    return ExperimentResult(trials=trials, summary=summary, output=out_dir, n_run=len(todo), n_skipped=n_skipped)


def _task_estimators(task: dict) -> tuple[str, ...]:
    """The requested estimators that apply to a task's scenario."""
    sources = ("proxy",) if task["mode"] == "politeness" else SCENARIOS[task["scenario"]]["sources"]
    return estimators_for(sources, task["requested"])


def _tasks(
    mode: str, cells: list[tuple], trials: int, seed: int, targets: Sequence[str],
    estimators: Sequence[str] = DEFAULT_ESTIMATORS,
) -> tuple[list[dict], pd.DataFrame]:
    tasks = []
    for scenario, model, n_units, n_labeled in cells:
        cell = (mode, scenario, model, n_units, n_labeled)
        for trial in range(trials):
            tasks.append({
                "mode": mode, "scenario": scenario, "model": model, "n_units": n_units,
                "n_labeled": n_labeled, "seed": seed, "trial": trial,
                "trial_seed": trial_seed(seed, cell, trial), "targets": tuple(targets),
                "requested": tuple(estimators),
            })
    keys = pd.DataFrame([{k: t[k] for k in KEY} for t in tasks], columns=KEY)
    return tasks, keys


def run_simulation(
    output: str | Path | None = None,
    *,
    n_labeled: Sequence[int] = (50, 100, 200, 500, 1000),
    n_units: int | Sequence[int] = 2000,
    models: Sequence[str] = MODELS,
    scenarios: Sequence[str] = tuple(SCENARIOS),
    trials: int = 200,
    seed: int = 0,
    jobs: int = 1,
    target: str | Sequence[str] = "x1",
    progress: bool = True,
    estimators: Sequence[str] | str = DEFAULT_ESTIMATORS,
) -> ExperimentResult:
    """Repeated-sampling experiments on simulated studies over a grid.

    Every cell of the grid ``n_units x n_labeled x models x scenarios`` (cells
    with ``n_labeled >= n_units`` are left out) runs ``trials`` trials: a study
    drawn with ``synthinfer.simulate.simulate_study`` (default knobs, the
    scenario's ``proxy=``/``synth=``; true coefficients 0.5, 1, -0.5) and every
    estimator that applies to the scenario fitted on it.

    Parameters
    ----------
    output : str or Path, optional
        Directory for ``trials.csv`` (per-trial rows, appended as trials
        finish; trials already there are skipped) and ``summary.csv`` (the
        summary of every row in ``trials.csv``). None keeps everything in memory.
    n_labeled : sequence of int
        Labeled sample sizes n.
    n_units : int or sequence of int
        Total numbers of units N.
    models : sequence of {"ols", "logit"}
    scenarios : sequence of str
        Keys of ``SCENARIOS``.
    trials : int
        Trials per cell (numbered 0 .. trials-1; a larger number later extends
        the cells).
    seed : int
        Base seed; see ``trial_seed``.
    jobs : int
        Parallel worker processes (joblib); 1 runs in this process, -1 uses
        every core. The rows do not depend on it.
    target : str or sequence of str
        The coefficient(s) recorded (``"x1"``, ``"x2"``, ``"Intercept"``).
    progress : bool
        Show a tqdm progress bar (only when stderr is a terminal).
    estimators : sequence of str or "all"
        Which of ``ESTIMATORS`` to fit where they apply (default
        ``DEFAULT_ESTIMATORS``). A rerun in the same output directory with more
        estimators fits only the ones its trials lack.

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ValueError
        An unknown model, scenario, target or estimator, or a non-positive size.

    Examples
    --------
    >>> from synthinfer.experiments import run_simulation
    >>> result = run_simulation(n_labeled=[100], models=["ols"], scenarios=["proxy"],
    ...                         trials=20, progress=False)
    >>> result.summary[["estimator", "bias", "rel_mse", "coverage"]]  # doctest: +SKIP
    """
    n_labeled = _check_positive_ints("n_labeled", n_labeled)
    sizes = n_units if isinstance(n_units, Iterable) and not np.isscalar(n_units) else [n_units]
    units = _check_positive_ints("n_units", sizes)
    trials = _check_positive_ints("trials", [trials])[0]
    models = list(models)
    for model in models:
        if model not in MODELS:
            raise ValueError(f"models must be among {list(MODELS)}, got {model!r}")
    scenarios = list(scenarios)
    for scenario in scenarios:
        if scenario not in SCENARIOS:
            raise ValueError(f"scenarios must be among {list(SCENARIOS)}, got {scenario!r}")
    if not models or not scenarios:
        raise ValueError("models and scenarios must not be empty")
    targets = [target] if isinstance(target, str) else list(target)
    for name in targets:
        if name not in ("Intercept", "x1", "x2"):
            raise ValueError(f"target must be among ['Intercept', 'x1', 'x2'], got {name!r}")
    cells = [
        (scenario, model, big_n, n)
        for scenario in scenarios for model in models for big_n in units for n in n_labeled
        if n < big_n
    ]
    if not cells:
        raise ValueError("every n_labeled is at least n_units: no cell left (need n_labeled < n_units)")
    tasks, keys = _tasks("simulation", cells, trials, int(seed), targets, _check_estimators(estimators))
    return _run(tasks, output, jobs, progress, keys)


def run_politeness(
    output: str | Path | None = None,
    *,
    n_labeled: Sequence[int] = (100, 200, 500, 1000),
    trials: int = 200,
    seed: int = 0,
    jobs: int = 1,
    targets: Sequence[str] = POLITENESS_TARGETS,
    progress: bool = True,
    estimators: Sequence[str] | str = DEFAULT_ESTIMATORS,
) -> ExperimentResult:
    """Repeated random labeled subsets of the bundled politeness data.

    Each trial draws ``n`` of the 5,480 requests as the labeled data
    (``synthinfer.datasets.Politeness.sample``) and fits ``polite ~
    hedging + first_person_plural`` (logit) human-only (classical), naive
    pooling, PPI++ and GMM-Proxy with GPT-4o's labels as the proxy. The truth
    is the human-only fit on all 5,480 requests. Rows have ``mode =
    "politeness"``, ``scenario = "politeness"``, ``model = "logit"``.

    The labeled units are drawn without replacement from a finite population
    whose truth is computed from it, so at large n the intervals (which treat
    the units as independent draws) are conservative.

    Parameters
    ----------
    output, trials, seed, jobs, progress, estimators
        As in ``run_simulation`` (the politeness data have a proxy only).
    n_labeled : sequence of int
        Labeled sample sizes, each below 5,480.
    targets : sequence of str
        Coefficients recorded.

    Returns
    -------
    ExperimentResult
    """
    n_labeled = _check_positive_ints("n_labeled", n_labeled)
    trials = _check_positive_ints("trials", [trials])[0]
    data, _ = _politeness()
    for n in n_labeled:
        if n >= data.n_units:
            raise ValueError(f"n_labeled must be below {data.n_units} (the number of requests), got {n}")
    for name in targets:
        if name not in ("Intercept", "hedging", "first_person_plural"):
            raise ValueError(f"targets must be among ['Intercept', 'hedging', 'first_person_plural'], got {name!r}")
    cells = [("politeness", "logit", data.n_units, n) for n in n_labeled]
    tasks, keys = _tasks("politeness", cells, trials, int(seed), list(targets), _check_estimators(estimators))
    return _run(tasks, output, jobs, progress, keys)


# -- summaries and plots -----------------------------------------------------------------------


def _in_estimator_order(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """``frame`` sorted by ``by`` (stable), estimators in the order of ESTIMATORS."""
    order = {name: i for i, name in enumerate(ESTIMATORS)}
    return frame.sort_values(
        by, kind="stable", key=lambda column: column.map(order) if column.name == "estimator" else column
    ).reset_index(drop=True)


def summarize(trials: pd.DataFrame) -> pd.DataFrame:
    """Per cell, estimator and target: error, coverage, width, J-test rejection, failures.

    Statistics are over the trials whose fit succeeded (``fits``); ``failures``
    counts the others. Columns:

    - ``bias``, ``bias_mc_se``: mean of estimate - truth and its Monte Carlo SE;
    - ``mse``, ``mse_mc_se``; ``rel_mse``: MSE / the classical fit's MSE in the
      same cell; ``mse_diff``, ``mse_diff_mc_se``: the paired difference of
      squared errors from the classical fit (on trials where both succeeded)
      and its Monte Carlo SE;
    - ``coverage``, ``coverage_mc_se``: the share of 95% intervals covering the
      truth, ``sqrt(c (1 - c) / fits)``;
    - ``mean_width``, ``mean_se``, ``sd_estimate``;
    - ``j_reject``, ``j_reject_mc_se``: share of trials whose J test rejects at
      5% (GMM estimators; NaN otherwise);
    - ``warned``: trials with at least one warning.

    Parameters
    ----------
    trials : DataFrame
        Per-trial rows (``trials.csv`` or ``ExperimentResult.trials``).

    Returns
    -------
    DataFrame
    """
    columns = CELL + ["estimator", "target"]
    out = []
    frame = trials.copy()
    frame["error_sq"] = (frame["estimate"] - frame["truth"]) ** 2
    reference = frame[frame["estimator"] == "classical"].set_index(CELL + ["target", "seed", "trial"])["error_sq"]
    for key, group in frame.groupby(columns, sort=False):
        ok = group[~group["failed"].astype(bool)]
        err = ok["estimate"] - ok["truth"]
        fits = len(ok)
        row = dict(zip(columns, key))
        cov = ok["covered"].astype(float).mean() if fits else np.nan
        row.update(
            trials=len(group), fits=fits, failures=len(group) - fits,
            truth=float(group["truth"].mean()),
            bias=err.mean() if fits else np.nan,
            bias_mc_se=err.std(ddof=1) / np.sqrt(fits) if fits > 1 else np.nan,
            mse=ok["error_sq"].mean() if fits else np.nan,
            mse_mc_se=ok["error_sq"].std(ddof=1) / np.sqrt(fits) if fits > 1 else np.nan,
            coverage=cov,
            coverage_mc_se=np.sqrt(cov * (1 - cov) / fits) if fits else np.nan,
            mean_width=ok["width"].mean() if fits else np.nan,
            mean_se=ok["std_err"].mean() if fits else np.nan,
            sd_estimate=ok["estimate"].std(ddof=1) if fits > 1 else np.nan,
        )
        ref_index = [tuple(r) for r in ok[CELL + ["target", "seed", "trial"]].to_numpy()]
        ref = reference.reindex(ref_index).to_numpy()
        diff = ok["error_sq"].to_numpy() - ref
        diff = diff[np.isfinite(diff)]
        row["mse_diff"] = diff.mean() if len(diff) else np.nan
        row["mse_diff_mc_se"] = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
        if row["estimator"] in GMM_ESTIMATORS and fits:
            rej = (ok["j_pvalue"] < ALPHA).mean()
            row["j_reject"], row["j_reject_mc_se"] = rej, np.sqrt(rej * (1 - rej) / fits)
        else:
            row["j_reject"] = row["j_reject_mc_se"] = np.nan
        row["warned"] = int((group["warnings"].fillna("").astype(str) != "").sum())
        out.append(row)
    summary = pd.DataFrame(out)
    if not len(summary):
        return summary
    classical = summary[summary["estimator"] == "classical"].set_index(CELL + ["target"])["mse"]
    idx = [tuple(r) for r in summary[CELL + ["target"]].to_numpy()]
    summary.insert(summary.columns.get_loc("mse_mc_se") + 1, "rel_mse",
                   summary["mse"].to_numpy() / classical.reindex(idx).to_numpy())
    summary = _in_estimator_order(summary, CELL + ["target", "estimator"])
    summary = summary[[c for c in summary.columns if c != "warned"] + ["warned"]]
    return summary


_STYLE: dict[str, dict[str, Any]] = {
    "classical": {"color": "black", "marker": "o"},
    "naive": {"color": "tab:gray", "marker": "x", "linestyle": ":"},
    "ppi_proxy": {"color": "tab:orange", "marker": "s"},
    "ppi_synth": {"color": "tab:red", "marker": "D"},
    "ppi_cf_proxy": {"color": "tab:orange", "marker": "s", "linestyle": "--"},
    "ppi_cf_synth": {"color": "tab:red", "marker": "D", "linestyle": "--"},
    "ppi_oracle_proxy": {"color": "tab:brown", "marker": "*", "linestyle": ":"},
    "ppi_oracle_synth": {"color": "tab:pink", "marker": "*", "linestyle": ":"},
    "reppi_proxy": {"color": "tab:olive", "marker": "h"},
    "reppi_synth": {"color": "tab:cyan", "marker": "h"},
    "dsl_proxy": {"color": "tab:purple", "marker": "P"},
    "gmm_proxy": {"color": "tab:blue", "marker": "^"},
    "gmm_synth": {"color": "tab:green", "marker": "v"},
}


# no software version or date in the files, so a rerun gives the same bytes
_NO_STAMP = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}


def plot_summary(
    summary: pd.DataFrame,
    output: str | Path,
    *,
    formats: Sequence[str] = ("png",),
    target: str | None = None,
    include_naive: bool = True,
) -> list[Path]:
    """Coverage and MSE relative to human-only against labeled n, one panel per scenario.

    One figure per (mode, model, target) and quantity: ``coverage_<model>_<target>``
    (with +- 2 Monte Carlo SE bars and the nominal 0.95) and
    ``rel_mse_<model>_<target>`` (log scale; 1 = human-only).

    Parameters
    ----------
    summary : DataFrame
        ``summarize`` output.
    output : str or Path
        Directory for the figures (created).
    formats : sequence of {"png", "svg", "pdf"}
    target : str, optional
        Only this coefficient (default: every target in ``summary``).
    include_naive : bool
        Draw naive pooling (its coverage is often near 0).

    Returns
    -------
    list of Path
        The files written.
    """
    import matplotlib.pyplot as plt

    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    frame = summary if target is None else summary[summary["target"] == target]
    for (mode, model, tgt), group in frame.groupby(["mode", "model", "target"], sort=False):
        rank = {name: i for i, name in enumerate(SCENARIOS)}
        scenarios = sorted(dict.fromkeys(group["scenario"]), key=lambda name: rank.get(name, len(rank)))
        for quantity in ("coverage", "rel_mse"):
            ncols = min(4, len(scenarios))
            nrows = int(np.ceil(len(scenarios) / ncols))
            fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False,
                                     sharex=True, sharey=quantity == "coverage")
            for ax, scenario in zip(axes.flat, scenarios):
                cell = group[group["scenario"] == scenario]
                for name in ESTIMATORS:
                    if name == "naive" and not include_naive:
                        continue
                    if name == "classical" and quantity == "rel_mse":
                        continue
                    line = cell[cell["estimator"] == name].sort_values("n_labeled")
                    if not len(line):
                        continue
                    style = _STYLE[name]
                    if quantity == "coverage":
                        ax.errorbar(line["n_labeled"], line["coverage"], yerr=2 * line["coverage_mc_se"],
                                    label=name, capsize=2, **style)
                    else:
                        ax.plot(line["n_labeled"], line["rel_mse"], label=name, **style)
                if quantity == "coverage":
                    ax.axhline(1 - ALPHA, color="k", lw=0.8, ls="--")
                    ax.set_ylim(max(0.0, min(0.8, ax.get_ylim()[0])), 1.0)
                else:
                    ax.axhline(1.0, color="k", lw=0.8, ls="--")
                    ax.set_yscale("log")
                ax.set_xscale("log")
                ax.set_title(scenario)
                ax.set_xlabel("labeled n")
            for ax in list(axes.flat)[len(scenarios):]:
                ax.set_visible(False)
            axes[0, 0].set_ylabel("coverage of 95% CI" if quantity == "coverage" else "MSE / human-only MSE")
            handles: dict = {}
            for ax in axes.flat:
                for h, lab in zip(*ax.get_legend_handles_labels()):
                    handles.setdefault(lab, h)
            fig.legend(list(handles.values()), list(handles), loc="lower center",
                       ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, 0.0))
            title = "politeness data" if mode == "politeness" else f"simulated, {model}"
            fig.suptitle(f"{'Coverage' if quantity == 'coverage' else 'Relative MSE'} of {tgt} ({title})")
            fig.tight_layout(rect=(0, 0.07, 1, 1))
            stem = f"{quantity}_{mode}_{model}_{tgt}"
            for fmt in formats:
                path = out_dir / f"{stem}.{fmt}"
                if path.is_symlink():
                    raise OutputDirectoryError(f"{str(path)!r} is a symbolic link; figures are never written through links")
                fig.savefig(path, dpi=110, metadata=_NO_STAMP.get(fmt))
                written.append(path)
            plt.close(fig)
    return written
