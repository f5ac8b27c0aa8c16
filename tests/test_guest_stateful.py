"""A hypothesis state machine over the guest's public API: after every step each page is in
exactly one state, the free lists, LRU lists, page table and reverse map agree (acma_check),
and the Python-side books add up."""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from acma._core import CoreError, GuestOOM
from acma.mm.guest import Guest, GuestConfig, NodeConfig

MIB = 1 << 20


class GuestMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**32), two_nodes=st.booleans(), swap_mib=st.sampled_from([0, 16, 64]),
                movable=st.booleans())
    def boot(self, seed, two_nodes, swap_mib, movable):
        nodes = (NodeConfig(size=32 * MIB, movable=8 * MIB if movable else 0, offline=8 * MIB),
                 NodeConfig(size=32 * MIB, tier="cxl", latency_ns=250)) if two_nodes else ()
        self.g = Guest(GuestConfig(size=64 * MIB, nodes=nodes, block_size="4 MiB", swap=swap_mib * MIB,
                                   seed=seed))
        self.proc = self.g.spawn("p")
        self.vmas = []
        self.kernel = []  # (pfn, order)
        self.t = 0

    @rule(mib=st.integers(1, 48), kind=st.sampled_from(["anon", "file"]), rate=st.sampled_from([0.0, 0.1, 5.0, 200.0]),
          frac=st.floats(0, 1))
    @precondition(lambda self: len(self.vmas) < 6)
    def mmap(self, mib, kind, rate, frac):
        v = self.proc.mmap(mib * MIB, kind=kind, in_use=int(mib * MIB * frac) // 4096 * 4096,
                           node=len(self.vmas) % self.g.nr_nodes)
        v.set_rate(rate, 0.5)
        self.vmas.append(v)

    @rule(i=st.integers(0, 5), rate=st.sampled_from([0.0, 0.5, 20.0, 1000.0]), w=st.floats(0, 1))
    @precondition(lambda self: self.vmas)
    def set_rate(self, i, rate, w):
        self.vmas[i % len(self.vmas)].set_rate(rate, w)

    @rule(i=st.integers(0, 5), frac=st.floats(0, 1))
    @precondition(lambda self: self.vmas)
    def resize(self, i, frac):
        v = self.vmas[i % len(self.vmas)]
        v.resize(int(v.npages * frac))

    @rule(ms=st.integers(1, 3000))
    def run(self, ms):
        self.t += ms * 1000
        try:
            self.g.run_until(self.t)
        except GuestOOM:
            self.t = self.g.now_us  # the fault that failed left everything consistent

    @rule(order=st.integers(0, 10), node=st.integers(0, 1), movable=st.booleans())
    def kernel_alloc(self, order, node, movable):
        try:
            pfn = self.g.kernel_alloc(order, node % self.g.nr_nodes, movable)
        except GuestOOM:
            return
        assert pfn % (1 << order) == 0
        self.kernel.append((pfn, order))

    @rule(i=st.integers(0, 1000))
    @precondition(lambda self: self.kernel)
    def kernel_free(self, i):
        pfn, order = self.kernel.pop(i % len(self.kernel))
        self.g.kernel_free(pfn, order)

    @rule(i=st.integers(0, 5), off=st.integers(0, 1 << 20), write=st.booleans())
    @precondition(lambda self: self.vmas)
    def touch(self, i, off, write):
        v = self.vmas[i % len(self.vmas)]
        info = v.info()
        if info["nalloc"]:
            try:
                v.touch(off % info["nalloc"], write)
            except GuestOOM:
                pass

    @rule(block=st.integers(0, 15))
    def offline(self, block):
        before = self.g.states()
        try:
            self.g.offline_block(block)
        except CoreError:
            after = self.g.states()
            # a refused offline changes no page's state (migrations that happened are undone
            # only in place: the counts per state are what they were)
            assert after == before
        except GuestOOM:
            pass

    @rule(block=st.integers(0, 15), movable=st.booleans())
    def online(self, block, movable):
        try:
            self.g.online_block(block, "movable" if movable else "normal")
        except CoreError:
            pass

    @rule(nr=st.integers(1, 4096))
    def reclaim(self, nr):
        self.g.core.reclaim(0, nr)

    @invariant()
    def consistent(self):
        if not hasattr(self, "g"):
            return
        self.g.check()
        states = self.g.states()
        assert sum(states.values()) == self.g.nr_pages
        infos = [v.info() for v in self.vmas]
        assert states["anon"] + states["file"] == sum(i["present"] for i in infos)
        assert sum(i["swapped"] for i in infos) == self.g.core.swap_used() <= self.g.resolved.swap_pages
        for v, info in zip(self.vmas, infos):
            ptes = v.ptes()
            present = ptes[ptes < 0x80000000]
            assert len(present) == info["present"]
            if len(present):  # a page that holds guest data is never free, taken or offline
                st_ = self.g.core.pages()["state"][present]
                assert np.isin(st_, [1, 2]).all()
        assert states["kernel"] == sum(1 << o for _, o in self.kernel)


TestGuestMachine = GuestMachine.TestCase
# 100 machines by default; HYPOTHESIS_PROFILE=long runs 50x as many (a soak)
TestGuestMachine.settings = settings(max_examples=settings.default.max_examples * 5 // 2, stateful_step_count=40,
                                    deadline=None)
