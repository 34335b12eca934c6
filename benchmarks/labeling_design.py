"""Labeling designs against uniform labeling (docs/labeling-design.md).

    python benchmarks/labeling_design.py                   # full run, ~15 minutes on 2 cores
    python benchmarks/labeling_design.py --quick --output DIR   # the test suite's check

Two studies, seeded and run over ``--jobs`` processes (joblib):

1. **Politeness** (``synthinfer.datasets.load_politeness``; every request has a
   human label, so the full-data fit is the truth). Logit ``polite ~ hedging +
   first_person_plural``, 500 expected human labels per repetition:

   - ``uniform``: every request with probability 500 / N (Poisson);
   - ``optimal (<target>)``: a simple random pilot of 50 requests (as the
     burn-in of Gligoric et al.), then `optimal_design` for the other 450
     expected labels, target ``hedging``, ``first_person_plural`` or both,
     from GPT-4o's label and confidence with the disagreement model learned on
     the pilot (uniform mixture 0.1); the pilot is a simple random sample, so
     the designs take ``random_pilot=True`` (its units count for the whole
     population, see `synthinfer.design.rules.random_pilot_prob`);
   - ``sequential (first_person_plural)``: the same pilot, then 3 rounds of
     150 expected labels, the disagreement model refitted before each round.

   Estimators: GMM-Proxy, PPI++ and the human-only (IPW) fit, each given the
   design's probabilities. Per term: the relative effective sample size as in
   the CDI tables (the human-only variance of uniform labeling with the same
   budget, ``V_full / 500``, over the estimator's reported variance, averaged
   over repetitions), the same with the Monte Carlo variance (the mean squared
   error around the full-data fit plus ``V_full / N``, that fit's own
   variance) and its finite-population version (``V_full (1/500 - 1/N)`` over
   the mean squared error around the full-data fit), and the 90% and 95%
   coverage of the full-data value, plain and with the finite-population
   correction (the reported variance minus the estimated variance of the
   full-data fit itself, ``V_hat / N``: the intervals are for the
   superpopulation coefficient, of which the full-data fit is one draw).

2. **Simulation** (superpopulation truth): OLS and logit, ``y = mu(0.5 + x1 -
   0.5 x2)``, N = 2,000, n = 200 and 500 expected labels, target ``x1``; the LLM
   is ``informative`` (a confidence c ~ U(0.5, 1) per unit; logit: the label is
   right with probability c; OLS: ``f = y + 3 (1 - c) e``) or ``noise``
   (independent of everything). Designs ``uniform``, ``optimal`` (random pilot
   of 50 + one-shot design) and ``sequential`` (random pilot of 50 + 3 rounds),
   both with ``random_pilot=True``. ``--cells model:llm:n,...`` runs some cells.

Writes ``politeness.csv.gz``, ``simulation.csv.gz`` (one row per repetition,
design, estimator and term), ``politeness_summary.csv``,
``simulation_summary.csv`` and ``summary.md`` to ``--output`` (default
``docs/results/labeling_design``). ``--part politeness`` / ``simulation`` runs
one study; ``--part summary`` rebuilds the summaries from the files.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats

import synthinfer.api as smf
from synthinfer.datasets import load_politeness
from synthinfer.design import SequentialDesign, optimal_design

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "docs" / "results" / "labeling_design"
Z90, Z95 = stats.norm.ppf(0.95), stats.norm.ppf(0.975)
ESTIMATORS = ("GMM-Proxy", "PPI++", "human only")
PILOT = 50


def expit(t: np.ndarray) -> np.ndarray:
    # numpy, not scipy.special.expit: a ufunc global does not survive joblib's pickling of __main__
    return 1.0 / (1.0 + np.exp(-t))


def _fit(estimator: str, formula: str, real, proxy, model: str, prob: pd.Series):
    if estimator == "GMM-Proxy":
        return smf.gmm_proxy(formula, real=real, proxy=proxy, model=model, labeling_prob=prob).fit()
    if estimator == "PPI++":
        return smf.ppi(formula, real=real, proxy=proxy, model=model, labeling_prob=prob).fit()
    return smf.classical(formula, real=real, model=model, labeling_prob=prob).fit()


def _human_variance(X: np.ndarray, y: np.ndarray, model: str, w: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Per-unit sandwich ``H^-1 M H^-1`` of the human fit, weighted sums over units (sum w = N)."""
    lin = X @ params
    mu = expit(lin) if model == "logit" else lin
    d = mu * (1 - mu) if model == "logit" else np.ones_like(mu)
    total = w.sum()
    H = (X * (w * d)[:, None]).T @ X / total
    M = (X * (w * (y - mu) ** 2)[:, None]).T @ X / total
    Hinv = np.linalg.inv(H)
    return Hinv @ M @ Hinv


def _records(res, truth: pd.Series, fpc_var: pd.Series | None, **keys) -> list[dict]:
    rows = []
    for term in truth.index:
        est, se = float(res.params[term]), float(res.bse[term])
        row = dict(keys, term=term, estimate=est, se=se, truth=float(truth[term]),
                   cover90=abs(est - truth[term]) <= Z90 * se, cover95=abs(est - truth[term]) <= Z95 * se)
        if fpc_var is not None:
            se_f = np.sqrt(max(se**2 - fpc_var[term], 1e-12))
            row.update(cover90_fpc=abs(est - truth[term]) <= Z90 * se_f,
                       cover95_fpc=abs(est - truth[term]) <= Z95 * se_f)
        rows.append(row)
    return rows


def _sequential(formula, proxy, human, model, budget, rounds, pilot, seed, target, **kwds):
    seq = SequentialDesign(formula, proxy=proxy, model=model, budget=budget, rounds=rounds,
                           pilot=pilot, seed=seed, target=target, **kwds)
    while not seq.done:
        ids = seq.next_round().index
        seq.add_labels(human.loc[ids])
    return seq.labeled, seq.labeling_prob


# -- 1. politeness ------------------------------------------------------------------

def politeness_trial(rep: int, budget: int, designs: list[str], random_pilot: bool = True) -> list[dict]:
    data = load_politeness()
    formula, model = data.formula, "logit"
    proxy = data.proxy.assign(conf=data.frame["confidence_gpt4o"])
    human = data.human
    N = len(human)
    truth = smf.classical(formula, real=human, model=model).fit().params
    rng = np.random.default_rng(rep)
    rows: list[dict] = []
    X_all = np.column_stack([np.ones(N), human["hedging"], human["first_person_plural"]]).astype(float)
    for design in designs:
        if design == "uniform":
            prob = pd.Series(budget / N, index=human.index, name="pi")
            real = human[rng.random(N) < prob.to_numpy()]
        else:
            pilot = human.iloc[np.sort(rng.choice(N, PILOT, replace=False))]
            target = design[design.index("(") + 1:-1]
            target = ["hedging", "first_person_plural"] if target == "both" else target
            if design.startswith("sequential"):
                real, prob = _sequential(formula, proxy, human, model, budget - PILOT, 3, pilot,
                                         int(rng.integers(2**31)), target, confidence="conf",
                                         random_pilot=random_pilot)
            else:
                plan = optimal_design(formula, proxy=proxy, model=model, budget=budget - PILOT,
                                      pilot=pilot, target=target, confidence="conf", random_pilot=random_pilot)
                real = pd.concat([pilot, human.loc[plan.draw(rng).index]])
                prob = plan.prob
        # the estimated per-unit variance of the full-data fit (for the finite-population correction)
        pos = human.index.get_indexer(real.index)
        w = 1.0 / prob.reindex(real.index).to_numpy()
        theta = smf.classical(formula, real=real, model=model, labeling_prob=prob).fit().params.to_numpy()
        v_hat = _human_variance(X_all[pos], real["polite"].to_numpy(float), model, w, theta)
        fpc = pd.Series(np.diag(v_hat) / N, index=truth.index)
        for estimator in ESTIMATORS:
            try:
                res = _fit(estimator, formula, real, proxy, model, prob)
            except Exception as exc:  # counted, never dropped silently
                rows.append(dict(rep=rep, design=design, estimator=estimator, term="(failed)",
                                 error=f"{type(exc).__name__}: {exc}"[:200]))
                continue
            rows += _records(res, truth, fpc, rep=rep, design=design, estimator=estimator,
                             n_labeled=len(real))
    return rows


def politeness_truth() -> tuple[pd.Series, pd.Series, int]:
    data = load_politeness()
    human = data.human
    N = len(human)
    X = np.column_stack([np.ones(N), human["hedging"], human["first_person_plural"]]).astype(float)
    truth = smf.classical(data.formula, real=human, model="logit").fit().params
    V = _human_variance(X, human["polite"].to_numpy(float), "logit", np.ones(N), truth.to_numpy())
    return truth, pd.Series(np.diag(V), index=truth.index), N


# -- 2. simulation ------------------------------------------------------------------

def simulated_population(model: str, llm: str, n_units: int, rng: np.random.Generator):
    x1, x2 = rng.normal(size=n_units), rng.normal(size=n_units)
    lin = 0.5 + x1 - 0.5 * x2
    conf = rng.uniform(0.5, 1.0, n_units)
    if model == "logit":
        y = rng.binomial(1, expit(lin)).astype(float)
        if llm == "informative":
            f = np.where(rng.random(n_units) < conf, y, 1 - y)
        else:
            f = rng.binomial(1, 0.6, n_units).astype(float)
    else:
        y = lin + rng.normal(size=n_units)
        f = y + 3 * (1 - conf) * rng.normal(size=n_units) if llm == "informative" else rng.normal(size=n_units)
    ids = pd.Index([f"u{i:05d}" for i in range(n_units)], name="unit")
    human = pd.DataFrame({"y": y, "x1": x1, "x2": x2}, index=ids)
    proxy = pd.DataFrame({"y": f, "x1": x1, "x2": x2, "conf": conf}, index=ids)
    return human, proxy


def simulation_trial(rep: int, model: str, llm: str, n: int, n_units: int, designs: list[str],
                     random_pilot: bool = True) -> list[dict]:
    rng = np.random.default_rng([rep, n, len(model), len(llm)])
    human, proxy = simulated_population(model, llm, n_units, rng)
    formula = "y ~ x1 + x2"
    truth = pd.Series([0.5, 1.0, -0.5], index=["Intercept", "x1", "x2"])
    rows: list[dict] = []
    for design in designs:
        if design == "uniform":
            prob = pd.Series(n / n_units, index=human.index, name="pi")
            real = human[rng.random(n_units) < prob.to_numpy()]
        else:
            pilot = human.iloc[np.sort(rng.choice(n_units, PILOT, replace=False))]
            if design == "sequential":
                real, prob = _sequential(formula, proxy, human, model, n - PILOT, 3, pilot,
                                         int(rng.integers(2**31)), "x1", confidence="conf",
                                         random_pilot=random_pilot)
            else:
                plan = optimal_design(formula, proxy=proxy, model=model, budget=n - PILOT,
                                      pilot=pilot, target="x1", confidence="conf", random_pilot=random_pilot)
                real = pd.concat([pilot, human.loc[plan.draw(rng).index]])
                prob = plan.prob
        for estimator in ESTIMATORS:
            try:
                res = _fit(estimator, formula, real, proxy, model, prob)
            except Exception as exc:
                rows.append(dict(rep=rep, model=model, llm=llm, n=n, design=design, estimator=estimator,
                                 term="(failed)", error=f"{type(exc).__name__}: {exc}"[:200]))
                continue
            rows += _records(res, truth, None, rep=rep, model=model, llm=llm, n=n, design=design,
                             estimator=estimator, n_labeled=len(real))
    return rows


def predicted_ratio(rep: int, model: str, llm: str, n: int, n_units: int = 2000) -> dict:
    """The one-shot design's asymptotic variance of the human-only x1 fit over uniform labeling's.

    From the simulated population's true per-unit scores ``s_i^2 = (H^-1 x_i)_1^2 v_i``
    and each unit's weight: ``sum E[W_i^2] s_i^2 / (sum E W_i)^2`` with ``W_i = a`` for
    a pilot unit and ``R_i / pi_i`` for a pool unit, against ``N/n sum s_i^2 / N^2``;
    ``a = 1`` (pilot at pi = 1) and ``a = 1 / design.pilot_prob`` (``random_pilot=True``).
    The same population, pilot and design as ``simulation_trial``'s ``optimal``.
    """
    rng = np.random.default_rng([rep, n, len(model), len(llm)])
    human, proxy = simulated_population(model, llm, n_units, rng)
    lin = (0.5 + human["x1"] - 0.5 * human["x2"]).to_numpy()
    v = expit(lin) * (1 - expit(lin)) if model == "logit" else np.ones(n_units)
    X = np.column_stack([np.ones(n_units), human["x1"], human["x2"]])
    h = X @ np.linalg.inv((X * v[:, None]).T @ X / n_units)[1]
    s2 = h**2 * v
    rng.random(n_units)  # the uniform design's draw, as in simulation_trial
    pilot = human.iloc[np.sort(rng.choice(n_units, PILOT, replace=False))]
    plan = optimal_design("y ~ x1 + x2", proxy=proxy, model=model, budget=n - PILOT, pilot=pilot,
                          target="x1", confidence="conf", random_pilot=True)
    pi = plan.prob.reindex(human.index).to_numpy()
    in_pilot = human.index.isin(pilot.index)
    uniform = s2.sum() * n_units / n

    def variance(a: float) -> float:
        ew = np.where(in_pilot, a, 1.0)
        ew2 = np.where(in_pilot, a**2, 1.0 / pi)
        return float((ew2 * s2).sum() / ew.sum() ** 2 * n_units**2)

    return dict(rep=rep, model=model, llm=llm, n=n, pilot_pi1=variance(1.0) / uniform,
                random_pilot=variance(1.0 / plan.pilot_prob) / uniform)


# -- summaries ----------------------------------------------------------------------

def _binomial_se(p: float, reps: int) -> float:
    return float(np.sqrt(max(p * (1 - p), 1e-12) / reps))


def summarise_politeness(frame: pd.DataFrame, v_full: pd.Series, n_units: int, budget: int) -> pd.DataFrame:
    ok = frame[frame["term"] != "(failed)"]
    out = []
    for (design, estimator, term), g in ok.groupby(["design", "estimator", "term"], sort=False):
        reps = len(g)
        v = v_full[term]
        sq = (g["estimate"] - g["truth"]) ** 2
        mse = float(sq.mean())
        mc_ess = v / budget / (mse + v / n_units)
        row = {
            "design": design, "estimator": estimator, "term": term, "reps": reps,
            # as the CDI tables: V_full / n over the reported variance, averaged
            "rel. ESS (reported se)": float((v / budget / g["se"] ** 2).mean()),
            # the same with the Monte Carlo variance around the superpopulation value: the
            # error around the full-data fit plus that fit's own variance V_full / N (the two
            # are uncorrelated for a design-unbiased estimator)
            "rel. ESS (Monte Carlo)": mc_ess,
            # its Monte Carlo standard error (delta method on the mean squared error)
            "MC ESS se": mc_ess * float(sq.std(ddof=1)) / np.sqrt(reps) / (mse + v / n_units),
            # finite-population version: both variances around the full-data fit
            "rel. ESS (MC, finite pop.)": v * (1 / budget - 1 / n_units) / mse,
            "mean labels": float(g["n_labeled"].mean()),
        }
        for col in ("cover90", "cover95", "cover90_fpc", "cover95_fpc"):
            row[col] = float(g[col].mean())
        row["coverage se (95%)"] = _binomial_se(0.95, reps)
        row["coverage se (90%)"] = _binomial_se(0.90, reps)
        out.append(row)
    failed = frame[frame["term"] == "(failed)"].groupby(["design", "estimator"]).size()
    table = pd.DataFrame(out)
    table["failed fits"] = [int(failed.get((d, e), 0)) for d, e in zip(table["design"], table["estimator"])]
    return table


def summarise_simulation(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame[frame["term"] != "(failed)"]
    out = []
    keys = ["model", "llm", "n", "design", "estimator", "term"]
    for key, g in ok.groupby(keys, sort=False):
        reps = len(g)
        out.append(dict(zip(keys, key), reps=reps,
                        mse=float(((g["estimate"] - g["truth"]) ** 2).mean()),
                        mean_se2=float((g["se"] ** 2).mean()),
                        cover90=float(g["cover90"].mean()), cover95=float(g["cover95"].mean()),
                        bias=float((g["estimate"] - g["truth"]).mean()),
                        mean_labels=float(g["n_labeled"].mean())))
    table = pd.DataFrame(out)
    # each design against uniform labeling with the same estimator, model, LLM and n
    base = table[table["design"] == "uniform"].set_index(["model", "llm", "n", "estimator", "term"])
    idx = pd.MultiIndex.from_frame(table[["model", "llm", "n", "estimator", "term"]])
    table["mse / uniform"] = table["mse"].to_numpy() / base["mse"].reindex(idx).to_numpy()
    table["mean se^2 / uniform"] = table["mean_se2"].to_numpy() / base["mean_se2"].reindex(idx).to_numpy()
    table["mse ratio se"] = _ratio_se(ok, keys)
    failed = frame[frame["term"] == "(failed)"].groupby(["model", "llm", "n", "design", "estimator"]).size()
    table["failed fits"] = [int(failed.get(tuple(r), 0)) for r in
                            table[["model", "llm", "n", "design", "estimator"]].itertuples(index=False)]
    return table


def _ratio_se(ok: pd.DataFrame, keys: list[str]) -> list[float]:
    """Monte Carlo standard error of each design's MSE over uniform's (delta method, paired by rep)."""
    sq = ok.assign(sq=(ok["estimate"] - ok["truth"]) ** 2)
    wide = sq.pivot_table(index=["model", "llm", "n", "estimator", "term", "rep"], columns="design", values="sq")
    out = []
    for key, g in sq.groupby(keys, sort=False):
        model, llm, n, design, estimator, term = key
        pair = wide.loc[(model, llm, n, estimator, term)][["uniform", design]].dropna()
        a, b = pair[design].to_numpy(), pair["uniform"].to_numpy()
        if design == "uniform" or len(a) < 2:
            out.append(0.0)
            continue
        ma, mb, reps = a.mean(), b.mean(), len(a)
        cov = np.cov(a, b, ddof=1)
        rel = cov[0, 0] / ma**2 + cov[1, 1] / mb**2 - 2 * cov[0, 1] / (ma * mb)
        out.append(float(ma / mb * np.sqrt(max(rel, 0.0) / reps)))
    return out


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def more_politeness(args: argparse.Namespace, budget: int, all_designs: list[str]) -> int:
    """Further politeness repetitions of some designs (new seeds), alone and pooled with the committed run."""
    chosen = [d.strip() for d in (args.designs or "").split(",") if d.strip()]
    unknown = [d for d in chosen if d not in all_designs]
    if not chosen or unknown:
        raise SystemExit(f"--designs must name some of {all_designs}; got {chosen}")
    if args.output.resolve() == DEFAULT_OUTPUT.resolve():
        raise SystemExit("--part more-politeness writes beside the committed run: give another --output")
    reps = 1 if args.quick else args.reps
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = Parallel(n_jobs=args.jobs)(
            delayed(politeness_trial)(r, budget, chosen, not args.fixed_pilot)
            for r in range(args.first_rep, args.first_rep + reps))
    elapsed = time.perf_counter() - start
    frame = pd.DataFrame([row for part in rows for row in part])
    args.output.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.output / "politeness.csv.gz", index=False)
    _, v_full, n_units = politeness_truth()
    text = [
        "# Labeling designs: further politeness repetitions",
        "",
        f"`python benchmarks/labeling_design.py --part more-politeness --designs \"{','.join(chosen)}\" "
        f"--first-rep {args.first_rep} --reps {reps}`: repetitions (seeds) {args.first_rep} to "
        f"{args.first_rep + reps - 1}, {elapsed:.0f} s on {args.jobs} process(es).",
        "",
        "## These repetitions",
        "",
        _markdown(summarise_politeness(frame, v_full, n_units, budget)),
        "",
    ]
    committed = DEFAULT_OUTPUT / "politeness.csv.gz"
    if committed.exists():
        before = pd.read_csv(committed)
        before = before[before["design"].isin(chosen)]
        overlap = set(before["rep"]) & set(frame["rep"])
        if overlap:
            raise SystemExit(f"repetitions {sorted(overlap)[:5]}... are in the committed run already")
        pooled = pd.concat([before, frame], ignore_index=True)
        text += [
            f"## Pooled with the committed run ({before['rep'].nunique()} + {frame['rep'].nunique()} repetitions)",
            "",
            _markdown(summarise_politeness(pooled, v_full, n_units, budget)),
            "",
        ]
    (args.output / "summary.md").write_text("\n".join(text))
    print(f"wrote {args.output} in {elapsed:.0f} s", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=300, help="politeness repetitions")
    parser.add_argument("--sim-reps", type=int, default=300, help="simulation repetitions per cell")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a few repetitions (the tests' check)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--fixed-pilot", action="store_true",
                        help="pilot units at pi = 1 (random_pilot=False), as the run in docs/results/labeling_design/pilot_pi1")
    parser.add_argument("--cells", default=None,
                        help="simulation cells to run, e.g. logit:noise:200,ols:noise:500 (default all)")
    parser.add_argument("--part", choices=["all", "politeness", "simulation", "summary", "predicted", "more-politeness"],
                        default="all",
                        help="run one study only (the summary then covers the files present); more-politeness: "
                             "further politeness repetitions of --designs from --first-rep on, summarised alone "
                             "and pooled with the committed run's")
    parser.add_argument("--designs", default=None, help="politeness designs for --part more-politeness, comma-separated")
    parser.add_argument("--first-rep", type=int, default=0, help="the first repetition (seed) of --part more-politeness")
    args = parser.parse_args(argv)
    reps, sim_reps = (1, 1) if args.quick else (args.reps, args.sim_reps)
    budget = 500
    designs = ["uniform", "optimal (hedging)", "optimal (first_person_plural)", "optimal (both)",
               "sequential (first_person_plural)"]
    sim_designs = ["uniform", "optimal", "sequential"]
    cells = [(m, llm, n) for m in ("ols", "logit") for llm in ("informative", "noise") for n in (200, 500)]
    if args.cells:
        wanted = [tuple(c.split(":")) for c in args.cells.split(",")]
        cells = [c for c in cells if (c[0], c[1], str(c[2])) in wanted]
    args.output.mkdir(parents=True, exist_ok=True)
    if args.part == "predicted":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = [predicted_ratio(r, m, llm, n) for (m, llm, n) in cells for r in range(20)]
        table = pd.DataFrame(rows).groupby(["model", "llm", "n"], sort=False)[["pilot_pi1", "random_pilot"]]
        table = table.agg(["mean", "std"]).round(3)
        table.columns = [" ".join(c) for c in table.columns]
        (args.output / "predicted.md").write_text(
            "# Predicted variance of the one-shot design over uniform labeling (human-only x1 fit)\n\n"
            "`python benchmarks/labeling_design.py --part predicted`: the asymptotic variance from each "
            "simulated population's true scores (see `predicted_ratio`), mean and sd over 20 populations; "
            "pilot of 50 at pi = 1 or with `random_pilot=True`.\n\n"
            + _markdown(table.reset_index()) + "\n")
        print(f"wrote {args.output / 'predicted.md'}", file=sys.stderr)
        return 0
    if args.part == "more-politeness":
        return more_politeness(args, budget, designs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # counted via the results, not printed per trial
        parallel = Parallel(n_jobs=args.jobs)
        if args.part in ("all", "politeness"):
            pol = parallel(delayed(politeness_trial)(r, budget, designs, not args.fixed_pilot) for r in range(reps))
            pd.DataFrame([row for rows in pol for row in rows]).to_csv(args.output / "politeness.csv.gz", index=False)
        if args.part in ("all", "simulation"):
            sim = parallel(delayed(simulation_trial)(r, m, llm, n, 2000, sim_designs, not args.fixed_pilot)
                           for (m, llm, n) in cells for r in range(sim_reps))
            pd.DataFrame([row for rows in sim for row in rows]).to_csv(args.output / "simulation.csv.gz", index=False)
    elapsed = time.perf_counter() - start
    if args.part != "summary":
        (args.output / f"timing_{args.part}.txt").write_text(f"{elapsed:.0f} s on {args.jobs} processes\n")
    missing = [f for f in ("politeness.csv.gz", "simulation.csv.gz") if not (args.output / f).exists()]
    if missing:
        print(f"wrote {args.output}; no summary until {missing} exist", file=sys.stderr)
        return 0
    pol_frame = pd.read_csv(args.output / "politeness.csv.gz")
    sim_frame = pd.read_csv(args.output / "simulation.csv.gz")
    truth, v_full, n_units = politeness_truth()
    pol_table = summarise_politeness(pol_frame, v_full, n_units, budget)
    sim_table = summarise_simulation(sim_frame)
    pol_table.to_csv(args.output / "politeness_summary.csv", index=False)
    sim_table.to_csv(args.output / "simulation_summary.csv", index=False)
    text = [
        "# Labeling designs: committed run",
        "",
        f"`python benchmarks/labeling_design.py{' --quick' if args.quick else ''}"
        f"{' --fixed-pilot' if args.fixed_pilot else ''}`: "
        f"{pol_frame['rep'].nunique()} politeness repetitions, "
        f"{sim_frame.groupby(['model', 'llm', 'n'])['rep'].nunique().min()} per simulation cell; "
        + ("pilot units at pi = 1 (`random_pilot=False`)." if args.fixed_pilot else
           "the random pilot's units at the design's mean probability (`random_pilot=True`)."),
        "",
        "Simulation cells in this run: " + ", ".join(
            f"{m} {llm} n = {n}" for (m, llm, n) in sim_frame[["model", "llm", "n"]].drop_duplicates().itertuples(index=False)) + ".",
        "",
        f"## Politeness (logit {load_politeness().formula}, {budget} expected labels, N = {n_units})",
        "",
        "Full-data truth: " + ", ".join(f"{k} {v:.4f}" for k, v in truth.items()),
        "",
        _markdown(pol_table),
        "",
        "## Simulation (superpopulation truth, N = 2,000, target x1)",
        "",
        _markdown(sim_table),
        "",
    ]
    (args.output / "summary.md").write_text("\n".join(text))
    print(f"wrote {args.output} in {elapsed:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
