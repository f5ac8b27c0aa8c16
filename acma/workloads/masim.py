"""masim configs: read and write masim's text format, and turn a config into a :class:`Workload`.

masim (github.com/sjp38/masim) generates artificial memory accesses from a small text file:
a paragraph of regions, then one paragraph per phase, each phase picking access patterns at
random. :func:`parse_masim` reads files the way masim's own parser does (comment lines
dropped first, paragraphs split at single blank lines, fields split at commas), but refuses
what masim silently misreads (a size of ``10M`` read as 10 bytes, a last line without a
newline that masim drops) with a :class:`~acma.errors.FormatError` naming the line.
:func:`format_masim` writes a file the real masim runs, so acma scenarios can be replayed.

Rate model used by :func:`masim_to_workload`. masim repeatedly picks pattern *i* of the phase
with probability ``p_i / sum(p)`` and performs ``ACCESSES_PER_PICK`` single-byte accesses with
it, each costing ``c_i`` ns (:class:`MasimTiming`, sequential or random). Pattern *i* therefore
runs a time fraction ``f_i = p_i c_i / sum_j p_j c_j`` of the phase. While running it visits
``1e9 / c_i * min(stride, 4096) / 4096`` distinct pages a second if sequential (a stride below a
page makes several accesses per page) and ``1e9 / c_i`` if random. The visits are spread evenly
over the region, so each page is touched ``f_i * visits_i / npages`` times a second, as a
Poisson process in the model. ``ro``/``wo``/``rw`` become write fractions 0, 1 and 0.5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, FormatError
from ..units import PAGE_SIZE, finite_in
from .model import Pattern, Phase, Region, Workload

__all__ = [
    "ACCESSES_PER_PICK", "RW_MODES", "WRITE_FRACTION", "MasimConfig", "MasimPattern", "MasimPhase",
    "MasimRegion", "MasimTiming", "format_masim", "load_masim", "masim_to_workload", "parse_masim",
    "time_fractions",
]

RW_MODES = ("ro", "wo", "rw")
WRITE_FRACTION = {"ro": 0.0, "wo": 1.0, "rw": 0.5}
ACCESSES_PER_PICK = 128 * 1024  # single-byte accesses masim performs per pattern pick
C_INT_MAX = 2**31 - 1  # masim reads strides and probabilities with atoi() into an int
MAX_REGION_NAME_BYTES = 255  # masim copies region names into a char[256]
MAX_TIME_MS = 10**9  # the workload model's longest phase (1e12 µs)
MAX_PAGE_RATE_HZ = 1e9  # the workload model's highest per-page touch rate
_KNOWN_NAMES_SHOWN = 20  # an unknown-region error lists at most this many known names
_SHOWN_CHARS = 60  # longest piece of input quoted in an error message

_PATTERN_SYNTAX = "'region_name, random(0|1), stride_bytes, probability[, ro|wo|rw]'"
_REGION_SYNTAX = "'name, size_bytes[, init_data_file|none]'"
# atoi()/atoll() skip leading blanks and take an optional sign; we also allow trailing blanks
# but refuse anything else instead of silently stopping at it. 40 digits keeps int() cheap.
_INTEGER = re.compile(r"[ \t]*([+-]?[0-9]{1,40})[ \t]*")


@dataclass(frozen=True)
class _Rule:
    """What a field accepts: a predicate and the sentence telling the user what is allowed."""

    allowed: str
    ok: Callable[[object], bool]


def _int_in(lo: int, hi: int) -> Callable[[object], bool]:
    """Predicate for a true int (not a bool) in [lo, hi]."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _region_name_ok(name) -> bool:
    return (
        isinstance(name, str)
        and bool(name)
        and not any(c in name for c in ",\n\r\0")
        and name == name.strip()
        and not name.startswith("#")
        and len(name.encode("utf-8", "surrogatepass")) <= MAX_REGION_NAME_BYTES
    )


def _init_data_ok(path) -> bool:
    if path is None:
        return True
    return (
        isinstance(path, str)
        and bool(path)
        and not any(c in path for c in ",\n\r\0")
        and path == path.strip()
        and path != "none"
    )


def _phase_name_ok(name) -> bool:
    return (
        isinstance(name, str)
        and bool(name)
        and not any(c in name for c in "\n\r\0")
        and not name.startswith("#")
    )


REGION_NAME = _Rule(
    f"non-empty text of at most {MAX_REGION_NAME_BYTES} UTF-8 bytes without commas, line breaks "
    "or NUL, with no leading or trailing white space, not starting with '#'",
    _region_name_ok,
)
REGION_SIZE = _Rule(
    f"a plain decimal byte count in [1, {1 << 40}] with no unit suffix "
    "(masim reads it with atoll(), so '10M' would silently mean 10 bytes)",
    _int_in(1, 1 << 40),
)
INIT_DATA = _Rule(
    "None (written as no field) or a file path without commas, line breaks or NUL, "
    "with no leading or trailing white space, other than 'none'",
    _init_data_ok,
)
PHASE_NAME = _Rule("non-empty text without line breaks or NUL, not starting with '#'", _phase_name_ok)
TIME_MS = _Rule(f"an integer number of milliseconds in [1, {MAX_TIME_MS}]", _int_in(1, MAX_TIME_MS))
RANDOM_FLAG = _Rule("0 (sequential) or 1 (random)", _int_in(0, 1))
RANDOM_BOOL = _Rule("True (random) or False (sequential)", lambda v: isinstance(v, bool))
STRIDE = _Rule(f"an integer number of bytes in [1, {C_INT_MAX}]", _int_in(1, C_INT_MAX))
PROBABILITY = _Rule(f"an integer weight in [0, {C_INT_MAX}]", _int_in(0, C_INT_MAX))
TOTAL_PROBABILITY = _Rule(
    f"probabilities summing to an integer in [1, {C_INT_MAX}] "
    "(masim picks pattern i with chance probability_i / total, so a phase needs a positive total)",
    _int_in(1, C_INT_MAX),
)
RW_MODE = _Rule("one of ro, wo, rw", lambda v: isinstance(v, str) and v in RW_MODES)
ACCESS_NS = _Rule(
    "a finite number of ns in [0.1, 1e6]",
    lambda v: isinstance(v, (int, float)) and finite_in(v, 0.1, 1e6),
)


def _validate(field: str, value, rule: _Rule) -> None:
    """Raise ConfigError for a constructor argument the rule refuses."""
    if not rule.ok(value):
        raise ConfigError(field, value, rule.allowed)


def _as_tuple(field: str, value, item_type: type) -> tuple:
    """The items of a list or tuple, all of ``item_type``; anything else is a ConfigError."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(field, value, f"a non-empty tuple of {item_type.__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, item_type):
            raise ConfigError(f"{field}[{i}]", item, f"a {item_type.__name__}")
    return tuple(value)


@dataclass(frozen=True)
class MasimRegion:
    """A masim memory region: ``size`` bytes, optionally filled from ``init_data`` at start."""

    name: str
    size: int
    init_data: str | None = None

    def __post_init__(self):
        _validate("MasimRegion.name", self.name, REGION_NAME)
        _validate("MasimRegion.size", self.size, REGION_SIZE)
        _validate("MasimRegion.init_data", self.init_data, INIT_DATA)


@dataclass(frozen=True)
class MasimPattern:
    """One access pattern line of a phase: how ``region`` is accessed when this line is picked."""

    region: str
    random: bool
    stride: int
    probability: int
    rw: str = "wo"

    def __post_init__(self):
        _validate("MasimPattern.region", self.region, REGION_NAME)
        _validate("MasimPattern.random", self.random, RANDOM_BOOL)
        _validate("MasimPattern.stride", self.stride, STRIDE)
        _validate("MasimPattern.probability", self.probability, PROBABILITY)
        _validate("MasimPattern.rw", self.rw, RW_MODE)


@dataclass(frozen=True)
class MasimPhase:
    """A phase: ``time_ms`` of picking among ``patterns`` by their probabilities."""

    name: str
    time_ms: int
    patterns: tuple[MasimPattern, ...]

    def __post_init__(self):
        _validate("MasimPhase.name", self.name, PHASE_NAME)
        _validate("MasimPhase.time_ms", self.time_ms, TIME_MS)
        patterns = _as_tuple("MasimPhase.patterns", self.patterns, MasimPattern)
        object.__setattr__(self, "patterns", patterns)
        _validate("MasimPhase.patterns", sum(p.probability for p in patterns), TOTAL_PROBABILITY)


@dataclass(frozen=True)
class MasimConfig:
    """A whole masim config: uniquely named regions and the phases run in order."""

    regions: tuple[MasimRegion, ...]
    phases: tuple[MasimPhase, ...]

    def __post_init__(self):
        regions = _as_tuple("MasimConfig.regions", self.regions, MasimRegion)
        phases = _as_tuple("MasimConfig.phases", self.phases, MasimPhase)
        object.__setattr__(self, "regions", regions)
        object.__setattr__(self, "phases", phases)
        names: set[str] = set()
        for i, r in enumerate(regions):
            if r.name in names:
                raise ConfigError(
                    f"MasimConfig.regions[{i}].name", r.name, "a name no other region uses"
                )
            names.add(r.name)
        for i, ph in enumerate(phases):
            for j, p in enumerate(ph.patterns):
                if p.region not in names:
                    raise ConfigError(
                        f"MasimConfig.phases[{i}].patterns[{j}].region", p.region,
                        f"the name of a region of this config: {sorted(names)}",
                    )


# ---------------------------------------------------------------------------------------------
# Parsing


def _fail(source: str, line: int, problem: str) -> FormatError:
    """The FormatError for ``problem`` at 1-based ``line`` of ``source``."""
    return FormatError(source, f"line {line}", problem)


def _show(text: str) -> str:
    """repr() of a value quoted in an error, shortened so a huge line cannot flood the message."""
    return repr(text) if len(text) <= _SHOWN_CHARS else repr(text[:_SHOWN_CHARS]) + "..."


def _blank_hint(line: str) -> str:
    """Point out a line of only spaces or tabs, which masim does not treat as blank."""
    return " (a line of only spaces or tabs is not a blank line for masim)" if not line.strip() else ""


def _content_lines(text: str, source: str) -> list[tuple[int, str]]:
    """Numbered lines with comments removed, after checking the file's line structure."""
    if not text:
        raise _fail(source, 1, "empty file: masim needs a regions paragraph, a blank line and a phase")
    if not text.endswith("\n"):
        raise _fail(
            source,
            text.count("\n") + 1,
            "no newline at the end of the file (masim silently drops such a last line); "
            "end the file with exactly one newline",
        )
    lines = []
    for n, line in enumerate(text[:-1].split("\n"), 1):
        if line.startswith("#"):
            continue
        if "\r" in line:
            raise _fail(source, n, "carriage return: masim reads LF line endings only (convert CRLF)")
        if "\0" in line:
            raise _fail(source, n, "NUL character: masim reads lines as C strings")
        lines.append((n, line))
    if not lines:
        raise _fail(
            source, 1, "only comments: masim needs a regions paragraph, a blank line and a phase"
        )
    return lines


def _paragraphs(lines: list[tuple[int, str]], source: str) -> list[list[tuple[int, str]]]:
    """Split numbered lines at blank lines, refusing the blank-line layouts masim misreads."""
    paragraphs: list[list[tuple[int, str]]] = [[]]
    for n, line in lines:
        if line:
            paragraphs[-1].append((n, line))
        elif not paragraphs[0]:
            raise _fail(source, n, "the regions paragraph is empty: the first non-comment line is blank")
        elif not paragraphs[-1]:
            raise _fail(
                source, n, "two blank lines in a row (comment lines between them do not count); "
                "paragraphs are separated by exactly one blank line",
            )
        else:
            paragraphs.append([])
    if not paragraphs[-1]:
        raise _fail(
            source, lines[-1][0], "the file ends with a blank line (two newlines at the end), "
            "which masim counts as an extra, empty phase; end the file with exactly one newline",
        )
    if len(paragraphs) < 2:
        raise _fail(
            source, lines[-1][0], "no phases: after the regions paragraph leave one blank line, "
            "then give each phase as a paragraph (name, duration in ms, pattern lines)",
        )
    return paragraphs


def _field_int(source: str, n: int, what: str, raw: str, rule: _Rule, hint: str = "") -> int:
    """An integer field read as atoi() would, but refusing any text atoi() would skip over."""
    m = _INTEGER.fullmatch(raw)
    value = int(m.group(1)) if m else None
    if value is None or not rule.ok(value):
        raise _fail(source, n, f"bad {what} {_show(raw.strip())}{hint}; allowed: {rule.allowed}")
    return value


def _field_text(source: str, n: int, what: str, value: str, rule: _Rule) -> str:
    """A text field, kept verbatim (masim compares names byte for byte) if the rule allows it."""
    if not rule.ok(value):
        raise _fail(source, n, f"bad {what} {_show(value)}; allowed: {rule.allowed}")
    return value


def _parse_region(n: int, line: str, source: str) -> MasimRegion:
    """One line of the first paragraph; a third field of ``none`` means no init data file."""
    fields = line.split(",")
    if len(fields) not in (2, 3):
        raise _fail(
            source, n, f"a region line is {_REGION_SYNTAX}; got {len(fields)} comma-separated "
            f"field(s){_blank_hint(line)}",
        )
    name = _field_text(source, n, "region name", fields[0], REGION_NAME)
    size = _field_int(source, n, "region size", fields[1], REGION_SIZE)
    init_data = None
    if len(fields) == 3 and fields[2].strip(" \t") != "none":
        init_data = _field_text(source, n, "init data file", fields[2].strip(" \t"), INIT_DATA)
    return MasimRegion(name, size, init_data)


def _parse_regions(paragraph: list[tuple[int, str]], source: str) -> tuple[MasimRegion, ...]:
    """The first paragraph; masim would silently use the last of two same-named regions."""
    first_line: dict[str, int] = {}
    regions = []
    for n, line in paragraph:
        region = _parse_region(n, line, source)
        if region.name in first_line:
            raise _fail(
                source, n, f"duplicate region name {_show(region.name)} (first defined on line "
                f"{first_line[region.name]}); region names must be unique",
            )
        first_line[region.name] = n
        regions.append(region)
    return tuple(regions)


def _unknown_region(name: str, known: tuple[str, ...]) -> str:
    """The problem text for a pattern naming no region, listing (some of) the known names."""
    shown = ", ".join(_show(k) for k in known[:_KNOWN_NAMES_SHOWN])
    more = f" and {len(known) - _KNOWN_NAMES_SHOWN} more" if len(known) > _KNOWN_NAMES_SHOWN else ""
    return f"unknown region {_show(name)}; allowed: a region of the first paragraph: {shown}{more}"


def _parse_pattern(
    n: int, line: str, known: tuple[str, ...], default_rw: str, source: str
) -> MasimPattern:
    """One pattern line; the region field is matched verbatim, as masim's strcmp() does."""
    fields = line.split(",")
    if len(fields) not in (4, 5):
        raise _fail(
            source, n, f"a pattern line is {_PATTERN_SYNTAX}; got {len(fields)} comma-separated "
            f"field(s){_blank_hint(line)}",
        )
    if fields[0] not in known:
        raise _fail(source, n, _unknown_region(fields[0], known))
    random = _field_int(source, n, "random flag", fields[1], RANDOM_FLAG)
    stride = _field_int(source, n, "stride", fields[2], STRIDE)
    probability = _field_int(source, n, "probability", fields[3], PROBABILITY)
    rw = default_rw
    if len(fields) == 5:
        rw = _field_text(source, n, "rw mode", fields[4].strip(" \t"), RW_MODE)
    return MasimPattern(fields[0], bool(random), stride, probability, rw)


def _parse_phase(
    paragraph: list[tuple[int, str]], known: tuple[str, ...], default_rw: str, source: str
) -> MasimPhase:
    """A phase paragraph: name line, duration line, then at least one pattern line."""
    (n_name, name), rest = paragraph[0], paragraph[1:]
    if not rest:
        raise _fail(
            source, n_name, f"phase {_show(name)} has only a name; a phase is its name, its duration "
            f"in ms, then one or more pattern lines {_PATTERN_SYNTAX}",
        )
    n_time, raw_time = rest[0]
    hint = " (is the duration line missing?)" if "," in raw_time else ""
    time_ms = _field_int(source, n_time, f"duration of phase {_show(name)}", raw_time, TIME_MS, hint)
    if len(rest) == 1:
        raise _fail(
            source, n_time, f"phase {_show(name)} has no access pattern lines; "
            f"add at least one {_PATTERN_SYNTAX} line",
        )
    patterns = tuple(_parse_pattern(n, line, known, default_rw, source) for n, line in rest[1:])
    total = sum(p.probability for p in patterns)
    if not TOTAL_PROBABILITY.ok(total):
        raise _fail(
            source, n_name, f"phase {_show(name)} has total probability {total}; "
            f"allowed: {TOTAL_PROBABILITY.allowed}",
        )
    return MasimPhase(name, time_ms, patterns)


def parse_masim(text: str, source: str = "<string>", default_rw: str = "wo") -> MasimConfig:
    """Parse masim config text; ``default_rw`` is masim's ``--default_rw_mode`` for 4-field lines.

    Raises FormatError (naming ``source`` and the line) for any input masim would refuse or
    misread; nothing is returned unless the whole text is valid.
    """
    _validate("default_rw", default_rw, RW_MODE)
    if not isinstance(text, str):
        raise ConfigError("text", type(text).__name__, "a str (use load_masim() to read a file)")
    first, *phases = _paragraphs(_content_lines(text, source), source)
    regions = _parse_regions(first, source)
    known = tuple(r.name for r in regions)
    return MasimConfig(regions, tuple(_parse_phase(p, known, default_rw, source) for p in phases))


def load_masim(path, default_rw: str = "wo") -> MasimConfig:
    """Read and parse a masim config file; bytes that are not UTF-8 are a FormatError."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(
            str(path), data.count(b"\n", 0, e.start) + 1,
            f"not UTF-8 text (bad byte at offset {e.start}); masim configs are read as UTF-8",
        ) from None
    return parse_masim(text, source=str(path), default_rw=default_rw)


# ---------------------------------------------------------------------------------------------
# Writing


def _region_line(r: MasimRegion) -> str:
    """A region line; the init data field is written only when there is a file."""
    return f"{r.name}, {r.size}" + (f", {r.init_data}" if r.init_data is not None else "")


def _pattern_line(p: MasimPattern) -> str:
    """A pattern line with all five fields."""
    return f"{p.region}, {int(p.random)}, {p.stride}, {p.probability}, {p.rw}"


def format_masim(cfg: MasimConfig) -> str:
    """masim config text for ``cfg``; the real masim runs it and ``parse_masim`` gives ``cfg`` back.

    Every pattern line carries its rw mode, so the result does not depend on the reader's
    default rw mode.
    """
    if not isinstance(cfg, MasimConfig):
        raise ConfigError("cfg", type(cfg).__name__, "a MasimConfig")
    lines = [f"# regions: {_REGION_SYNTAX[1:-1]}"]
    lines += [_region_line(r) for r in cfg.regions]
    for i, ph in enumerate(cfg.phases):
        lines.append("")
        if i == 0:
            lines.append(f"# phases: name, duration ms, then {_PATTERN_SYNTAX[1:-1]} lines")
        lines += [ph.name, str(ph.time_ms)] + [_pattern_line(p) for p in ph.patterns]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Conversion to the workload model


@dataclass(frozen=True)
class MasimTiming:
    """Cost of one of masim's single-byte accesses, in ns; model parameters, not measurements.

    ``seq_access_ns`` (default 1 ns): a sequential sweep streams through cache lines, so each
    access costs about one loop iteration. ``random_access_ns`` (default 90 ns): a random access
    into a region larger than the caches is about one DRAM miss (80-100 ns on current servers);
    lower it for regions that fit in cache. Each pattern pick performs ``ACCESSES_PER_PICK``
    (128 Ki) accesses, so a pick lasts ``ACCESSES_PER_PICK * cost`` ns.
    """

    seq_access_ns: float = 1.0
    random_access_ns: float = 90.0

    def __post_init__(self):
        _validate("MasimTiming.seq_access_ns", self.seq_access_ns, ACCESS_NS)
        _validate("MasimTiming.random_access_ns", self.random_access_ns, ACCESS_NS)

    def access_ns(self, pattern: MasimPattern) -> float:
        """Cost of one access of ``pattern``."""
        return self.random_access_ns if pattern.random else self.seq_access_ns

    def page_visits_per_s(self, pattern: MasimPattern) -> float:
        """Distinct-page visits a second while ``pattern`` runs (sub-page strides revisit a page)."""
        accesses = 1e9 / self.access_ns(pattern)
        if pattern.random:
            return accesses
        return accesses * min(pattern.stride, PAGE_SIZE) / PAGE_SIZE


def time_fractions(phase: MasimPhase, timing: MasimTiming) -> tuple[float, ...]:
    """Share of the phase each pattern runs: probability times cost, normalised (equal-size picks)."""
    weights = [p.probability * timing.access_ns(p) for p in phase.patterns]
    total = sum(weights)
    return tuple(w / total for w in weights)


def _page_rate(pattern: MasimPattern, fraction: float, size: int, timing: MasimTiming) -> float:
    """Touches a second of each page of the region, capped at the model's ceiling."""
    npages = -(-size // PAGE_SIZE)
    return min(MAX_PAGE_RATE_HZ, fraction * timing.page_visits_per_s(pattern) / npages)


def _to_phase(phase: MasimPhase, sizes: dict[str, int], timing: MasimTiming) -> Phase:
    """A model phase; patterns never picked (probability 0) are left out."""
    patterns = tuple(
        Pattern(p.region, _page_rate(p, f, sizes[p.region], timing), WRITE_FRACTION[p.rw])
        for p, f in zip(phase.patterns, time_fractions(phase, timing))
        if f > 0
    )
    return Phase(name=phase.name, duration_us=phase.time_ms * 1000, patterns=patterns)


def masim_to_workload(
    cfg: MasimConfig, timing: MasimTiming = MasimTiming(), name: str = "masim", repeat: int = 0
) -> Workload:
    """The workload model of ``cfg``: one anon region per masim region, per-page Poisson rates.

    ``repeat`` counts runs of the phase list (0 = forever, the model's convention; masim itself
    runs the list once unless given ``--repeat``). Init data files are ignored.
    """
    if not isinstance(cfg, MasimConfig):
        raise ConfigError("cfg", type(cfg).__name__, "a MasimConfig")
    if not isinstance(timing, MasimTiming):
        raise ConfigError("timing", type(timing).__name__, "a MasimTiming")
    sizes = {r.name: r.size for r in cfg.regions}
    return Workload(
        name=name,
        regions=tuple(Region(r.name, max(r.size, PAGE_SIZE), kind="anon") for r in cfg.regions),
        phases=tuple(_to_phase(ph, sizes, timing) for ph in cfg.phases),
        repeat=repeat,
    )
