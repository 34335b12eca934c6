"""Seeded Monte Carlo of the estimating-function families (docs/estimands.md).

    python benchmarks/families_coverage.py                    # full run, 300 trials per cell
    python benchmarks/families_coverage.py --quick --output DIR   # the test suite's check
    python benchmarks/families_coverage.py --estimands probit --qualities useful --trials 1000 \
        --first-seed 1000 --bootstrap 999 --output docs/results/families/probit_bootstrap

For each estimand (probit, logit with soft proxy labels, fractional logit,
median and 0.9-quantile regression, multinomial logit, negative binomial,
the AIPW average treatment effect and the AR(1) coefficient as user moments),
each auxiliary quality ("useful": informative proxy and synthetic data;
"noise": auxiliary outcomes independent of the human ones) and each labeled n,
it draws seeded studies with N units and records, for the GMM fit with every
source and for the human-only fit of the same family, whether the 95%
interval of the target coefficient covers the truth, the estimate and its
standard error. A fit that fails is counted, never dropped silently.
Writes ``trials.csv``, ``summary.csv`` and ``summary.md`` to ``--output``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.special
import statsmodels.api as sm

import synthinfer.api as smf
from synthinfer.families import Design, EstimatingEquation, MNLogit, Quantile

N_UNITS = 2000


@dataclass
class Draw:
    formula: str
    real: pd.DataFrame
    proxy: pd.DataFrame
    synth: pd.DataFrame | None
    model: object
    term: str
    truth: float


def _ids(n: int) -> pd.Index:
    return pd.Index([f"u{i:05d}" for i in range(n)], name="unit")


def _split(rng, frame: pd.DataFrame, n: int) -> pd.DataFrame:
    return frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))]


def _synth(frame: pd.DataFrame, make: Callable[[], np.ndarray], k: int = 2, column: str = "y") -> pd.DataFrame:
    return pd.concat([frame.assign(**{column: make()}) for _ in range(k)]).sort_index(kind="stable")


def _covariates(rng, n):
    return rng.normal(size=n), rng.binomial(1, 0.4, n).astype(float)


def draw_probit(rng, n, quality):
    x1, x2 = _covariates(rng, N_UNITS)
    y = (0.3 + 0.8 * x1 - 0.6 * x2 + rng.normal(size=N_UNITS) > 0).astype(float)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "y": y}, index=_ids(N_UNITS))

    def aux(flip):
        if quality == "noise":
            return rng.binomial(1, 0.5, N_UNITS).astype(float)
        return np.where(rng.random(N_UNITS) < flip, 1 - y, y)

    return Draw("y ~ x1 + x2", _split(rng, frame, n), frame.assign(y=aux(0.1)), _synth(frame, lambda: aux(0.2)),
                "probit", "x1", 0.8)


def draw_soft_logit(rng, n, quality):
    x1, x2 = _covariates(rng, N_UNITS)
    y = rng.binomial(1, scipy.special.expit(0.3 + 0.8 * x1 - 0.6 * x2)).astype(float)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "y": y}, index=_ids(N_UNITS))

    def soft():  # an LLM's probability that y = 1
        if quality == "noise":
            return rng.uniform(size=N_UNITS)
        return scipy.special.expit(2.0 * (2 * y - 1) + rng.normal(0, 1.5, N_UNITS))

    return Draw("y ~ x1 + x2", _split(rng, frame, n), frame.assign(y=soft()), None, "logit", "x1", 0.8)


def draw_fractional(rng, n, quality):
    x1, x2 = _covariates(rng, N_UNITS)
    mean = scipy.special.expit(0.3 + 0.8 * x1 - 0.6 * x2)
    y = rng.beta(5 * mean, 5 * (1 - mean))
    frame = pd.DataFrame({"x1": x1, "x2": x2, "y": y}, index=_ids(N_UNITS))

    def aux(sd):
        if quality == "noise":
            return rng.uniform(size=N_UNITS)
        return np.clip(y + rng.normal(0, sd, N_UNITS), 0, 1)

    return Draw("y ~ x1 + x2", _split(rng, frame, n), frame.assign(y=aux(0.1)), _synth(frame, lambda: aux(0.2)),
                "fractional_logit", "x1", 0.8)


def _draw_quantile(rng, n, quality, q):
    x1, x2 = _covariates(rng, N_UNITS)
    scale = 1 + 0.5 * np.abs(x1) if q == 0.5 else 1.0  # the 0.9 quantile is linear only if homoskedastic
    y = 0.3 + 0.8 * x1 - 0.6 * x2 + scale * rng.standard_t(5, N_UNITS)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "y": y}, index=_ids(N_UNITS))

    def aux(sd):
        if quality == "noise":
            return rng.permutation(y)
        return y + rng.normal(0, sd, N_UNITS)

    return Draw("y ~ x1 + x2", _split(rng, frame, n), frame.assign(y=aux(0.5)), _synth(frame, lambda: aux(1.0)),
                Quantile(q), "x1", 0.8)


def draw_median(rng, n, quality):
    return _draw_quantile(rng, n, quality, 0.5)


def draw_q90(rng, n, quality):
    return _draw_quantile(rng, n, quality, 0.9)


def draw_mnlogit(rng, n, quality):
    x1, x2 = _covariates(rng, N_UNITS)
    lin = np.column_stack([np.zeros(N_UNITS), 0.2 + 0.9 * x1, -0.3 - 0.5 * x1 + 0.8 * x2])
    prob = np.exp(lin) / np.exp(lin).sum(axis=1, keepdims=True)
    classes = np.array(["against", "favour", "neutral"])
    stance = classes[(rng.random(N_UNITS)[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)]
    frame = pd.DataFrame({"x1": x1, "x2": x2, "stance": stance}, index=_ids(N_UNITS))
    wrong = np.ones(N_UNITS, bool) if quality == "noise" else rng.random(N_UNITS) < 0.2
    proxy = frame.assign(stance=np.where(wrong, rng.choice(classes, N_UNITS), stance))
    return Draw("stance ~ x1 + x2", _split(rng, frame, n), proxy, None,
                MNLogit(classes=list(classes)), "favour:x1", 0.9)


def draw_negbin(rng, n, quality):
    x1, x2 = _covariates(rng, N_UNITS)
    mu = np.exp(0.5 + 0.4 * x1 - 0.3 * x2)
    alpha = 0.7
    y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)).astype(float)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "y": y}, index=_ids(N_UNITS))
    if quality == "noise":
        proxy = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu.mean()), N_UNITS).astype(float)
    else:
        proxy = (rng.binomial(y.astype(int), 0.85) + rng.poisson(0.3, N_UNITS)).astype(float)
    return Draw("y ~ x1 + x2", _split(rng, frame, n), frame.assign(y=proxy), None, "negbin", "x1", 0.4)


def aipw_psi(b: np.ndarray, d: Design) -> np.ndarray:
    """The AIPW score of the average treatment effect, nuisances as columns."""
    treated, e, m1, m0 = d["treated"], d["e_hat"], d["m1_hat"], d["m0_hat"]
    return (m1 - m0 + treated * (d.y - m1) / e - (1 - treated) * (d.y - m0) / (1 - e) - b[0])[:, None]


def draw_ate(rng, n, quality):
    x = rng.normal(size=N_UNITS)
    treated = rng.binomial(1, scipy.special.expit(0.5 * x)).astype(float)
    y = 1 + 2 * treated + x + (1 + treated) * rng.normal(size=N_UNITS)
    frame = pd.DataFrame({"x": x, "treated": treated, "y": y}, index=_ids(N_UNITS))
    real = _split(rng, frame, n)
    # nuisances fitted on the labeled units only, then computed for every unit
    X_real = sm.add_constant(real[["x"]])
    propensity = sm.Logit(real["treated"], X_real).fit(disp=0).params.to_numpy()
    arms = {a: sm.OLS(real.loc[real["treated"] == a, "y"], X_real[real["treated"] == a]).fit().params.to_numpy()
            for a in (0.0, 1.0)}
    X_all = np.column_stack([np.ones(N_UNITS), x])
    nuisance = {"e_hat": scipy.special.expit(X_all @ propensity), "m1_hat": X_all @ arms[1.0], "m0_hat": X_all @ arms[0.0]}
    frame = frame.assign(**nuisance)
    real = frame.loc[real.index]

    def imputed(sd):  # an LLM's imputation of the outcome
        if quality == "noise":
            return rng.permutation(y)
        return y + rng.normal(0, sd, N_UNITS)

    model = EstimatingEquation(aipw_psi, ["ATE"], start=[0.0], label="AIPW ATE")
    return Draw("y ~ 0 + treated + e_hat + m1_hat + m0_hat", real, frame.assign(y=imputed(0.7)),
                _synth(frame, lambda: imputed(1.2)), model, "ATE", 2.0)


T_SERIES = 6


def ar1_psi(b: np.ndarray, d: Design) -> np.ndarray:
    """sum_t (y_t - rho y_{t-1}) y_{t-1} over a unit's series y_0..y_5 (y_5 is the outcome)."""
    series = np.column_stack([d[f"y{t}"] for t in range(T_SERIES - 1)] + [d.y])
    lagged, current = series[:, :-1], series[:, 1:]
    return ((current - b[0] * lagged) * lagged).sum(axis=1)[:, None]


def ar1_jacobian(b: np.ndarray, d: Design) -> np.ndarray:
    series = np.column_stack([d[f"y{t}"] for t in range(T_SERIES - 1)])
    return -(series**2).sum(axis=1)[:, None, None]


def _series(rng, rho):
    out = np.empty((N_UNITS, T_SERIES))
    out[:, 0] = rng.normal(0, 1 / np.sqrt(1 - rho**2), N_UNITS)
    for t in range(1, T_SERIES):
        out[:, t] = rho * out[:, t - 1] + rng.normal(size=N_UNITS)
    return out


def draw_ar1(rng, n, quality):
    rho = 0.5
    series = _series(rng, rho)
    columns = {f"y{t}": series[:, t] for t in range(T_SERIES)}
    frame = pd.DataFrame(columns, index=_ids(N_UNITS))
    noisy = _series(rng, rho) if quality == "noise" else series + rng.normal(0, 0.5, series.shape)
    proxy = pd.DataFrame({f"y{t}": noisy[:, t] for t in range(T_SERIES)}, index=frame.index)
    model = EstimatingEquation(ar1_psi, ["rho"], ar1_jacobian, label="AR(1)")
    formula = f"y{T_SERIES - 1} ~ 0 + " + " + ".join(f"y{t}" for t in range(T_SERIES - 1))
    return Draw(formula, _split(rng, frame, n), proxy, None, model, "rho", rho)


ESTIMANDS: dict[str, Callable] = {
    "probit": draw_probit, "logit (soft proxy)": draw_soft_logit, "fractional logit": draw_fractional,
    "median": draw_median, "quantile 0.9": draw_q90, "mnlogit": draw_mnlogit, "negbin": draw_negbin,
    "AIPW ATE": draw_ate, "AR(1)": draw_ar1,
}


def one_trial(estimand: str, quality: str, n: int, seed: int, n_boot: int = 0) -> list[dict]:
    rng = np.random.default_rng([seed, n, list(ESTIMANDS).index(estimand), quality == "noise"])
    draw = ESTIMANDS[estimand](rng, n, quality)
    rows = []
    for method in ("gmm", "human only") + (("gmm bootstrap-t",) if n_boot else ()):
        row = {"estimand": estimand, "quality": quality, "n": n, "seed": seed, "method": method,
               "estimate": np.nan, "se": np.nan, "covered": np.nan, "failed": True}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if method.startswith("gmm"):
                    res = smf.gmm_synth(draw.formula, real=draw.real, proxy=draw.proxy, synth=draw.synth,
                                        model=draw.model).fit()
                else:
                    res = smf.classical(draw.formula, real=draw.real, model=draw.model).fit()
                # the fast bootstrap-t interval of the same fit, its own seed
                ci_all = res.bootstrap(n_boot, seed=seed).conf_int(method="t") if method == "gmm bootstrap-t" else res.conf_int()
            ci = ci_all.loc[draw.term]
            row.update(estimate=float(res.params[draw.term]), se=float(res.bse[draw.term]),
                       covered=float(ci.iloc[0] <= draw.truth <= ci.iloc[1]), failed=False)
        except (ValueError, RuntimeError, np.linalg.LinAlgError):  # BootstrapFailureError is a RuntimeError
            pass
        row["truth"] = draw.truth
        rows.append(row)
    return rows


def summarise(trials: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (estimand, quality, n), cell in trials.groupby(["estimand", "quality", "n"], sort=False):
        gmm, human = cell[cell.method == "gmm"], cell[cell.method == "human only"]
        both = gmm["failed"].to_numpy() | human["failed"].to_numpy()
        g, h = gmm[~both], human[~both]
        cov_g, cov_h = g["covered"].mean(), h["covered"].mean()
        out.append({
            "estimand": estimand, "quality": quality, "n": n, "trials": len(gmm), "failed": int(both.sum()),
            "coverage gmm": cov_g, "coverage human": cov_h,
            "mc se": float(np.sqrt(0.95 * 0.05 / max(len(g), 1))),
            "mse ratio": float(((g["estimate"] - g["truth"]) ** 2).mean() / ((h["estimate"] - h["truth"]) ** 2).mean()),
            # the median: one wild standard error would dominate a mean of ratios
            "se ratio": float(np.nanmedian(g["se"].to_numpy() / h["se"].to_numpy())),
            "sd ratio": float(g["estimate"].std() / h["estimate"].std()),
            "se / sd, gmm": float(g["se"].median() / g["estimate"].std()),
        })
        boot = cell[cell.method == "gmm bootstrap-t"]
        if len(boot):
            kept = ~boot["failed"].to_numpy()
            out[-1].update({"coverage gmm bootstrap-t": float(boot["covered"][kept].mean()),
                            "bootstrap failed": int((~kept).sum())})
    return pd.DataFrame(out)


def to_markdown(summary: pd.DataFrame) -> str:
    lines = ["| estimand | auxiliary data | n | trials | failed | coverage, GMM | coverage, human only | MSE GMM / human | median SE GMM / human | median SE / SD of the estimates, GMM |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    boot = "coverage gmm bootstrap-t" in summary
    if boot:
        lines[0] += " coverage, GMM fast bootstrap-t (failed) |"
        lines[1] += "---|"
    for r in summary.to_dict("records"):
        line = (f"| {r['estimand']} | {r['quality']} | {r['n']} | {r['trials']} | {r['failed']} | {r['coverage gmm']:.3f} "
                f"| {r['coverage human']:.3f} | {r['mse ratio']:.2f} | {r['se ratio']:.2f} | {r['se / sd, gmm']:.2f} |")
        if boot:
            line += f" {r['coverage gmm bootstrap-t']:.3f} ({r['bootstrap failed']}) |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--n-labeled", default="200,500")
    parser.add_argument("--estimands", default=",".join(ESTIMANDS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--qualities", default="useful,noise")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="B",
                        help="also the fast bootstrap-t interval with B replicates (res.bootstrap(B))")
    parser.add_argument("--quick", action="store_true", help="4 trials at n = 200: a smoke test")
    parser.add_argument("--output", type=Path, default=Path("docs/results/families"))
    args = parser.parse_args(argv)
    trials, ns = (4, [200]) if args.quick else (args.trials, [int(v) for v in args.n_labeled.split(",")])
    estimands = [e.strip() for e in args.estimands.split(",")]
    qualities = [q.strip() for q in args.qualities.split(",")]
    seeds = range(args.first_seed, args.first_seed + trials)
    tasks = [(e, q, n, s, args.bootstrap) for e in estimands for q in qualities for n in ns for s in seeds]
    start = time.perf_counter()
    if args.jobs == 1:
        results = [one_trial(*t) for t in tasks]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=args.jobs, batch_size=8)(delayed(one_trial)(*t) for t in tasks)
    frame = pd.DataFrame([row for rows in results for row in rows])
    summary = summarise(frame)
    args.output.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.output / "trials.csv", index=False)
    summary.to_csv(args.output / "summary.csv", index=False)
    (args.output / "summary.md").write_text(to_markdown(summary))
    print(to_markdown(summary))
    print(f"{len(tasks)} studies in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
