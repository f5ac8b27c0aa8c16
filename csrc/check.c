// SPDX-License-Identifier: GPL-2.0
/*
 * acma_check: recount everything from the per-page arrays and compare with the books, so
 * tests (and a user who suspects a bug) can prove after any step that every page is in
 * exactly one state, the free lists hold exactly the free pages, no two free blocks overlap,
 * the LRU lists hold exactly the mapped pages, and the page table and reverse map agree.
 * *what says which check failed (see the CHK_ names).
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

enum {
	CHK_OK = 0, CHK_STATE_COUNT, CHK_PB_COUNT, CHK_FREE_LIST, CHK_FREE_OVERLAP,
	CHK_FREE_COVER, CHK_ZONE_FREE, CHK_LRU, CHK_LRU_COVER, CHK_RMAP, CHK_PTE, CHK_HEAP,
	CHK_VMA_COUNT, CHK_SWAP, CHK_NOMEM, CHK_REPORTED, CHK_BACKING, CHK_BALLOON,
};

static int check_counts(const acma_mem *m)
{
	uint64_t cnt[ACMA_PS_NSTATES] = { 0 };

	for (uint64_t pb = 0; pb < m->nr_pb; pb++) {
		uint32_t f = 0, mv = 0, um = 0;

		for (uint64_t i = pb << ACMA_PAGEBLOCK_ORDER; i < (pb + 1) << ACMA_PAGEBLOCK_ORDER; i++) {
			uint8_t s = m->pg[i].state;

			if (s >= ACMA_PS_NSTATES)
				return CHK_STATE_COUNT;
			cnt[s]++;
			f += s == ACMA_PS_FREE;
			mv += s == ACMA_PS_ANON || s == ACMA_PS_FILE;
			um += s == ACMA_PS_KERNEL;
		}
		if (f != m->pb_free[pb] || mv != m->pb_mov[pb] || um != m->pb_unmov[pb])
			return CHK_PB_COUNT;
	}
	for (int s = 0; s < ACMA_PS_NSTATES; s++)
		if (cnt[s] != m->state_count[s])
			return CHK_STATE_COUNT;
	return CHK_OK;
}

static int check_free_lists(const acma_mem *m, uint8_t *seen)
{
	for (uint32_t zi = 0; zi < m->nr_zones; zi++) {
		uint64_t free = 0;

		for (uint32_t o = 0; o <= ACMA_MAX_ORDER; o++) {
			uint64_t nr = 0;

			for (int t = 0; t < NR_MT; t++) {
				const struct list *l = &m->zones[zi].free_area[o][t];
				uint64_t k = 0;

				uint32_t prev = NIL;

				for (uint32_t i = l->head; i != NIL; prev = i, i = m->pg[i].next, k++) {
					if (k > m->cfg.nr_pages || m->pg[i].prev != prev || (i & ((1u << o) - 1)) ||
					    pfn_zone(m, i) != zi ||
					    !(m->pg[i].flags & ACMA_PG_BUDDY) || m->pg[i].order != o ||
					    (m->pb_mt[i >> ACMA_PAGEBLOCK_ORDER] == ACMA_MT_MOVABLE) != t)
						return CHK_FREE_LIST;
					for (uint32_t p = i; p < i + (1u << o); p++) {
						if (seen[p] || m->pg[p].state != ACMA_PS_FREE)
							return CHK_FREE_OVERLAP;
						seen[p] = 1;
					}
				}
				if (k != l->n || l->tail != prev)
					return CHK_FREE_LIST;
				nr += k;
				free += k << o;
			}
			if (nr != m->zones[zi].nr_free[o])
				return CHK_FREE_LIST;
		}
		if (free != m->zones[zi].free)
			return CHK_ZONE_FREE;
	}
	/* every free page outside an isolated pageblock is on a list */
	for (uint64_t i = 0; i < m->cfg.nr_pages; i++)
		if (m->pg[i].state == ACMA_PS_FREE && !seen[i] &&
		    m->pb_mt[i >> ACMA_PAGEBLOCK_ORDER] != ACMA_MT_ISOLATE)
			return CHK_FREE_COVER;
	return CHK_OK;
}

static int check_lru_rmap(const acma_mem *m, uint8_t *seen)
{
	memset(seen, 0, m->cfg.nr_pages);
	for (uint32_t nid = 0; nid < m->cfg.nr_nodes; nid++)
		for (int li = 0; li < NR_LRU; li++) {
			const struct list *l = &m->nodes[nid].lru[li];
			uint64_t k = 0;

			uint32_t prev = NIL;

			for (uint32_t i = l->head; i != NIL; prev = i, i = m->pg[i].next, k++) {
				uint8_t want = li >= LRU_INACTIVE_FILE ? ACMA_PS_FILE : ACMA_PS_ANON;

				if (k > m->cfg.nr_pages || seen[i] || m->pg[i].state != want || m->pg[i].prev != prev ||
				    !!(m->pg[i].flags & ACMA_PG_ACTIVE) != (li & 1) || pfn_node(m, i) != nid)
					return CHK_LRU;
				seen[i] = 1;
			}
			if (k != l->n || l->tail != prev)
				return CHK_LRU;
		}
	for (uint64_t i = 0; i < m->cfg.nr_pages; i++) {
		uint8_t s = m->pg[i].state;

		if ((s == ACMA_PS_ANON || s == ACMA_PS_FILE) != seen[i])
			return CHK_LRU_COVER;
		if (seen[i] && (m->pg[i].owner >= m->nr_gvpn || m->pte[m->pg[i].owner] != i))
			return CHK_RMAP;
	}
	return CHK_OK;
}

/* Every non-present page in use of a synthetic VMA has a heap entry (stale ones may remain:
 * see vma.c); the heap is a 4-ary min-heap; the VMA's counts match its page table. */
static int check_vmas(const acma_mem *m)
{
	uint64_t swapped = 0;

	for (uint32_t vi = 0; vi < m->nr_vmas; vi++) {
		const struct vma *v = &m->vmas[vi];
		uint64_t present = 0, sw = 0, file = 0;
		uint8_t *queued = calloc(v->npages, 1);

		if (!queued)
			return CHK_NOMEM;
		for (uint32_t i = 0; i < v->nheap; i++) {
			if (v->heap[i].off >= v->npages || (i && v->heap[i].key < v->heap[(i - 1) / 4].key)) {
				free(queued);
				return CHK_HEAP;
			}
			queued[v->heap[i].off] = 1;
		}
		for (uint32_t off = 0; off < v->npages; off++) {
			uint32_t p = m->pte[v->gbase + off];
			int bad;

			if (off >= v->nalloc)
				bad = p != PTE_UNALLOC;
			else if (pte_present(p))
				bad = p >= m->cfg.nr_pages || m->pg[p].owner != v->gbase + off;
			else
				bad = p == PTE_UNALLOC || pte_kind(p) > NP_FILE ||
				      (!v->explicit_only && !queued[off]);
			if (bad) {
				free(queued);
				return off >= v->nalloc || pte_present(p) ? CHK_PTE : CHK_HEAP;
			}
			if (off >= v->nalloc)
				continue;
			present += pte_present(p);
			sw += !pte_present(p) && pte_kind(p) == NP_SWAPPED;
			file += !pte_present(p) && pte_kind(p) == NP_FILE;
		}
		free(queued);
		if (v->explicit_only && v->nheap)
			return CHK_HEAP;
		if (present != v->nr_present || sw != v->nr_swapped || file != v->nr_file)
			return CHK_VMA_COUNT;
		swapped += sw;
	}
	return swapped == m->swap_used ? CHK_OK : CHK_SWAP;
}

int acma_check(const acma_mem *m, uint64_t *what)
{
	uint8_t *seen = calloc(m->cfg.nr_pages, 1);
	int r;

	if (!seen) {
		*what = CHK_NOMEM;
		return ACMA_ENOMEM;
	}
	r = check_counts(m);
	if (!r)
		r = check_free_lists(m, seen);
	if (!r)
		r = check_lru_rmap(m, seen);
	if (!r)
		r = check_vmas(m);
	if (!r && reporting_check(m))
		r = CHK_REPORTED;
	if (!r && backing_check(m))
		r = CHK_BACKING;
	if (!r && balloon_check(m))
		r = CHK_BALLOON;
	free(seen);
	*what = (uint64_t)r;
	return r ? ACMA_ESTATE : 0;
}
