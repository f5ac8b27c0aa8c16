"""acma: DAMON, DAMOS, free page reporting, ballooning and ACMA for VMs, simulated in userspace."""

from .errors import AcmaError, ConfigError, FormatError, SimulationError

__version__ = "0.1.0"
__all__ = ["AcmaError", "ConfigError", "FormatError", "SimulationError", "__version__"]
