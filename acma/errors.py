"""The library's exceptions: one base class, and errors that name the field at fault."""


class AcmaError(Exception):
    """Base class of every error acma raises on purpose."""


class ConfigError(AcmaError, ValueError):
    """A parameter is out of range or malformed; raised before anything is changed.

    ``field`` names the parameter (dotted path, e.g. ``guest.nodes[1].size``) and
    ``allowed`` says what would have been accepted.
    """

    def __init__(self, field: str, value, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: got {value!r}; allowed: {allowed}")


class FormatError(AcmaError, ValueError):
    """An input file (masim config, trace, record) does not follow its format.

    ``source`` names the file or stream, ``where`` the line, block or byte offset.
    """

    def __init__(self, source: str, where: str, problem: str):
        self.source = source
        self.where = where
        self.problem = problem
        super().__init__(f"{source}: {where}: {problem}")


class SimulationError(AcmaError, RuntimeError):
    """The simulated system could not do what was asked (out of memory, busy block...)."""
