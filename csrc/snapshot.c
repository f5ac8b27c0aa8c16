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

struct writer {
	uint8_t *buf;
	uint64_t cap, len;
};

static void put(struct writer *w, const void *p, uint64_t n)
{
	if (w->buf && w->len + n <= w->cap)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

#define PUT(w, x) put((w), &(x), sizeof(x))

static void save_all(const acma_mem *m, struct writer *w)
{
	uint64_t magic = SNAP_MAGIC, n = m->cfg.nr_pages;

	PUT(w, magic);
	PUT(w, m->cfg);
	PUT(w, m->now);
	put(w, m->block_node, m->nr_blocks);
	put(w, m->block_zone, m->nr_blocks);
	put(w, m->block_online, m->nr_blocks);
	put(w, m->state, n);
	put(w, m->flags, n);
	put(w, m->order, n);
	put(w, m->prev, n * 4);
	put(w, m->next, n * 4);
	put(w, m->owner, n * 4);
	put(w, m->last_clear, n * 8);
	put(w, m->pb_mt, m->nr_pb);
	put(w, m->pb_free, m->nr_pb * 2);
	put(w, m->pb_mov, m->nr_pb * 2);
	put(w, m->pb_unmov, m->nr_pb * 2);
	put(w, m->zones, m->nr_zones * sizeof(struct zone));
	put(w, m->nodes, m->cfg.nr_nodes * sizeof(struct node));
	put(w, m->state_count, sizeof(m->state_count));
	put(w, m->counters, sizeof(m->counters));
	put(w, m->stall_ns, sizeof(m->stall_ns));
	PUT(w, m->swap_used);
	PUT(w, m->pending_ns);
	PUT(w, m->tr_pos);
	PUT(w, m->nr_gvpn);
	put(w, m->pte, m->nr_gvpn * 4);
	PUT(w, m->nr_stalls);
	put(w, m->stalls, m->nr_stalls * sizeof(acma_stall));
	PUT(w, m->nr_vmas);
	for (uint32_t i = 0; i < m->nr_vmas; i++) {
		const struct vma *v = &m->vmas[i];

		PUT(w, v->gbase);
		PUT(w, v->npages);
		PUT(w, v->nalloc);
		PUT(w, v->kind);
		PUT(w, v->node);
		PUT(w, v->explicit_only);
		PUT(w, v->write_frac);
		PUT(w, v->next_us);
		PUT(w, v->nr_present);
		PUT(w, v->nr_swapped);
		PUT(w, v->nr_file);
		PUT(w, v->nbp);
		put(w, v->bp_t, v->nbp * 8ull);
		put(w, v->bp_lam, v->nbp * 8ull);
		put(w, v->bp_rate, v->nbp * 8ull);
		PUT(w, v->nheap);
		put(w, v->heap, v->nheap * (uint64_t)sizeof(struct heap_ent));
	}
}

int acma_mem_save(const acma_mem *m, uint8_t *buf, uint64_t cap, uint64_t *len)
{
	struct writer w = { buf, cap, 0 };

	save_all(m, &w);
	*len = w.len;
	return buf && w.len <= cap ? 0 : ACMA_ENOSPC;
}

struct reader {
	const uint8_t *buf;
	uint64_t len, pos;
	int bad;
};

static void get(struct reader *r, void *p, uint64_t n)
{
	if (r->bad || n > r->len - r->pos) {
		r->bad = 1;
		memset(p, 0, n);
		return;
	}
	memcpy(p, r->buf + r->pos, n);
	r->pos += n;
}

#define GET(r, x) get((r), &(x), sizeof(x))

static int load_vmas(acma_mem *m, struct reader *r)
{
	uint32_t nv;

	GET(r, nv);
	if (r->bad || nv > m->nr_gvpn + 1)
		return ACMA_EINVAL;
	m->vmas = calloc(nv ? nv : 1, sizeof(struct vma));
	if (!m->vmas)
		return ACMA_ENOMEM;
	m->cap_vmas = nv ? nv : 1;
	for (uint32_t i = 0; i < nv; i++) {
		struct vma *v = &m->vmas[i];

		GET(r, v->gbase);
		GET(r, v->npages);
		GET(r, v->nalloc);
		GET(r, v->kind);
		GET(r, v->node);
		GET(r, v->explicit_only);
		GET(r, v->write_frac);
		GET(r, v->next_us);
		GET(r, v->nr_present);
		GET(r, v->nr_swapped);
		GET(r, v->nr_file);
		GET(r, v->nbp);
		m->nr_vmas = i + 1;       /* from here on acma_mem_free frees what was read */
		if (r->bad || !v->nbp || v->nbp > (r->len - r->pos) / 24 || v->npages == 0 ||
		    v->nalloc > v->npages || v->gbase + v->npages > m->nr_gvpn || v->node >= m->cfg.nr_nodes ||
		    (i && v->gbase < m->vmas[i - 1].gbase + m->vmas[i - 1].npages))
			return ACMA_EINVAL;
		v->cap_bp = v->nbp;
		v->bp_t = malloc(v->nbp * 8ull);
		v->bp_lam = malloc(v->nbp * 8ull);
		v->bp_rate = malloc(v->nbp * 8ull);
		if (!v->bp_t || !v->bp_lam || !v->bp_rate)
			return ACMA_ENOMEM;
		get(r, v->bp_t, v->nbp * 8ull);
		get(r, v->bp_lam, v->nbp * 8ull);
		get(r, v->bp_rate, v->nbp * 8ull);
		if (!(v->write_frac >= 0 && v->write_frac <= 1))
			return ACMA_EINVAL;
		for (uint32_t b = 0; b < v->nbp; b++)   /* NaN fails every comparison below */
			if (!(v->bp_rate[b] >= 0 && v->bp_rate[b] <= 1e3 && v->bp_lam[b] >= 0 && v->bp_lam[b] < INF_KEY) ||
			    (b && (v->bp_t[b] < v->bp_t[b - 1] || v->bp_lam[b] < v->bp_lam[b - 1])))
				return ACMA_EINVAL;
		GET(r, v->nheap);
		if (r->bad || v->nheap > (r->len - r->pos) / sizeof(struct heap_ent) ||
		    (v->explicit_only && v->nheap))
			return ACMA_EINVAL;
		v->cap_heap = v->nheap ? v->nheap : 1;
		v->heap = malloc(v->cap_heap * sizeof(struct heap_ent));
		if (!v->heap)
			return ACMA_ENOMEM;
		get(r, v->heap, v->nheap * (uint64_t)sizeof(struct heap_ent));
		for (uint32_t k = 0; k < v->nheap; k++)
			if (!(v->heap[k].key >= 0 && v->heap[k].key <= INF_KEY))
				return ACMA_EINVAL;
	}
	return r->bad ? ACMA_EINVAL : 0;
}

static int load_body(acma_mem *m, struct reader *r)
{
	uint64_t n = m->cfg.nr_pages;
	int err;

	GET(r, m->now);
	get(r, m->block_node, m->nr_blocks);
	get(r, m->block_zone, m->nr_blocks);
	get(r, m->block_online, m->nr_blocks);
	get(r, m->state, n);
	get(r, m->flags, n);
	get(r, m->order, n);
	get(r, m->prev, n * 4);
	get(r, m->next, n * 4);
	get(r, m->owner, n * 4);
	get(r, m->last_clear, n * 8);
	get(r, m->pb_mt, m->nr_pb);
	get(r, m->pb_free, m->nr_pb * 2);
	get(r, m->pb_mov, m->nr_pb * 2);
	get(r, m->pb_unmov, m->nr_pb * 2);
	get(r, m->zones, m->nr_zones * sizeof(struct zone));
	get(r, m->nodes, m->cfg.nr_nodes * sizeof(struct node));
	get(r, m->state_count, sizeof(m->state_count));
	get(r, m->counters, sizeof(m->counters));
	get(r, m->stall_ns, sizeof(m->stall_ns));
	GET(r, m->swap_used);
	GET(r, m->pending_ns);
	GET(r, m->tr_pos);
	GET(r, m->nr_gvpn);
	if (r->bad || m->nr_gvpn > (r->len - r->pos) / 4)
		return ACMA_EINVAL;
	m->cap_gvpn = m->nr_gvpn ? m->nr_gvpn : 1;
	m->pte = malloc(m->cap_gvpn * 4);
	if (!m->pte)
		return ACMA_ENOMEM;
	get(r, m->pte, m->nr_gvpn * 4);
	GET(r, m->nr_stalls);
	if (r->bad || m->nr_stalls > (r->len - r->pos) / sizeof(acma_stall))
		return ACMA_EINVAL;
	m->cap_stalls = m->nr_stalls;
	m->stalls = m->nr_stalls ? malloc(m->nr_stalls * sizeof(acma_stall)) : NULL;
	if (m->nr_stalls && !m->stalls)
		return ACMA_ENOMEM;
	get(r, m->stalls, m->nr_stalls * sizeof(acma_stall));
	err = load_vmas(m, r);
	if (err)
		return err;
	if (r->pos != r->len)
		return ACMA_EINVAL;
	/* every index that C follows must be in range before the full check walks them */
	for (uint64_t i = 0; i < n; i++)
		if ((m->prev[i] != NIL && m->prev[i] >= n) || (m->next[i] != NIL && m->next[i] >= n) ||
		    m->order[i] > ACMA_MAX_ORDER)
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
		if ((m->state[i] == ACMA_PS_ANON || m->state[i] == ACMA_PS_FILE) && m->owner[i] >= m->nr_gvpn)
			return ACMA_EINVAL;
	return 0;
}

int acma_mem_load(const uint8_t *buf, uint64_t len, acma_mem **out)
{
	struct reader r = { buf, len, 0, 0 };
	uint64_t magic, what;
	acma_mem_config cfg;
	uint8_t *ones;
	acma_mem *m;
	int err;

	*out = NULL;
	GET(&r, magic);
	GET(&r, cfg);
	if (r.bad || magic != SNAP_MAGIC)
		return ACMA_EINVAL;
	if (!cfg.block_pages || (cfg.block_pages & (cfg.block_pages - 1)) || cfg.block_pages < (1u << ACMA_MAX_ORDER) ||
	    !cfg.nr_pages || cfg.nr_pages % cfg.block_pages || cfg.nr_pages > (1ull << 28) || !cfg.nr_nodes ||
	    cfg.nr_nodes > ACMA_MAX_NODES || cfg.nr_pages > len / 23 || cfg.swappiness > 200)
		return ACMA_EINVAL;   /* (23 bytes a page at least; acma_mem_new checks the costs) */
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
