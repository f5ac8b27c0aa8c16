"""Compaction (csrc/compaction.c): vm.compact_memory (compact_node on every zone) and
kcompactd's proactive compaction, with vmstat-style counters.

Proactive compaction follows kcompactd: every 500 ms (HPAGE_FRAG_CHECK_INTERVAL_MSEC) each
node whose fragmentation score exceeds the high mark (low + 10, low = max(100 -
proactiveness, 5)) is compacted zone by zone until a zone's score is at most the low mark; if
the node's score did not fall, that node's next check waits 32 s (500 ms << COMPACT_MAX_DEFER_SHIFT).
``run_due`` performs the checks due at the guest's current time, so cost follows the clock
only at 2 checks a second and a C call each.
"""

from __future__ import annotations

from .._core import _check, ffi, lib
from ..errors import ConfigError

CHECK_INTERVAL_US = 500_000
DEFER_SHIFT = 6
RESULTS = ("skipped", "complete", "success", "contended")
_STAT_KEYS = ("migrate_scanned", "free_scanned", "isolated", "migrated", "migrate_failed", "cost_ns")


def fragmentation_score(guest, node: int) -> int:
    """fragmentation_score_node: the node's zones' extfrag at order 9, weighted by size."""
    out = ffi.new("uint32_t *")
    _check("fragmentation_score", lib.acma_fragmentation_score_node(guest.core._m, _node(guest, node), out))
    return out[0]


def zone_fragmentation_score(guest, zone: int) -> int:
    """extfrag_for_order(zone, 9): percent of free memory in blocks under 2 MiB."""
    out = ffi.new("uint32_t *")
    _check("fragmentation_score_zone", lib.acma_fragmentation_score_zone(guest.core._m, int(zone), out))
    return out[0]


def _node(guest, node) -> int:
    if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node < guest.nr_nodes:
        raise ConfigError("node", node, f"a node in [0, {guest.nr_nodes})")
    return node


class Compaction:
    """Compaction of one guest: ``compact_memory()`` on demand, ``run_due()`` for kcompactd's
    proactive checks (``proactiveness`` 0..100, 0 disables, default 20 as vm.compaction_proactiveness).

    ``counters`` holds compact_migrate_scanned, compact_free_scanned, compact_isolated,
    compact_migrated, compact_migrate_failed, compact_success, compact_fail, compact_cost_us.
    """

    def __init__(self, guest, proactiveness: int = 20, interval_us: int = CHECK_INTERVAL_US):
        if isinstance(proactiveness, bool) or not isinstance(proactiveness, int) or not 0 <= proactiveness <= 100:
            raise ConfigError("compaction.proactiveness", proactiveness, "an integer in [0, 100]")
        if isinstance(interval_us, bool) or not isinstance(interval_us, int) or not 1000 <= interval_us <= 60_000_000:
            raise ConfigError("compaction.interval_us", interval_us, "microseconds in [1000, 6e7]")
        self.guest = guest
        self.proactiveness = proactiveness
        self.interval_us = interval_us
        self._next = [guest.now_us + interval_us] * guest.nr_nodes
        self.counters = {f"compact_{k}": 0 for k in _STAT_KEYS[:-1]}
        self.counters.update(compact_success=0, compact_fail=0, compact_cost_us=0.0, proactive_runs=0,
                             proactive_deferred=0)

    @property
    def wmark_low(self) -> int:
        return max(100 - self.proactiveness, 5)

    @property
    def wmark_high(self) -> int:
        return min(self.wmark_low + 10, 100)

    def compact_zone(self, zone: int, proactive: bool = False) -> str:
        """compact_zone at order -1; returns how it ended (skipped, complete, success, contended)."""
        if isinstance(zone, bool) or not isinstance(zone, int) or not 0 <= zone < self.guest.nr_nodes * 2:
            raise ConfigError("zone", zone, f"a zone index in [0, {self.guest.nr_nodes * 2})")
        st = ffi.new("acma_compact_stats *")
        res = ffi.new("uint32_t *")
        _check("compact_zone", lib.acma_compact_zone(self.guest.core._m, zone, int(proactive),
                                                     max(self.proactiveness, 1), st, res))
        for k in _STAT_KEYS[:-1]:
            self.counters[f"compact_{k}"] += int(getattr(st, k))
        self.counters["compact_cost_us"] += st.cost_ns / 1000
        result = RESULTS[res[0]]
        if result != "skipped":
            goal = "success" if proactive else "complete"
            self.counters["compact_success" if result == goal else "compact_fail"] += 1
        return result

    def compact_node(self, node: int, proactive: bool = False) -> list[str]:
        """compact_node: every zone of the node."""
        _node(self.guest, node)
        return [self.compact_zone(node * 2 + t, proactive) for t in (0, 1)]

    def compact_memory(self) -> list[str]:
        """echo 1 > /proc/sys/vm/compact_memory: every node, fully."""
        out = []
        for n in range(self.guest.nr_nodes):
            out += self.compact_node(n)
        self.guest.sync_psi()
        return out

    def next_due_us(self) -> int | None:
        return min(self._next) if self.proactiveness else None

    def run_due(self) -> int:
        """kcompactd's timer: proactive compaction of each node whose check is due; returns
        the nodes compacted."""
        if not self.proactiveness:
            return 0
        now, done = self.guest.now_us, 0
        for n in range(self.guest.nr_nodes):
            if self._next[n] > now:
                continue
            timeout = self.interval_us
            prev = fragmentation_score(self.guest, n)
            if prev > self.wmark_high:
                self.compact_node(n, proactive=True)
                self.counters["proactive_runs"] += 1
                done += 1
                if fragmentation_score(self.guest, n) >= prev:
                    timeout <<= DEFER_SHIFT
                    self.counters["proactive_deferred"] += 1
            self._next[n] = now + timeout
        if done:
            self.guest.sync_psi()
        return done
