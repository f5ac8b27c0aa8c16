"""virtio-balloon and user-space hotplug on the host: protocol, counters, and the invariant that
no page holding guest data is ever ballooned, reported or released."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_host import MIB, S, check_books, small_vm

from acma import _core
from acma.errors import ConfigError
from acma.host.balloon import STATS_TAGS, attach_balloon
from acma.host.config import HostConfig
from acma.host.host import Host
from acma.host.hotplug import HotplugConfig
from acma.host.limits import HardLimit
from acma.host.pipeline import PipelineConfig, TodayPipeline


class Bare:
    """A policy that only gives each VM preallocated backing and a balloon: tests drive the rest."""

    name = "bare"

    def attach(self, host):
        from acma.host.backing import attach_backing

        for vm in host.vms:
            attach_backing(vm, host.host_page_size, prefaulted=True)
            attach_balloon(vm)

    def advance(self, vm, t_us):
        vm.advance_to(t_us)

    def control(self, host, t_us):
        pass

    def stats(self, vm):
        return {}


def bare_host_of(*specs, **kw) -> Host:
    return Host(HostConfig(capacity="1 GiB", vm_overhead=16 * MIB, vms=specs, **kw), Bare())


def bare_host(**kw) -> Host:
    return bare_host_of(small_vm("a"), **kw)


def assert_no_data_given_away(vm) -> None:
    """Balloon pages are driver pages; Reported pages are free block heads; the tracker and
    every page state recount in C (Guest.check covers 'a page holding guest data is discarded')."""
    p = vm.guest.core.pages()
    balloon = vm.balloon.driver.pages.pages()
    assert np.all(p["state"][balloon] == _core.PS_DRIVER)
    reported = (p["flags"] & _core.PG_REPORTED) != 0
    assert np.all(p["state"][reported] == _core.PS_FREE)
    vm.guest.check()


def test_inflate_then_deflate_follows_num_pages():
    host = bare_host()
    vm = host.vms[0]
    host.run(3 * S)
    dev = vm.balloon
    before = vm.backed_bytes()
    dev.set_target_memory(128 * MIB)
    host.step(4 * S)
    want = (vm.online_bytes() - 128 * MIB) // 4096
    assert dev.num_pages == want and dev.actual == want == vm.balloon.driver.pages.actual
    assert dev.inflated_pages == want
    assert vm.backed_bytes() < before                    # whole host pages went back to the host
    assert before - vm.backed_bytes() == dev.released_bytes
    assert_no_data_given_away(vm)
    dev.set_num_pages(100)
    host.step(5 * S)
    assert dev.actual == 100 and dev.deflated_pages == want - 100
    assert_no_data_given_away(vm)
    with pytest.raises(ConfigError, match="balloon.num_pages"):
        dev.set_num_pages(-1)


def test_stats_queue_has_the_standard_tags():
    host = bare_host()
    host.run(3 * S)
    stats = host.vms[0].balloon.request_stats()
    assert tuple(stats) == STATS_TAGS
    mi = host.vms[0].guest.meminfo()
    assert stats["MEMTOT"] == mi["MemTotal"] * 1024 and stats["AVAIL"] == mi["MemAvailable"] * 1024
    assert stats["MINFLT"] >= stats["MAJFLT"] >= 0 and stats["HTLB_PGALLOC"] == 0
    assert host.vms[0].balloon.stats_updated_us == 3 * S


def test_out_of_puff_retries_later():
    host = bare_host()
    vm = host.vms[0]
    host.run(2 * S)
    vm.balloon.set_num_pages(vm.guest.nr_pages)           # everything: the allocator must give up
    host.step(3 * S)
    assert vm.balloon.driver.out_of_puff >= 1
    assert 0 < vm.balloon.actual < vm.guest.nr_pages
    assert_no_data_given_away(vm)


def test_hard_limit_schedule_uses_the_classic_balloon():
    lim = (HardLimit("a", 2 * S, 160 * MIB), HardLimit("a", 6 * S, None))
    pol = TodayPipeline(PipelineConfig(reclaim=None, compact_interval_us=0, hotplug=None, limits=lim))
    host = Host(HostConfig(capacity="1 GiB", vm_overhead=16 * MIB, vms=(small_vm("a"),)), pol)
    host.run(5 * S)
    vm = host.vms[0]
    assert vm.balloon.actual_bytes() == vm.online_bytes() - 160 * MIB
    host.run(3 * S)
    assert vm.balloon.actual == 0
    assert_no_data_given_away(vm)
    with pytest.raises(ConfigError, match=r"limits\[0\].vm"):
        Host(HostConfig(vms=(small_vm("a"),)), TodayPipeline(PipelineConfig(
            reclaim=None, compact_interval_us=0, limits=(HardLimit("zz", 0, None),))))


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 50), target=st.integers(0, 40_000), hps=st.sampled_from(["2 MiB", "4 KiB"]))
def test_reporting_and_balloon_never_take_guest_data(seed, target, hps):
    pol = TodayPipeline(PipelineConfig(reclaim=None, compact_interval_us=0, hotplug=None))
    host = Host(HostConfig(capacity="1 GiB", vm_overhead=16 * MIB, seed=seed, host_page_size=hps,
                           vms=(small_vm("a", seed=seed), small_vm("b", hot=48, grow=160))), pol)
    for t in range(1, 16):
        if t == 4:
            host.vms[0].balloon.set_num_pages(target)
        host.step(t * S)
        for vm in host.vms:
            assert_no_data_given_away(vm)
    assert sum(vm.balloon.reports for vm in host.vms) > 0


def test_hotplug_counts_attempts_and_failures_on_unmovable_pages():
    from dataclasses import replace

    spec = small_vm("a")                      # all ZONE_NORMAL: kernel pages may land anywhere
    spec = replace(spec, guest=replace(spec.guest, nodes=()), churn=None)
    pol = TodayPipeline(PipelineConfig(reclaim=None, compact_interval_us=0, report_order=None,
                                       hotplug=HotplugConfig(low_avail=16 * MIB, unplug_slack=16 * MIB)))
    host = Host(HostConfig(capacity="1 GiB", vm_overhead=16 * MIB, vms=(spec,)), pol)
    g = host.vms[0].guest
    # a kernel page pinned in every block (as slab scattered by fallback stealing would be)
    pins = {}
    taken = []
    while len(pins) < g.nr_pages // g.block_pages:
        pfn = g.kernel_alloc(0)
        b = pfn // g.block_pages
        (taken if b in pins else pins.setdefault(b, [])).append(pfn)
    for pfn in taken:
        g.kernel_free(pfn)
    host.run(5 * S)
    h = host.vms[0].hotplug
    assert h.unplug_attempts == h.unplugged + h.unplug_failures
    assert h.unplug_failures > 0 and h.unplugged == 0
    assert h.unplug_attempts == 5 * h.config.max_offline_tries   # every run tries, every try fails
    assert host.vms[0].online_bytes() == 256 * MIB
    g.check()


def test_hotplug_enforces_max_mem_and_follows_demand():
    spec = small_vm("a")
    from dataclasses import replace

    spec = replace(spec, max_mem=192 * MIB)
    pol = TodayPipeline(PipelineConfig(reclaim=None, compact_interval_us=0))
    host = Host(HostConfig(capacity="1 GiB", vm_overhead=16 * MIB, vms=(spec,)), pol)
    host.run(15 * S)
    vm = host.vms[0]
    assert vm.online_bytes() <= 192 * MIB
    s = host.series.guest("a")
    assert s["online"].max() == 256 * MIB and s["online"][-1] <= 192 * MIB
    assert s["struct_page"][-1] == s["online"][-1] // 64 == vm.memory_hotplug.struct_page_bytes()
    assert vm.hotplug.unplug_attempts >= 2


def test_damon_reclaim_runs_in_the_pipeline():
    pol = TodayPipeline(PipelineConfig(reclaim={"sample_interval": 20_000, "aggr_interval": 200_000,
                                                "min_age": 2_000_000, "wmarks_high": 1000, "wmarks_mid": 999,
                                                "wmarks_low": 0},
                                       compact_interval_us=0, hotplug=None))
    host = Host(HostConfig(capacity="1 GiB", vm_overhead=16 * MIB, vms=(small_vm("a", hot=8, grow=160),)), pol)
    host.run(15 * S)
    st = pol.stats(host.vms[0])
    assert st["damos_tried_bytes"] > 0
    host.vms[0].guest.check()


def test_host_pressure_sets_balloon_limits():
    pol = TodayPipeline(PipelineConfig(reclaim=None, compact_interval_us=0, hotplug=None,
                                       balloon_pressure=(0.7, 0.6)))
    host = Host(HostConfig(capacity=320 * MIB, vm_overhead=16 * MIB, host_swap=512 * MIB,
                           vms=(small_vm("a", hot=48, grow=64), small_vm("b", hot=48, grow=64))), pol)
    host.run(8 * S)
    assert pol.limits.pressure_events > 0
    assert any(vm.balloon.actual > 0 for vm in host.vms)
    for vm in host.vms:
        assert vm.online_bytes() - vm.balloon.actual_bytes() >= vm.min_mem
        assert_no_data_given_away(vm)
    check_books(host)
    with pytest.raises(ConfigError, match="pressure"):
        TodayPipeline(PipelineConfig(reclaim=None, balloon_pressure=(0.5, 0.9)))


def test_deflate_on_oom_lets_the_guest_go_on():
    from dataclasses import replace

    spec = replace(small_vm("a", hot=32, grow=96), guest=replace(small_vm("a").guest, swap=0), churn=None)
    host = bare_host_of(spec)
    vm = host.vms[0]
    vm.balloon.set_num_pages(40_000)                   # ~156 MiB of 256: the grow phase needs it back
    host.run(15 * S)
    info = vm.balloon.driver.pages.info()
    assert info["oom_deflated"] > 0 and not vm.killed and not host.failures
    assert vm.balloon.actual == info["actual"] == 40_000 - info["oom_deflated"]
    assert_no_data_given_away(vm)
