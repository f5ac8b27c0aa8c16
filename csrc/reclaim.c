// SPDX-License-Identifier: GPL-2.0
/*
 * The allocation slow path, LRU lists and reclaim, after mm/page_alloc.c and mm/vmscan.c:
 * low-watermark fast path, kswapd wake, min-watermark retry, direct reclaim of 32 pages
 * (SWAP_CLUSTER_MAX) up to MAX_RECLAIM_RETRIES without progress, then OOM. Reclaim is the
 * classic two-list LRU: folio_check_references' second chance, shrink_active_list when
 * inactive_is_low, a swappiness-only anon:file split (guest-mm.md §11.5).
 */
#include <math.h>
#include "internal.h"

#define SWAP_CLUSTER_MAX 32
#define MAX_RECLAIM_RETRIES 16
#define DEF_PRIORITY 12

static uint32_t lru_index(const acma_mem *m, uint32_t pfn)
{
	return (m->pg[pfn].state == ACMA_PS_FILE ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON) +
	       !!(m->pg[pfn].flags & ACMA_PG_ACTIVE);
}

void lru_add(acma_mem *m, uint32_t pfn)
{
	list_add_head(m, &m->nodes[pfn_node(m, pfn)].lru[lru_index(m, pfn)], pfn);
}

void lru_del(acma_mem *m, uint32_t pfn)
{
	list_del(m, &m->nodes[pfn_node(m, pfn)].lru[lru_index(m, pfn)], pfn);
}

/* inactive_is_low: inactive * sqrt(10 * GiB of the type) < active. */
static int inactive_is_low(const struct node *n, int file)
{
	uint64_t inact = n->lru[file ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON].n;
	uint64_t act = n->lru[file ? LRU_ACTIVE_FILE : LRU_ACTIVE_ANON].n;
	uint64_t gb = (inact + act) >> (30 - 12);
	uint64_t ratio = gb ? (uint64_t)sqrt(10.0 * (double)gb) : 1;

	return inact * ratio < act;
}

/* shrink_active_list: tail pages lose their young bit and go inactive with PG_workingset. */
static void shrink_active(acma_mem *m, uint32_t nid, int file, uint64_t nr)
{
	struct node *n = &m->nodes[nid];
	struct list *act = &n->lru[file ? LRU_ACTIVE_FILE : LRU_ACTIVE_ANON];
	struct list *inact = &n->lru[file ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON];

	while (nr-- && act->tail != NIL) {
		uint32_t pfn = act->tail;

		list_del(m, act, pfn);
		page_referenced(m, pfn);
		m->pg[pfn].flags = (uint8_t)((m->pg[pfn].flags & ~ACMA_PG_ACTIVE) | ACMA_PG_WORKINGSET);
		list_add_head(m, inact, pfn);
		m->counters[ACMA_C_PGDEACTIVATE]++;
		m->pending_ns += m->cfg.costs.reclaim_scan_us * 1e3;
	}
}

static void activate(acma_mem *m, struct node *n, struct list *from, uint32_t pfn, int file)
{
	list_del(m, from, pfn);
	m->pg[pfn].flags |= ACMA_PG_ACTIVE;
	list_add_head(m, &n->lru[file ? LRU_ACTIVE_FILE : LRU_ACTIVE_ANON], pfn);
	m->counters[ACMA_C_PGACTIVATE]++;
	n->nonresident_age++;
}

/* folio_activate (mm/swap.c lru_activate) of a page on an LRU: to the active list's head,
 * a workingset activation; nothing if already active. For DAMOS lru_prio. */
void folio_activate_page(acma_mem *m, uint32_t pfn)
{
	struct node *n = &m->nodes[pfn_node(m, pfn)];
	int file = m->pg[pfn].state == ACMA_PS_FILE;

	if (!(m->pg[pfn].flags & ACMA_PG_ACTIVE))
		activate(m, n, &n->lru[file ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON], pfn, file);
}

/* folio_deactivate (mm/swap.c lru_deactivate): an active or referenced page goes to the
 * inactive list's head with both flags cleared; others stay. Returns 1 if it moved. */
int folio_deactivate_page(acma_mem *m, uint32_t pfn)
{
	uint8_t f = m->pg[pfn].flags;

	if (!(f & (ACMA_PG_ACTIVE | ACMA_PG_REFERENCED)))
		return 0;
	lru_del(m, pfn);
	m->pg[pfn].flags = (uint8_t)(f & ~(ACMA_PG_ACTIVE | ACMA_PG_REFERENCED));
	lru_add(m, pfn);
	m->counters[ACMA_C_PGDEACTIVATE]++;
	return 1;
}

/* shrink_inactive_list + folio_check_references on up to nr tail pages. */
static uint64_t shrink_inactive(acma_mem *m, uint32_t nid, int file, uint64_t nr, int kswapd,
				uint64_t want)
{
	struct node *n = &m->nodes[nid];
	struct list *inact = &n->lru[file ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON];
	uint64_t done = 0;

	while (nr-- && inact->tail != NIL && done < want) {
		uint32_t pfn = inact->tail;
		int young = page_referenced(m, pfn);
		int ref = m->pg[pfn].flags & ACMA_PG_REFERENCED;

		m->counters[kswapd ? ACMA_C_PGSCAN_KSWAPD : ACMA_C_PGSCAN_DIRECT]++;
		m->pending_ns += m->cfg.costs.reclaim_scan_us * 1e3;
		m->pg[pfn].flags &= (uint8_t)~ACMA_PG_REFERENCED;
		if (young) {
			if (ref) {
				activate(m, n, inact, pfn, file);
			} else {
				m->pg[pfn].flags |= ACMA_PG_REFERENCED;
				list_del(m, inact, pfn);
				list_add_head(m, inact, pfn);
				m->counters[ACMA_C_PGROTATED]++;
			}
			continue;
		}
		if (!file && m->swap_used >= m->cfg.swap_pages) {
			activate(m, n, inact, pfn, file);   /* add_to_swap failed */
			continue;
		}
		int dirty = file && (m->pg[pfn].flags & ACMA_PG_DIRTY);

		if (evict_page(m, pfn, !file)) {
			list_del(m, inact, pfn);
			list_add_head(m, inact, pfn);
			continue;
		}
		/* anon is compressed to swap; a dirty file page is written back, then dropped */
		m->pending_ns += (file ? (dirty ? m->cfg.costs.file_write_us : 0.0) : m->cfg.costs.swapout_us) * 1e3;
		m->counters[kswapd ? ACMA_C_PGSTEAL_KSWAPD : ACMA_C_PGSTEAL_DIRECT]++;
		done++;
	}
	return done;
}

/* shrink_node: priority passes from DEF_PRIORITY down, each scanning size >> priority. */
uint64_t shrink_node(acma_mem *m, uint32_t nid, uint64_t nr_to_reclaim, int kswapd)
{
	struct node *n = &m->nodes[nid];
	uint64_t done = 0;

	for (int prio = DEF_PRIORITY; prio >= 0 && done < nr_to_reclaim; prio--) {
		int swap_ok = m->swap_used < m->cfg.swap_pages;
		uint64_t anon = n->lru[LRU_INACTIVE_ANON].n + n->lru[LRU_ACTIVE_ANON].n;
		uint64_t file = n->lru[LRU_INACTIVE_FILE].n + n->lru[LRU_ACTIVE_FILE].n;
		uint64_t sw = swap_ok ? m->cfg.swappiness : 0;
		uint64_t scan[2];

		if (prio == 0 && swap_ok) {
			scan[0] = anon;
			scan[1] = file;
		} else {
			scan[0] = ((anon >> prio) * sw + 199) / 200;
			scan[1] = ((file >> prio) * (200 - sw) + 199) / 200;
		}
		for (int f = 0; f < 2 && done < nr_to_reclaim; f++) {
			if (!scan[f])
				continue;
			if (inactive_is_low(n, f))
				shrink_active(m, nid, f, scan[f]);
			done += shrink_inactive(m, nid, f, scan[f], kswapd, nr_to_reclaim - done);
		}
	}
	return done;
}

static int node_balanced(const acma_mem *m, uint32_t nid)
{
	int any = 0;

	for (uint32_t zt = 0; zt < 2; zt++) {
		const struct zone *z = &m->zones[nid * 2 + zt];

		if (!z->managed)
			continue;
		any = 1;
		if (z->free > z->wmark_high)
			return 1;
	}
	return !any;
}

/* kswapd, run to completion at the event that woke it (a simplification: see docs). */
void wake_kswapd_if_needed(acma_mem *m)
{
	for (uint32_t nid = 0; nid < m->cfg.nr_nodes; nid++) {
		struct node *n = &m->nodes[nid];

		if (!n->kswapd_wake)
			continue;
		n->kswapd_wake = 0;
		m->counters[ACMA_C_KSWAPD_WAKE]++;
		double before = m->pending_ns;

		while (!node_balanced(m, nid)) {
			uint64_t want = SWAP_CLUSTER_MAX;

			for (uint32_t zt = 0; zt < 2; zt++)
				if (m->zones[nid * 2 + zt].wmark_high > want)
					want = m->zones[nid * 2 + zt].wmark_high;
			if (!shrink_node(m, nid, want, 1))
				break;
		}
		charge_stall(m, ACMA_STALL_KSWAPD, (m->pending_ns - before) / 1e3);
		m->pending_ns = before;
	}
}

/* The zonelist: nodes from the preferred one on; MOVABLE before NORMAL for movable requests. */
int try_zones(acma_mem *m, uint32_t order, uint32_t mt, uint32_t node, int movable,
		     int mark, uint32_t *pfn)
{
	for (uint32_t k = 0; k < m->cfg.nr_nodes; k++) {
		uint32_t nid = (node + k) % m->cfg.nr_nodes;

		for (int zt = movable ? 1 : 0; zt >= 0; zt--) {
			uint32_t zi = nid * 2 + (uint32_t)zt;
			struct zone *z = &m->zones[zi];
			uint64_t w = mark == 0 ? z->wmark_min : z->wmark_low;

			if (!z->managed)
				continue;
			if (mark >= 0 && !zone_watermark_ok(m, zi, order, w)) {
				if (mark == 1)
					m->nodes[nid].kswapd_wake = 1;
				continue;
			}
			if (!buddy_alloc(m, zi, order, mt, pfn))
				return 0;
		}
	}
	return ACMA_EOOM;
}

/* __alloc_pages: fast path at low, wake kswapd, retry at min, direct reclaim, then OOM. */
int alloc_with_reclaim(acma_mem *m, uint32_t order, uint32_t mt, uint32_t node, int movable,
		       uint32_t *pfn)
{
	int noprogress = 0;

	if (!try_zones(m, order, mt, node, movable, 1, pfn))
		return 0;
	if (!try_zones(m, order, mt, node, movable, 0, pfn))
		return 0;
	m->counters[ACMA_C_ALLOCSTALL]++;
	while (noprogress < MAX_RECLAIM_RETRIES) {
		double before = m->pending_ns;
		uint64_t got = 0;

		for (uint32_t k = 0; k < m->cfg.nr_nodes; k++)
			got += shrink_node(m, (node + k) % m->cfg.nr_nodes, SWAP_CLUSTER_MAX, 0);
		charge_stall(m, ACMA_STALL_DIRECT_RECLAIM, (m->pending_ns - before) / 1e3);
		m->pending_ns = before;
		if (!try_zones(m, order, mt, node, movable, 0, pfn))
			return 0;
		noprogress = got ? 0 : noprogress + 1;
	}
	while (balloon_oom_deflate(m))   /* the OOM notifier freed balloon pages: retry */
		if (!try_zones(m, order, mt, node, movable, 0, pfn))
			return 0;
	m->counters[ACMA_C_OOM]++;
	return ACMA_EOOM;
}

int acma_reclaim(acma_mem *m, uint32_t node, uint64_t nr, uint64_t *done)
{
	if (node >= m->cfg.nr_nodes)
		return ACMA_EINVAL;
	double before = m->pending_ns;

	*done = shrink_node(m, node, nr, 1);
	charge_stall(m, ACMA_STALL_KSWAPD, (m->pending_ns - before) / 1e3);
	m->pending_ns = before;
	return 0;
}
