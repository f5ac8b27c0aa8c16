"""Simulations: phases apply on time, traces replay, the demo is deterministic, the CLI runs."""

import json

import numpy as np
from click.testing import CliRunner

from acma.cli import main
from acma.mm.guest import GuestConfig
from acma.scenarios import demo_simulation
from acma.sim import KernelChurn, Simulation
from acma.workloads.masim import masim_to_workload, parse_masim
from acma.workloads.model import Pattern, Phase, Region, Workload
from acma.workloads.trace import Trace, TraceEvents

MIB = 1 << 20
ZIGZAG = "a, 20000000\nb, 20000000\n\nlow\n2000\na, 0, 4096, 1\n\nhigh\n2000\nb, 0, 4096, 1\n"


def small():
    return GuestConfig(size="256 MiB", block_size="4 MiB", swap="256 MiB", seed=3)


def test_phases_switch_rates_and_sizes():
    wl = Workload("w", (Region("a", 16 * MIB), Region("b", 16 * MIB, initial_size=0)),
                  (Phase("one", 1_000_000, (Pattern("a", 100.0),)),
                   Phase("two", 1_000_000, (Pattern("b", 100.0),), sizes={"b": 8 * MIB})), repeat=1)
    sim = Simulation(small(), sample_interval_us=100_000)
    run = sim.add_workload(wl)
    sim.run(1_500_000)
    a, b = run.vmas["a"], run.vmas["b"]
    assert a.info()["present"] == a.npages and b.info()["nalloc"] == 2048
    t0 = sim.guest.now_us
    sim.run(400_000)
    assert a.truth_accessed(t0, sim.guest.now_us).sum() == 0      # phase two leaves a alone
    assert b.truth_accessed(t0, sim.guest.now_us)[:2048].mean() > 0.99   # only the in-use half
    sim.run(1_000_000)                                              # repeats over: idle
    assert run.phase_index is None
    sim.guest.check()


def test_masim_workload_runs_and_hot_region_moves():
    wl = masim_to_workload(parse_masim(ZIGZAG))
    sim = Simulation(small())
    run = sim.add_workload(wl)
    sim.run(1_000_000)
    t0 = sim.guest.now_us
    sim.run(500_000)
    a = run.vmas["a"].truth_accessed(t0, sim.guest.now_us).mean()
    b = run.vmas["b"].truth_accessed(t0, sim.guest.now_us).mean()
    assert a > 0.9 and b < 0.01
    sim.run(2_000_000)
    t1 = sim.guest.now_us
    sim.run(500_000)
    assert run.vmas["b"].truth_accessed(t1, sim.guest.now_us).mean() > 0.9


def test_trace_replay_faults_each_page_once():
    vpn = np.array([100, 101, 100, 5000, 101, 9_000_000], dtype=np.uint64)
    ev = TraceEvents(time=np.arange(6, dtype=np.uint64) * 1000, pid=np.array([1, 1, 1, 1, 1, 2], dtype=np.uint32),
                     vpn=vpn, write=np.array([0, 1, 0, 0, 0, 1], dtype=bool))
    sim = Simulation(small())
    run = sim.add_trace(Trace(tick_ns=1000.0, meta={}, events=ev))
    sim.run(1_000_000)
    assert sim.guest.vmstat()["trace_events"] == 6
    assert sim.guest.vmstat()["pgfault"] == 4                      # 100, 101, 5000, 9e6
    assert len(run.processes) == 2 and len(run.vmas) == 3          # 100-101 and 5000 are 2 VMAs
    sim.guest.check()


def test_demo_is_deterministic_and_consistent():
    a = demo_simulation(5).run(90_000_000).summary()
    sim = demo_simulation(5)
    b = sim.run(90_000_000).summary()
    assert a == b
    sim.guest.check()
    assert b["pgfaults"] > 0


def test_kernel_churn_fragments_but_stays_consistent():
    sim = Simulation(small())
    sim.add_kernel_churn(KernelChurn(nr=64, target_pages=4096, interval_us=10_000))
    sim.run(2_000_000)
    assert sim.guest.states()["kernel"] == 4096
    sim.guest.check()


def test_cli_demo(tmp_path):
    out = tmp_path / "demo.json"
    r = CliRunner().invoke(main, ["demo", "--minutes", "1", "--no-progress", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "/proc/pressure/memory" in r.output
    doc = json.loads(out.read_text())
    assert doc["summary"]["runtime_s"] == 60
    assert len(doc["series"]["t_us"]) == 61


def test_cli_rejects_bad_minutes():
    r = CliRunner().invoke(main, ["demo", "--minutes", "0"])
    assert r.exit_code != 0 and "minutes" in r.output
