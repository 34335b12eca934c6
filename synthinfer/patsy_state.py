"""Carry patsy's learned design through pickling, so a loaded result can still build new designs.

patsy refuses to pickle its objects (every class sets ``__getstate__`` to
``no_pickling``), and its evaluation environment holds the caller's whole
namespace (modules, frames, functions). What the learned spec needs is plain
data, though: the factors' code, the categorical levels, the contrast matrices
and the stateful transforms' memorised state (a mean, knots). `dumps` writes
every patsy object as its class and its ``__dict__``, each evaluation
environment as only the names the formula's code reads (modules by their
import name), and `loads` rebuilds the same objects, so ``predict(newdata)``
after ``pickle`` or ``load()`` builds exactly the design it built before.
"""

from __future__ import annotations

import importlib
import io
import pickle
import types
from collections.abc import Iterable
from typing import Any

__all__ = ["dumps", "loads"]


def _is_patsy(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "patsy"


def _is_patsy_function(func: types.FunctionType) -> bool:
    return (func.__module__ or "").split(".")[0] == "patsy" and _public_name(func) is not None


def _public_name(func: types.FunctionType) -> str | None:
    import patsy

    return next((name for name, value in vars(patsy).items() if value is func), None)


def _new(cls: type[Any]) -> Any:
    return object.__new__(cls)


def _environment(namespaces: list[dict[str, Any]], flags: int) -> Any:
    import patsy

    return patsy.EvalEnvironment(namespaces, flags)


def _code_names(design_infos: Iterable[Any]) -> set[str]:
    """Every name the factors' code (as written and as rewritten for stateful transforms) reads."""
    from patsy.eval import ast_names

    names: set[str] = set()
    for info in design_infos:
        for factor, factor_info in info.factor_infos.items():
            codes = [getattr(factor, "code", "")]
            state = factor_info.state if isinstance(factor_info.state, dict) else {}
            codes.append(state.get("eval_code", ""))
            for code in codes:
                if code:
                    names.update(ast_names(code))
    return names


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, names: set[str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._names = names

    def reducer_override(self, obj: Any) -> Any:
        import patsy

        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        if isinstance(obj, patsy.EvalEnvironment):
            # the captured namespace is the caller's globals and locals: keep the names the code reads
            kept = [{k: ns[k] for k in self._names if k in ns} for ns in obj._namespaces]
            return _environment, (kept, obj.flags)
        if isinstance(obj, types.FunctionType) and _is_patsy_function(obj):
            # patsy's stateful transforms (center, bs) are wrappers named after their class,
            # which pickle would look up and not find: refer to them by their public name
            return getattr, (patsy, _public_name(obj))
        if _is_patsy(obj) and not isinstance(obj, type) and hasattr(obj, "__dict__"):
            return _new, (type(obj),), dict(obj.__dict__)
        return NotImplemented


def dumps(design_infos: tuple[Any, ...], data_columns: Iterable[str]) -> bytes:
    """Bytes that `loads` turns back into ``design_infos`` (patsy DesignInfo objects).

    Parameters
    ----------
    design_infos : tuple
        The learned patsy specs.
    data_columns : iterable of str
        The frame's columns the formula reads: at evaluation they come from the
        new frame, so the namespace's values under these names are not kept.

    Raises
    ------
    Exception
        Whatever pickle raises for a name the formula reads that cannot be
        pickled (a lambda, a local function); the caller decides what to do.
    """
    buffer = io.BytesIO()
    _Pickler(buffer, _code_names(design_infos) - set(data_columns)).dump(design_infos)
    return buffer.getvalue()


def loads(blob: bytes) -> tuple[Any, ...]:
    """The patsy specs written by `dumps`."""
    return pickle.loads(blob)
