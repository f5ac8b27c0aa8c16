"""Bad guest input gets a ConfigError that names the field and the allowed range, before
anything is built."""

import pytest

from acma.errors import ConfigError
from acma.mm.costs import Costs
from acma.mm.guest import Guest, GuestConfig, NodeConfig

BAD = [
    (dict(size=-1), "guest.size"),
    (dict(size="32 MiB"), "guest.size"),
    (dict(size="2 TiB"), "guest.size"),
    (dict(size="100 MiB"), "guest.size"),             # not a multiple of the block size
    (dict(size="1.5 KiB"), "guest.size"),
    (dict(size="4 GB/s"), "guest.size"),
    (dict(size=True), "guest.size"),
    (dict(block_size="3 MiB"), "guest.block_size"),
    (dict(block_size="1 MiB"), "guest.block_size"),
    (dict(block_size="4 GiB"), "guest.block_size"),
    (dict(swap="1000 B"), "guest.swap"),
    (dict(swap=-4096), "guest.swap"),
    (dict(swappiness=201), "guest.swappiness"),
    (dict(swappiness=-1), "guest.swappiness"),
    (dict(swappiness=1.5), "guest.swappiness"),
    (dict(watermark_scale_factor=0), "guest.watermark_scale_factor"),
    (dict(psi_hz=5), "guest.psi_hz"),
    (dict(seed=-1), "guest.seed"),
    (dict(seed=2**64), "guest.seed"),
    (dict(thp="yes"), "guest.thp"),
    (dict(nodes=(NodeConfig(size="1 GiB"),)), "guest.nodes"),           # does not add up
    (dict(nodes=(NodeConfig(size="4 GiB", movable="4 GiB"),)), "guest.nodes"),
    (dict(nodes=(NodeConfig(size="4 GiB", movable="5 GiB"),)), "guest.nodes[0]"),
    (dict(nodes=(NodeConfig(size="4 GiB", offline="100 MiB"),)), "guest.nodes[0].offline"),
    (dict(nodes=(NodeConfig(size="4 GiB", tier=""),)), "guest.nodes[0].tier"),
    (dict(nodes=(NodeConfig(size="4 GiB", latency_ns=0),)), "guest.nodes[0].latency_ns"),
    (dict(nodes=("4 GiB",)), "guest.nodes[0]"),
    (dict(costs="cheap"), "guest.costs"),
]


@pytest.mark.parametrize("kwargs,field", BAD, ids=[f"{f}:{list(k.values())[0]!r}" for k, f in BAD])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as e:
        Guest(GuestConfig(**kwargs))
    assert e.value.field == field
    assert "allowed" in str(e.value)


@pytest.mark.parametrize("field,value", [("swapin_us", -1), ("migrate_us", float("nan")), ("zero_page_us", "1")])
def test_bad_costs(field, value):
    with pytest.raises(ConfigError, match=f"costs.{field}"):
        Costs(**{field: value})


def test_bad_process_and_vma_input():
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB"))
    p = g.spawn()
    for kwargs, field in [(dict(size=0), "size"), (dict(size="1 MiB", kind="shm"), "kind"),
                          (dict(size="1 MiB", in_use="2 MiB"), "in_use"), (dict(size="1 MiB", node=1), "node")]:
        with pytest.raises(ConfigError) as e:
            p.mmap(**kwargs)
        assert e.value.field == field
    v = p.mmap("1 MiB")
    with pytest.raises(ConfigError):
        v.resize(10**9)
    with pytest.raises(ConfigError):
        v.touch(256)
    with pytest.raises(ConfigError):
        g.kernel_alloc(order=11)
    with pytest.raises(ConfigError):
        g.offline_block(99)
    with pytest.raises(ConfigError):
        g.run_until(-5)
    g.run_until(1000)
    with pytest.raises(ConfigError):
        g.run_until(10)  # time never goes backwards
    g.check()


def test_watermarks_follow_the_kernel_formula():
    """min_free_kbytes = sqrt(16 * lowmem kB) (4 GiB -> 8192 kB) without THP; with THP the
    khugepaged floor of pageblock * zones * 11 pages applies (here one zone: 22528 kB)."""
    g = Guest(GuestConfig(size="4 GiB", thp=False))
    z = g.zoneinfo()[0]
    assert z["min"] == 8192 // 4
    gap = max(z["min"] // 4, z["managed"] * 10 // 10000)
    assert (z["low"], z["high"]) == (z["min"] + gap, z["min"] + 2 * gap)
    g2 = Guest(GuestConfig(size="4 GiB", thp=True))
    assert g2.zoneinfo()[0]["min"] == 22528 // 4
