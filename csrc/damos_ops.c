// SPDX-License-Identifier: GPL-2.0
/*
 * DAMOS actions, page by page, after mm/damon/paddr.c and vaddr.c (newest mainline). One call
 * applies one action to one region range: paddr walks the pfns and takes the pages on an LRU
 * (damon_get_folio), vaddr walks the page table of each VMA piece and takes present pages
 * (willneed also the swapped and dropped ones). Ops filters decide per page with the first-hit
 * rule (damos_pa_filter_out / damos_va_filter_out); the caller passes none where the kernel
 * applies none (vaddr's madvise actions). The cost is proportional to the pages walked plus
 * the per-page work of the action, in the guest's cost units, as the kernel's kdamond pays it.
 */
#include <stdlib.h>
#include "internal.h"
#include "damos_ops.h"

#define NO_NODE 0xFFFFFFFFu

static uint32_t page_memcg(const acma_mem *m, const acma_damos_req *q, uint32_t pfn)
{
	uint32_t id = 0;

	vma_of(m, m->pg[pfn].owner, &id);
	return q->vma_memcg && id < q->nr_vma_memcg ? q->vma_memcg[id] : 0;
}

/* damos_folio_filter_match: the filter's predicate == matching. young mkolds a young page. */
static int filter_hit(acma_mem *m, const acma_damos_req *q, const acma_damos_filter *f, uint32_t pfn)
{
	int pred = 0;

	switch (f->type) {
	case ACMA_DAMOS_F_ANON:
		pred = m->pg[pfn].state == ACMA_PS_ANON;
		break;
	case ACMA_DAMOS_F_ACTIVE:
		pred = !!(m->pg[pfn].flags & ACMA_PG_ACTIVE);
		break;
	case ACMA_DAMOS_F_MEMCG:
		pred = page_memcg(m, q, pfn) == f->memcg;
		break;
	case ACMA_DAMOS_F_YOUNG:
		pred = damon_young(m, pfn);
		if (pred)
			damon_mkold(m, pfn);
		break;
	case ACMA_DAMOS_F_HUGEPAGE_SIZE:   /* every acma folio is one 4 KiB page */
		pred = f->min_sz <= 4096 && 4096 <= f->max_sz;
		break;
	default:                           /* unmapped: every acma LRU page is mapped */
		pred = 0;
	}
	return pred == (int)f->matching;
}

/* The first filter that hits decides; none: the default. */
static int filtered_out(acma_mem *m, const acma_damos_req *q, uint32_t pfn)
{
	for (uint32_t i = 0; i < q->nr_filters; i++)
		if (filter_hit(m, q, &q->filters[i], pfn))
			return !q->filters[i].allow;
	return (int)q->default_reject;
}

/* The young state a pageout or MADV_COLD clears: the accessed bit, PG_young, PG_referenced. */
static void clear_young(acma_mem *m, uint32_t pfn)
{
	page_young(m, pfn, 1);
	m->pg[pfn].flags2 &= (uint8_t)~PG2_YOUNG;
	m->pg[pfn].flags &= (uint8_t)~ACMA_PG_REFERENCED;
}

/* reclaim_pages with ignored references: anon to swap (full swap: back to the active list),
 * file dropped after writeback of a dirty page. */
static int pageout_page(acma_mem *m, uint32_t pfn, double *cost_ns)
{
	int file = m->pg[pfn].state == ACMA_PS_FILE;
	int dirty = file && (m->pg[pfn].flags & ACMA_PG_DIRTY);

	clear_young(m, pfn);
	if (!file && m->swap_used >= m->cfg.swap_pages) {
		folio_activate_page(m, pfn);
		return 0;
	}
	if (evict_page(m, pfn, !file))
		return 0;
	*cost_ns += (file ? (dirty ? m->cfg.costs.file_write_us : 0.0) : m->cfg.costs.swapout_us) * 1e3;
	return 1;
}

/* A free page on node nid only, above its low watermark, without reclaim (migrate_pages'
 * target with __GFP_THISNODE | GFP_NOWAIT); ZONE_MOVABLE first. */
static int alloc_on_node(acma_mem *m, uint32_t nid, uint32_t *np)
{
	for (int zt = 1; zt >= 0; zt--) {
		uint32_t zi = nid * 2 + (uint32_t)zt;

		if (m->zones[zi].managed && zone_watermark_ok(m, zi, 0, m->zones[zi].wmark_low) &&
		    !buddy_alloc(m, zi, 0, ACMA_MT_MOVABLE, np))
			return 0;
	}
	return ACMA_EOOM;
}

/* damos_va_migrate's weighted destination: ilx modulo the total weight, then the first
 * destination whose weight covers what is left; else the scheme's target_nid. */
static uint32_t migrate_dest(const acma_damos_req *q, uint64_t ilx)
{
	uint64_t total = 0;

	if (!q->nr_dests)
		return q->target_nid;
	for (uint32_t i = 0; i < q->nr_dests; i++)
		total += q->dest_weight[i];
	if (!total)
		return NO_NODE;
	uint64_t t = ilx % total;

	for (uint32_t i = 0; i < q->nr_dests; i++) {
		if (t < q->dest_weight[i])
			return q->dest_nid[i];
		t -= q->dest_weight[i];
	}
	return NO_NODE;
}

static int migrate_page_to(acma_mem *m, uint32_t pfn, uint32_t dest, double *cost_ns)
{
	uint32_t np;

	if (dest >= m->cfg.nr_nodes || dest == pfn_node(m, pfn))
		return 0;
	if (alloc_on_node(m, dest, &np)) {
		m->counters[ACMA_C_PGMIGRATE_FAIL]++;
		return 0;
	}
	move_page(m, pfn, np);
	*cost_ns += m->cfg.costs.migrate_us * 1e3;
	return 1;
}

/* The action on one page that passed the filters; 1 if it was applied. */
static int act(acma_mem *m, const acma_damos_req *q, uint32_t pfn, uint64_t ilx, double *cost_ns)
{
	switch (q->action) {
	case ACMA_DAMOS_PAGEOUT:
		return pageout_page(m, pfn, cost_ns);
	case ACMA_DAMOS_COLD:             /* MADV_COLD: clear young, then folio_deactivate */
		clear_young(m, pfn);
		folio_deactivate_page(m, pfn);
		return 1;
	case ACMA_DAMOS_LRU_DEPRIO:       /* damon_pa_de_or_activate counts every passing folio */
		folio_deactivate_page(m, pfn);
		return 1;
	case ACMA_DAMOS_LRU_PRIO:
		folio_activate_page(m, pfn);
		return 1;
	case ACMA_DAMOS_MIGRATE_HOT:
	case ACMA_DAMOS_MIGRATE_COLD:
		return migrate_page_to(m, pfn, q->ops == ACMA_OPS_VADDR ? migrate_dest(q, ilx) : q->target_nid,
				       cost_ns);
	default:                          /* stat */
		return 0;
	}
}

static int lru_page(const acma_mem *m, uint32_t pfn)
{
	uint8_t s = m->pg[pfn].state;

	return s == ACMA_PS_ANON || s == ACMA_PS_FILE;
}

static int check_req(const acma_mem *m, const acma_damos_req *q)
{
	uint64_t limit = q->ops == ACMA_OPS_VADDR ? m->nr_gvpn : m->cfg.nr_pages;

	if (q->ops > ACMA_OPS_PADDR || q->action >= ACMA_DAMOS_NR_ACTIONS ||
	    q->action == ACMA_DAMOS_HUGEPAGE || q->action == ACMA_DAMOS_NOHUGEPAGE ||
	    (q->action == ACMA_DAMOS_WILLNEED && q->ops != ACMA_OPS_VADDR) ||
	    (q->nr_segs && (!q->seg_start || !q->seg_len)) ||
	    (q->nr_segs && q->ops == ACMA_OPS_VADDR && !q->seg_ilx) ||
	    (q->nr_filters && !q->filters) || (q->nr_vma_memcg && !q->vma_memcg) ||
	    (q->nr_dests && (!q->dest_nid || !q->dest_weight)) || q->nr_dests > ACMA_MAX_NODES)
		return ACMA_EINVAL;
	for (uint32_t i = 0; i < q->nr_segs; i++)
		if (q->seg_start[i] > limit || q->seg_len[i] > limit - q->seg_start[i])
			return ACMA_EINVAL;
	for (uint32_t i = 0; i < q->nr_filters; i++)
		if (q->filters[i].type >= ACMA_DAMOS_F_NR)
			return ACMA_EINVAL;
	return 0;
}

/* paddr: the LRU pages of the pfn ranges. Pages are chosen first, then acted on, as the
 * kernel isolates folios into a list first: a migrated page landing further in the range is
 * never visited twice. */
static int apply_paddr(acma_mem *m, const acma_damos_req *q, acma_damos_res *res)
{
	for (uint32_t s = 0; s < q->nr_segs; s++) {
		uint64_t lo = q->seg_start[s], n = q->seg_len[s], k = 0;
		uint32_t *chosen = n ? malloc(n * sizeof(*chosen)) : NULL;

		if (n && !chosen)
			return ACMA_ENOMEM;
		for (uint64_t pfn = lo; pfn < lo + n; pfn++) {
			if (!lru_page(m, (uint32_t)pfn))
				continue;
			res->visited++;
			if (!filtered_out(m, q, (uint32_t)pfn))
				chosen[k++] = (uint32_t)pfn;
		}
		res->passed += k;
		for (uint64_t i = 0; i < k; i++)
			res->applied += (uint64_t)act(m, q, chosen[i], 0, &res->cost_ns);
		free(chosen);
	}
	return 0;
}

/* vaddr: the present pages of each VMA piece (willneed: the non-present ones it reads). */
static int apply_vaddr(acma_mem *m, const acma_damos_req *q, acma_damos_res *res)
{
	for (uint32_t s = 0; s < q->nr_segs; s++) {
		for (uint64_t i = 0; i < q->seg_len[s]; i++) {
			uint64_t g = q->seg_start[s] + i;
			uint32_t p = m->pte[g];

			if (q->action == ACMA_DAMOS_WILLNEED) {
				if (pte_present(p) || p == PTE_UNALLOC || pte_kind(p) == NP_FRESH)
					continue;
				int swapped = pte_kind(p) == NP_SWAPPED;
				int err = prefetch_page(m, g);

				if (err)
					return err;
				res->visited++;
				res->passed++;
				res->applied++;
				res->cost_ns += (swapped ? m->cfg.costs.swapin_us : m->cfg.costs.file_read_us) * 1e3;
				continue;
			}
			if (!pte_present(p))
				continue;
			res->visited++;
			if (filtered_out(m, q, p))
				continue;
			res->passed++;
			res->applied += (uint64_t)act(m, q, p, q->seg_ilx[s] + i, &res->cost_ns);
		}
	}
	return 0;
}

int acma_damos_apply(acma_mem *m, const acma_damos_req *q, acma_damos_res *res)
{
	int err;

	if (!m || !q || !res)
		return ACMA_EINVAL;
	err = check_req(m, q);
	if (err)
		return err;
	res->visited = res->passed = res->applied = 0;
	res->cost_ns = 0;
	err = q->ops == ACMA_OPS_PADDR ? apply_paddr(m, q, res) : apply_vaddr(m, q, res);
	res->cost_ns += (double)res->visited * m->cfg.costs.reclaim_scan_us * 1e3;
	wake_kswapd_if_needed(m);
	return err;
}

int acma_memcg_pages(const acma_mem *m, const uint32_t *vma_memcg, uint32_t nr_vma_memcg,
		     uint32_t memcg, uint32_t nid, uint64_t *out)
{
	uint64_t n = 0;

	if (!m || !out || (nr_vma_memcg && !vma_memcg) || (nid >= m->cfg.nr_nodes && nid != ACMA_MAX_NODES))
		return ACMA_EINVAL;
	for (uint32_t vi = 0; vi < m->nr_vmas; vi++) {
		const struct vma *v = &m->vmas[vi];

		if ((vi < nr_vma_memcg ? vma_memcg[vi] : 0) != memcg)
			continue;
		if (nid == ACMA_MAX_NODES) {
			n += v->nr_present;
			continue;
		}
		for (uint32_t off = 0; off < v->nalloc; off++) {
			uint32_t p = m->pte[v->gbase + off];

			if (pte_present(p) && pfn_node(m, p) == nid)
				n++;
		}
	}
	*out = n;
	return 0;
}
