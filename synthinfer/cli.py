"""The ``synthinfer`` command line.

``synthinfer demo``
    Human-only, PPI++ and GMM-Proxy fits on the bundled politeness data, with
    the comparison table (effective sample sizes) and the full-data truth.
``synthinfer fit FORMULA --real FILE [--proxy [NAME=]FILE ...] [--synth [NAME=]FILE ...]``
    GMM-Synth from CSV or Parquet files; prints the summary, JSON or a CSV
    table of the coefficients.
``synthinfer simulate [--n-labeled 50,100 ...] [--politeness] [--estimators all] --output DIR``
    The repeated-sampling study of ``synthinfer.experiments``: per-trial
    rows and a per-cell summary (bias, MSE, coverage, width, J-test rejection)
    in DIR, resumable; ``--plots png`` draws coverage and relative MSE.
``synthinfer annotate INPUT --output FILE --prompt TEMPLATE --schema JSON ...``
``synthinfer synthesize INPUT --output FILE --prompt TEMPLATE --k K --featurize MOD:FUNC ...``
    The proxy and synthetic files from texts, through any OpenAI-compatible
    endpoint (``synthinfer.llm``; the llm extra), cached and resumable.

With no command it prints the help and exits 0. Bad input (a missing or
unreadable file, a missing column, a bad formula, a non-numeric outcome, ...)
ends with one line ``synthinfer: error: ...`` on stderr and exit code 2;
``--traceback`` shows the full traceback instead. Warnings are printed as
``synthinfer: warning: ...`` on stderr. ``python -m synthinfer`` is the same
command.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, overload

import numpy as np
import pandas as pd

from .covariance import COV_TYPES
from .families import FAMILIES
from .options import Correction, Engine, Leverage, OutputFormat, Shrinkage, choices
from . import __version__
from . import api as smf
from .comparison import compare
from .exceptions import ConvergenceError

__all__ = ["main", "CLIError"]

PROG = "synthinfer"
EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class CLIError(Exception):
    """Bad input found by the command line itself (exit code 2)."""


# Errors that mean the input is bad: one line and exit code 2.
# (SpecificationError, pandas' parser errors and numpy's LinAlgError are ValueErrors.)
_INPUT_ERRORS = (CLIError, OSError, ValueError, KeyError, ImportError, ConvergenceError)


class _Parser(argparse.ArgumentParser):
    """argparse with the package's error format: usage, then ``synthinfer: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"{PROG}: error: {message}\n")


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line, without a formula engine's echo of the formula."""
    text = _ANSI.sub("", str(exc)).strip()
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])
    lines = text.splitlines() or [type(exc).__name__]
    kept = [lines[0].strip()]
    for line in lines[1:]:
        # patsy echoes the formula indented with a line of carets; formulaic marks it with ⧛ ⧚
        if not line.strip() or line[:1].isspace() or set(line.strip()) <= {"^"} or "⧛" in line:
            continue
        kept.append(line.strip())
    message = " ".join(kept)
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in message:
        message = f"{message}: {exc.filename}"
    return message or type(exc).__name__


# -- reading frames ------------------------------------------------------------------------


def _read_frame(path_arg: str, unit_col: str | None, role: str) -> pd.DataFrame:
    """Read a CSV or Parquet file and index it by its unit id column (as strings)."""
    path = Path(path_arg)
    where = f"{role} file '{path_arg}'"
    if not path.exists():
        raise CLIError(f"{where} does not exist")
    if path.is_dir():
        raise CLIError(f"{where} is a directory, not a CSV or Parquet file")
    name = path.name.lower()
    try:
        if name.endswith(_PARQUET_SUFFIXES):
            if importlib.util.find_spec("pyarrow") is None:
                raise CLIError(
                    f"cannot read {where}: reading Parquet files needs pyarrow "
                    f"(python -m pip install pyarrow)"
                )
            frame = pd.read_parquet(path, engine="pyarrow")
            if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
                frame = frame.reset_index()  # a stored index becomes the first column
        elif name.endswith(_CSV_SUFFIXES):
            frame = _read_csv(path, unit_col, where)
        else:
            raise CLIError(
                f"cannot read {where}: unknown file type; use .csv (also .csv.gz, .csv.bz2, "
                f".csv.xz, .csv.zip) or .parquet"
            )
    except CLIError:
        raise
    except Exception as exc:  # any failure of the readers means the file is unreadable
        raise CLIError(f"cannot read {where}: {_one_line(exc)}") from exc

    if frame.shape[1] == 0:
        raise CLIError(f"{where} has no columns")
    column = unit_col if unit_col is not None else frame.columns[0]
    if column not in frame.columns:
        raise CLIError(
            f"{where} has no unit id column {column!r} (its columns: {list(frame.columns)}); "
            f"name the unit id column with --unit-col"
        )
    ids = frame[column]
    empty = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        rows = [int(i) + 1 for i in np.flatnonzero(empty)[:10]]
        raise CLIError(f"{where}: the unit id column {column!r} is empty in data row(s) {rows}")
    frame = frame.set_index(ids.astype(str).rename(column)).drop(columns=column)
    return frame


# pandas' default missing-value markers, applied to every column but the unit ids
try:
    from pandas._libs.parsers import STR_NA_VALUES as _NA_VALUES
except ImportError:  # pragma: no cover - the documented list, should pandas move it
    _NA_VALUES = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                  "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
_OTHER_DELIMITERS = (";", "\t", "|")


def _read_csv(path: Path, unit_col: str | None, where: str) -> pd.DataFrame:
    """Read a CSV file: its delimiter detected, its header checked, its unit ids as text.

    Unit ids are read verbatim: "NA" (Namibia), "None" or "nan" stay strings.
    A header that repeats a name is an error (pandas would rename the second
    copy "x1.1" and the formula would silently use the first).
    """
    first = pd.read_csv(path, header=None, nrows=1, sep="\x1f", engine="python", dtype=str,
                        keep_default_na=False, quoting=csv.QUOTE_NONE)
    header_line = str(first.iloc[0, 0]) if first.size else ""
    sep = ","
    if "," not in header_line:
        found = [d for d in _OTHER_DELIMITERS if d in header_line]
        if found:
            sep = found[0]  # a semicolon-separated (European) or tab-separated file
    raw = pd.read_csv(path, header=None, nrows=1, sep=sep, dtype=str, keep_default_na=False)
    raw_names = [str(v) for v in raw.iloc[0]] if raw.size else []
    # (empty names become "Unnamed: k", which is no silent merge)
    repeated = sorted({n for n in raw_names if n and raw_names.count(n) > 1})
    if repeated:
        raise CLIError(
            f"{where}: the header repeats column name(s) {repeated}; each column needs its "
            f"own name (pandas would rename the copies to {[f'{n}.1' for n in repeated]} and "
            f"the first would be used silently)"
        )
    if len(raw_names) == 1:
        raise CLIError(
            f"{where} has a single column {raw_names[0]!r}: the unit ids and the data need "
            f"columns of their own; was the file written with a delimiter other than commas, "
            f"semicolons, tabs or '|'?"
        )
    # a semicolon-separated file is the European convention: decimal commas
    decimal = "," if sep == ";" else "."
    columns = list(pd.read_csv(path, nrows=0, sep=sep).columns)
    id_column = unit_col if unit_col is not None else (columns[0] if columns else None)
    if id_column not in columns:
        return pd.read_csv(path, sep=sep, decimal=decimal)
    na_values = {c: sorted(_NA_VALUES) for c in columns if c != id_column}
    return pd.read_csv(path, sep=sep, decimal=decimal, dtype={id_column: str},
                       keep_default_na=False, na_values=na_values)


def _named_paths(values: Sequence[str], role: str) -> list[tuple[str, str]]:
    """``[NAME=]PATH`` arguments -> (name, path); unnamed ones are ``role`` or ``role1``, ``role2``.

    A value that is an existing file is a path even if it contains "=": a file
    ``run=1.csv`` is never read as NAME=run FILE=1.csv. If both readings name
    existing files the value is ambiguous and an error.
    """
    named: list[tuple[str, str]] = []
    for i, value in enumerate(values, 1):
        name, sep, path = value.partition("=")
        as_named = bool(sep) and bool(_SOURCE_NAME.match(name)) and bool(path)
        if as_named and Path(value).exists():
            if Path(path).exists():
                raise CLIError(
                    f"--{role} {value!r} is ambiguous: a file {value!r} exists, and so does "
                    f"{path!r} (source {name!r}); write ./{value} for the file {value!r}, or "
                    f"NAME={value} to name it"
                )
            as_named = False
        if not as_named:
            name, path = (role if len(values) == 1 else f"{role}{i}"), value
        if name in [n for n, _ in named]:
            raise CLIError(f"two --{role} sources are named {name!r}; give each a unique NAME=")
        named.append((name, path))
    return named


def _read_sources(values: Sequence[str] | None, role: str, unit_col: str | None) -> dict[str, pd.DataFrame]:
    frames = {}
    for name, path in _named_paths(values or [], role):
        label = role if name == role else f"{role} {name!r}"
        frames[name] = _read_frame(path, unit_col, label)
    return frames


# -- output ----------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _as_json(res: Any, formula: str) -> str:
    table = res.tidy()
    jval, jpval, jdf = res.jtest()
    sources = [
        {"name": s.name, "kind": s.kind, "rows": int(s.n_rows), "units": int(s.n_units)}
        for s in res.model.model_data.sources
    ]
    out = {
        "estimator": res.estimator,
        "model": res.model.family.name,
        "formula": formula,
        "params": {k: _number(v) for k, v in table["estimate"].items()},
        "bse": {k: _number(v) for k, v in table["std_error"].items()},
        "conf_int": {
            k: [_number(lo), _number(hi)] for k, (lo, hi) in zip(table.index, table[["conf_low", "conf_high"]].to_numpy())
        },
        "pvalues": {k: _number(v) for k, v in table["p_value"].items()},
        "nobs": int(res.nobs),
        "n_labeled": int(res.n_labeled),
        "jtest": {"statistic": _number(jval), "pvalue": _number(jpval), "df": int(jdf)},
        "cov_type": res.cov_type,
        "correction": getattr(res, "correction", None),
        "shrinkage": getattr(res, "shrinkage", None),
        "inference": "t" if getattr(res, "use_t", False) else "z",
        "df_resid": _number(res.df_resid) if getattr(res, "use_t", False) else None,
        "converged": bool(res.converged),
        "sources": sources,
    }
    return json.dumps(out, indent=2, allow_nan=False)


def _as_csv(res: Any) -> str:
    statistic = "t" if getattr(res, "use_t", False) else "z"
    table = res.tidy().rename(columns={
        "estimate": "coef", "std_error": "std_err", "statistic": statistic,
        "conf_low": "ci_lower", "conf_high": "ci_upper",
    })
    return table.to_csv(lineterminator="\n")


# -- commands ----------------------------------------------------------------------------


def _fit(args: argparse.Namespace) -> int:
    clustered = "cluster" in (args.cov, args.weight)
    if clustered and args.groups is None:
        which = "--cov" if args.cov == "cluster" else "--weight"
        raise CLIError(f"{which} cluster needs --groups COLUMN (the cluster of each unit)")
    if args.groups is not None and not clustered:
        raise CLIError("--groups is only used with --cov cluster or --weight cluster")
    real = _read_frame(args.real, args.unit_col, "real")
    proxies = _read_sources(args.proxy, "proxy", args.unit_col)
    synths = _read_sources(args.synth, "synth", args.unit_col)
    model = smf.gmm_synth(
        args.formula,
        real=real,
        proxy=proxies or None,
        synth=synths or None,
        model=args.model,
        engine=args.engine,
        eval_env={"np": np},
    )
    cov_kwds = {"groups": args.groups} if args.cov == "cluster" else None
    weight_kwds = {"groups": args.groups} if args.weight == "cluster" else None
    res = model.fit(
        cov_type=args.cov, cov_kwds=cov_kwds, weight_type=args.weight, weight_kwds=weight_kwds,
        correction=args.correction, shrinkage=args.shrinkage, leverage=args.leverage,
    )
    if args.output == "json":
        print(_as_json(res, args.formula))
    elif args.output == "csv":
        sys.stdout.write(_as_csv(res))
    else:
        print(res.summary())
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from .datasets import POLITENESS_ATTRIBUTION, load_politeness

    data = load_politeness()
    formula, family = data.formula, data.model
    real, proxy = data.sample(args.n_labeled, seed=args.seed)
    fits = {
        "Human only": smf.classical(formula, real=real, model=family, eval_env={}).fit(),
        "PPI++": smf.ppi(formula, real=real, proxy=proxy, model=family, eval_env={}).fit(),
        "GMM-Proxy": smf.gmm_proxy(formula, real=real, proxy=proxy, model=family, eval_env={}).fit(),
    }
    truth = smf.classical(formula, real=data.human, model=family, eval_env={}).fit()

    print(
        f"Politeness data: {data.n_units:,} requests, each with GPT-4o's politeness label; "
        f"a random {len(real):,} (seed {args.seed}) keep their human label."
    )
    print(f"Model: {family}, {formula}")
    print()
    print(compare(fits))
    print()
    print(f"Full-data truth (human labels of all {data.n_units:,} requests):")
    reference = truth.tidy()[["estimate", "std_error"]].rename(columns={"estimate": "coef", "std_error": "std err"})
    reference.index.name = None
    print(reference.to_string(float_format=lambda v: f"{v:.4f}"))
    print()
    covered = []
    for name, res in fits.items():
        table = res.tidy()
        inside = ((table["conf_low"] <= truth.params) & (truth.params <= table["conf_high"])).sum()
        covered.append(f"{name} {inside}/{len(truth.params)}")
    print("95% intervals covering the full-data value: " + ", ".join(covered))
    print()
    print(f"Data: {POLITENESS_ATTRIBUTION}.")
    return EXIT_OK


def _estimators(names: list[str] | None, experiments: Any) -> Any:
    """--estimators: None is the default set, ["all"] every estimator; unknown names are errors."""
    if names is None:
        return experiments.DEFAULT_ESTIMATORS
    if names == ["all"]:
        return "all"
    unknown = [name for name in names if name not in experiments.ESTIMATORS]
    if unknown:
        raise CLIError(
            f"--estimators: unknown estimator(s) {unknown} (choose from {', '.join(experiments.ESTIMATORS)} or all)"
        )
    return names


def _simulate(args: argparse.Namespace) -> int:
    from . import experiments

    if args.politeness:
        if args.models is not None or args.scenarios is not None or args.n_units is not None:
            raise CLIError("--models, --scenarios and --n-units do not apply to --politeness")
        if args.target is not None:
            raise CLIError("--target does not apply to --politeness (it records hedging and first_person_plural)")
        result = experiments.run_politeness(
            args.output,
            n_labeled=args.n_labeled or (100, 200, 500, 1000),
            trials=args.trials, seed=args.seed, jobs=args.jobs, progress=not args.no_progress,
            estimators=_estimators(args.estimators, experiments),
        )
    else:
        for model in args.models or ():
            if model not in experiments.MODELS:
                raise CLIError(f"--models: unknown model {model!r} (choose from {', '.join(experiments.MODELS)})")
        for scenario in args.scenarios or ():
            if scenario not in experiments.SCENARIOS:
                raise CLIError(
                    f"--scenarios: unknown scenario {scenario!r} "
                    f"(choose from {', '.join(experiments.SCENARIOS)})"
                )
        result = experiments.run_simulation(
            args.output,
            n_labeled=args.n_labeled or (50, 100, 200, 500, 1000),
            n_units=args.n_units or (2000,),
            models=args.models or experiments.MODELS,
            scenarios=args.scenarios or tuple(experiments.SCENARIOS),
            trials=args.trials, seed=args.seed, jobs=args.jobs, target=args.target or "x1",
            progress=not args.no_progress, estimators=_estimators(args.estimators, experiments),
        )
    columns = ["scenario", "model", "n_labeled", "estimator", "target", "fits", "failures", "bias",
               "rel_mse", "coverage", "coverage_mc_se", "mean_width", "j_reject"]
    table = result.summary[columns]
    with pd.option_context("display.width", 200, "display.max_rows", None, "display.max_columns", None):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    out = Path(args.output)
    print()
    print(
        f"{result.n_run} trial(s) run, {result.n_skipped} already in {out / experiments.TRIALS_FILE}; "
        f"summary of every cell there: {out / experiments.SUMMARY_FILE}"
    )
    failed = result.trials[result.trials["failed"].astype(bool)]
    failures = len(failed.drop_duplicates(experiments.KEY + ["estimator"]))
    if failures:
        print(f"{failures} failed fit(s) recorded (counted in the 'failures' column; see 'error' in the trials file)")
    if args.plots:
        summary = pd.read_csv(out / experiments.SUMMARY_FILE)
        written = experiments.plot_summary(summary, out, formats=args.plots)
        print("plots: " + ", ".join(str(p) for p in written))
    return EXIT_OK


# -- annotate and synthesize with an LLM (synthinfer.llm; needs the llm extra) ------------------


@overload
def _text_or_file(value: str, what: str) -> str: ...
@overload
def _text_or_file(value: None, what: str) -> None: ...
def _text_or_file(value: str | None, what: str) -> str | None:
    """A template given inline, or as ``@FILE``."""
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:])
    if not path.is_file():
        raise CLIError(f"{what} file '{path}' does not exist")
    return path.read_text(encoding="utf-8")


def _json_arg(value: str | None, what: str) -> Any:
    text = _text_or_file(value, what)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CLIError(f"{what} is not valid JSON ({exc})") from None


def _load_function(spec: str | None, what: str) -> Any:
    """``module:function`` or ``path/to/file.py:function`` -> the function."""
    if spec is None:
        return None
    import importlib

    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise CLIError(f"{what} must be MODULE:FUNCTION or FILE.py:FUNCTION, got {spec!r}")
    if target.endswith(".py"):
        if not Path(target).is_file():
            raise CLIError(f"{what}: file '{target}' does not exist")
        module_spec = importlib.util.spec_from_file_location(Path(target).stem, target)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    else:
        module = importlib.import_module(target)
    function = getattr(module, name, None)
    if not callable(function):
        raise CLIError(f"{what}: {target} has no function {name!r}")
    return function


def _price(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        prompt, completion = (float(v) for v in text.split(","))
    except ValueError:
        raise CLIError(f"--price must be PROMPT,COMPLETION dollars per million tokens, e.g. 2.5,10; got {text!r}") from None
    return prompt, completion


def _categories(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name or not math.isfinite(number):
            raise CLIError(f"--categories must be NAME=VALUE,NAME=VALUE (e.g. polite=1,impolite=0); got {text!r}")
        out[name] = int(number) if number.is_integer() else number
    return out


def _llm_run(args: argparse.Namespace, task: str) -> int:
    from . import llm
    from .exceptions import LLMError

    name = Path(args.output).name.lower()
    if not (name.endswith(_CSV_SUFFIXES) or name.endswith(_PARQUET_SUFFIXES)):
        raise CLIError(f"--output '{args.output}': use a .csv (.csv.gz, ...) or .parquet file name")
    units = _read_frame(args.input, args.unit_col, "input")
    client = llm.LLMClient(model=args.model, base_url=args.base_url, api_key=os.environ.get(args.api_key_env),
                           timeout=args.timeout)
    prompt = llm.Prompt(_text_or_file(args.prompt, "--prompt"), system=_text_or_file(args.system, "--system"))
    default_temperature = 0.0 if task == "annotate" else 1.0
    params: dict[str, Any] = {"temperature": default_temperature if args.temperature is None else args.temperature}
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    cache = args.cache or str(args.output) + ".cache.sqlite"
    common = dict(
        text=args.text_col, prompt=prompt, client=client, protected=args.protected or (), params=params,
        response_format=args.response_format, cache=cache, seed=args.seed, concurrency=args.concurrency,
        rate_limit=args.rate_limit, max_retries=args.max_retries, max_reasks=args.max_reasks,
        price=_price(args.price), progress=False if args.no_progress else None,
    )
    try:
        if task == "annotate":
            frame = llm.annotate(units, output=_json_arg(args.schema, "--schema"), outcome=args.outcome,
                                 featurize=_load_function(args.featurize, "--featurize"), **common)
        else:
            annotate_prompt = _text_or_file(args.annotate_prompt, "--annotate-prompt")
            frame = llm.synthesize(
                units, k=args.k, featurize=_load_function(args.featurize, "--featurize"),
                categories=_categories(args.categories), outcome=args.outcome,
                annotate=None if annotate_prompt is None else llm.Prompt(annotate_prompt),
                output=_json_arg(args.schema, "--schema"), **common,
            )
    except LLMError as exc:
        raise CLIError(str(exc)) from exc
    written = llm.save_frame(frame, args.output)
    counts = frame.attrs["provenance"]["counts"]
    cost = "" if counts["cost"] is None else f", ${counts['cost']:.4f}"
    print(
        f"{task}: {len(frame)} row(s) for {units.shape[0]} unit(s) -> {args.output}; "
        f"{counts['requests']} request(s) sent, {counts['cache_hits']} from the cache {cache}, "
        f"{counts['retries_total']} retr{'y' if counts['retries_total'] == 1 else 'ies'}, "
        f"{counts['reasks']} re-ask(s), {counts['prompt_tokens'] + counts['completion_tokens']} tokens{cost}; "
        f"provenance: {written}"
    )
    return EXIT_OK


def _annotate(args: argparse.Namespace) -> int:
    return _llm_run(args, "annotate")


def _synthesize(args: argparse.Namespace) -> int:
    return _llm_run(args, "synthesize")


def _add_llm_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("input", metavar="INPUT", help="CSV or Parquet file of the units: a unit id column and the texts")
    command.add_argument("--output", required=True, metavar="FILE",
                         help="CSV or Parquet file to write; its provenance goes to FILE.provenance.json")
    command.add_argument("--prompt", required=True, metavar="TEMPLATE",
                         help="user-message template with {column} fields, or @FILE")
    command.add_argument("--system", metavar="TEMPLATE", default=None, help="system-message template, or @FILE")
    command.add_argument("--text-col", default="text", metavar="COL", help="the text column (default: text)")
    command.add_argument("--unit-col", default=None, metavar="ID", help="unit id column (default: the first column)")
    command.add_argument("--outcome", default=None, metavar="NAME", help="the outcome column (see the docs)")
    command.add_argument("--protected", action="append", metavar="COL",
                         help="a human-label column no template may name and the input may not carry; repeatable")
    command.add_argument("--featurize", default=None, metavar="MODULE:FUNCTION",
                         help="covariates from a text: MODULE:FUNCTION or FILE.py:FUNCTION returning a dict")
    command.add_argument("--schema", default=None, metavar="JSON",
                         help="the answer's fields as JSON (a JSON schema or its properties), or @FILE")
    command.add_argument("--model", default=None, help="model name (default: $OPENAI_MODEL)")
    command.add_argument("--base-url", default=None, metavar="URL", help="endpoint (default: $OPENAI_BASE_URL)")
    command.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR",
                         help="environment variable holding the API key (default: OPENAI_API_KEY)")
    command.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds per request (default: 60)")
    command.add_argument("--temperature", type=float, default=None, metavar="T",
                         help="sampling temperature (default: 0 for annotate, 1 for synthesize)")
    command.add_argument("--max-tokens", type=_positive, default=None, metavar="N", help="longest answer in tokens")
    command.add_argument("--response-format", choices=["json_schema", "json_object", "text"], default="json_schema",
                         help="how structured output is requested (default: json_schema)")
    command.add_argument("--cache", default=None, metavar="FILE",
                         help="SQLite cache of answers (default: OUTPUT.cache.sqlite); a re-run sends only what is missing")
    command.add_argument("--seed", type=_integer, default=0, help="seed of the random processing order (default: 0)")
    command.add_argument("--concurrency", type=_positive, default=8, metavar="N", help="requests in flight (default: 8)")
    command.add_argument("--rate-limit", type=float, default=None, metavar="R", help="requests per second at most")
    command.add_argument("--max-retries", type=_integer, default=4, metavar="N",
                         help="retries after a 429, 5xx or timeout (default: 4)")
    command.add_argument("--max-reasks", type=_integer, default=2, metavar="N",
                         help="re-asks after an unusable answer (default: 2)")
    command.add_argument("--price", default=None, metavar="IN,OUT",
                         help="dollars per million prompt and completion tokens, to report the cost")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_llm_commands(commands: Any) -> None:
    annotate = commands.add_parser(
        "annotate",
        help="annotate every unit's text with an LLM: the proxy file",
        description=(
            "Annotate every unit of INPUT with one prompt through any OpenAI-compatible endpoint and write "
            "the proxy file (one row per unit, indexed by unit id) with its provenance. Needs the llm extra."
        ),
    )
    _add_llm_arguments(annotate)
    annotate.set_defaults(handler=_annotate)
    synthesize = commands.add_parser(
        "synthesize",
        help="generate k synthetic samples per unit with an LLM: the synthetic file",
        description=(
            "Generate K samples per unit of INPUT, each conditioned on that unit's text, with covariates from "
            "--featurize and an outcome from --categories, --annotate-prompt with --schema, or --schema alone; "
            "write the synthetic file (indexed by the conditioning unit id) with its provenance."
        ),
    )
    _add_llm_arguments(synthesize)
    synthesize.add_argument("--k", type=_integer, required=True, help="samples per unit (>= 1)")
    synthesize.add_argument("--categories", default=None, metavar="NAME=VALUE,...",
                            help="categories asked for in turn ({category} in the prompt) and their outcome values")
    synthesize.add_argument("--annotate-prompt", default=None, metavar="TEMPLATE",
                            help="annotation template for each generated text ({text}), or @FILE")
    synthesize.set_defaults(handler=_synthesize)


# -- parser and entry point ------------------------------------------------------------------


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _list_of(kind: Any, choices: Sequence[str] | None = None) -> Any:
    """An argparse type: a comma-separated list of ``kind`` (optionally from ``choices``)."""

    def parse(text: str) -> list:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        out: list[int | str] = []
        for item in items:
            if kind is int:
                value = _integer(item)
                if value < 1:
                    raise argparse.ArgumentTypeError(f"expected positive integers, got {item!r}")
                out.append(value)
            else:
                if choices is not None and item not in choices:
                    raise argparse.ArgumentTypeError(f"invalid choice {item!r} (choose from {', '.join(choices)})")
                out.append(item)
        return out

    return parse


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _jobs(text: str) -> int:
    value = _integer(text)
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or -1 (every core), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``synthinfer`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Valid regression inference from a few human labels, LLM annotations and "
            "LLM-generated synthetic data (two-step GMM)."
        ),
        epilog="Run 'synthinfer demo' for a worked example on the bundled politeness data.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback on errors (for bug reports)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = commands.add_parser(
        "demo",
        help="human-only vs PPI++ vs GMM-Proxy on the bundled politeness data",
        description=(
            "Draw a random labeled subset of the bundled politeness data (5,480 requests, "
            "human and GPT-4o labels), fit polite ~ hedging + first_person_plural (logit) "
            "human-only, with PPI++ and with GMM-Proxy, and print the comparison table "
            "(with effective sample sizes) and the full-data truth."
        ),
    )
    demo.add_argument("--n-labeled", type=_integer, default=300, metavar="N",
                      help="number of human-labeled requests (default: 300)")
    demo.add_argument("--seed", type=_integer, default=0,
                      help="seed of the labeled subset (default: 0)")
    demo.set_defaults(handler=_demo)

    fit = commands.add_parser(
        "fit",
        help="fit GMM-Synth from CSV or Parquet files",
        description=(
            "Fit GMM-Synth from CSV or Parquet files (by extension) and print the result. "
            "Every file is indexed by its unit id column (--unit-col, default: the first "
            "column); synthetic files may repeat a unit id (k samples per unit)."
        ),
    )
    fit.add_argument("formula", metavar="FORMULA", help="e.g. 'y ~ x1 + C(group)'")
    fit.add_argument("--real", required=True, metavar="FILE", help="the human-labeled units")
    fit.add_argument("--proxy", action="append", metavar="[NAME=]FILE",
                     help="LLM annotations of every unit; repeat for several sources")
    fit.add_argument("--synth", action="append", metavar="[NAME=]FILE",
                     help="synthetic samples, indexed by the unit each was generated from; repeatable")
    fit.add_argument("--model", choices=sorted(FAMILIES), default="ols",
                     help="model family (default: ols; 'quantile' is the median)")
    fit.add_argument("--unit-col", metavar="ID", default=None,
                     help="unit id column of every file (default: each file's first column)")
    fit.add_argument("--cov", "--cov-type", dest="cov", choices=COV_TYPES, default="HC0",
                     help="covariance (statsmodels' cov_type): independent units (HC0, default; HC1 with "
                          "n/(n - p); HC2/HC3 with the leverage of the labeled design, for the human-only "
                          "OLS fit only: refused with --proxy/--synth, which have no hat matrix, and for "
                          "other models) or clusters of units (cluster, with --groups)")
    fit.add_argument("--weight", choices=COV_TYPES, default="HC0",
                     help="S of the step-2 weight matrix (HC0, default; cluster: efficient with "
                          "dependent clusters, with --groups); --cov alone does not change the estimate")
    fit.add_argument("--correction", choices=choices(Correction), default="small-sample",
                     help="covariance correction: small-sample (default: Windmeijer, a degrees-of-freedom "
                          "factor and t inference), windmeijer alone, or none (the plain two-step)")
    fit.add_argument("--leverage", choices=choices(Leverage), default="HC3",
                     help="the small-sample correction's leverage adjustment (ols/mean with unit-level "
                          "covariance): HC3 (default: each labeled unit's labeled moments divided by 1 - h), "
                          "HC2 (by sqrt(1 - h)) or none (the n/(n - p - s q M) factor instead)")
    fit.add_argument("--shrinkage", choices=choices(Shrinkage), default="stein",
                     help="weight matrix: stein (default: sources that do not predict the human "
                          "moments are shrunk away) or none (the efficient S^-1)")
    fit.add_argument("--groups", metavar="COL", default=None,
                     help="cluster column (one value per unit), with --cov cluster")
    fit.add_argument("--engine", choices=choices(Engine), default=None,
                     help="formula engine (default: statsmodels' formula_engine option)")
    fit.add_argument("--output", choices=choices(OutputFormat), default="text",
                     help="summary (text, default), a JSON object, or a CSV table of coefficients")
    fit.set_defaults(handler=_fit)

    simulate = commands.add_parser(
        "simulate",
        help="repeated-sampling study: coverage, error and width of every estimator",
        description=(
            "Run repeated-sampling experiments over a grid of labeled n, total N, model and "
            "scenario of the auxiliary data's quality (simulated studies), or repeated random "
            "labeled subsets of the bundled politeness data (--politeness). Per-trial rows are "
            "appended to DIR/trials.csv (trials already there are skipped, so a run resumes); "
            "DIR/summary.csv gets bias, MSE, MSE relative to human-only, coverage with its Monte "
            "Carlo SE, interval width and J-test rejection per cell and estimator."
        ),
    )
    simulate.add_argument("--output", required=True, metavar="DIR",
                          help="directory for trials.csv, summary.csv and the plots")
    simulate.add_argument("--n-labeled", type=_list_of(int), default=None, metavar="N,N,...",
                          help="labeled sample sizes (default: 50,100,200,500,1000; "
                               "with --politeness 100,200,500,1000)")
    simulate.add_argument("--n-units", type=_list_of(int), default=None, metavar="N,N,...",
                          help="total numbers of units (default: 2000)")
    simulate.add_argument("--models", type=_list_of(str), default=None, metavar="M,M",
                          help="models among ols,logit (default: both)")
    simulate.add_argument("--scenarios", type=_list_of(str), default=None, metavar="S,S,...",
                          help="scenarios among proxy,synth,proxy+synth,noise,biased,anti,differential "
                               "(default: all)")
    simulate.add_argument("--target", default=None, choices=["Intercept", "x1", "x2"],
                          help="coefficient recorded (default: x1)")
    simulate.add_argument("--trials", type=_positive, default=200, metavar="R",
                          help="trials per cell (default: 200)")
    simulate.add_argument("--jobs", type=_jobs, default=1, metavar="J",
                          help="parallel worker processes; -1 = every core (default: 1)")
    simulate.add_argument("--seed", type=_integer, default=0, help="base seed (default: 0)")
    simulate.add_argument("--politeness", action="store_true",
                          help="labeled subsets of the bundled politeness data instead of simulated studies")
    simulate.add_argument("--no-progress", action="store_true", help="no progress bar")
    simulate.add_argument("--plots", type=_list_of(str, ("png", "svg", "pdf")), default=None,
                          metavar="FMT,...", help="draw coverage and relative-MSE plots (png, svg, pdf)")
    simulate.add_argument("--estimators", type=_list_of(str), default=None, metavar="E,E,...",
                          help="estimators to fit where they apply, or 'all' (default: classical, naive, "
                               "ppi_*, gmm_*; 'all' adds cross-fitted PPI++ ppi_cf_*, the infeasible oracle "
                               "PPI++ ppi_oracle_*, RePPI reppi_* and DSL dsl_proxy)")
    simulate.set_defaults(handler=_simulate)
    _add_llm_commands(commands)
    for subcommand in commands.choices.values():
        # SUPPRESS: a subcommand without the flag must not reset the one given before it.
        subcommand.add_argument(
            "--traceback", action="store_true", default=argparse.SUPPRESS,
            help="show the full traceback on errors (for bug reports)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input, 1 internal error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else EXIT_INPUT
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    with warnings.catch_warnings(record=True) as caught:
        try:
            code = args.handler(args)
        except BrokenPipeError:  # the reader stopped early (`| head`): not an error
            _silence_stdout()
            code = EXIT_OK
        except _INPUT_ERRORS as exc:
            if args.traceback:
                raise
            code = EXIT_INPUT
            print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        except Exception as exc:
            if args.traceback:
                raise
            code = EXIT_INTERNAL
            print(
                f"{PROG}: error: internal error ({type(exc).__name__}: {_one_line(exc)}); "
                f"rerun with --traceback and report it",
                file=sys.stderr,
            )
    for warning in caught:
        print(f"{PROG}: warning: {_one_line(warning.message)}", file=sys.stderr)  # type: ignore[arg-type]
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
