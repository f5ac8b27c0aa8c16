"""Memory blocks: offline migrates movable pages out and refuses unmovable ones; online adds."""

import pytest

from acma._core import CoreError
from acma.mm.guest import Guest, GuestConfig, NodeConfig

MIB = 1 << 20


def test_offline_migrates_and_online_adds():
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap=0, seed=1,
                          nodes=(NodeConfig(size="64 MiB", movable="16 MiB", offline="8 MiB"),)))
    total = g.meminfo()["MemTotal"]
    assert total == 56 * 1024
    v = g.spawn().mmap(32 * MIB)
    v.set_rate(1000.0)
    g.run_until(100_000)
    before = v.ptes().copy()
    block = int(before[0]) // 1024                    # a block that holds data of the VMA
    g.offline_block(block)
    after = v.ptes()
    moved = (before // 1024) == block
    assert moved.any() and ((after[moved] // 1024) != block).all()
    assert g.vmstat()["pgmigrate_success"] == moved.sum()
    assert g.meminfo()["MemTotal"] == total - 4 * 1024
    g.online_block(15, "movable")
    g.online_block(14, "normal")
    assert g.meminfo()["MemTotal"] == total + 4 * 1024
    g.check()


def test_offline_refuses_unmovable_and_changes_nothing():
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap=0, seed=1))
    pfn = g.kernel_alloc(0)
    states = g.states()
    with pytest.raises(CoreError, match="busy"):
        g.offline_block(pfn // 1024)
    assert g.states() == states
    g.check()
    with pytest.raises(CoreError, match="state"):
        g.online_block(0)                             # already online
