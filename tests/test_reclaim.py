"""Reclaim keeps what is hot and sends what is cold to swap, as the kernel's LRU does."""

from acma.mm.guest import Guest, GuestConfig

MIB = 1 << 20


def test_hot_stays_cold_goes():
    g = Guest(GuestConfig(size="256 MiB", block_size="4 MiB", swap="512 MiB", seed=2))
    p = g.spawn()
    hot = p.mmap(64 * MIB)
    hot.set_rate(200.0)
    cold = p.mmap(256 * MIB)
    cold.set_rate(0.02)
    g.run_until(60_000_000)
    g.check()
    h, c = hot.info(), cold.info()
    assert h["present"] == h["nalloc"]               # the hot set is never evicted for long
    assert c["swapped"] > 0                          # the cold set is what went to swap
    vm = g.vmstat()
    assert vm["pswpout"] > 0 and vm["pgscan_kswapd"] > 0
    free = g.zoneinfo()[0]["free"]
    assert free >= g.zoneinfo()[0]["min"]            # kswapd kept the zone above min


def test_thrashing_shows_in_psi_and_refaults():
    g = Guest(GuestConfig(size="128 MiB", block_size="4 MiB", swap="512 MiB", seed=4))
    v = g.spawn().mmap(192 * MIB)                    # a working set 1.5x memory, all hot
    v.set_rate(5.0)
    g.run_until(30_000_000)
    vm = g.vmstat()
    assert vm["workingset_refault"] > 1000 and vm["workingset_restore"] > 0
    assert g.psi.total_us("some") > 0 and g.psi.total_us("full") > 0
    g.check()


def test_file_pages_are_dropped_not_swapped():
    g = Guest(GuestConfig(size="128 MiB", block_size="4 MiB", swap=0, seed=5))
    f = g.spawn().mmap(256 * MIB, kind="file")
    f.set_rate(0.5, write_fraction=0.0)
    g.run_until(20_000_000)
    info = f.info()
    assert info["file_evicted"] > 0 and info["swapped"] == 0
    assert g.vmstat()["pswpout"] == 0
    g.check()


def test_no_swap_and_all_anon_hot_means_oom():
    import pytest

    from acma._core import GuestOOM
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap=0, seed=6))
    v = g.spawn().mmap(128 * MIB)
    v.set_rate(100.0)
    with pytest.raises(GuestOOM):
        g.run_until(10_000_000)
    assert g.vmstat()["oom_kill"] == 1
    g.check()                                         # a failed fault leaves everything consistent


def test_resize_frees_and_regrows():
    g = Guest(GuestConfig(size="128 MiB", block_size="4 MiB", swap=0, seed=8))
    v = g.spawn().mmap(64 * MIB)
    v.set_rate(1000.0)
    g.run_until(1_000_000)
    assert g.states()["anon"] == v.npages
    v.resize(0)
    assert g.states()["anon"] == 0
    v.resize(v.npages // 2)
    g.run_until(2_000_000)
    assert g.states()["anon"] == v.npages // 2
    g.check()
