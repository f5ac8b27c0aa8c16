"""Cross-checks of acma against the real kernel: the same workload under Linux's own DAMON, DAMOS
and free page reporting, in a QEMU guest (see docs/fidelity.md)."""
