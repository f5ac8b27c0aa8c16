"""csrc/damos_ops.c against its pure-Python reference (acma/_reference/damos_ops.py): the same
pages visited and passed, every passing page changed as the action says, nothing else
changed, the guest's invariants intact."""

import bisect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acma._reference import damos_ops as ref
from acma.damos.handlers import c_apply
from acma.damos.scheme import Filter
from acma.errors import ConfigError
from acma.mm import memcg
from acma.mm.guest import Guest, GuestConfig, NodeConfig

PG_KEEP = ref.PG_ACTIVE | ref.PG_REFERENCED | 8 | 16   # active, referenced, dirty, workingset


def small_guest(seed: int):
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap="64 MiB", seed=seed,
                          nodes=(NodeConfig(size="32 MiB"), NodeConfig(size="32 MiB"))))
    vmas = []
    for i, cg in enumerate(("/a", "/b")):
        p = g.spawn()
        memcg.set_cgroup(p, cg)
        vmas.append(p.mmap("2 MiB", node=i))
        vmas.append(p.mmap("1 MiB", kind="file", node=1 - i))
        vmas.append(p.mmap("1 MiB", node=i))
    for v in vmas:
        v.set_rate(200.0, write_fraction=0.5)
    g.run_until(100_000)
    for v in vmas:
        v.set_rate(0.0)
    return g, vmas


FILTER = st.builds(
    lambda t, m, a, cg, lo: Filter(t, matching=m, allow=a,
                                   memcg_path=cg if t == "memcg" else None,
                                   hugepage_size=(lo, lo + 8192) if t == "hugepage_size" else None),
    st.sampled_from(("anon", "active", "memcg", "young", "hugepage_size", "unmapped")),
    st.booleans(), st.booleans(), st.sampled_from(("/a", "/b", "/none")), st.sampled_from((0, 4096, 8192)))

ACTIONS = {"paddr": ("stat", "lru_prio", "lru_deprio", "pageout", "migrate_hot", "migrate_cold"),
           "vaddr": ("stat", "cold", "pageout", "migrate_hot", "migrate_cold")}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), ops=st.sampled_from(("paddr", "vaddr")), data=st.data(),
       filters=st.lists(FILTER, max_size=3), default_reject=st.booleans(),
       mkold=st.tuples(st.integers(0, 16383), st.integers(0, 8192)))
def test_c_walk_equals_reference(seed, ops, data, filters, default_reject, mkold):
    g, vmas = small_guest(seed)
    nmc = memcg.vma_cgroup_ids(g)
    # make part of memory not young: one stat pass with a young filter mkolds what it sees
    c_apply(g, "paddr", "stat", [mkold[0]], [min(mkold[1], g.nr_pages - mkold[0])], [0],
            (Filter("young", matching=True),), False, nmc)
    before = g.core.pages()
    young = np.zeros(g.nr_pages, bool)
    lru = np.flatnonzero((before["state"] == 1) | (before["state"] == 2))
    young[lru] = g.young_pfns(lru, clear=False)
    outside = np.ones(g.nr_pages, bool)
    outside[mkold[0]:mkold[0] + mkold[1]] = False
    young[lru] |= outside[lru]            # never mkold'ed: page_idle says young
    action = data.draw(st.sampled_from(ACTIONS[ops]))
    gbases = [v.gbase for v in sorted((v for p in g.processes for v in p.vmas), key=lambda v: v.gbase)]
    ptes = {}
    for v in vmas:
        for off, p in enumerate(v.ptes()):
            ptes[v.gbase + off] = int(p) if not p & 0x80000000 else None
    if ops == "paddr":
        lo = data.draw(st.integers(0, g.nr_pages - 1))
        segs = [(lo, data.draw(st.integers(0, g.nr_pages - lo)))]
        ilx = [0]
    else:
        picks = data.draw(st.lists(st.sampled_from(vmas), min_size=1, max_size=3, unique_by=lambda v: v.id))
        segs, ilx = [], []
        for v in sorted(picks, key=lambda v: v.gbase):
            first = data.draw(st.integers(0, v.npages - 1))
            segs.append((v.gbase + first, data.draw(st.integers(0, v.npages - first))))
            ilx.append(v.start // 4096 + first)
    target = data.draw(st.integers(0, 1))
    dests = data.draw(st.sampled_from(((), ((0, 1), (1, 1)), ((1, 3),))))
    ids = memcg.cgroup_ids(g)
    visited, passed = ref.walk(ops, segs, ptes.get, before, filters, default_reject, gbases, nmc, ids, young)
    nv, npassed, napplied, cost = c_apply(g, ops, action, [s for s, _ in segs], [n for _, n in segs], ilx,
                                          tuple(filters), default_reject, nmc, target, dests)
    assert (nv, npassed) == (len(visited), len(passed))
    assert cost >= 0
    after = g.core.pages()
    passed_set = set(passed)
    node_of = lambda pfn: pfn * 4096 // (32 << 20)  # noqa: E731
    owner_pte = {}
    for v in vmas:
        for off, p in enumerate(v.ptes()):
            owner_pte[v.gbase + off] = p
    for pfn in np.flatnonzero((before["state"] == 1) | (before["state"] == 2)).tolist():
        owner = int(before["owner"][pfn])
        now = owner_pte[owner]
        if pfn not in passed_set:         # filtered out or outside the range: untouched
            assert now == pfn and after["flags"][pfn] & PG_KEEP == before["flags"][pfn] & PG_KEEP
            continue
        if action == "pageout":
            assert now & 0x80000000       # swapped or dropped (swap has room for everything)
        elif action.startswith("migrate"):
            if ops == "paddr" or not dests:
                dest = target
            else:
                pos = bisect.bisect_right([s for s, _ in segs], owner) - 1
                k = (ilx[pos] + owner - segs[pos][0]) % sum(w for _, w in dests)
                dest = dests[0][0] if k < dests[0][1] else dests[-1][0]
            assert node_of(now) == (dest if dest != node_of(pfn) else node_of(pfn))
        else:
            assert now == pfn
            mask, val = ref.expected_flags(action, int(before["flags"][pfn]))
            assert after["flags"][pfn] & mask == val
    g.check()


def test_bad_request_is_refused_before_anything_changes():
    g, vmas = small_guest(1)
    before = g.core.pages()
    from acma._core import CoreError
    with pytest.raises(CoreError):
        c_apply(g, "paddr", "willneed", [0], [10], [0], (), False, [])
    with pytest.raises(CoreError):
        c_apply(g, "paddr", "stat", [g.nr_pages - 1], [2], [0], (), False, [])
    after = g.core.pages()
    assert all((before[k] == after[k]).all() for k in before)


def test_willneed_reads_back_swapped_pages():
    g, vmas = small_guest(2)
    v = vmas[0]
    nmc = memcg.vma_cgroup_ids(g)
    c_apply(g, "vaddr", "pageout", [v.gbase], [v.npages], [0], (), False, nmc)
    assert v.info()["swapped"] == v.npages
    faults = g.vmstat()["pgfault"]
    c_apply(g, "vaddr", "willneed", [v.gbase], [v.npages], [0], (), False, nmc)
    assert v.info()["present"] == v.npages and g.vmstat()["pgfault"] == faults
    g.check()


def test_memcg_pages_counts_the_cgroup_hierarchy():
    g, vmas = small_guest(3)
    a = memcg.memcg_pages(g, "/a")
    b = memcg.memcg_pages(g, "/b")
    assert a + b == g.states()["anon"] + g.states()["file"]
    assert memcg.memcg_pages(g, "/") == a + b
    assert memcg.memcg_pages(g, "/a", 0) + memcg.memcg_pages(g, "/a", 1) == a
    assert memcg.memcg_pages(g, "/a", 7) == 0
    with pytest.raises(ConfigError):
        memcg.set_cgroup(g.processes[0], "relative")
