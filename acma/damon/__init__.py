"""DAMON: data access monitoring with adaptive regions, as mm/damon/core.c does it."""

from .accuracy import AccuracyTracker
from .context import Attrs, Context, IntervalsGoal, Target
from .regions import Regions

__all__ = ["AccuracyTracker", "Attrs", "Context", "IntervalsGoal", "Regions", "Target"]
