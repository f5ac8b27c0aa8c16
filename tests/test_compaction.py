"""Compaction (csrc/compaction.c): full and proactive compaction build free pageblocks,
count and charge what they do, and equal the pure-Python reference step for step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_reference_equal import BUDDY_CONFIGS, BUDDY_OPS, VMA_PAGES, BuddyLockstep, runs

from acma._reference import compaction as rc
from acma._reference.reporting import ReportingRef
from acma.errors import ConfigError
from acma.mm.compaction import RESULTS, Compaction, fragmentation_score
from acma.mm.guest import Guest, GuestConfig


def fragmented(size_mib=256, used_frac=0.5, seed=1) -> Guest:
    """Two processes fault pages in random interleaving; the second exits: holes everywhere."""
    g = Guest(GuestConfig(size=f"{size_mib} MiB", block_size="128 MiB", swap=0))
    n = int(size_mib * 256 * 0.8)
    a = g.spawn().mmap(n * 4096, explicit=True)
    b = g.spawn().mmap(n * 4096, explicit=True)
    keep = np.random.default_rng(seed).random(n) < used_frac
    ia = ib = 0
    for k in keep:
        if k:
            a.touch(ia, True)
            ia += 1
        else:
            b.touch(ib, True)
            ib += 1
    b.resize(0)
    return g


def test_compact_memory_builds_free_pageblocks_and_counts():
    g = fragmented()
    before = fragmentation_score(g, 0)
    ff0 = len(g.scan_pageblocks()[0])
    c = Compaction(g)
    assert c.compact_memory() == ["complete", "skipped"]
    assert before > 50 and fragmentation_score(g, 0) < 10
    assert len(g.scan_pageblocks()[0]) > ff0
    k = c.counters
    assert k["compact_migrated"] == g.vmstat()["pgmigrate_success"] > 0
    assert k["compact_cost_us"] == pytest.approx(k["compact_migrated"] * g.config.costs.migrate_us)
    assert g.stall_totals_us()["compact"] == pytest.approx(k["compact_cost_us"])
    assert k["compact_migrate_scanned"] > 0 and k["compact_free_scanned"] > 0 and k["compact_success"] == 1
    g.check()


def test_data_survives_migration():
    g = fragmented(seed=3)
    v = g.processes[0].vmas[0]
    present = (v.ptes() & 0x80000000) == 0
    Compaction(g).compact_memory()
    assert (((v.ptes() & 0x80000000) == 0) == present).all()
    g.check()


def test_proactive_stops_at_the_low_mark_and_defers_without_progress():
    g = fragmented(seed=2)
    c = Compaction(g, proactiveness=60)        # low 40, high 50
    assert fragmentation_score(g, 0) > c.wmark_high
    g.core.run(500_000)
    assert c.run_due() == 1
    assert fragmentation_score(g, 0) <= c.wmark_low
    assert c.counters["compact_success"] == 1 and c.next_due_us() == 1_000_000
    g.core.run(1_000_000)
    assert c.run_due() == 0                       # below the high mark: nothing to do


def test_proactiveness_zero_disables_and_bad_values_are_refused():
    g = fragmented(seed=4)
    c = Compaction(g, proactiveness=0)
    g.core.run(10_000_000)
    assert c.run_due() == 0 and c.next_due_us() is None
    for kw in ({"proactiveness": 101}, {"proactiveness": -1}, {"interval_us": 0}):
        with pytest.raises(ConfigError):
            Compaction(g, **kw)
    with pytest.raises(ConfigError):
        c.compact_zone(7)


class CompactionLockstep(BuddyLockstep):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.ref = ReportingRef.from_guest(self.g)
        self.c = Compaction(self.g)
        # a second VMA on node 0, whose pages interleave with the first's and then go: holes
        self.vmas.append(self.g.processes[0].mmap(VMA_PAGES * 4096, explicit=True, node=0))

    def holes(self, start, n, pattern):
        last = len(self.vmas) - 1
        for k in range(n):
            self.touch(last if pattern >> (k % 8) & 1 else 0, start + k, 1)
        self.shrink(last, 0)

    def compact(self, zone, proactive, proactiveness):
        zone %= self.g.nr_nodes * 2
        self.c.proactiveness = proactiveness
        before = dict(self.c.counters)
        got = self.c.compact_zone(zone, proactive)
        res, st_ = rc.compact_zone(self.ref, zone, proactive, proactiveness)
        assert got == RESULTS[res]
        for k, v in st_.items():
            assert self.c.counters[f"compact_{k}"] - before[f"compact_{k}"] == v, k


COMPACT_OPS = st.one_of(
    BUDDY_OPS,
    st.tuples(st.just("compact"), st.integers(0, 3), st.booleans(), st.sampled_from([1, 20, 60, 100])),
    st.tuples(st.just("compact"), st.integers(0, 3), st.booleans(), st.sampled_from([1, 20, 60, 100])),
    st.tuples(st.just("holes"), st.integers(0, VMA_PAGES - 1), st.integers(50, 600), st.integers(1, 254)),
)


@runs(60)
@given(cfg=st.sampled_from(BUDDY_CONFIGS), ops=st.lists(COMPACT_OPS, min_size=20, max_size=80))
def test_compaction_equals_reference(cfg, ops):
    """Scanner positions show in every outcome: free lists, mappings, counts, C == reference."""
    m = CompactionLockstep(cfg)
    for op in ops:
        getattr(m, op[0])(*op[1:])
        m.check()


@pytest.mark.parametrize("cfg", range(len(BUDDY_CONFIGS)))
def test_compaction_equals_reference_on_holes(cfg):
    """A guaranteed case with many migrations: interleaved faults, one VMA gone, full compaction."""
    m = CompactionLockstep(BUDDY_CONFIGS[cfg])
    m.holes(0, 1500, 0b10110101)
    m.check()
    for zone in range(m.g.nr_nodes * 2):
        m.compact(zone, False, 20)
        m.check()
    assert m.c.counters["compact_migrated"] > 100
