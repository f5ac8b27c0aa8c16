// SPDX-License-Identifier: GPL-2.0
/*
 * Checkpoints: the whole context as one byte string, and back. A long run can stop (a crash,
 * Ctrl-C) and resume from its last checkpoint with results identical to an uninterrupted run.
 * Loading checks every length and index before it builds anything, and finishes with the full
 * invariant check, so a corrupt checkpoint is refused rather than half-loaded. The trace
 * stream is not saved (it belongs to the caller): reattach it with acma_set_trace and seek.
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define SNAP_MAGIC 0x31504E53414D4341ull   /* "ACMASNP1" */

/* One stream type for both directions, so the field order is written down once. */
struct stream {
	uint8_t *buf;           /* NULL while only measuring a save */
	uint64_t cap, pos;
	int reading, bad;
};

static void xfer(struct stream *s, void *p, uint64_t n)
{
	if (!n)
		return;     /* p may be NULL for an empty array */
	if (s->reading) {
		if (s->bad || n > s->cap - s->pos) {
			s->bad = 1;
			memset(p, 0, n);
			return;
		}
		memcpy(p, s->buf + s->pos, n);
	} else if (s->buf && s->pos + n <= s->cap) {
		memcpy(s->buf + s->pos, p, n);
	}
	s->pos += n;
}

#define XFER(s, x) xfer((s), &(x), sizeof(x))

/* For the optional sections other files keep (reporting, backing, balloon). */
void snap_xfer(struct stream *s, void *p, uint64_t n) { xfer(s, p, n); }
int snap_reading(const struct stream *s) { return s->reading; }

static int walk_optional(acma_mem *m, struct stream *s)
{
	int err = reporting_walk(m, s);

	if (!err)
		err = backing_walk(m, s);
	if (!err)
		err = balloon_walk(m, s);
	return !err && s->reading && s->bad ? ACMA_EINVAL : err;   /* a section cut short */
}

/* Everything whose size the configuration fixes, then the counts of what follows. */
static void walk_fixed(acma_mem *m, struct stream *s)
{
	uint64_t n = m->cfg.nr_pages;

	XFER(s, m->now);
	xfer(s, m->block_node, m->nr_blocks);
	xfer(s, m->block_zone, m->nr_blocks);
	xfer(s, m->block_online, m->nr_blocks);
	xfer(s, m->pg, n * sizeof(struct page));
	xfer(s, m->pb_mt, m->nr_pb);
	xfer(s, m->pb_free, m->nr_pb * 2);
	xfer(s, m->pb_mov, m->nr_pb * 2);
	xfer(s, m->pb_unmov, m->nr_pb * 2);
	xfer(s, m->zones, m->nr_zones * sizeof(struct zone));
	xfer(s, m->nodes, m->cfg.nr_nodes * sizeof(struct node));
	xfer(s, m->state_count, sizeof(m->state_count));
	xfer(s, m->counters, sizeof(m->counters));
	xfer(s, m->stall_ns, sizeof(m->stall_ns));
	XFER(s, m->swap_used);
	XFER(s, m->pending_ns);
	XFER(s, m->tr_pos);
	XFER(s, m->nr_gvpn);
}

/* (next_us is not saved: it follows from the heap and the rate, and is recomputed on load) */
static void walk_vma_scalars(struct vma *v, struct stream *s)
{
	XFER(s, v->gbase);
	XFER(s, v->npages);
	XFER(s, v->nalloc);
	XFER(s, v->kind);
	XFER(s, v->node);
	XFER(s, v->explicit_only);
	XFER(s, v->write_frac);
	XFER(s, v->nr_present);
	XFER(s, v->nr_swapped);
	XFER(s, v->nr_file);
	XFER(s, v->nbp);
}

/* Saving only reads m; the shared walkers take it non-const for the loading direction. */
static void save_all(acma_mem *m, struct stream *w)
{
	uint64_t magic = SNAP_MAGIC;

	XFER(w, magic);
	XFER(w, m->cfg);
	walk_fixed(m, w);
	xfer(w, m->pte, m->nr_gvpn * 4);
	XFER(w, m->nr_stalls);
	xfer(w, m->stalls, m->nr_stalls * sizeof(acma_stall));
	XFER(w, m->nr_vmas);
	for (uint32_t i = 0; i < m->nr_vmas; i++) {
		struct vma *v = &m->vmas[i];

		walk_vma_scalars(v, w);
		xfer(w, v->bp_t, v->nbp * 8ull);
		xfer(w, v->bp_lam, v->nbp * 8ull);
		xfer(w, v->bp_rate, v->nbp * 8ull);
		XFER(w, v->nheap);
		xfer(w, v->heap, v->nheap * (uint64_t)sizeof(struct heap_ent));
	}
	walk_optional(m, w);
}

int acma_mem_save(const acma_mem *m, uint8_t *buf, uint64_t cap, uint64_t *len)
{
	struct stream w = { buf, cap, 0, 0, 0 };

	save_all((acma_mem *)m, &w);
	*len = w.pos;
	return buf && w.pos <= cap ? 0 : ACMA_ENOSPC;
}

static int load_vmas(acma_mem *m, struct stream *r)
{
	uint32_t nv;

	XFER(r, nv);
	if (r->bad || nv > m->nr_gvpn + 1)
		return ACMA_EINVAL;
	m->vmas = calloc(nv ? nv : 1, sizeof(struct vma));
	if (!m->vmas)
		return ACMA_ENOMEM;
	m->cap_vmas = nv ? nv : 1;
	for (uint32_t i = 0; i < nv; i++) {
		struct vma *v = &m->vmas[i];

		walk_vma_scalars(v, r);
		m->nr_vmas = i + 1;       /* from here on acma_mem_free frees what was read */
		if (r->bad || !v->nbp || v->nbp > (r->cap - r->pos) / 24 || v->npages == 0 ||
		    v->nalloc > v->npages || v->gbase + v->npages > m->nr_gvpn || v->node >= m->cfg.nr_nodes ||
		    (i && v->gbase < m->vmas[i - 1].gbase + m->vmas[i - 1].npages))
			return ACMA_EINVAL;
		v->cap_bp = v->nbp;
		v->bp_t = malloc(v->nbp * 8ull);
		v->bp_lam = malloc(v->nbp * 8ull);
		v->bp_rate = malloc(v->nbp * 8ull);
		if (!v->bp_t || !v->bp_lam || !v->bp_rate)
			return ACMA_ENOMEM;
		xfer(r, v->bp_t, v->nbp * 8ull);
		xfer(r, v->bp_lam, v->nbp * 8ull);
		xfer(r, v->bp_rate, v->nbp * 8ull);
		if (!(v->write_frac >= 0 && v->write_frac <= 1))
			return ACMA_EINVAL;
		for (uint32_t b = 0; b < v->nbp; b++)   /* NaN fails every comparison below */
			if (!(v->bp_rate[b] >= 0 && v->bp_rate[b] <= 1e3 && v->bp_lam[b] >= 0 && v->bp_lam[b] < INF_KEY) ||
			    (b && (v->bp_t[b] < v->bp_t[b - 1] || v->bp_lam[b] < v->bp_lam[b - 1])))
				return ACMA_EINVAL;
		XFER(r, v->nheap);
		if (r->bad || v->nheap > (r->cap - r->pos) / sizeof(struct heap_ent) ||
		    (v->explicit_only && v->nheap))
			return ACMA_EINVAL;
		v->cap_heap = v->nheap ? v->nheap : 1;
		v->heap = malloc(v->cap_heap * sizeof(struct heap_ent));
		if (!v->heap)
			return ACMA_ENOMEM;
		xfer(r, v->heap, v->nheap * (uint64_t)sizeof(struct heap_ent));
		for (uint32_t k = 0; k < v->nheap; k++)
			if (!(v->heap[k].key >= 0 && v->heap[k].key <= INF_KEY))
				return ACMA_EINVAL;
	}
	return r->bad ? ACMA_EINVAL : 0;
}

static int load_body(acma_mem *m, struct stream *r)
{
	uint64_t n = m->cfg.nr_pages;
	int err;

	walk_fixed(m, r);
	if (r->bad || m->nr_gvpn > (r->cap - r->pos) / 4)
		return ACMA_EINVAL;
	m->cap_gvpn = m->nr_gvpn ? m->nr_gvpn : 1;
	m->pte = malloc(m->cap_gvpn * 4);
	if (!m->pte)
		return ACMA_ENOMEM;
	xfer(r, m->pte, m->nr_gvpn * 4);
	XFER(r, m->nr_stalls);
	if (r->bad || m->nr_stalls > (r->cap - r->pos) / sizeof(acma_stall))
		return ACMA_EINVAL;
	m->cap_stalls = m->nr_stalls;
	m->stalls = m->nr_stalls ? malloc(m->nr_stalls * sizeof(acma_stall)) : NULL;
	if (m->nr_stalls && !m->stalls)
		return ACMA_ENOMEM;
	xfer(r, m->stalls, m->nr_stalls * sizeof(acma_stall));
	err = load_vmas(m, r);
	if (!err)
		err = walk_optional(m, r);
	if (err)
		return err;
	if (r->pos != r->cap)
		return ACMA_EINVAL;
	/* every index that C follows must be in range before the full check walks them */
	for (uint64_t i = 0; i < n; i++)
		if ((m->pg[i].prev != NIL && m->pg[i].prev >= n) || (m->pg[i].next != NIL && m->pg[i].next >= n) ||
		    m->pg[i].order > ACMA_MAX_ORDER)
			return ACMA_EINVAL;
	for (uint64_t pb = 0; pb < m->nr_pb; pb++)
		if (m->pb_mt[pb] > ACMA_MT_ISOLATE)
			return ACMA_EINVAL;
	for (uint32_t b = 0; b < m->nr_blocks; b++)
		if (m->block_node[b] >= m->cfg.nr_nodes || m->block_zone[b] > ACMA_ZONE_MOVABLE)
			return ACMA_EINVAL;
	for (uint32_t z = 0; z < m->nr_zones; z++)
		for (int o = 0; o <= ACMA_MAX_ORDER; o++)
			for (int t = 0; t < NR_MT; t++) {
				const struct list *l = &m->zones[z].free_area[o][t];

				if ((l->head != NIL && l->head >= n) || (l->tail != NIL && l->tail >= n) || l->n > n)
					return ACMA_EINVAL;
			}
	for (uint32_t i = 0; i < m->cfg.nr_nodes; i++)
		for (int l = 0; l < NR_LRU; l++) {
			const struct list *li = &m->nodes[i].lru[l];

			if ((li->head != NIL && li->head >= n) || (li->tail != NIL && li->tail >= n) || li->n > n)
				return ACMA_EINVAL;
		}
	for (uint64_t g = 0; g < m->nr_gvpn; g++)
		if (pte_present(m->pte[g]) && m->pte[g] >= n)
			return ACMA_EINVAL;
	for (uint64_t i = 0; i < n; i++)
		if ((m->pg[i].state == ACMA_PS_ANON || m->pg[i].state == ACMA_PS_FILE) && m->pg[i].owner >= m->nr_gvpn)
			return ACMA_EINVAL;
	return 0;
}

int acma_mem_load(const uint8_t *buf, uint64_t len, acma_mem **out)
{
	struct stream r = { (uint8_t *)buf, len, 0, 1, 0 };   /* read-only use */
	uint64_t magic, what;
	acma_mem_config cfg;
	uint8_t *ones;
	acma_mem *m;
	int err;

	*out = NULL;
	XFER(&r, magic);
	XFER(&r, cfg);
	if (r.bad || magic != SNAP_MAGIC)
		return ACMA_EINVAL;
	if (!cfg.block_pages || (cfg.block_pages & (cfg.block_pages - 1)) || cfg.block_pages < (1u << ACMA_MAX_ORDER) ||
	    !cfg.nr_pages || cfg.nr_pages % cfg.block_pages || cfg.nr_pages > (1ull << 28) || !cfg.nr_nodes ||
	    cfg.nr_nodes > ACMA_MAX_NODES || cfg.nr_pages > len / sizeof(struct page) || cfg.swappiness > 200)
		return ACMA_EINVAL;   /* (a page record a page at least; acma_mem_new checks the costs) */
	/* build an empty context of the right shape (all blocks offline), then overwrite it */
	uint32_t nb = (uint32_t)(cfg.nr_pages / cfg.block_pages);

	ones = calloc(nb, 1);
	if (!ones)
		return ACMA_ENOMEM;
	err = acma_mem_new(&cfg, ones, ones, ones, &m);
	free(ones);
	if (err)
		return err;
	err = load_body(m, &r);
	for (uint32_t i = 0; !err && i < m->nr_vmas; i++)
		vma_update_next(m, &m->vmas[i]);   /* derived from the heap: never trusted from the blob */
	if (!err && acma_check(m, &what))
		err = ACMA_EINVAL;
	if (err) {
		acma_mem_free(m);
		return err;
	}
	*out = m;
	return 0;
}

int acma_trace_seek(acma_mem *m, uint64_t pos)
{
	if (pos > m->tr_n)
		return ACMA_EINVAL;
	m->tr_pos = pos;
	return 0;
}
