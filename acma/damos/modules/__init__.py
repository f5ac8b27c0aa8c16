"""The kernel's DAMON modules as presets: their parameters (names and defaults of the module
params) and the DAMON context each builds (attrs, schemes, monitoring region)."""

from . import lru_sort, reclaim, stat
from .common import ModuleSetup, guest_system_ram
from .lru_sort import LruSortParams
from .reclaim import ReclaimParams
from .stat import StatParams

__all__ = ["LruSortParams", "ModuleSetup", "ReclaimParams", "StatParams", "guest_system_ram", "lru_sort",
           "reclaim", "stat"]
