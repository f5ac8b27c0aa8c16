"""A long-lived host under random operations: the books add up after every step, exhaustion is
always on record, and no page holding guest data is ballooned, reported or released."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_host import MIB, S, check_books, small_vm
from test_host_devices import assert_no_data_given_away

from acma.host.config import HostConfig
from acma.host.host import Host
from acma.host.pipeline import PipelineConfig, TodayPipeline


class HostMachine(RuleBasedStateMachine):
    @initialize(cap=st.sampled_from([384, 512, 768]), on_exh=st.sampled_from(["swap", "kill"]),
                seed=st.integers(0, 9))
    def build(self, cap, on_exh, seed):
        pol = TodayPipeline(PipelineConfig(reclaim=None, compact_interval_us=5 * S, hotplug_interval_us=2 * S))
        self.host = Host(HostConfig(capacity=cap * MIB, vm_overhead=16 * MIB, on_exhaustion=on_exh,
                                    host_swap=128 * MIB, seed=seed,
                                    vms=(small_vm("a", seed=seed), small_vm("b", hot=64, grow=160))), pol)
        self.booked = True

    @rule(seconds=st.integers(1, 3))
    def advance(self, seconds):
        for _ in range(seconds):
            self.host.step(self.host.now_us + S)
        self.booked = True

    @rule(vm=st.integers(0, 1), pages=st.integers(0, 65536))
    def balloon(self, vm, pages):
        v = self.host.vms[vm]
        if not v.killed:
            v.balloon.set_num_pages(min(pages, v.guest.nr_pages))
            self.booked = False

    @rule(vm=st.integers(0, 1), plug=st.booleans())
    def hotplug(self, vm, plug):
        v = self.host.vms[vm]
        if not v.killed:
            v.hotplug.plug() if plug else v.hotplug.unplug()
            self.booked = False

    @invariant()
    def books_add_up(self):
        if hasattr(self, "host"):
            check_books(self.host, self.booked)
            for vm in self.host.live():
                assert_no_data_given_away(vm)
                assert vm.online_bytes() == vm.hotplug.online_blocks() * vm.hotplug.block_bytes


HostMachine.TestCase.settings = settings(max_examples=8, stateful_step_count=12, deadline=None)
TestHostMachine = HostMachine.TestCase
