"""DAMON: data access monitoring with adaptive regions, as mm/damon/core.c does it."""

from .context import Attrs, Context, IntervalsGoal, Target
from .regions import Regions

__all__ = ["Attrs", "Context", "IntervalsGoal", "Regions", "Target"]
