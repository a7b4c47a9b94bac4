"""Connection budgets by ratio: how many connections each named pool may hold.

The documented rule of the system being replaced (its code does otherwise,
giving a 0-ratio pool one slot and a negative one none; we follow the
documentation):

- ratio ``0``: a disabled pool, capacity 0;
- a negative ratio: an overflow pool without a limit (capacity ``None``);
- positive ratios must sum to 1, within ``tolerance`` (ten pools of 0.1 sum
  to 0.9999999999999999 in floats, and are valid); each gets
  ``floor(ratio * max_connections)`` and the rounding remainder goes to the
  last pool with a positive ratio, so the positive capacities sum to exactly
  ``max_connections``. (The remainder cannot go to a disabled or unlimited
  last pool without changing what those mean.)

Bad configurations raise typed errors (subclasses of PoolConfigError), never
assertions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from peerpool.errors import PoolConfigError, PoolRatioError, TooFewConnectionsError

RATIO_TOLERANCE = 1e-6
# floor(0.29 * 100) is 28 in floats; products this close to an integer count as it
_FLOOR_SLACK = 1e-9


def pool_budgets(
    max_connections: int, ratios: Mapping[str, float], *, tolerance: float = RATIO_TOLERANCE
) -> dict[str, int | None]:
    """Capacity per pool (``None``: unlimited), in the order of ``ratios``."""
    if not ratios:
        raise PoolConfigError("no pools configured")
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise PoolConfigError(f"max_connections must be an int, not {max_connections!r}")
    if max_connections < len(ratios):
        raise TooFewConnectionsError(
            f"max_connections={max_connections} is fewer than the {len(ratios)} pools"
        )
    for name, ratio in ratios.items():
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, (int, float))
            or not math.isfinite(ratio)
        ):
            raise PoolRatioError(f"pool {name!r}: ratio {ratio!r} is not a finite number")
    positive = [name for name, ratio in ratios.items() if ratio > 0]
    total = math.fsum(ratios[name] for name in positive)
    if abs(total - 1.0) > tolerance:
        raise PoolRatioError(f"positive pool ratios sum to {total!r}, not 1 (within {tolerance})")
    budgets: dict[str, int | None] = {}
    for name, ratio in ratios.items():
        if ratio == 0:
            budgets[name] = 0
        elif ratio < 0:
            budgets[name] = None
        else:
            budgets[name] = math.floor(ratio * max_connections + _FLOOR_SLACK)
    assigned = sum(budgets[name] or 0 for name in positive)
    budgets[positive[-1]] = (budgets[positive[-1]] or 0) + (max_connections - assigned)
    return budgets
