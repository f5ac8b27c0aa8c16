// SPDX-License-Identifier: GPL-2.0
/*
 * The guest memory context: creation, memory blocks online and offline (offline_pages:
 * isolate, migrate every movable page out, fail on an unmovable one and undo), page
 * migration, kernel/driver allocations, stall logging, views for Python, and a full
 * self-check of every invariant.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "internal.h"

#define MAX_STALL_LOG (1u << 20)

const char *acma_strerror(int err)
{
	switch (err) {
	case ACMA_OK: return "success";
	case ACMA_EINVAL: return "an argument is out of range";
	case ACMA_ENOMEM: return "the host process is out of memory";
	case ACMA_EOOM: return "the guest is out of memory (no free page even after reclaim)";
	case ACMA_EBUSY: return "a page or block is busy (unmovable or in use)";
	case ACMA_ESTATE: return "the object is not in the state this operation needs";
	case ACMA_ENOSPC: return "swap is full";
	default: return "unknown error";
	}
}

/* The page records and page table of a big guest span GiBs: ask for transparent huge pages
 * (a hint about this process's own memory) so random access to them costs fewer TLB misses. */
void *alloc_huge(size_t bytes)
{
	size_t align = 2u << 20;
	void *p = NULL;

	if (bytes < align)
		return malloc(bytes);
	if (posix_memalign(&p, align, (bytes + align - 1) / align * align))
		return NULL;
#ifdef MADV_HUGEPAGE
	madvise(p, (bytes + align - 1) / align * align, MADV_HUGEPAGE);
#endif
	return p;
}

void charge_stall(acma_mem *m, uint32_t kind, double us)
{
	uint64_t ns = (uint64_t)(us * 1e3 + 0.5);

	if (!ns)
		return;
	m->stall_ns[kind] += ns;
	if (kind >= ACMA_WAIT_MINOR)
		return;
	if (m->nr_stalls) {
		acma_stall *last = &m->stalls[m->nr_stalls - 1];

		/* stalls of one kind back to back are one longer stall */
		if (last->kind == kind && last->t_us * 1000 + last->dur_ns >= m->now * 1000) {
			last->dur_ns += ns;
			return;
		}
	}
	if (m->nr_stalls == m->cap_stalls) {
		uint64_t cap = m->cap_stalls ? m->cap_stalls * 2 : 256;
		acma_stall *s = cap <= MAX_STALL_LOG ? realloc(m->stalls, cap * sizeof(*s)) : NULL;

		if (!s) {   /* log full until drained: fold into the last entry (time kept, not lost) */
			m->stalls[m->nr_stalls - 1].dur_ns += ns;
			return;
		}
		m->stalls = s;
		m->cap_stalls = cap;
	}
	acma_stall *e = &m->stalls[m->nr_stalls++];

	e->t_us = m->now;
	e->dur_ns = ns;
	e->kind = kind;
	e->pad = 0;
}

uint64_t acma_stall_drain(acma_mem *m, acma_stall *out, uint64_t cap)
{
	uint64_t n = m->nr_stalls < cap ? m->nr_stalls : cap;

	if (!n)
		return 0;   /* the log may not exist yet (memcpy from NULL is undefined even for 0) */
	memcpy(out, m->stalls, n * sizeof(*out));
	memmove(m->stalls, m->stalls + n, (m->nr_stalls - n) * sizeof(*out));
	m->nr_stalls -= n;
	return n;
}

static int block_set_online(acma_mem *m, uint32_t b, uint32_t zone_type)
{
	uint32_t start = b << m->block_shift, n = 1u << m->block_shift;
	struct zone *z;

	m->block_zone[b] = (uint8_t)zone_type;
	m->block_online[b] = 1;
	z = &m->zones[pfn_zone(m, start)];
	for (uint32_t pb = start >> ACMA_PAGEBLOCK_ORDER; pb < (start + n) >> ACMA_PAGEBLOCK_ORDER; pb++)
		m->pb_mt[pb] = ACMA_MT_MOVABLE;
	set_used_state(m, start, n, ACMA_PS_OFFLINE, ACMA_PS_DRIVER);
	for (uint32_t pfn = start; pfn < start + n; pfn += 1u << ACMA_MAX_ORDER)
		buddy_free(m, pfn, ACMA_MAX_ORDER, FPI_TO_TAIL);   /* onlining frees to the tail */
	m->counters[ACMA_C_PGFREE] -= n;
	z->present += n;
	z->managed += n;
	return 0;
}

int acma_mem_new(const acma_mem_config *cfg, const uint8_t *block_node,
		 const uint8_t *block_zone, const uint8_t *block_online, acma_mem **out)
{
	acma_mem *m;
	uint64_t n = cfg->nr_pages;
	uint32_t shift = 0;

	*out = NULL;
	if (!cfg->block_pages || (cfg->block_pages & (cfg->block_pages - 1)) ||
	    cfg->block_pages < (1u << ACMA_MAX_ORDER) || !n || n % cfg->block_pages ||
	    n > (1ull << 28) || !cfg->nr_nodes || cfg->nr_nodes > ACMA_MAX_NODES ||
	    cfg->swappiness > 200)
		return ACMA_EINVAL;
	const double *costs = &cfg->costs.minor_fault_us;

	for (size_t i = 0; i < sizeof(cfg->costs) / sizeof(double); i++)
		if (!(costs[i] >= 0 && costs[i] <= 1e6))   /* NaN fails too */
			return ACMA_EINVAL;
	while ((1u << shift) < cfg->block_pages)
		shift++;
	uint32_t nb = (uint32_t)(n >> shift);

	for (uint32_t b = 0; b < nb; b++)
		if (block_node[b] >= cfg->nr_nodes || block_zone[b] > ACMA_ZONE_MOVABLE || block_online[b] > 1)
			return ACMA_EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return ACMA_ENOMEM;
	m->cfg = *cfg;
	m->block_shift = shift;
	m->nr_blocks = nb;
	m->nr_zones = cfg->nr_nodes * 2;
	m->nr_pb = n >> ACMA_PAGEBLOCK_ORDER;
	m->block_node = malloc(nb);
	m->block_zone = malloc(nb);
	m->block_online = calloc(nb, 1);
	m->pg = alloc_huge(n * sizeof(struct page));
	m->pb_mt = calloc(m->nr_pb, 1);
	m->pb_free = calloc(m->nr_pb, sizeof(uint16_t));
	m->pb_mov = calloc(m->nr_pb, sizeof(uint16_t));
	m->pb_unmov = calloc(m->nr_pb, sizeof(uint16_t));
	m->zones = calloc(m->nr_zones, sizeof(struct zone));
	m->nodes = calloc(cfg->nr_nodes, sizeof(struct node));
	if (!m->block_node || !m->block_zone || !m->block_online || !m->pg || !m->pb_mt ||
	    !m->pb_free || !m->pb_mov || !m->pb_unmov || !m->zones || !m->nodes) {
		acma_mem_free(m);
		return ACMA_ENOMEM;
	}
	memcpy(m->block_node, block_node, nb);
	memcpy(m->block_zone, block_zone, nb);
	for (uint64_t i = 0; i < n; i++) {
		struct page p = { 0, NIL, NIL, NIL, ACMA_PS_OFFLINE, 0, 0, 0 };

		m->pg[i] = p;
	}
	m->state_count[ACMA_PS_OFFLINE] = n;
	for (uint32_t z = 0; z < m->nr_zones; z++)
		for (int o = 0; o <= ACMA_MAX_ORDER; o++)
			for (int t = 0; t < NR_MT; t++)
				list_init(&m->zones[z].free_area[o][t]);
	for (uint32_t i = 0; i < cfg->nr_nodes; i++)
		for (int l = 0; l < NR_LRU; l++)
			list_init(&m->nodes[i].lru[l]);
	for (uint32_t b = 0; b < nb; b++)
		if (block_online[b])
			block_set_online(m, b, block_zone[b]);
	*out = m;
	return 0;
}

void acma_mem_free(acma_mem *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->nr_vmas; i++) {
		free(m->vmas[i].bp_t);
		free(m->vmas[i].bp_lam);
		free(m->vmas[i].bp_rate);
		free(m->vmas[i].heap);
	}
	free(m->vmas);
	free(m->pte);
	free(m->stalls);
	free(m->block_node);
	free(m->block_zone);
	free(m->block_online);
	free(m->pg);
	free(m->pb_mt);
	free(m->pb_free);
	free(m->pb_mov);
	free(m->pb_unmov);
	free(m->zones);
	free(m->nodes);
	reporting_free(m);
	backing_free(m);
	balloon_free(m);
	free(m);
}

uint64_t acma_mem_bytes(const acma_mem *m)
{
	uint64_t b = sizeof(*m) + m->cfg.nr_pages * sizeof(struct page) + m->nr_pb * 7 +
		     m->nr_zones * sizeof(struct zone) + m->cfg.nr_nodes * sizeof(struct node) +
		     m->cap_vmas * sizeof(struct vma) + m->cap_gvpn * 4 + m->cap_stalls * sizeof(acma_stall);

	for (uint32_t i = 0; i < m->nr_vmas; i++)
		b += (uint64_t)m->vmas[i].cap_heap * sizeof(struct heap_ent) + m->vmas[i].cap_bp * 24ull;
	return b;
}

uint64_t acma_now(const acma_mem *m) { return m->now; }

int acma_zone_set_watermarks(acma_mem *m, uint32_t zone, uint64_t min, uint64_t low, uint64_t high)
{
	if (zone >= m->nr_zones || min > low || low > high)
		return ACMA_EINVAL;
	m->zones[zone].wmark_min = min;
	m->zones[zone].wmark_low = low;
	m->zones[zone].wmark_high = high;
	return 0;
}

int acma_zone_info(const acma_mem *m, uint32_t zone, uint64_t *out6)
{
	if (zone >= m->nr_zones)
		return ACMA_EINVAL;
	const struct zone *z = &m->zones[zone];

	out6[0] = z->free;
	out6[1] = z->managed;
	out6[2] = z->present;
	out6[3] = z->wmark_min;
	out6[4] = z->wmark_low;
	out6[5] = z->wmark_high;
	return 0;
}

int acma_state_counts(const acma_mem *m, uint64_t *out)
{
	memcpy(out, m->state_count, sizeof(m->state_count));
	return 0;
}

int acma_counters(const acma_mem *m, uint64_t *out)
{
	memcpy(out, m->counters, sizeof(m->counters));
	return 0;
}

int acma_node_lru(const acma_mem *m, uint32_t node, uint64_t *out4)
{
	if (node >= m->cfg.nr_nodes)
		return ACMA_EINVAL;
	for (int l = 0; l < NR_LRU; l++)
		out4[l] = m->nodes[node].lru[l].n;
	return 0;
}

int acma_swap_used(const acma_mem *m, uint64_t *out)
{
	*out = m->swap_used;
	return 0;
}

int acma_stall_totals(const acma_mem *m, uint64_t *out6)
{
	memcpy(out6, m->stall_ns, sizeof(m->stall_ns));
	return 0;
}

int acma_buddyinfo(const acma_mem *m, uint32_t zone, uint64_t *out)
{
	if (zone >= m->nr_zones)
		return ACMA_EINVAL;
	memcpy(out, m->zones[zone].nr_free, sizeof(m->zones[zone].nr_free));
	return 0;
}

int acma_copy_pages(const acma_mem *m, uint64_t start, uint64_t n, uint8_t *state,
		    uint8_t *flags, uint8_t *order, uint32_t *owner)
{
	if (start > m->cfg.nr_pages || n > m->cfg.nr_pages - start)
		return ACMA_EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		const struct page *p = &m->pg[start + i];

		if (state)
			state[i] = p->state;
		if (flags)
			flags[i] = p->flags;
		if (order)
			order[i] = p->order;
		if (owner)
			owner[i] = p->owner;
	}
	return 0;
}

int acma_copy_pageblocks(const acma_mem *m, uint8_t *mt, uint16_t *nfree, uint16_t *nmovable,
			 uint16_t *nunmovable)
{
	memcpy(mt, m->pb_mt, m->nr_pb);
	memcpy(nfree, m->pb_free, m->nr_pb * 2);
	memcpy(nmovable, m->pb_mov, m->nr_pb * 2);
	memcpy(nunmovable, m->pb_unmov, m->nr_pb * 2);
	return 0;
}

int acma_free_list(const acma_mem *m, uint32_t zone, uint32_t order, uint32_t mt,
		   uint32_t *out, uint64_t cap, uint64_t *n)
{
	if (zone >= m->nr_zones || order > ACMA_MAX_ORDER || mt >= NR_MT)
		return ACMA_EINVAL;
	const struct list *l = &m->zones[zone].free_area[order][mt];
	uint64_t k = 0;

	for (uint32_t i = l->head; i != NIL; i = m->pg[i].next) {
		if (k == cap)
			return ACMA_EINVAL;   /* never write past the caller's buffer */
		out[k++] = i;
	}
	*n = k;
	return 0;
}

int acma_alloc_pages(acma_mem *m, uint32_t order, uint32_t mt, uint32_t state, uint32_t node,
		     uint32_t *pfn)
{
	int err;

	if (order > ACMA_MAX_ORDER || mt >= NR_MT || node >= m->cfg.nr_nodes ||
	    (state != ACMA_PS_KERNEL && state != ACMA_PS_DRIVER))
		return ACMA_EINVAL;
	err = alloc_with_reclaim(m, order, mt, node, mt == ACMA_MT_MOVABLE, pfn);
	if (err)
		return err;
	if (state == ACMA_PS_KERNEL)
		set_used_state(m, *pfn, 1u << order, ACMA_PS_DRIVER, ACMA_PS_KERNEL);
	wake_kswapd_if_needed(m);
	return 0;
}

int acma_free_pages(acma_mem *m, uint32_t pfn, uint32_t order)
{
	if (order > ACMA_MAX_ORDER || pfn >= m->cfg.nr_pages || (pfn & ((1u << order) - 1)) ||
	    pfn + (1ull << order) > m->cfg.nr_pages)
		return ACMA_EINVAL;
	uint8_t s = m->pg[pfn].state;

	if (s != ACMA_PS_KERNEL && s != ACMA_PS_DRIVER)
		return ACMA_ESTATE;
	for (uint32_t i = pfn; i < pfn + (1u << order); i++)
		if (m->pg[i].state != s)
			return ACMA_ESTATE;
	set_used_state(m, pfn, 1u << order, s, ACMA_PS_DRIVER);
	buddy_free(m, pfn, order, 0);
	return 0;
}

/* Move mapped page pfn into the free page np (taken off the buddy lists by the caller, state
 * DRIVER): same flags, same LRU place when on the same node, the pte follows; pfn is freed. */
void move_page(acma_mem *m, uint32_t pfn, uint32_t np)
{
	uint8_t s = m->pg[pfn].state;
	struct list *l = &m->nodes[pfn_node(m, pfn)].lru[(s == ACMA_PS_FILE ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON) +
							  !!(m->pg[pfn].flags & ACMA_PG_ACTIVE)];
	uint32_t after = m->pg[pfn].prev;

	set_used_state(m, np, 1, ACMA_PS_DRIVER, s);
	m->pg[np].flags = m->pg[pfn].flags;
	m->pg[np].flags2 = m->pg[pfn].flags2;
	m->pg[np].owner = m->pg[pfn].owner;
	m->pg[np].last_clear = m->pg[pfn].last_clear;
	m->pte[m->pg[pfn].owner] = np;
	list_del(m, l, pfn);
	if (pfn_node(m, np) != pfn_node(m, pfn) || after == NIL) {
		lru_add(m, np);
	} else {   /* keep the LRU position */
		uint32_t nx = m->pg[after].next;

		m->pg[np].prev = after;
		m->pg[np].next = nx;
		m->pg[after].next = np;
		if (nx != NIL)
			m->pg[nx].prev = np;
		else
			l->tail = np;
		l->n++;
	}
	set_used_state(m, pfn, 1, s, ACMA_PS_DRIVER);
	buddy_free(m, pfn, 0, 0);
	m->counters[ACMA_C_PGMIGRATE_SUCCESS]++;
}

/* Move one mapped page elsewhere: same LRU place, same flags, the pte follows. */
int acma_migrate_page(acma_mem *m, uint32_t pfn, uint32_t *new_pfn)
{
	if (pfn >= m->cfg.nr_pages)
		return ACMA_EINVAL;
	uint8_t s = m->pg[pfn].state;
	uint32_t np;

	if (s != ACMA_PS_ANON && s != ACMA_PS_FILE)
		return ACMA_EBUSY;
	if (try_zones(m, 0, ACMA_MT_MOVABLE, pfn_node(m, pfn), m->block_zone[pfn_block(m, pfn)], 0, &np)) {
		m->counters[ACMA_C_PGMIGRATE_FAIL]++;
		return ACMA_EOOM;
	}
	move_page(m, pfn, np);
	*new_pfn = np;
	return 0;
}

int acma_block_online(acma_mem *m, uint32_t block, uint32_t zone_type)
{
	if (block >= m->nr_blocks || zone_type > ACMA_ZONE_MOVABLE)
		return ACMA_EINVAL;
	if (m->block_online[block])
		return ACMA_ESTATE;
	return block_set_online(m, block, zone_type);
}

/* Undo an isolation: restore the pageblock types and give the free pages back to the buddy. */
static void unisolate(acma_mem *m, uint32_t start, uint32_t n, const uint8_t *saved_mt)
{
	for (uint32_t k = 0; k < n >> ACMA_PAGEBLOCK_ORDER; k++)
		m->pb_mt[(start >> ACMA_PAGEBLOCK_ORDER) + k] = saved_mt[k];
	for (uint32_t pfn = start; pfn < start + n; pfn++) {
		if (m->pg[pfn].state != ACMA_PS_FREE)
			continue;
		m->pb_free[pfn >> ACMA_PAGEBLOCK_ORDER]--;
		set_used_state(m, pfn, 1, ACMA_PS_FREE, ACMA_PS_DRIVER);
		buddy_free(m, pfn, 0, FPI_TO_TAIL | FPI_SKIP_REPORT);   /* undo_isolate: no notify */
		m->counters[ACMA_C_PGFREE]--;
	}
}

/* offline_pages: refuse on unmovable pages, isolate, migrate, then take the block away. */
int acma_block_offline(acma_mem *m, uint32_t block)
{
	if (block >= m->nr_blocks)
		return ACMA_EINVAL;
	if (!m->block_online[block])
		return ACMA_ESTATE;
	uint32_t start = block << m->block_shift, n = 1u << m->block_shift;
	struct zone *z = &m->zones[pfn_zone(m, start)];
	uint32_t npb = n >> ACMA_PAGEBLOCK_ORDER;
	uint8_t *saved = malloc(npb);

	if (!saved)
		return ACMA_ENOMEM;
	for (uint32_t pfn = start; pfn < start + n; pfn++)
		if (m->pg[pfn].state == ACMA_PS_KERNEL || m->pg[pfn].state == ACMA_PS_DRIVER) {
			free(saved);
			return ACMA_EBUSY;
		}
	memcpy(saved, m->pb_mt + (start >> ACMA_PAGEBLOCK_ORDER), npb);
	for (uint32_t pfn = start; pfn < start + n; pfn++)
		if (m->pg[pfn].flags & ACMA_PG_BUDDY) {
			z->free -= 1u << m->pg[pfn].order;
			buddy_take_block(m, pfn);
		}
	memset(m->pb_mt + (start >> ACMA_PAGEBLOCK_ORDER), ACMA_MT_ISOLATE, npb);
	for (uint32_t pfn = start; pfn < start + n; pfn++) {
		uint32_t np;

		if (m->pg[pfn].state != ACMA_PS_ANON && m->pg[pfn].state != ACMA_PS_FILE)
			continue;
		if (acma_migrate_page(m, pfn, &np)) {
			unisolate(m, start, n, saved);
			free(saved);
			return ACMA_EBUSY;
		}
	}
	free(saved);
	for (uint32_t pfn = start; pfn < start + n; pfn++) {
		m->pg[pfn].flags = 0;
		m->pb_free[pfn >> ACMA_PAGEBLOCK_ORDER] = 0;
	}
	set_used_state(m, start, n, ACMA_PS_FREE, ACMA_PS_OFFLINE);
	m->block_online[block] = 0;
	z->present -= n;
	z->managed -= n;
	return 0;
}
