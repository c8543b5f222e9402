"""Crater production, chronology and degradation functions read from ``selenite/data/cratering_functions.toml``.

Ground-floor science shared by the synthetic world (which draws crater populations from them) and by the
geology stage (which fits ages with them).
"""

from selenite.cratering.functions import (
    Chronology,
    ProductionFunction,
    basilevsky_class,
    chronology,
    load_functions,
    production_function,
)

__all__ = [
    "Chronology", "ProductionFunction", "basilevsky_class", "chronology", "load_functions", "production_function",
]
