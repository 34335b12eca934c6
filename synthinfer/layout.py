"""Where each block of moments and parameters sits in the stacked GMM vectors.

Parameters ``beta = (theta, eta_1, ..., eta_M)``, each of length k; moments
``g = [target ; (labeled_m ; all_units_m)_m]``, each block of length q (k = q:
every block is one source's estimating function). Everything that indexes
the stacked vectors (G, S, W, Windmeijer, the diagnostics) asks this object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MomentLayout"]


@dataclass(frozen=True)
class MomentLayout:
    """The block structure of one model's parameters and moments.

    Attributes
    ----------
    k : int
        Parameters per block (the target's, and each source's).
    q : int
        Moments per block.
    target_names : list of str
        The target parameters' names.
    source_names : list of str
        The auxiliary sources, in order.
    """

    k: int
    q: int
    target_names: tuple[str, ...]
    source_names: tuple[str, ...]

    @classmethod
    def of(cls, target_names: Sequence[str], source_names: Sequence[str], q: int | None = None) -> MomentLayout:
        k = len(target_names)
        return cls(k, k if q is None else q, tuple(target_names), tuple(source_names))

    @property
    def n_sources(self) -> int:
        return len(self.source_names)

    @property
    def n_params(self) -> int:
        return self.k * (1 + self.n_sources)

    @property
    def n_moments(self) -> int:
        return self.q * (1 + 2 * self.n_sources)

    @property
    def degrees_of_freedom(self) -> int:
        """Overidentifying restrictions: the J test's degrees of freedom."""
        return self.n_moments - self.n_params

    # -- parameters -------------------------------------------------------------
    def param_block(self, b: int) -> slice:
        """Block b of the parameters: 0 = theta, 1 + m = source m's eta."""
        return slice(b * self.k, (b + 1) * self.k)

    def split_params(self, params: np.ndarray) -> list[np.ndarray]:
        return [params[self.param_block(b)] for b in range(1 + self.n_sources)]

    @property
    def param_names_full(self) -> list[str]:
        return list(self.target_names) + [
            f"eta[{source}]:{name}" for source in self.source_names for name in self.target_names
        ]

    # -- moments ----------------------------------------------------------------
    def moment_block(self, b: int) -> slice:
        """Block b of the moments: 0 = target, 1 + 2m = source m labeled, 2 + 2m = all units."""
        return slice(b * self.q, (b + 1) * self.q)

    def labeled_block(self, m: int) -> slice:
        return self.moment_block(1 + 2 * m)

    def all_units_block(self, m: int) -> slice:
        return self.moment_block(2 + 2 * m)

    @property
    def block_names(self) -> list[str]:
        """One name per moment block, for messages."""
        return ["real (labeled units)"] + [
            f"{name} ({units} units)" for name in self.source_names for units in ("labeled", "all")
        ]

    def just_identified(self) -> np.ndarray:
        """Moments of the step-1 subsystem: the target block and every all-units block."""
        return np.concatenate(
            [np.arange(self.q)] + [np.arange(self.all_units_block(m).start, self.all_units_block(m).stop)
                                   for m in range(self.n_sources)]
        )

    def labeled_auxiliary(self) -> np.ndarray:
        """Moments of every source's labeled block."""
        if not self.n_sources:
            return np.zeros(0, dtype=int)
        return np.concatenate([np.arange(self.labeled_block(m).start, self.labeled_block(m).stop)
                               for m in range(self.n_sources)])
