"""Memory hotplug accounting (acma/mm/hotplug.py, csrc/hotplug.c): struct page overhead per
block, memmap_on_memory, and vmemmap optimization of chunks with its reversal."""

from __future__ import annotations

import pytest

from acma._core import CoreError, GuestOOM
from acma.errors import ConfigError
from acma.mm.guest import Guest, GuestConfig, NodeConfig
from acma.mm.hotplug import MemoryHotplug

MIB = 2**20


def guest(block="128 MiB") -> Guest:
    return Guest(GuestConfig(size="1 GiB", block_size=block, swap=0,
                             nodes=(NodeConfig(size="1 GiB", movable="512 MiB", offline="512 MiB"),)))


def test_struct_page_overhead_is_64_bytes_per_page_and_follows_the_blocks():
    g = guest()
    hp = MemoryHotplug(g)
    assert hp.struct_page_bytes() == 512 * MIB // 64          # 4 boot blocks: 8 MiB
    free0 = g.meminfo()["MemFree"]
    hp.online(4)
    assert hp.struct_page_bytes() == 640 * MIB // 64
    assert g.states()["kernel"] == 512                         # 2 MiB of memmap, unmovable
    assert g.meminfo()["MemFree"] == free0 + (128 - 2) * 1024
    hp.offline(4)
    assert hp.struct_page_bytes() == 512 * MIB // 64 and g.states()["kernel"] == 0
    assert g.meminfo()["MemFree"] == free0
    g.check()


def test_memmap_on_memory_comes_from_the_block_itself():
    g = guest()
    hp = MemoryHotplug(g, memmap_on_memory=True)
    managed0 = g.meminfo()["MemTotal"]
    hp.online(5)
    pages = g.core.pages(5 * 32768, 512)
    assert (pages["state"] == 3).all()                         # the block's first pageblock
    assert g.meminfo()["MemTotal"] == managed0 + (128 - 2) * 1024
    g.check()
    hp.offline(5)
    assert g.meminfo()["MemTotal"] == managed0
    g.check()


def test_memmap_on_memory_offline_failure_changes_nothing():
    g = guest()
    hp = MemoryHotplug(g, memmap_on_memory=True)
    hp.online(5)
    before = g.core.pages()
    pfn = g.core.alloc_pages(0, 1, 4, 0)                       # a driver page: ZONE_MOVABLE, block 5
    assert pfn // 32768 == 5
    with pytest.raises(CoreError):
        hp.offline(5)
    g.check()
    assert (g.core.pages(5 * 32768, 512)["state"] == 3).all()
    assert before["state"].size == g.nr_pages


def test_memmap_on_memory_needs_whole_pageblocks():
    with pytest.raises(ConfigError):
        MemoryHotplug(Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap=0)), memmap_on_memory=True)


def test_vmemmap_optimization_frees_six_of_eight_and_reverses():
    g = guest()
    hp = MemoryHotplug(g)
    hp.online(4)
    chunk = 4 * 32768 + 4096
    kernel0 = g.states()["kernel"]
    assert hp.optimize_chunk(chunk) == 6
    assert g.states()["kernel"] == kernel0 - 6
    assert hp.struct_page_bytes() == 640 * MIB // 64 - 6 * 4096
    assert hp.restore_chunk(chunk) == 6
    assert g.states()["kernel"] == kernel0
    assert hp.optimize_chunk(chunk) == 6 and hp.restore_chunk(chunk) == 6
    hp.offline(4)
    assert g.states()["kernel"] == 0
    g.check()
    assert MemoryHotplug(guest(), vmemmap_kept=1).optimize_chunk(0) == 7   # boot memory: accounted


def test_restore_can_fail_for_want_of_memory():
    g = Guest(GuestConfig(size="256 MiB", block_size="128 MiB", swap=0,
                          nodes=(NodeConfig(size="256 MiB", offline="128 MiB"),)))
    hp = MemoryHotplug(g)
    hp.online(1, "normal")
    chunk = 32768
    hp.optimize_chunk(chunk)
    for z in range(2):
        g.core.set_watermarks(z, 0, 0, 0)
    try:
        while True:
            g.kernel_alloc()
    except GuestOOM:
        pass
    with pytest.raises(GuestOOM):
        hp.restore_chunk(chunk)
    g.check()
