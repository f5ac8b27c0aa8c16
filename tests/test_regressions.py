"""One test per crash the fuzzer found (docs/robustness.md §5): each used to corrupt memory or
kill the interpreter; each now gets a clear error or the right answer."""

import numpy as np
import pytest

from acma._core import CoreMem
from acma.damon.regions import Regions, three_regions
from acma.errors import ConfigError
from acma.mm.costs import Costs
from acma.mm.guest import Guest, GuestConfig


@pytest.fixture
def gv():
    g = Guest(GuestConfig(size="1 GiB", block_size="128 MiB", swap=0))
    return g, g.spawn().mmap("4 MiB")


def test_vma_ptes_and_truth_refuse_a_short_length(gv):
    g, v = gv
    for call in (lambda: g.core.vma_ptes(v.id, 1), lambda: g.core.truth_accessed(v.id, 1, 0, 10),
                 lambda: g.core.vma_ptes(True, 1)):
        with pytest.raises(ConfigError):
            call()
    g.check()


def test_scan_into_checks_length_and_writability(gv):
    g, _ = gv
    with pytest.raises(ConfigError):
        g.core.scan_pageblocks_into(np.zeros(1, np.uint64), np.zeros(1, np.uint64))
    ro = np.frombuffer(bytes(8), np.uint64)
    with pytest.raises(ConfigError):
        g.core.scan_pageblocks_into(ro, ro)


def test_trace_arrays_are_copied(gv):
    g, _ = gv
    v = g.processes[0].mmap("64 KiB", explicit=True)
    t = np.zeros(4, np.uint64)
    w = np.full(4, v.gbase << 1, np.uint64)
    g.core.set_trace(t, w)
    w[0] = (v.gbase + v.npages) << 1        # changing the caller's array changes nothing
    g.core.run(10)
    assert g.vmstat()["trace_events"] == 4
    g.check()


def test_idle_bitmap_small_integer_type(gv):
    g, _ = gv
    assert g.idle_bitmap(0, np.uint8(255)).shape == (4,)
    with pytest.raises(ConfigError):
        g.idle_bitmap(0, g.nr_pages + 1)


def test_checkpoint_next_us_is_not_trusted():
    c = CoreMem(1024, 1024, 1, 1, 0, 60, Costs().as_dict(), [0], [0], [1])
    c.vma_add(0, 16, 0, 0, False)
    st = c.__getstate__()
    c2 = CoreMem.__new__(CoreMem)
    c2.__setstate__(st)
    c2.run(10)
    c2.check()


def test_merge_two_index_wrap_and_three_regions_edges():
    r = Regions.from_ranges([(0, 4096)])
    with pytest.raises(ConfigError):
        r.merge_two(2**64 - 1)
    with pytest.raises(ConfigError):
        three_regions([(0, 0), (1, 4096), (8192, 2**64 - 1)], 4096)


def test_young_pfns_range_checked(gv):
    g, _ = gv
    with pytest.raises(ConfigError):
        g.young_pfns(np.array([2**32 + 5]))
    with pytest.raises(ConfigError):
        g.young_pfns([1.5])
    with pytest.raises(ConfigError):
        Guest(GuestConfig(nodes=5))
