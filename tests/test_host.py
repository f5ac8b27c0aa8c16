"""The host: config validation, books that add up, exhaustion on record, determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acma.errors import ConfigError
from acma.host.config import HostConfig, VMSpec
from acma.host.host import Host
from acma.host.pipeline import TODAY_RECLAIM, PipelineConfig, StaticPolicy, TodayPipeline
from acma.host.policy import Policy, make_policy, policy_names
from acma.mm.guest import GuestConfig, NodeConfig
from acma.sim import KernelChurn
from acma.workloads.model import Pattern, Phase, Region, Workload

MIB = 1 << 20
S = 1_000_000


def small_workload(hot_mib: int, grow_mib: int) -> Workload:
    return Workload(
        name="w", regions=(Region("hot", hot_mib * MIB), Region("grow", max(grow_mib, 1) * MIB, initial_size=0)),
        phases=(Phase("a", 5 * S, (Pattern("hot", 20.0, 0.5),)),
                Phase("b", 5 * S, (Pattern("hot", 20.0, 0.5), Pattern("grow", 5.0, 1.0)),
                      sizes={"grow": max(grow_mib, 1) * MIB}),
                Phase("c", 5 * S, (Pattern("hot", 5.0, 0.5),), sizes={"grow": 0})))


def small_vm(name: str, size_mib: int = 256, hot: int = 32, grow: int = 96, seed: int = 0) -> VMSpec:
    g = GuestConfig(size=size_mib * MIB, block_size="32 MiB", swap=64 * MIB, seed=seed,
                    nodes=(NodeConfig(size=size_mib * MIB, movable=(size_mib - 64) * MIB),))
    return VMSpec(name, g, (small_workload(hot, grow),), KernelChurn(nr=4, target_pages=256, interval_us=200_000),
                  min_mem=64 * MIB, memmap_on_memory=False)


def light_pipeline(**kw) -> TodayPipeline:
    """The pipeline without DAMON_RECLAIM (its own tests cover it) for fast host tests."""
    return TodayPipeline(PipelineConfig(reclaim=None, compact_interval_us=0, hotplug_interval_us=2 * S, **kw))


def test_config_errors_name_the_field():
    vm = small_vm("a")
    with pytest.raises(ConfigError, match=r"host.capacity"):
        HostConfig(capacity="1 MiB", vms=(vm,)).resolve()
    with pytest.raises(ConfigError, match=r"host.host_page_size"):
        HostConfig(host_page_size="1 MiB", vms=(vm,)).resolve()
    with pytest.raises(ConfigError, match=r"host.on_exhaustion"):
        HostConfig(on_exhaustion="pray", vms=(vm,)).resolve()
    with pytest.raises(ConfigError, match=r"vms\[1\].name"):
        HostConfig(vms=(vm, vm)).resolve()
    with pytest.raises(ConfigError, match=r"vms\[0\].max_mem"):
        HostConfig(vms=(VMSpec("a", vm.guest, max_mem=300 * MIB, memmap_on_memory=False),)).resolve()
    with pytest.raises(ConfigError, match=r"vms\[0\].memmap_on_memory"):
        HostConfig(vms=(VMSpec("a", vm.guest),)).resolve()
    with pytest.raises(ConfigError, match=r"vms\[0\].min_mem"):
        HostConfig(vms=(VMSpec("a", vm.guest, min_mem=128 * MIB, max_mem=64 * MIB, memmap_on_memory=False),)).resolve()
    with pytest.raises(ConfigError, match=r"policy"):
        Host(HostConfig(vms=(vm,)), object())
    with pytest.raises(ConfigError, match=r"policy"):
        make_policy("nope")
    assert {"static", "today"} <= set(policy_names())
    assert isinstance(StaticPolicy(), Policy) and isinstance(light_pipeline(), Policy)


def check_books(host: Host, just_booked: bool = True) -> None:
    """The invariant: used = sum of footprints + overhead, within capacity after booking, and
    every tick over capacity has a failure on record. Between bookings (``just_booked`` False)
    devices may have changed the backing; that is booked, and checked, at the next tick."""
    h = host.series.host()
    assert np.all(h["used"] == h["guest_footprint"] + h["overhead"])
    assert np.all(h["used"] <= h["capacity"])
    used_now = sum(vm.footprint() for vm in host.vms) + host.overhead()
    assert used_now == host.used()
    if just_booked:
        assert used_now == h["used"][-1]
    for vm in host.vms:
        g = host.series.guest(vm.name)
        assert np.all(g["footprint"] == g["backed"] - g["host_swapped"])
        assert np.all(g["host_swapped"] >= 0)
    if host.exhausted_us:
        assert host.failures
    for vm in host.live():
        vm.guest.check()


@settings(max_examples=15, deadline=None)
@given(cap_mib=st.sampled_from([320, 448, 640]), policy=st.sampled_from(["static", "today"]),
       on_exh=st.sampled_from(["swap", "kill"]), hps=st.sampled_from(["2 MiB", "4 KiB"]),
       seed=st.integers(0, 3))
def test_books_add_up_and_exhaustion_is_on_record(cap_mib, policy, on_exh, hps, seed):
    cfg = HostConfig(capacity=cap_mib * MIB, host_page_size=hps, vm_overhead=16 * MIB, on_exhaustion=on_exh,
                     host_swap=128 * MIB, seed=seed, vms=(small_vm("a"), small_vm("b", hot=48, grow=128)))
    host = Host(cfg, StaticPolicy() if policy == "static" else light_pipeline())
    for t in range(1, 16):
        host.step(t * S)
        check_books(host)
    over = [f for f in host.failures if f.action in ("swap", "kill")]
    if policy == "static" and 2 * 256 + 32 > cap_mib:
        assert over, "static allocation above capacity must be a recorded failure"


def test_kill_stops_the_biggest_guest_and_frees_its_memory():
    cfg = HostConfig(capacity=400 * MIB, vm_overhead=16 * MIB, on_exhaustion="kill",
                     vms=(small_vm("a", size_mib=128), small_vm("b", size_mib=256)))
    host = Host(cfg, StaticPolicy())
    assert [f.action for f in host.failures] == ["kill"] and host.failures[0].vm == "b"
    assert host.vms[1].killed and host.vms[1].footprint() == 0
    host.step(S)
    assert host.exhausted_us == 0          # after the kill the rest fits
    host.run(3 * S)
    check_books(host)
    assert host.used() == 128 * MIB + 16 * MIB


def test_swap_charges_touches_of_swapped_memory():
    cfg = HostConfig(capacity=400 * MIB, vm_overhead=16 * MIB, host_swap=256 * MIB,
                     vms=(small_vm("a"), small_vm("b")))
    host = Host(cfg, StaticPolicy())
    host.run(15 * S)
    check_books(host)
    assert host.host_swap_used() >= 2 * 256 * MIB + 32 * MIB - 400 * MIB
    assert host.failures and all(f.action == "swap" for f in host.failures)
    # the host swapped the coldest memory first: free guest memory before workload pages
    assert sum(vm.host_swapins for vm in host.vms) >= 0


def series_of(seed: int) -> dict:
    cfg = HostConfig(capacity=448 * MIB, vm_overhead=16 * MIB, seed=seed,
                     vms=(small_vm("a"), small_vm("b", hot=48, grow=128)))
    host = Host(cfg, TodayPipeline(PipelineConfig(reclaim=dict(TODAY_RECLAIM, min_age=2 * S),
                                                  compact_interval_us=5 * S, hotplug_interval_us=2 * S)))
    host.run(12 * S)
    return {**{f"host.{k}": v for k, v in host.series.host().items()},
            **{f"{n}.{k}": v for n in host.series.names() for k, v in host.series.guest(n).items()}}


def test_a_seed_fixes_every_result():
    a, b = series_of(3), series_of(3)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    c = series_of(4)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_summary_and_csv():
    from acma.host.summary import format_summary, summarize

    cfg = HostConfig(capacity="1 GiB", vm_overhead=16 * MIB, vms=(small_vm("a"), small_vm("b")))
    host = Host(cfg, light_pipeline())
    host.run(10 * S)
    s = summarize(host)
    for k in ("host_mem_used.gib_hours", "host_mem_saved.gib_hours", "host_mem_used.peak_gib", "stall_fraction",
              "psi_mem_some_us", "pgmajfaults", "refaults", "reports", "compaction_migrations",
              "hot_unplug.attempts", "hot_unplug.failures", "struct_page.avg_mib"):
        assert k in s
    assert s["host_mem_static.gib_hours"] > s["host_mem_used.gib_hours"] > 0
    assert "policy: today" in format_summary(s)
    lines = host.series.to_csv().splitlines()
    assert lines[0] == "t_us,vm,metric,value"
    assert any(line.startswith("0,host,used,") for line in lines)


def test_cli_host_run(tmp_path):
    import json

    from click.testing import CliRunner

    from acma.cli import main

    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["host", "run", "--policy", "static", "--minutes", "1", "--no-progress",
                                  "--csv", str(out) + ".csv", "--json", str(out) + ".json", "--png", str(out)])
    assert r.exit_code == 0, r.output
    assert "host_mem_used.gib_hours" in r.output
    assert json.loads((tmp_path / "run.json").read_text())["policy"] == "static"
    assert (tmp_path / "run-host.png").stat().st_size > 0 and (tmp_path / "run-guests.png").stat().st_size > 0
    r = CliRunner().invoke(main, ["host", "run", "--policy", "nope", "--minutes", "1"])
    assert r.exit_code != 0 and "policy" in r.output


def test_step_and_run_check_time():
    host = Host(HostConfig(capacity="1 GiB", vm_overhead=16 * MIB, vms=(small_vm("a"),)), StaticPolicy())
    host.step(S)
    for bad in (S, 0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="t_us"):
            host.step(bad)
    with pytest.raises(ConfigError, match="duration_us"):
        host.run(0)
