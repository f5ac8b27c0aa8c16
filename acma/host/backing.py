"""How the host backs a guest's RAM: the guest model's host-page backing tracker
(acma.mm.backing.Backing, csrc/backing.c), one per VM.

A host page is populated when the guest first writes into it (a host fault plus zeroing,
charged to the guest's fault waits) and released only when every guest page in it has been
discarded: reported, ballooned, or unplugged. Static allocation is the same tracker started
fully backed (QEMU ``prealloc=on``) with no mechanism that discards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mm.backing import Backing

if TYPE_CHECKING:
    from .vm import VM


def attach_backing(vm: VM, host_page_size: int, prefaulted: bool):
    """Start ``vm``'s backing tracker with ``host_page_size`` host pages."""
    vm.backing = Backing(vm.guest, host_page_size, prefaulted=prefaulted)
    return vm.backing
