"""Learn a model formula once and apply it identically to every frame.

A GMM-Synth model evaluates one formula on several frames (the human-labeled
frame and each auxiliary frame). The moment blocks are only comparable if every
frame yields the same design columns with the same categorical coding, so the
specification is learned once, on the union of the frames, and then replayed
on each frame. Both formula engines statsmodels supports are handled:
``patsy`` and ``formulaic``. The engines' own missing-value handling is
switched off (both would drop rows silently); missing and non-finite values
are reported with the units they occur in instead.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import SpecificationError, describe_units
from .options import Engine

__all__ = ["FormulaSpec", "resolve_engine", "capture_namespace", "is_text", "numbers_as_text"]

# a name that is neither called (`C(`), a keyword (`levels=`) nor an attribute's tail
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)(?![\w.]*\s*\()(?!\s*=[^=])")
_BACKTICK = re.compile(r"`([^`]+)`")
_QUOTED = re.compile(r"Q\(\s*(['\"])(.+?)\1\s*\)")
_STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
_LEVEL_IN_PATSY_ERROR = re.compile(r"observation with value (.+?) does not match")
_LEVELS_IN_FORMULAIC_WARNING = re.compile(r"\{(.*)\}")
# a European decimal number: optional sign, digits with optional '.' thousands, one ','
_COMMA_HINT = " after replacing the decimal commas (or read the file with decimal=',')"
_DECIMAL_COMMA = r"[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?"


def resolve_engine(engine: str | None) -> Engine:
    """The engine to use: the argument, else ``statsmodels.formula.options``."""
    if engine is None:
        import statsmodels.formula

        engine = statsmodels.formula.options.formula_engine
    if engine not in ("patsy", "formulaic"):
        raise ValueError(f"formula engine must be 'patsy' or 'formulaic', got {engine!r}")
    return engine  # type: ignore[return-value]


def capture_namespace(depth: int) -> dict[str, Any]:
    """Globals and locals of the frame ``depth`` levels above the caller.

    Formulas may call functions from the user's namespace (``np.log(x)``), as
    in statsmodels' formula API.
    """
    frame = sys._getframe(depth + 1)
    namespace = dict(frame.f_globals)
    namespace.update(frame.f_locals)
    return namespace


def _formula_names(formula: str) -> set[str]:
    """Names the formula may read from a frame (a superset: also names from the namespace)."""
    names = {m[1] for m in _QUOTED.findall(formula)}
    names.update(_BACKTICK.findall(formula))
    unquoted = _STRING.sub("", _BACKTICK.sub("", formula))
    names.update(_IDENTIFIER.findall(unquoted))
    return names


def is_text(dtype: Any) -> bool:
    """Whether a column of this dtype holds text: object, pandas' str / string, pyarrow strings."""
    if dtype == object or isinstance(dtype, pd.StringDtype):
        return True
    pyarrow_type = getattr(dtype, "pyarrow_dtype", None)
    if pyarrow_type is not None:
        import pyarrow

        return bool(pyarrow.types.is_string(pyarrow_type) or pyarrow.types.is_large_string(pyarrow_type))
    return False


def numbers_as_text(values: pd.Series) -> str:
    """What a text column holds if every value reads as a number: "numbers stored as text",
    "numbers with decimal commas stored as text (e.g. '0,5')", or "" if some value is no number."""
    as_text = values.astype(object)
    numeric = pd.to_numeric(as_text, errors="coerce").notna()
    if numeric.all():
        return "numbers stored as text"
    text = as_text.astype(str).str.strip()
    has_comma = text.str.contains(",", regex=False)
    if has_comma.any() and text.str.fullmatch(_DECIMAL_COMMA).all():
        return f"numbers with decimal commas stored as text (e.g. {text[has_comma].iloc[0]!r})"
    if numeric.mean() >= 0.5:
        # a numeric column with a few stray markers ('n.a.', '?') reads as text
        strays = list(dict.fromkeys(text[~numeric.to_numpy()]))
        return (
            f"mostly numbers stored as text ({numeric.mean():.0%} of the values; the others: "
            f"{strays[:5]})"
        )
    return ""


def _finite_sum(values: np.ndarray) -> bool:
    """True only if every value is finite: a NaN or an infinity makes the sum non-finite
    (a sum that overflows is non-finite too; the caller then looks value by value)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.add.reduce(values, axis=None)))


def _finite_numbers(frame: pd.DataFrame, columns: list[str]) -> bool:
    """Whether every column is a plain int or float column with finite values only
    (the common case, checked without per-value temporaries)."""
    dtypes = frame.dtypes
    for column in columns:
        dtype = dtypes[column]
        if not (isinstance(dtype, np.dtype) and dtype.kind in "fiu"):
            return False
        if dtype.kind == "f" and not _finite_sum(frame[column].to_numpy()):
            return False
    return True


def _units_where(frame: pd.DataFrame, mask: np.ndarray) -> str:
    return describe_units(frame.index[np.asarray(mask, dtype=bool)])


class FormulaSpec:
    """A formula learned on the union of several frames.

    Parameters
    ----------
    formula : str
        An R-style formula with one outcome, ``"y ~ x1 + C(group)"``.
    frames : mapping of str to DataFrame
        Every frame the formula will be applied to, by the name used in error
        messages. Categorical levels are the union over these frames unless
        the formula declares them (``C(g, levels=[...])`` or a pandas
        Categorical column).
    engine : {"patsy", "formulaic"}, optional
        Defaults to ``statsmodels.formula.options.formula_engine``.
    namespace : dict, optional
        Names (functions, arrays) the formula may refer to besides columns.
    """

    def __init__(
        self,
        formula: str,
        frames: Mapping[str, pd.DataFrame],
        engine: str | None = None,
        namespace: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(formula, str) or "~" not in formula:
            raise SpecificationError(
                f"formula must be a string 'outcome ~ terms', got {formula!r}"
            )
        self.formula = formula
        self.engine: Engine = resolve_engine(engine)
        self._names = _formula_names(formula)
        for name, frame in frames.items():
            if not isinstance(frame, pd.DataFrame):
                raise SpecificationError(
                    f"{name} must be a pandas DataFrame, got {type(frame).__name__}"
                )
        # Columns the formula uses: its names that are a column of some frame.
        self.variables: list[str] = []
        for frame in frames.values():
            self.variables += [
                c for c in dict.fromkeys(frame.columns)
                if isinstance(c, str) and c in self._names and c not in self.variables
            ]
        outcome = formula.split("~", 1)[0].strip()
        for name, frame in frames.items():
            repeated = [c for c in self.variables if (frame.columns == c).sum() > 1]
            if repeated:
                raise SpecificationError(
                    f"frame {name!r} has several columns named {repeated}; the formula "
                    f"cannot tell which one to use. Rename or drop the duplicates"
                )
        if outcome in self.variables and outcome in _formula_names(formula.split("~", 1)[1]):
            raise SpecificationError(
                f"the outcome {outcome!r} of {formula!r} is also on the right-hand side: it "
                f"would be fitted exactly (zero residuals). Remove it from the terms"
            )
        for name, frame in frames.items():
            missing = [c for c in self.variables if c not in frame.columns]
            if missing:
                raise SpecificationError(
                    f"frame {name!r} is missing formula variable(s) {missing}; every frame "
                    f"must carry the columns the formula uses"
                )
            self._check_values(name, frame, outcome)
        self._check_same_kind(frames)
        self._learn(dict(namespace or {}), frames)

    # -- learning ---------------------------------------------------------------
    def _check_values(self, name: str, frame: pd.DataFrame, outcome: str) -> None:
        if _finite_numbers(frame, self.variables):
            return  # numeric columns without a missing or infinite value: nothing to report
        for column in self.variables:
            values = frame[column]
            if column == outcome and not (
                pd.api.types.is_numeric_dtype(values.dtype)
                and not pd.api.types.is_bool_dtype(values.dtype)
            ):
                raise SpecificationError(
                    f"frame {name!r}: the outcome {column!r} must be numeric, but its dtype "
                    f"is {values.dtype}; convert it to numbers (0/1 for logit), e.g. with "
                    f"frame[{column!r}].astype(int)"
                )
            declared_categorical = re.search(rf"C\(\s*{re.escape(column)}\b", self.formula)
            if is_text(values.dtype) and not declared_categorical and values.notna().all():
                stored = numbers_as_text(values)
                if stored:
                    raise SpecificationError(
                        f"frame {name!r}: column {column!r} holds {stored} (dtype "
                        f"{values.dtype}), which would be fitted as a categorical with one "
                        f"level per value; convert it with pd.to_numeric"
                        f"{_COMMA_HINT if 'comma' in stored else ''}, or make it a category "
                        f"explicitly with C({column})"
                    )
            bad = values.isna().to_numpy()
            what = "missing values"
            if not bad.any() and pd.api.types.is_numeric_dtype(values.dtype):
                numeric = values.to_numpy(dtype=float, na_value=np.nan)
                bad = ~np.isfinite(numeric)
                what = "non-finite values (inf)"
            if bad.any():
                raise SpecificationError(
                    f"frame {name!r}: column {column!r} has {what} in {int(bad.sum())} "
                    f"unit(s) {_units_where(frame, bad)}; nothing is dropped silently, "
                    f"so remove or impute them before fitting"
                )

    def _check_same_kind(self, frames: Mapping[str, pd.DataFrame]) -> None:
        """A column must be numbers in every frame or in none.

        Stacking a numeric column with a text one makes it text: patsy then fails
        with an unrelated message, formulaic codes 1 and '1' as two levels.
        """
        for column in self.variables:
            kinds: dict[str, list[str]] = {}
            for name, frame in frames.items():
                dtype = frame[column].dtype
                kind = "numeric" if pd.api.types.is_numeric_dtype(dtype) else (
                    "text" if is_text(dtype) else None
                )
                if kind is not None:
                    kinds.setdefault(kind, []).append(f"{name!r} ({dtype})")
            if len(kinds) > 1:
                raise SpecificationError(
                    f"column {column!r} is numeric in frame(s) {', '.join(kinds['numeric'])} "
                    f"but text in frame(s) {', '.join(kinds['text'])}; a value 1 and a value "
                    f"'1' would not be the same level. Give the column one dtype in every "
                    f"frame (pd.to_numeric, or .astype(str) for a categorical)"
                )

    def _learning_chunks(self, frames: Mapping[str, pd.DataFrame]) -> list[pd.DataFrame]:
        """Each frame's formula columns, cast to the dtypes their concatenation would have.

        The spec is the one the stacked frames would give; casting to the stacked
        dtypes (a Categorical whose categories differ between frames becomes its
        values' dtype, as in ``pd.concat``) makes each frame read the same way.
        """
        chunks = [frame[self.variables] for frame in frames.values()]
        stacked = pd.concat([chunk.iloc[:0] for chunk in chunks]).dtypes
        changes = {
            column: dtype for column, dtype in stacked.items()
            if any(chunk[column].dtype != dtype for chunk in chunks)
        }
        return [chunk.astype(changes) for chunk in chunks] if changes else chunks

    def _learn(self, namespace: dict[str, Any], frames: Mapping[str, pd.DataFrame]) -> None:
        chunks = self._learning_chunks(frames)
        try:
            if self.engine == "patsy":
                import patsy

                # Learns levels and stateful transforms (center, standardize,
                # splines) over every frame, one frame at a time, without building
                # a design matrix or a stacked copy of the data.
                self._lhs_spec, self._rhs_spec = patsy.incr_dbuilders(
                    self.formula,
                    lambda: iter(chunks),
                    eval_env=patsy.EvalEnvironment([namespace]),
                    NA_action=patsy.NAAction(NA_types=[]),
                )
                lhs_names = list(self._lhs_spec.column_names)
                rhs_names = list(self._rhs_spec.column_names)
            else:
                import formulaic

                # formulaic learns from one frame: the stacked frames
                learning = pd.concat(chunks, ignore_index=True)
                with warnings.catch_warnings():
                    warnings.simplefilter("error", formulaic.errors.DataMismatchWarning)
                    matrices = formulaic.model_matrix(
                        self.formula, learning, context=namespace, na_action="ignore"
                    )
                if not hasattr(matrices, "lhs"):
                    raise SpecificationError(f"formula {self.formula!r} has no outcome")
                lhs, rhs = matrices.lhs, matrices.rhs
                self._lhs_spec, self._rhs_spec = lhs.model_spec, rhs.model_spec
                lhs_names, rhs_names = list(lhs.columns), list(rhs.columns)
        except SpecificationError:
            raise
        except Exception as exc:  # the engines' own errors: name the frames instead
            raise self._engine_error(exc, frames) from exc
        if len(lhs_names) != 1:
            raise SpecificationError(
                f"the outcome of {self.formula!r} must be one numeric column, but it "
                f"expands to {lhs_names}; convert a boolean or text outcome to 0/1 numbers"
            )
        self.outcome_name: str = lhs_names[0]
        self.param_names: list[str] = rhs_names

    def _engine_error(self, exc: Exception, frames: Mapping[str, pd.DataFrame]) -> SpecificationError:
        """Rephrase an engine error; an unknown categorical level names its frames and units."""
        message = str(exc)
        levels: list[str] = []
        found = _LEVEL_IN_PATSY_ERROR.search(message)
        if found:
            levels = [found.group(1).strip("'\"")]
        else:
            found = _LEVELS_IN_FORMULAIC_WARNING.search(message)
            if found and "categor" in message:
                levels = [s.strip().strip("'\"") for s in found.group(1).split(",")]
        if not levels:
            return SpecificationError(
                f"formula {self.formula!r} could not be evaluated on the frames "
                f"{list(frames)}: {type(exc).__name__}: {message}"
            )
        places = []
        for name, frame in frames.items():
            hits = np.zeros(len(frame), dtype=bool)
            for column in self.variables:
                hits |= frame[column].astype(str).isin(levels).to_numpy()
            if hits.any():
                places.append(f"frame {name!r} units {_units_where(frame, hits)}")
        return SpecificationError(
            f"categorical level(s) {levels} are not among the levels the formula "
            f"{self.formula!r} declares; they would be recoded silently. Found in "
            f"{'; '.join(places) or 'the data'}. Declare every level or remove those units."
        )

    def categorical_terms(self) -> dict[str, Any]:
        """The formula's categorical main-effect terms (`synthinfer.terms.CategoricalTerm`)
        by name, learned once from the live spec and kept through pickling."""
        if "_categorical_terms" not in self.__dict__:
            from .terms import categorical_terms

            if self._rhs_spec is None:
                return {}
            self._categorical_terms = categorical_terms(self.engine, self._rhs_spec)
        return self._categorical_terms

    def __getstate__(self) -> dict[str, Any]:
        if self._rhs_spec is not None:
            self.categorical_terms()  # plain data that survives pickling, unlike patsy's spec
        state = self.__dict__.copy()
        if self.engine == "patsy" and self._rhs_spec is not None:
            # patsy's DesignInfo refuses pickling: carry it as plain data (patsy_state)
            from . import patsy_state

            state["_lhs_spec"] = state["_rhs_spec"] = None
            try:
                state["_patsy_specs"] = patsy_state.dumps((self._lhs_spec, self._rhs_spec), self.variables)
            except Exception as exc:  # a name the formula reads cannot be pickled (a lambda)
                state["_patsy_specs"] = f"{type(exc).__name__}: {exc}"
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_patsy_specs", None)
        self.__dict__.update(state)
        if isinstance(blob, bytes):
            from . import patsy_state

            self._lhs_spec, self._rhs_spec = patsy_state.loads(blob)
        elif blob is not None:
            self._unpickled_because = blob

    # -- applying ---------------------------------------------------------------
    def plain_columns(self) -> tuple[str, list[str | None]] | None:
        """The outcome's column and each design column's frame column (None for the
        intercept), if the formula is only an intercept and bare numeric columns
        (``y ~ x1 + x2``); else None. Learned from the patsy spec, once."""
        if "_plain" not in self.__dict__:
            self._plain = self._find_plain_columns()
        return self._plain

    def _find_plain_columns(self) -> tuple[str, list[str | None]] | None:
        if self.engine != "patsy" or self._rhs_spec is None or self._lhs_spec is None:
            return None

        def column(factor: Any) -> str | None:
            info = design.factor_infos.get(factor)
            code = getattr(factor, "code", None)
            if info is None or info.type != "numerical" or info.num_columns != 1 or code not in self.variables:
                return None
            return code

        columns: list[list[str | None]] = []
        for design in (self._lhs_spec, self._rhs_spec):
            found: list[str | None] = []
            for term, where in design.term_slices.items():
                if where.stop - where.start != 1 or len(term.factors) > 1:
                    return None
                if term.factors:
                    name = column(term.factors[0])
                    if name is None:
                        return None
                    found.append(name)
                else:
                    found.append(None)
            columns.append(found)
        (outcome, *rest), rhs = columns
        if rest or outcome is None or len(rhs) != len(self.param_names):
            return None
        return outcome, rhs

    def _apply_plain(self, frame: pd.DataFrame, plain: tuple[str, list[str | None]]) -> tuple[np.ndarray, np.ndarray] | None:
        """y and X taken from the columns, or None where patsy must decide (a dtype
        that is not a plain int or float). The same numbers as patsy's: it copies
        each numeric column, as float, into its column of a matrix of ones."""
        outcome, design = plain
        named = [outcome] + [c for c in design if c is not None]
        if not all(c in frame.columns for c in named):
            return None
        dtypes = frame.dtypes
        if not all(isinstance(dtypes[c], np.dtype) and dtypes[c].kind in "fiu" for c in named):
            return None
        X = np.empty((len(frame), len(design)), order="F")
        for j, c in enumerate(design):
            X[:, j] = 1.0 if c is None else frame[c].to_numpy()
        y = np.array(frame[outcome].to_numpy(), dtype=float)
        return y, X

    def apply(self, frame: pd.DataFrame, name: str, plain: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Outcome vector and design matrix of ``frame`` under the learned spec.

        ``plain=True`` takes a formula of bare numeric columns (`plain_columns`)
        from the columns without the engine: the same arrays, without the
        engine's fixed and per-row overhead (the design of a Dask partition is
        built at every pass over the data when it is not persisted).
        """
        columns = self.plain_columns() if plain else None
        if columns is not None:
            built = self._apply_plain(frame, columns)
            if built is not None:
                y, X = built
                self._check_finite(frame, name, y, X)
                return y, X
        if self._rhs_spec is None:
            why = getattr(self, "_unpickled_because", "patsy specs could not be pickled")
            raise RuntimeError(
                f"this formula spec was unpickled without its patsy spec ({why}), so it "
                f"cannot build new design matrices; rebuild the model from its formula"
            )
        data = frame[self.variables]
        if self.engine == "patsy":
            import patsy

            # patsy matches a Categorical by its categories' order; match by value
            # instead, against the levels learned on the union of the frames
            data = data.astype(
                {c: object for c in self.variables if isinstance(data[c].dtype, pd.CategoricalDtype)}
            )
            try:
                lhs, rhs = patsy.build_design_matrices(
                    [self._lhs_spec, self._rhs_spec],
                    data,
                    NA_action=patsy.NAAction(NA_types=[]),
                )
            except patsy.PatsyError as exc:
                raise self._engine_error(exc, {name: frame}) from exc
            y, X = np.asarray(lhs, dtype=float)[:, 0], np.asarray(rhs, dtype=float)
        else:
            import formulaic

            with warnings.catch_warnings():
                warnings.simplefilter("error", formulaic.errors.DataMismatchWarning)
                try:
                    lhs = self._lhs_spec.get_model_matrix(data, na_action="ignore", output="numpy")
                    rhs = self._rhs_spec.get_model_matrix(data, na_action="ignore", output="numpy")
                except Exception as exc:
                    raise self._engine_error(exc, {name: frame}) from exc
            y = np.asarray(lhs, dtype=float).reshape(len(frame), -1)[:, 0]
            X = np.asarray(rhs, dtype=float).reshape(len(frame), -1)
        if X.shape != (len(frame), len(self.param_names)):
            raise SpecificationError(
                f"frame {name!r}: the formula gave a design of shape {X.shape}, expected "
                f"{(len(frame), len(self.param_names))}"
            )
        self._check_finite(frame, name, y, X)
        # column-major: the engine's products (X b, X' r, X' diag(w) X) read columns,
        # and a contiguous column halves the time of X b and X' r
        return np.ascontiguousarray(y), np.asfortranarray(X)

    def _check_finite(self, frame: pd.DataFrame, name: str, y: np.ndarray, X: np.ndarray) -> None:
        if _finite_sum(y) and _finite_sum(X):
            return
        bad_y = ~np.isfinite(y)
        if bad_y.any():
            raise SpecificationError(
                f"frame {name!r}: the outcome {self.outcome_name!r} is not finite in "
                f"{int(bad_y.sum())} unit(s) {_units_where(frame, bad_y)}"
            )
        bad_x = ~np.isfinite(X)
        if bad_x.any():
            columns = [self.param_names[j] for j in np.flatnonzero(bad_x.any(axis=0))]
            raise SpecificationError(
                f"frame {name!r}: design column(s) {columns} are not finite in "
                f"{int(bad_x.any(axis=1).sum())} unit(s) {_units_where(frame, bad_x.any(axis=1))}"
            )
