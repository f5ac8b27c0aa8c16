"""Memory pressure stall information (PSI) for one virtual runqueue, as /proc/pressure/memory.

The simulator reports memory stalls as time intervals; :class:`Psi` turns them into the kernel's
``some``/``full`` running averages (avg10, avg60, avg300), the cumulative ``total`` and
threshold triggers. Time is integer microseconds and the averaging path uses integers only, with
the kernel's fixed-point arithmetic, so results are deterministic and match the kernel's
rounding. See docs/psi.md for the model and its simplifications.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from ..errors import ConfigError

STATES = ("some", "full")

# Fixed-point format shared with the load average (kernel: FSHIFT, FIXED_1).
FSHIFT = 11
FIXED_1 = 1 << FSHIFT
# Decay per 2 s period, FIXED_1 * exp(-2 s / window) (kernel: EXP_10s, EXP_60s, EXP_300s).
EXP_10S = 1677
EXP_60S = 1981
EXP_300S = 2034
EXPS = (EXP_10S, EXP_60S, EXP_300S)
# Trigger limits (kernel: WINDOW_MIN_US, WINDOW_MAX_US, UPDATES_PER_WINDOW).
WINDOW_MIN_US = 500_000
WINDOW_MAX_US = 10_000_000
UPDATES_PER_WINDOW = 10

DEFAULT_HZ = 250
_USEC_PER_SEC = 1_000_000


def psi_freq_jiffies(hz: int) -> int:
    """The averaging period in jiffies (kernel: PSI_FREQ = 2*HZ+1, a little over 2 s)."""
    return 2 * hz + 1


def period_us(hz: int) -> int:
    """The averaging period in µs: PSI_FREQ jiffies, rounded down (2_004_000 at HZ 250)."""
    return psi_freq_jiffies(hz) * _USEC_PER_SEC // hz


def calc_load(load: int, exp: int, active: int) -> int:
    """One fixed-point decay step, load*e + active*(1-e), rounded up while rising (kernel rule).

    Rounding up when ``active >= load`` lets a steady input be reached exactly; rounding down
    otherwise lets an average fall all the way to zero.
    """
    new = load * exp + active * (FIXED_1 - exp)
    if active >= load:
        new += FIXED_1 - 1
    return new // FIXED_1


def load_int(x: int) -> int:
    """Integer part of a fixed-point value (kernel: LOAD_INT)."""
    return x >> FSHIFT


def load_frac(x: int) -> int:
    """First two decimals of a fixed-point value, truncated (kernel: LOAD_FRAC)."""
    return load_int((x & (FIXED_1 - 1)) * 100)


def format_fixed(x: int) -> str:
    """A fixed-point percent as /proc/pressure prints it: integer part, dot, two decimals."""
    return f"{load_int(x)}.{load_frac(x):02d}"


def _fixed_to_percent(x: int) -> float:
    """The printed value of a fixed-point percent as a float (two decimals, truncated)."""
    return (load_int(x) * 100 + load_frac(x)) / 100


def _check_int(field: str, value, minimum: int) -> None:
    """Reject non-integers (bool included) and values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, value, "an integer number of microseconds")
    if value < minimum:
        raise ConfigError(field, value, f"an integer >= {minimum}")


def _check_state(field: str, state) -> None:
    """Accept only 'some' or 'full'."""
    if state not in STATES:
        raise ConfigError(field, state, "'some' or 'full'")


class _IntervalSet:
    """Disjoint, sorted half-open intervals [start, end): the union of the stalls recorded."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        """Insert [start, end), merging with every interval it overlaps or touches."""
        i = bisect_left(self.ends, start)
        j = bisect_right(self.starts, end)
        if i < j:
            start = min(start, self.starts[i])
            end = max(end, self.ends[j - 1])
        self.starts[i:j] = [start]
        self.ends[i:j] = [end]

    def length(self, lo: int, hi: int) -> int:
        """Covered time within [lo, hi)."""
        total = 0
        k = bisect_right(self.ends, lo)
        while k < len(self.starts) and self.starts[k] < hi:
            total += min(self.ends[k], hi) - max(self.starts[k], lo)
            k += 1
        return total

    def drop_before(self, t: int) -> None:
        """Forget everything before ``t`` (it has been folded into a closed period)."""
        k = bisect_right(self.ends, t)
        del self.starts[:k]
        del self.ends[:k]
        if self.starts and self.starts[0] < t:
            self.starts[0] = t

    def __bool__(self) -> bool:
        return bool(self.starts)


class _StateAccount:
    """One PSI state: open-period stalls, stall time of closed periods and the three averages."""

    def __init__(self):
        self.stalls = _IntervalSet()
        self.closed_total_us = 0
        self.avg = [0, 0, 0]

    def close_period(self, start: int, end: int) -> None:
        """Fold the stall time of [start, end) into the total and the averages."""
        stall = self.stalls.length(start, end)
        self.stalls.drop_before(end)
        self.closed_total_us += stall
        active = stall * 100 // (end - start) * FIXED_1
        self.avg = [calc_load(a, e, active) for a, e in zip(self.avg, EXPS)]

    def total_us(self, open_start: int, now: int) -> int:
        """Cumulative stall time before ``now``."""
        return self.closed_total_us + self.stalls.length(open_start, now)

    def quiet(self) -> bool:
        """True when closing a period cannot change anything: no stall, all averages zero."""
        return not self.stalls and not any(self.avg)


@dataclass(frozen=True)
class PressureLine:
    """One line of /proc/pressure/memory: percent averages (2 decimals, truncated) and µs."""

    avg10: float
    avg60: float
    avg300: float
    total_us: int


@dataclass(frozen=True)
class PsiSnapshot:
    """The ``some`` and ``full`` lines as of ``time_us`` (the last :meth:`Psi.advance`)."""

    time_us: int
    some: PressureLine
    full: PressureLine


@dataclass(frozen=True)
class PsiTrigger:
    """A registered trigger, as one writes it to /proc/pressure/memory: state, threshold, window."""

    id: int
    state: str
    threshold_us: int
    window_us: int


@dataclass(frozen=True)
class PsiEvent:
    """A trigger fired at poll time ``time_us``."""

    time_us: int
    trigger: PsiTrigger


class _TriggerWindow:
    """A trigger's tracking window and rate limit (kernel: struct psi_window, psi_trigger)."""

    def __init__(self, trigger: PsiTrigger, now: int, value: int):
        self.trigger = trigger
        self.pending = False
        self.last_event_us: int | None = None
        self.reset(now, value, 0)

    def reset(self, now: int, value: int, prev_growth: int) -> None:
        """Start a new window at ``now``, remembering the previous window's growth."""
        self.start_us = now
        self.start_value = value
        self.prev_growth = prev_growth

    def growth(self, now: int, value: int) -> int:
        """Stall growth over the last window, interpolating the previous window's share."""
        size = self.trigger.window_us
        elapsed = now - self.start_us
        growth = value - self.start_value
        if elapsed > size:
            self.reset(now, value, growth)
            return growth
        return growth + self.prev_growth * (size - elapsed) // size

    def poll(self, now: int, value: int, new_stall: bool) -> bool:
        """Update at a poll; True when an event fires (at most once per window, none dropped)."""
        if new_stall:
            growth = self.growth(now, value)
            if not self.pending:
                if growth < self.trigger.threshold_us:
                    return False
                self.pending = True
        elif not self.pending:
            return False
        if self.last_event_us is not None and now < self.last_event_us + self.trigger.window_us:
            return False
        self.last_event_us = now
        self.pending = False
        return True


class Psi:
    """Memory PSI of one runqueue: stalls come in by :meth:`record`, time by :meth:`advance`.

    Averaging periods are fixed, back to back from ``start_us``, each :func:`period_us` long.
    A period closes when :meth:`advance` reaches its end; from then on its stall time is final.
    Stalls may be recorded in any order and may overlap, provided they start no earlier than
    the open period's start (:attr:`open_period_start_us`); they may end in the future.
    """

    def __init__(self, hz: int = DEFAULT_HZ, start_us: int = 0):
        _check_int("psi.hz", hz, 1)
        _check_int("psi.start_us", start_us, 0)
        self.hz = hz
        self.period_us = period_us(hz)
        self._open_start = start_us
        self._now = start_us
        self._states = {s: _StateAccount() for s in STATES}
        self._windows: list[_TriggerWindow] = []
        self._poll_period_us: int | None = None
        self._next_poll_us: int | None = None
        self._polled_total = {s: 0 for s in STATES}
        self._events: list[PsiEvent] = []

    @property
    def now_us(self) -> int:
        """The time of the last :meth:`advance` (``start_us`` before the first)."""
        return self._now

    @property
    def open_period_start_us(self) -> int:
        """Start of the open averaging period: the earliest time a new stall may start."""
        return self._open_start

    def record(self, t_start_us: int, t_end_us: int, full: bool = False) -> None:
        """Record a memory stall of the workload over [t_start_us, t_end_us).

        ``full`` says every runnable task was stalled; on one runqueue a stalled workload with
        nothing else runnable is full. A full stall also counts as ``some``. Overlaps count once.
        """
        _check_int("psi.record.t_start_us", t_start_us, 0)
        if t_start_us < self._open_start:
            raise ConfigError("psi.record.t_start_us", t_start_us,
                              f">= {self._open_start}, the start of the open period "
                              "(earlier periods are closed)")
        _check_int("psi.record.t_end_us", t_end_us, t_start_us)
        if t_start_us == t_end_us:
            return
        self._states["some"].stalls.add(t_start_us, t_end_us)
        if full:
            self._states["full"].stalls.add(t_start_us, t_end_us)

    def advance(self, now_us: int) -> None:
        """Move time to ``now_us``: run trigger polls and close every period ending at or before it.

        Polls and period ends are handled in time order; ``now_us`` never goes backwards.
        """
        _check_int("psi.advance.now_us", now_us, self._now)
        while True:
            boundary = self._open_start + self.period_us
            poll = self._next_poll_us
            if poll is not None and poll < boundary and poll <= now_us:
                self._poll(poll)
            elif boundary <= now_us:
                self._close_periods(now_us if poll is None else min(now_us, poll))
            else:
                break
        self._now = now_us

    def _close_periods(self, limit: int) -> None:
        """Close the open period; if nothing can change, skip all whole periods up to ``limit``."""
        if all(acc.quiet() for acc in self._states.values()):
            self._open_start += (limit - self._open_start) // self.period_us * self.period_us
            return
        end = self._open_start + self.period_us
        for acc in self._states.values():
            acc.close_period(self._open_start, end)
        self._open_start = end

    def total_us(self, state: str = "some") -> int:
        """Cumulative stall time of ``state`` before :attr:`now_us`, never capped (``total=``)."""
        _check_state("psi.state", state)
        return self._states[state].total_us(self._open_start, self._now)

    def fixed_averages(self, state: str) -> tuple[int, int, int]:
        """avg10, avg60, avg300 of ``state`` in the kernel's fixed point: percent * FIXED_1."""
        _check_state("psi.state", state)
        return tuple(self._states[state].avg)

    def snapshot(self) -> PsiSnapshot:
        """The current averages and totals, rounded as the kernel prints them."""
        lines = {}
        for state in STATES:
            avg = self._states[state].avg
            lines[state] = PressureLine(*(_fixed_to_percent(a) for a in avg),
                                        total_us=self.total_us(state))
        return PsiSnapshot(time_us=self._now, **lines)

    def format_proc(self) -> str:
        """The exact text of /proc/pressure/memory: a ``some`` line and a ``full`` line."""
        out = []
        for state in STATES:
            a10, a60, a300 = (format_fixed(a) for a in self._states[state].avg)
            out.append(f"{state} avg10={a10} avg60={a60} avg300={a300} "
                       f"total={self.total_us(state)}\n")
        return "".join(out)

    def add_trigger(self, state: str, threshold_us: int, window_us: int) -> PsiTrigger:
        """Register a trigger: an event when ``state`` stalls ``threshold_us`` within ``window_us``.

        Validation follows the kernel: window 500 ms..10 s, 0 < threshold <= window. The window
        starts now; polling runs every (smallest window)/10 from now on.
        """
        _check_state("psi.trigger.state", state)
        _check_int("psi.trigger.window_us", window_us, WINDOW_MIN_US)
        if window_us > WINDOW_MAX_US:
            raise ConfigError("psi.trigger.window_us", window_us,
                              f"{WINDOW_MIN_US}..{WINDOW_MAX_US} µs")
        _check_int("psi.trigger.threshold_us", threshold_us, 1)
        if threshold_us > window_us:
            raise ConfigError("psi.trigger.threshold_us", threshold_us,
                              f"1..window_us ({window_us}) µs")
        if not self._windows:
            self._polled_total = {s: self.total_us(s) for s in STATES}
        trigger = PsiTrigger(len(self._windows), state, threshold_us, window_us)
        self._windows.append(_TriggerWindow(trigger, self._now, self.total_us(state)))
        period = window_us // UPDATES_PER_WINDOW
        self._poll_period_us = min(period, self._poll_period_us or period)
        first = self._now + self._poll_period_us
        self._next_poll_us = min(first, self._next_poll_us or first)
        return trigger

    def _poll(self, now: int) -> None:
        """One trigger poll at ``now`` (kernel: update_triggers), then schedule the next."""
        totals = {s: self._states[s].total_us(self._open_start, now) for s in STATES}
        for win in self._windows:
            state = win.trigger.state
            new_stall = totals[state] != self._polled_total[state]
            if win.poll(now, totals[state], new_stall):
                self._events.append(PsiEvent(now, win.trigger))
        self._polled_total = totals
        self._next_poll_us = now + self._poll_period_us

    def pop_events(self) -> list[PsiEvent]:
        """Events fired so far, oldest first; the list is emptied."""
        events, self._events = self._events, []
        return events
