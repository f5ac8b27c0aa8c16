// SPDX-License-Identifier: GPL-2.0
/*
 * VMAs, the page table and the event loop. A VMA is a range of acma's global virtual page
 * space with one touch intensity (its workload region). A non-present page in use (never
 * touched, swapped out, or a dropped file page) waits in its VMA's 4-ary min-heap keyed by
 * the lambda value of its next touch; since every page of a VMA shares one lambda(t), that
 * order never changes when the rate does, and the VMA's next fault is one inversion of lambda.
 * acma_run merges those faults with an optional trace stream, in time order, so the cost is
 * per fault and per trace event, never per page per tick.
 *
 * Entries are deleted lazily: a page that faults by another way (an explicit touch) leaves
 * its entry behind, and a popped entry counts only if its page is still non-present. That is
 * exact: every key is a touch of the page's own realisation, so when a stale entry pops for a
 * non-present page, its key is that page's first touch since it left (an earlier one would
 * have popped first). Explicit-only VMAs (traces) have no heap: their pages fault when the
 * trace touches them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define MAX_GVPN 0xFFFFFFF0ull       /* owner[] is u32 with NIL reserved */

#define HEAP_D 4

static int key_less(const struct heap_ent *a, const struct heap_ent *b)
{
	return a->key < b->key || (a->key == b->key && a->off < b->off);
}

static void sift_up(struct vma *v, uint32_t pos)
{
	struct heap_ent e = v->heap[pos];

	while (pos) {
		uint32_t parent = (pos - 1) / HEAP_D;

		if (!key_less(&e, &v->heap[parent]))
			break;
		v->heap[pos] = v->heap[parent];
		pos = parent;
	}
	v->heap[pos] = e;
}

static void sift_down(struct vma *v, uint32_t pos)
{
	struct heap_ent e = v->heap[pos];

	for (;;) {
		uint32_t c = HEAP_D * pos + 1, best = c;

		if (c >= v->nheap)
			break;
		for (uint32_t k = c + 1; k < c + HEAP_D && k < v->nheap; k++)
			if (key_less(&v->heap[k], &v->heap[best]))
				best = k;
		if (!key_less(&v->heap[best], &e))
			break;
		v->heap[pos] = v->heap[best];
		pos = best;
	}
	v->heap[pos] = e;
}

static void heapify(struct vma *v)
{
	if (v->nheap < 2)
		return;
	for (uint32_t i = (v->nheap - 2) / HEAP_D + 1; i-- > 0;)
		sift_down(v, i);
}

static int heap_reserve(struct vma *v, uint32_t need)
{
	if (need <= v->cap_heap)
		return 0;
	uint32_t cap = v->cap_heap ? v->cap_heap : 16;

	while (cap < need)
		cap = cap > 0x7FFFFFFFu / 2 ? need : cap * 2;
	struct heap_ent *h = realloc(v->heap, (size_t)cap * sizeof(*h));

	if (!h)
		return ACMA_ENOMEM;
	v->heap = h;
	v->cap_heap = cap;
	return 0;
}

/* The heap shrinks when a quarter full, so it costs memory only for pages really waiting. */
static void heap_shrink(struct vma *v)
{
	if (v->cap_heap <= 64 || v->nheap >= v->cap_heap / 4)
		return;
	struct heap_ent *h = realloc(v->heap, (size_t)(v->cap_heap / 2) * sizeof(*h));

	if (h) {
		v->heap = h;
		v->cap_heap /= 2;
	}
}

/* The caller reserved room (heap_reserve). */
static void heap_push(struct vma *v, double key, uint32_t off)
{
	struct heap_ent e = { key, off };

	v->heap[v->nheap] = e;
	sift_up(v, v->nheap++);
}

static struct heap_ent heap_pop(struct vma *v)
{
	struct heap_ent top = v->heap[0];

	if (--v->nheap) {
		v->heap[0] = v->heap[v->nheap];
		sift_down(v, 0);
	}
	heap_shrink(v);
	return top;
}

/* Does this entry still stand for a non-present page in use? (See the lazy deletion note.) */
static int heap_entry_live(const acma_mem *m, const struct vma *v, const struct heap_ent *e)
{
	uint32_t p;

	if (e->off >= v->nalloc)
		return 0;
	p = m->pte[v->gbase + e->off];
	return !pte_present(p) && p != PTE_UNALLOC;
}

/* Drop every stale entry and rebuild: after a shrink, which may leave many behind. */
static void heap_compact(acma_mem *m, struct vma *v)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < v->nheap; i++)
		if (heap_entry_live(m, v, &v->heap[i]))
			v->heap[k++] = v->heap[i];
	v->nheap = k;
	heapify(v);
	while (v->cap_heap > 64 && v->nheap < v->cap_heap / 4)
		heap_shrink(v);
}

/* The time of the heap's first touch under the current rate: one inversion of lambda. */
void vma_update_next(acma_mem *m, struct vma *v)
{
	uint32_t b = v->nbp - 1;
	double rate = v->bp_rate[b];

	v->next_us = UINT64_MAX;
	if (!v->nheap || v->explicit_only || rate <= 0 || !(v->heap[0].key < INF_KEY))
		return;
	double dt = ceil((v->heap[0].key - v->bp_lam[b]) / rate);
	double t = (double)v->bp_t[b] + (dt > 0 ? dt : 0);

	if (t >= 1.8e19)
		return;
	v->next_us = (uint64_t)t < m->now ? m->now : (uint64_t)t;
}

static double fresh_key(const acma_mem *m, const struct vma *v, uint32_t off)
{
	if (v->explicit_only)
		return INF_KEY;
	return first_arrival_after(m->cfg.seed, v->gbase + off, vma_lambda(v, m->now));
}

/* Pages [from, to) of the VMA come into use: non-present, waiting for their first touch.
 * The caller reserved the heap's room, so nothing here can fail half-way. */
static void add_fresh(acma_mem *m, struct vma *v, uint32_t from, uint32_t to)
{
	for (uint32_t off = from; off < to; off++) {
		m->pte[v->gbase + off] = pte_np(NP_FRESH, 0);
		if (!v->explicit_only) {
			struct heap_ent e = { fresh_key(m, v, off), off };

			v->heap[v->nheap++] = e;
		}
	}
	heapify(v);
}

int acma_vma_add(acma_mem *m, uint32_t kind, uint32_t npages, uint32_t nalloc, uint32_t node,
		 uint32_t explicit_only, uint32_t *vma_id, uint64_t *gbase)
{
	if (kind > ACMA_VMA_FILE || !npages || nalloc > npages || node >= m->cfg.nr_nodes ||
	    m->nr_gvpn + npages > MAX_GVPN)
		return ACMA_EINVAL;
	if (m->nr_vmas == m->cap_vmas) {
		uint32_t cap = m->cap_vmas ? m->cap_vmas * 2 : 8;
		struct vma *nv = realloc(m->vmas, cap * sizeof(*nv));

		if (!nv)
			return ACMA_ENOMEM;
		m->vmas = nv;
		m->cap_vmas = cap;
	}
	if (m->nr_gvpn + npages > m->cap_gvpn) {
		uint64_t cap = m->cap_gvpn ? m->cap_gvpn : 1024;

		while (cap < m->nr_gvpn + npages)
			cap *= 2;
		uint32_t *np = alloc_huge(cap * sizeof(*np));

		if (!np)
			return ACMA_ENOMEM;
		if (m->pte)
			memcpy(np, m->pte, m->nr_gvpn * sizeof(*np));
		free(m->pte);
		m->pte = np;
		m->cap_gvpn = cap;
	}
	struct vma v;

	memset(&v, 0, sizeof(v));
	v.gbase = m->nr_gvpn;
	v.npages = npages;
	v.kind = kind;
	v.node = node;
	v.explicit_only = !!explicit_only;
	v.cap_bp = 4;
	v.bp_t = malloc(v.cap_bp * sizeof(*v.bp_t));
	v.bp_lam = malloc(v.cap_bp * sizeof(*v.bp_lam));
	v.bp_rate = malloc(v.cap_bp * sizeof(*v.bp_rate));
	if (!v.bp_t || !v.bp_lam || !v.bp_rate || heap_reserve(&v, explicit_only ? 1 : (nalloc ? nalloc : 1))) {
		free(v.bp_t);
		free(v.bp_lam);
		free(v.bp_rate);
		free(v.heap);
		return ACMA_ENOMEM;
	}
	v.nbp = 1;
	v.bp_t[0] = m->now;
	v.bp_lam[0] = 0;
	v.bp_rate[0] = 0;
	for (uint64_t g = v.gbase; g < v.gbase + npages; g++)
		m->pte[g] = PTE_UNALLOC;
	m->nr_gvpn += npages;
	*vma_id = m->nr_vmas;
	*gbase = v.gbase;
	m->vmas[m->nr_vmas++] = v;
	struct vma *vp = &m->vmas[*vma_id];

	add_fresh(m, vp, 0, nalloc);
	vp->nalloc = nalloc;
	vma_update_next(m, vp);
	return 0;
}

int acma_vma_set_rate(acma_mem *m, uint32_t vma, double rate_hz, double write_frac)
{
	if (vma >= m->nr_vmas || !(rate_hz >= 0 && rate_hz <= 1e9) ||
	    !(write_frac >= 0 && write_frac <= 1))
		return ACMA_EINVAL;
	struct vma *v = &m->vmas[vma];
	uint32_t b = v->nbp - 1;
	double rate = rate_hz / 1e6;

	if (v->explicit_only && rate_hz > 0)
		return ACMA_ESTATE;
	v->write_frac = write_frac;
	if (v->bp_t[b] == m->now) {
		v->bp_rate[b] = rate;
	} else if (v->bp_rate[b] != rate) {
		if (v->nbp == v->cap_bp) {
			uint32_t cap = v->cap_bp * 2;
			uint64_t *t = realloc(v->bp_t, cap * sizeof(*t));

			if (!t)
				return ACMA_ENOMEM;
			v->bp_t = t;
			double *l = realloc(v->bp_lam, cap * sizeof(*l));

			if (!l)
				return ACMA_ENOMEM;
			v->bp_lam = l;
			double *r = realloc(v->bp_rate, cap * sizeof(*r));

			if (!r)
				return ACMA_ENOMEM;
			v->bp_rate = r;
			v->cap_bp = cap;
		}
		v->bp_lam[v->nbp] = vma_lambda(v, m->now);
		v->bp_t[v->nbp] = m->now;
		v->bp_rate[v->nbp] = rate;
		v->nbp++;
	}
	vma_update_next(m, v);
	return 0;
}

/* Give a present page back to the allocator (munmap): off the LRU, then freed. */
static void unmap_page(acma_mem *m, struct vma *v, uint32_t pfn)
{
	lru_del(m, pfn);
	set_used_state(m, pfn, 1, m->pg[pfn].state, ACMA_PS_DRIVER);
	buddy_free(m, pfn, 0, 0);
	v->nr_present--;
}

int acma_vma_resize(acma_mem *m, uint32_t vma, uint32_t nalloc)
{
	if (vma >= m->nr_vmas || nalloc > m->vmas[vma].npages)
		return ACMA_EINVAL;
	struct vma *v = &m->vmas[vma];

	if (nalloc > v->nalloc) {
		if (!v->explicit_only && heap_reserve(v, v->nheap + (nalloc - v->nalloc)))
			return ACMA_ENOMEM;
		add_fresh(m, v, v->nalloc, nalloc);
	}
	for (uint32_t off = nalloc; off < v->nalloc; off++) {
		uint32_t p = m->pte[v->gbase + off];

		if (pte_present(p)) {
			unmap_page(m, v, p);
		} else if (pte_kind(p) == NP_SWAPPED) {
			v->nr_swapped--;
			m->swap_used--;
		} else if (pte_kind(p) == NP_FILE) {
			v->nr_file--;
		}
		m->pte[v->gbase + off] = PTE_UNALLOC;
	}
	if (nalloc < v->nalloc) {
		v->nalloc = nalloc;
		heap_compact(m, v);
	}
	v->nalloc = nalloc;
	vma_update_next(m, v);
	return 0;
}

int acma_vma_info(const acma_mem *m, uint32_t vma, uint64_t *out8)
{
	if (vma >= m->nr_vmas)
		return ACMA_EINVAL;
	const struct vma *v = &m->vmas[vma];

	out8[0] = v->gbase;
	out8[1] = v->npages;
	out8[2] = v->nalloc;
	out8[3] = v->nr_present;
	out8[4] = v->nr_swapped;
	out8[5] = v->nr_file;
	out8[6] = v->nalloc - v->nr_present - v->nr_swapped - v->nr_file;
	out8[7] = v->next_us;
	return 0;
}

int acma_vma_ptes(const acma_mem *m, uint32_t vma, uint32_t *out)
{
	if (vma >= m->nr_vmas)
		return ACMA_EINVAL;
	memcpy(out, m->pte + m->vmas[vma].gbase, m->vmas[vma].npages * sizeof(*out));
	return 0;
}

/* Swap out or drop a page that reclaim chose: it leaves a shadow entry and waits in the heap.
 * Fails (page untouched) only if the host cannot grow the heap. */
int evict_page(acma_mem *m, uint32_t pfn, int to_swap)
{
	uint64_t g = m->pg[pfn].owner;
	struct vma *v = vma_of(m, g, NULL);
	struct node *n = &m->nodes[pfn_node(m, pfn)];
	uint32_t shadow = (n->nonresident_age & SHADOW_AGE_MASK) |
			  ((m->pg[pfn].flags & ACMA_PG_WORKINGSET) ? SHADOW_WS : 0);
	uint32_t off = (uint32_t)(g - v->gbase);

	if (!v->explicit_only && heap_reserve(v, v->nheap + 1))
		return ACMA_ENOMEM;
	n->nonresident_age++;
	unmap_page(m, v, pfn);
	m->pte[g] = pte_np(to_swap ? NP_SWAPPED : NP_FILE, shadow);
	if (!v->explicit_only)
		heap_push(v, fresh_key(m, v, off), off);
	if (to_swap) {
		m->swap_used++;
		v->nr_swapped++;
		m->counters[ACMA_C_PSWPOUT]++;
	} else {
		v->nr_file++;
		m->counters[ACMA_C_FILE_DROPPED]++;
	}
	vma_update_next(m, v);
	return 0;
}

/* workingset_refault: activate when the refault distance fits the workingset. A prefetch
 * (DAMOS willneed's readahead) is detected the same way but stalls nobody. */
static void refault(acma_mem *m, uint32_t pfn, uint32_t shadow, int anon, int prefetch)
{
	struct node *n = &m->nodes[pfn_node(m, pfn)];
	uint32_t dist = (n->nonresident_age - shadow) & SHADOW_AGE_MASK;
	uint64_t ws = n->lru[LRU_ACTIVE_FILE].n + n->lru[LRU_ACTIVE_ANON].n;
	double io_us = anon ? m->cfg.costs.swapin_us : m->cfg.costs.file_read_us;

	ws += anon ? n->lru[LRU_INACTIVE_FILE].n : (m->swap_used < m->cfg.swap_pages ? n->lru[LRU_INACTIVE_ANON].n : 0);
	m->counters[ACMA_C_WORKINGSET_REFAULT]++;
	if (!prefetch)
		m->counters[ACMA_C_PGMAJFAULT]++;
	if (dist <= ws) {
		m->pg[pfn].flags |= ACMA_PG_ACTIVE;
		n->nonresident_age++;
		m->counters[ACMA_C_WORKINGSET_ACTIVATE]++;
	}
	if (shadow & SHADOW_WS) {
		m->pg[pfn].flags |= ACMA_PG_WORKINGSET;
		m->counters[ACMA_C_WORKINGSET_RESTORE]++;
		if (!prefetch)
			charge_stall(m, ACMA_STALL_REFAULT, io_us);   /* a thrashing refault is a memstall */
	}
	if (!prefetch)
		charge_stall(m, ACMA_WAIT_MAJOR, io_us);
}

/* A touch of a non-present page: allocate, map, account. Its heap entry, if any, was popped
 * by the caller or is left behind as stale. A prefetch maps the page without a touch: not
 * young, no fault counted, its I/O charged to the caller (the kdamond), not to the workload. */
static int map_in(acma_mem *m, struct vma *v, uint64_t g, int write, int prefetch)
{
	uint32_t p = m->pte[g];
	uint32_t kind = pte_kind(p), shadow = pte_shadow(p);
	uint32_t pfn;
	int err;

	err = alloc_with_reclaim(m, 0, ACMA_MT_MOVABLE, v->node, 1, &pfn);
	if (err)
		return err;
	set_used_state(m, pfn, 1, ACMA_PS_DRIVER, v->kind == ACMA_VMA_FILE ? ACMA_PS_FILE : ACMA_PS_ANON);
	m->pg[pfn].owner = (uint32_t)g;
	m->pte[g] = pfn;
	m->pg[pfn].flags = prefetch ? 0 : ACMA_PG_YOUNG | (write ? ACMA_PG_DIRTY : 0);
	m->pg[pfn].flags2 = 0;
	m->pg[pfn].last_clear = m->now;
	v->nr_present++;
	if (!prefetch)
		m->counters[ACMA_C_PGFAULT]++;
	if (kind == NP_SWAPPED) {
		v->nr_swapped--;
		m->swap_used--;
		m->counters[ACMA_C_PSWPIN]++;
		refault(m, pfn, shadow, 1, prefetch);
	} else if (kind == NP_FILE) {
		v->nr_file--;
		refault(m, pfn, shadow, 0, prefetch);
	} else if (v->kind == ACMA_VMA_FILE) {
		m->counters[ACMA_C_PGMAJFAULT]++;
		charge_stall(m, ACMA_WAIT_MAJOR, m->cfg.costs.file_read_us);
	} else {
		charge_stall(m, ACMA_WAIT_MINOR, m->cfg.costs.minor_fault_us + m->cfg.costs.zero_page_us);
	}
	lru_add(m, pfn);
	vma_update_next(m, v);
	wake_kswapd_if_needed(m);
	return 0;
}

static int fault(acma_mem *m, struct vma *v, uint64_t g, int write)
{
	return map_in(m, v, g, write, 0);
}

/* MADV_WILLNEED on one page: a swapped or dropped page is read back (swapin or page cache
 * readahead; acma has no swap cache, so it is mapped at once). Others are left alone. */
int prefetch_page(acma_mem *m, uint64_t g)
{
	uint32_t p = m->pte[g];

	if (pte_present(p) || p == PTE_UNALLOC || pte_kind(p) == NP_FRESH)
		return 0;
	return map_in(m, vma_of(m, g, NULL), g, 0, 1);
}

static int touch(acma_mem *m, uint64_t g, int write)
{
	uint32_t p = m->pte[g];

	if (pte_present(p)) {
		m->pg[p].flags |= ACMA_PG_YOUNG | (write ? ACMA_PG_DIRTY : 0);
		return 0;
	}
	if (p == PTE_UNALLOC)
		return ACMA_ESTATE;                  /* a touch outside the in-use part: SIGSEGV */
	return fault(m, vma_of(m, g, NULL), g, write);
}

int acma_touch(acma_mem *m, uint64_t gvpn, uint32_t write)
{
	if (gvpn >= m->nr_gvpn)
		return ACMA_EINVAL;
	return touch(m, gvpn, !!write);
}

int acma_set_trace(acma_mem *m, const uint64_t *t_us, const uint64_t *gvpn_w, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if ((gvpn_w[i] >> 1) >= m->nr_gvpn || (i && t_us[i] < t_us[i - 1]))
			return ACMA_EINVAL;
	m->tr_t = t_us;
	m->tr_gw = gvpn_w;
	m->tr_n = n;
	m->tr_pos = 0;
	return 0;
}

int acma_trace_pos(const acma_mem *m, uint64_t *pos)
{
	*pos = m->tr_pos;
	return 0;
}

static uint32_t next_vma(const acma_mem *m, uint64_t *t)
{
	uint32_t best = NIL;

	*t = UINT64_MAX;
	for (uint32_t i = 0; i < m->nr_vmas; i++)
		if (m->vmas[i].next_us < *t) {
			*t = m->vmas[i].next_us;
			best = i;
		}
	return best;
}

int acma_run(acma_mem *m, uint64_t t_end)
{
	if (t_end < m->now)
		return ACMA_EINVAL;
	for (;;) {
		uint64_t tv;
		uint32_t vi = next_vma(m, &tv);
		int err, faulted = 0;

		/* trace events up to the next synthetic fault: the hot path, no VMA scan. Locals,
		 * not m->fields, because the byte-wide flag stores may alias anything. */
		if (m->tr_pos < m->tr_n && t_end > 0) {
			const uint64_t *tt = m->tr_t, *tg = m->tr_gw;
			struct page *pg = m->pg;
			const uint32_t *pte = m->pte;
			uint64_t pos = m->tr_pos, n = m->tr_n, now = m->now, start = pos;
			uint64_t lim = tv < t_end - 1 ? tv : t_end - 1;

			while (pos < n && tt[pos] <= lim) {
				uint64_t gw = tg[pos];
				uint32_t p = pte[gw >> 1];

				if (!pte_present(p))
					break;
				pg[p].flags |= (uint8_t)(ACMA_PG_YOUNG | ((gw & 1) ? ACMA_PG_DIRTY : 0));
				pos++;
			}
			if (pos > start && tt[pos - 1] > now)
				now = tt[pos - 1];
			m->counters[ACMA_C_TRACE_EVENTS] += pos - start;
			m->tr_pos = pos;
			m->now = now;
			if (pos < n && tt[pos] <= lim) {   /* a non-present page: the fault path */
				uint64_t gw = tg[pos];

				if (tt[pos] > m->now)
					m->now = tt[pos];
				m->tr_pos++;
				m->counters[ACMA_C_TRACE_EVENTS]++;
				err = touch(m, gw >> 1, (int)(gw & 1));
				if (err)
					return err;
				faulted = 1;             /* a fault may move any VMA's next touch */
			}
		}
		if (faulted)
			continue;
		if (tv >= t_end)
			break;
		struct vma *v = &m->vmas[vi];
		struct heap_ent e = heap_pop(v);
		uint64_t g = v->gbase + e.off;

		if (!heap_entry_live(m, v, &e)) {    /* stale: the page faulted some other way */
			vma_update_next(m, v);
			continue;
		}
		int write = u01(hash4(m->cfg.seed, g, tv, 0x3717ull)) < v->write_frac;

		if (tv > m->now)
			m->now = tv;
		err = fault(m, v, g, write);
		if (err) {                           /* OOM: the touch is still due */
			heap_push(v, e.key, e.off);  /* room: the pop above made it */
			vma_update_next(m, v);
			return err;
		}
	}
	m->now = t_end;
	return 0;
}
