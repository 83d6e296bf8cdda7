"""Autotuning: search space, isolated measurement, search strategies, tuning database.

``tcc.tune.tune(eq, *shapes, ...)`` searches GETT blockings for one workload on this
machine and writes every trial to the tuning database; ``tcc.compile`` then applies the
best record for the same workload and target (``tuning=True``, the default).
"""

from tcc.tune.database import (
    Database,
    Trial,
    TuningDatabaseError,
    default_db_path,
    distill,
    export_records,
    import_records,
    lookup,
)
from tcc.tune.search import STRATEGIES
from tcc.tune.space import SearchSpace, Workload
from tcc.tune.tuner import TuneResult, plot_history, tune

__all__ = [
    "STRATEGIES",
    "Database",
    "SearchSpace",
    "Trial",
    "TuneResult",
    "TuningDatabaseError",
    "Workload",
    "default_db_path",
    "distill",
    "export_records",
    "import_records",
    "lookup",
    "plot_history",
    "tune",
]
