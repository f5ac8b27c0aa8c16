"""Quota goal metrics measured on the guest (mm/damon/core.c,
damos_set_quota_goal_current_value and its helpers), and the goals' score."""

from __future__ import annotations

from ..mm import memcg
from ..units import PAGE_SIZE
from .scheme import QuotaGoal


def _node_totals(guest, nid: int) -> tuple[int, int] | None:
    """(managed, free) pages of node ``nid``; None for a node the guest does not have."""
    if not 0 <= nid < guest.nr_nodes:
        return None
    zones = [guest.core.zone_info(nid * 2 + zt) for zt in (0, 1)]
    return sum(z["managed"] for z in zones), sum(z["free"] for z in zones)


def _lru_totals(guest) -> tuple[int, int]:
    """(active, inactive) LRU pages over every node."""
    act = inact = 0
    for n in range(guest.nr_nodes):
        lru = guest.core.node_lru(n)
        act += lru["active_anon"] + lru["active_file"]
        inact += lru["inactive_anon"] + lru["inactive_file"]
    return act, inact


def current_value(goal: QuotaGoal, state: dict, guest, eligible=None) -> int:
    """The goal's current value now. ``state`` keeps what a metric needs between windows
    (some_mem_psi_us: the last PSI total); ``eligible()`` gives node_eligible_mem_bp's
    (bytes on the goal's node, all bytes) of pattern-eligible regions (paddr)."""
    m = goal.metric
    if m == "user_input":
        return goal.current_value
    if m == "some_mem_psi_us":          # the system's "some" memory stall time per window
        now = guest.psi.total_us("some")
        value = now - state.get("last_psi_total", 0)
        state["last_psi_total"] = now
        return value
    if m in ("node_mem_used_bp", "node_mem_free_bp"):
        t = _node_totals(guest, goal.nid)
        if t is None or not t[0]:
            return 0 if m == "node_mem_used_bp" else 10000
        total, free = t
        return (total - free) * 10000 // total if m == "node_mem_used_bp" else free * 10000 // total
    if m in ("node_memcg_used_bp", "node_memcg_free_bp"):
        t = _node_totals(guest, goal.nid)
        if t is None or not t[0]:
            return 0 if m == "node_memcg_used_bp" else 10000
        used = memcg.memcg_pages(guest, goal.memcg_path, goal.nid)
        return used * 10000 // t[0] if m == "node_memcg_used_bp" else (t[0] - used) * 10000 // t[0]
    if m in ("active_mem_bp", "inactive_mem_bp"):
        act, inact = _lru_totals(guest)
        if not act + inact:
            return 0
        return (act if m == "active_mem_bp" else inact) * 10000 // (act + inact)
    if m == "node_eligible_mem_bp":
        on_node, total = eligible() if eligible else (0, 0)
        return on_node * 10000 // total if total else 0
    raise ValueError(f"unknown goal metric {m}")   # the data model admits no other


def goals_score(goals, states: dict, guest, eligible=None) -> int:
    """damos_quota_score: the highest current*10000/target over the goals."""
    best = 0
    for i, g in enumerate(goals):
        cur = current_value(g, states.setdefault(i, {}), guest, (lambda g=g: eligible(g.nid)) if eligible else None)
        best = max(best, cur * 10000 // g.target_value)
    return best


def node_of_bytes(guest, start: int, end: int, nid: int) -> int:
    """Bytes of physical range [start, end) on node ``nid`` (memory blocks' nodes)."""
    bsz = guest.block_pages * PAGE_SIZE
    nodes = guest.resolved.block_node
    total = 0
    b = start // bsz
    while b * bsz < end and b < len(nodes):
        if int(nodes[b]) == nid:
            total += min(end, (b + 1) * bsz) - max(start, b * bsz)
        b += 1
    return total
