"""An interrupted run resumed from a checkpoint gives exactly the uninterrupted results."""

import numpy as np
import pytest

from acma.checkpoint import load_checkpoint, save_checkpoint
from acma.errors import FormatError
from acma.scenarios import demo_simulation
from acma.sim import Simulation
from acma.mm.guest import GuestConfig
from acma.workloads.trace import Trace, TraceEvents


def _same(a, b):
    assert a.summary() == b.summary() and a.vmstat == b.vmstat and a.psi == b.psi
    for k in a.series:
        assert np.array_equal(a.series[k], b.series[k]), k


def test_resume_equals_uninterrupted(tmp_path):
    whole = demo_simulation(3)
    full = whole.run(150_000_000)
    first = demo_simulation(3)
    first.run(70_000_000)
    save_checkpoint(first, tmp_path / "c.ckpt")
    resumed = load_checkpoint(tmp_path / "c.ckpt")
    resumed.guest.check()
    _same(full, resumed.run(80_000_000))
    for w, r in zip(whole.workloads, resumed.workloads):
        for name in w.vmas:
            assert (w.vmas[name].ptes() == r.vmas[name].ptes()).all()


def test_resume_keeps_the_trace_position(tmp_path):
    n = 4000
    ev = TraceEvents(time=np.arange(n, dtype=np.uint64) * 500, pid=np.ones(n, np.uint32),
                     vpn=(np.arange(n, dtype=np.uint64) * 7) % 3000, write=np.zeros(n, bool))
    cfg = GuestConfig(size="64 MiB", block_size="4 MiB", swap="16 MiB", seed=1)

    def sim():
        s = Simulation(cfg, sample_interval_us=100_000)
        s.add_trace(Trace(tick_ns=1000.0, meta={}, events=ev))
        return s
    whole = sim().run(2_100_000)
    first = sim()
    first.run(1_000_000)
    save_checkpoint(first, tmp_path / "t.ckpt")
    _same(whole, load_checkpoint(tmp_path / "t.ckpt").run(1_100_000))


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "empty"])
def test_corrupt_checkpoints_are_refused(tmp_path, damage):
    s = demo_simulation(1)
    s.run(5_000_000)
    p = tmp_path / "c.ckpt"
    save_checkpoint(s, p)
    data = bytearray(p.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x40
    elif damage == "magic":
        data[0:8] = b"NOTACKPT"
    else:
        data = bytearray()
    p.write_bytes(bytes(data))
    with pytest.raises(FormatError):
        load_checkpoint(p)


def test_c_snapshot_refuses_damaged_state():
    """The C loader checks every index and the invariants, whatever the bytes say."""
    from acma._core import CoreMem
    from acma.errors import ConfigError
    s = demo_simulation(2)
    s.run(2_000_000)
    st = s.guest.core.__getstate__()
    blob = bytearray(st["blob"])
    rng = np.random.default_rng(0)
    refused = 0
    for _ in range(30):
        bad = bytearray(blob)
        for i in rng.integers(8, len(bad), 8):
            bad[int(i)] ^= 0xFF
        m = CoreMem.__new__(CoreMem)
        try:
            m.__setstate__(dict(st, blob=bytes(bad), trace=None))
        except ConfigError:
            refused += 1
        else:
            m.check()  # a flip the loader accepted must still leave a consistent state
    assert refused > 0


def test_cli_resume_matches_a_straight_run(tmp_path):
    from click.testing import CliRunner

    from acma.cli import main
    straight = CliRunner().invoke(main, ["demo", "--minutes", "3", "--no-progress"])
    ck = str(tmp_path / "run.ckpt")
    part = CliRunner().invoke(main, ["demo", "--minutes", "2", "--no-progress", "--checkpoint", ck])
    assert part.exit_code == 0, part.output
    resumed = CliRunner().invoke(main, ["demo", "--minutes", "3", "--no-progress", "--checkpoint", ck, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output == straight.output
