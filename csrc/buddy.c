// SPDX-License-Identifier: GPL-2.0
/*
 * The buddy allocator, after mm/page_alloc.c: free lists per zone, order and migratetype;
 * __rmqueue_smallest with expand(); the fallback's claim and steal (__rmqueue_claim /
 * __rmqueue_steal); __free_one_page's merging and tail placement; per-pageblock counters that
 * make the 2 MiB contiguity search a scan of N/512 entries.
 */
#include "internal.h"

/* Move npages pages starting at pfn from state `from` to `to`, keeping every count right. */
void set_used_state(acma_mem *m, uint32_t pfn, uint32_t npages, uint8_t from, uint8_t to)
{
	uint32_t i;

	for (i = pfn; i < pfn + npages; i++) {
		uint64_t pb = i >> ACMA_PAGEBLOCK_ORDER;

		m->pg[i].state = to;
		if (from == ACMA_PS_ANON || from == ACMA_PS_FILE)
			m->pb_mov[pb]--;
		else if (from == ACMA_PS_KERNEL)
			m->pb_unmov[pb]--;
		if (to == ACMA_PS_ANON || to == ACMA_PS_FILE)
			m->pb_mov[pb]++;
		else if (to == ACMA_PS_KERNEL)
			m->pb_unmov[pb]++;
	}
	m->state_count[from] -= npages;
	m->state_count[to] += npages;
	if (m->bk && state_holds_data(to))
		backing_use(m, pfn, npages);   /* the guest writes the pages: the host must back them */
}

static uint32_t block_mt(const acma_mem *m, uint32_t pfn)
{
	return m->pb_mt[pfn >> ACMA_PAGEBLOCK_ORDER];
}

/* Put a free block (its pages already ACMA_PS_FREE) on the list its pageblock's type says. */
static void add_free_block(acma_mem *m, uint32_t pfn, uint32_t order, int to_tail)
{
	struct zone *z = &m->zones[pfn_zone(m, pfn)];
	uint32_t mt = block_mt(m, pfn);
	struct list *l = &z->free_area[order][mt == ACMA_MT_MOVABLE];

	m->pg[pfn].flags |= ACMA_PG_BUDDY;
	m->pg[pfn].order = (uint8_t)order;
	if (to_tail)
		list_add_tail(m, l, pfn);
	else
		list_add_head(m, l, pfn);
	z->nr_free[order]++;
}

/* Take a free head off its list; its pages stay ACMA_PS_FREE and counted free. */
static void del_free_block(acma_mem *m, uint32_t pfn)
{
	struct zone *z = &m->zones[pfn_zone(m, pfn)];
	uint32_t order = m->pg[pfn].order;
	uint32_t mt = block_mt(m, pfn);

	list_del(m, &z->free_area[order][mt == ACMA_MT_MOVABLE], pfn);
	m->pg[pfn].flags &= (uint8_t)~(ACMA_PG_BUDDY | ACMA_PG_REPORTED);
	z->nr_free[order]--;
}

void buddy_take_block(acma_mem *m, uint32_t pfn)
{
	del_free_block(m, pfn);
}

static void set_pb_mt_range(acma_mem *m, uint32_t pfn, uint32_t order, uint32_t mt)
{
	uint64_t pb = pfn >> ACMA_PAGEBLOCK_ORDER;
	uint64_t n = order >= ACMA_PAGEBLOCK_ORDER ? 1ull << (order - ACMA_PAGEBLOCK_ORDER) : 1;

	for (uint64_t i = 0; i < n; i++)
		m->pb_mt[pb + i] = (uint8_t)mt;
}

/* expand(): the caller keeps the lowest 2^low pages; each upper half goes back to the head. */
static void expand(acma_mem *m, uint32_t pfn, uint32_t low, uint32_t high)
{
	while (high > low) {
		high--;
		add_free_block(m, pfn + (1u << high), high, 0);
	}
}

/* Hand out a free block: pages leave the free count and become ACMA_PS_DRIVER until the
 * caller gives them their real state (the state move keeps the books straight). */
static void take_pages(acma_mem *m, uint32_t pfn, uint32_t order)
{
	struct zone *z = &m->zones[pfn_zone(m, pfn)];
	uint32_t n = 1u << order;

	z->free -= n;
	for (uint32_t i = pfn; i < pfn + n; i++) {
		m->pb_free[i >> ACMA_PAGEBLOCK_ORDER]--;
		m->pg[i].flags = m->pg[i].flags2 = 0;
	}
	set_used_state(m, pfn, n, ACMA_PS_FREE, ACMA_PS_DRIVER);
	m->counters[ACMA_C_PGALLOC] += n;
}

static int rmqueue_smallest(acma_mem *m, struct zone *z, uint32_t order, uint32_t mt, uint32_t *out)
{
	for (uint32_t o = order; o <= ACMA_MAX_ORDER; o++) {
		struct list *l = &z->free_area[o][mt == ACMA_MT_MOVABLE];

		if (l->head == NIL)
			continue;
		uint32_t pfn = l->head;

		del_free_block(m, pfn);
		expand(m, pfn, order, o);
		*out = pfn;
		return 0;
	}
	return ACMA_EOOM;
}

/* Move every free block of a pageblock to the lists of `mt` and retype the pageblock. */
static void claim_pageblock(acma_mem *m, uint32_t pb, uint32_t mt)
{
	uint32_t start = pb << ACMA_PAGEBLOCK_ORDER, pfn = start;

	uint8_t old = m->pb_mt[pb];

	while (pfn < start + PB_PAGES) {
		if (m->pg[pfn].flags & ACMA_PG_BUDDY) {
			uint32_t o = m->pg[pfn].order;
			uint8_t reported = m->pg[pfn].flags & ACMA_PG_REPORTED;

			m->pb_mt[pb] = old;            /* off the list it is on... */
			del_free_block(m, pfn);
			m->pb_mt[pb] = (uint8_t)mt;    /* ...onto the new type's (a move keeps PageReported) */
			add_free_block(m, pfn, o, 0);
			m->pg[pfn].flags |= reported;
			pfn += 1u << o;
		} else {
			pfn++;
		}
	}
	m->pb_mt[pb] = (uint8_t)mt;
}

/*
 * __rmqueue_claim: from the largest fallback block down; a claim is allowed for requests of
 * order >= pageblock_order/2 and for unmovable ones. A block of a pageblock or more is retyped
 * whole; a smaller one claims its pageblock when free + alike pages reach half of it.
 */
static int rmqueue_claim(acma_mem *m, struct zone *z, uint32_t order, uint32_t mt, uint32_t *out)
{
	uint32_t other = !(mt == ACMA_MT_MOVABLE);   /* list index of the fallback type */

	for (int o = ACMA_MAX_ORDER; o >= (int)order; o--) {
		struct list *l = &z->free_area[o][other];

		if (l->head == NIL)
			continue;
		if (!(o >= ACMA_PAGEBLOCK_ORDER / 2 || mt == ACMA_MT_UNMOVABLE))
			return ACMA_EOOM;
		uint32_t pfn = l->head;

		if (o >= ACMA_PAGEBLOCK_ORDER) {
			del_free_block(m, pfn);
			set_pb_mt_range(m, pfn, (uint32_t)o, mt);
			add_free_block(m, pfn, (uint32_t)o, 0);
		} else {
			uint32_t pb = pfn >> ACMA_PAGEBLOCK_ORDER;
			uint32_t alike = mt == ACMA_MT_MOVABLE ? m->pb_mov[pb] : m->pb_unmov[pb];

			if ((uint32_t)m->pb_free[pb] + alike < PB_PAGES / 2)
				return ACMA_EOOM;
			claim_pageblock(m, pb, mt);
		}
		m->counters[ACMA_C_FALLBACK_CLAIM]++;
		return rmqueue_smallest(m, z, order, mt, out);
	}
	return ACMA_EOOM;
}

/* __rmqueue_steal: split the smallest fallback block; its pageblock keeps its type. */
static int rmqueue_steal(acma_mem *m, struct zone *z, uint32_t order, uint32_t mt, uint32_t *out)
{
	uint32_t other = !(mt == ACMA_MT_MOVABLE);

	for (uint32_t o = order; o <= ACMA_MAX_ORDER; o++) {
		struct list *l = &z->free_area[o][other];

		if (l->head == NIL)
			continue;
		uint32_t pfn = l->head;

		del_free_block(m, pfn);
		expand(m, pfn, order, o);
		m->counters[ACMA_C_FALLBACK_STEAL]++;
		*out = pfn;
		return 0;
	}
	return ACMA_EOOM;
}

/* __rmqueue: own type, then claim, then steal. The pages come back as ACMA_PS_DRIVER. */
int buddy_alloc(acma_mem *m, uint32_t zone, uint32_t order, uint32_t mt, uint32_t *pfn)
{
	struct zone *z = &m->zones[zone];

	if (rmqueue_smallest(m, z, order, mt, pfn) && rmqueue_claim(m, z, order, mt, pfn) &&
	    rmqueue_steal(m, z, order, mt, pfn))
		return ACMA_EOOM;
	take_pages(m, *pfn, order);
	return 0;
}

static int is_free_head(const acma_mem *m, uint32_t pfn, uint32_t order, uint32_t zone)
{
	return pfn < m->cfg.nr_pages && (m->pg[pfn].flags & ACMA_PG_BUDDY) && m->pg[pfn].order == order &&
	       m->block_online[pfn_block(m, pfn)] && pfn_zone(m, pfn) == zone &&
	       m->pb_mt[pfn >> ACMA_PAGEBLOCK_ORDER] != ACMA_MT_ISOLATE;
}

/*
 * __free_one_page: the block's pages (state ACMA_PS_DRIVER or any used state already moved
 * to ACMA_PS_DRIVER by the caller) become free; merge with free buddies up to MAX_ORDER, retyping
 * a differing buddy at pageblock order and above (a merged buddy loses PageReported); go to the
 * tail when the caller asks (FPI_TO_TAIL) or when the next-higher buddy is free
 * (buddy_merge_likely); then page_reporting_notify_free(order) unless FPI_SKIP_REPORT.
 */
void buddy_free(acma_mem *m, uint32_t pfn, uint32_t order, uint32_t fpi)
{
	uint32_t zone = pfn_zone(m, pfn);
	struct zone *z = &m->zones[zone];
	uint32_t n = 1u << order;
	int to_tail = !!(fpi & FPI_TO_TAIL);

	set_used_state(m, pfn, n, ACMA_PS_DRIVER, ACMA_PS_FREE);
	for (uint32_t i = pfn; i < pfn + n; i++) {
		m->pb_free[i >> ACMA_PAGEBLOCK_ORDER]++;
		m->pg[i].flags = m->pg[i].flags2 = 0;
		m->pg[i].owner = NIL;
	}
	m->counters[ACMA_C_PGFREE] += n;
	if (block_mt(m, pfn) == ACMA_MT_ISOLATE)
		return;   /* an isolated pageblock keeps its free pages off the lists (offlining) */
	z->free += n;
	while (order < ACMA_MAX_ORDER) {
		uint32_t buddy = pfn ^ (1u << order);

		if (!is_free_head(m, buddy, order, zone))
			break;
		del_free_block(m, buddy);
		if (order >= ACMA_PAGEBLOCK_ORDER && block_mt(m, buddy) != block_mt(m, pfn))
			set_pb_mt_range(m, buddy, order, block_mt(m, pfn));
		pfn &= buddy;
		order++;
	}
	if (!to_tail && order < ACMA_MAX_ORDER - 1) {
		uint32_t higher = (pfn & ~((2u << order) - 1)) ^ (2u << order);

		to_tail = is_free_head(m, higher, order + 1, zone);
	}
	add_free_block(m, pfn, order, to_tail);
	if (!(fpi & FPI_SKIP_REPORT))
		reporting_notify_free(m, order);
}

/*
 * __isolate_free_page: take free head pfn off its list as if allocating it (it must leave
 * the zone above min + its size, order-0 check), without splitting it; a block of at least half
 * a pageblock makes its pageblocks MOVABLE (move_freepages_block). The pages become
 * ACMA_PS_DRIVER until buddy_putback_isolated. Returns 1, or 0 when the watermark forbids it.
 */
int buddy_isolate_free(acma_mem *m, uint32_t pfn)
{
	uint32_t zone = pfn_zone(m, pfn), order = m->pg[pfn].order, n = 1u << order;
	struct zone *z = &m->zones[zone];

	if (!zone_watermark_ok(m, zone, 0, z->wmark_min + n))
		return 0;
	del_free_block(m, pfn);
	z->free -= n;
	for (uint32_t i = pfn; i < pfn + n; i++)
		m->pb_free[i >> ACMA_PAGEBLOCK_ORDER]--;
	set_used_state(m, pfn, n, ACMA_PS_FREE, ACMA_PS_DRIVER);
	if (order >= ACMA_PAGEBLOCK_ORDER)
		set_pb_mt_range(m, pfn, order, ACMA_MT_MOVABLE);
	else if (order == ACMA_PAGEBLOCK_ORDER - 1 && block_mt(m, pfn) != ACMA_MT_MOVABLE)
		claim_pageblock(m, pfn >> ACMA_PAGEBLOCK_ORDER, ACMA_MT_MOVABLE);
	return 1;
}

/* __putback_isolated_page: back to the free list's tail, merging, without a reporting notify;
 * neither an allocation nor a free in the vmstat counters. */
void buddy_putback_isolated(acma_mem *m, uint32_t pfn, uint32_t order)
{
	buddy_free(m, pfn, order, FPI_TO_TAIL | FPI_SKIP_REPORT);
	m->counters[ACMA_C_PGFREE] -= 1u << order;
}

/* zone_watermark_ok for one order, without highatomic, CMA or lowmem_reserve. */
int zone_watermark_ok(const acma_mem *m, uint32_t zone, uint32_t order, uint64_t mark)
{
	const struct zone *z = &m->zones[zone];
	int64_t usable = (int64_t)z->free - ((1 << order) - 1);

	if (usable <= (int64_t)mark)
		return 0;
	if (order == 0)
		return 1;
	for (uint32_t o = order; o <= ACMA_MAX_ORDER; o++)
		if (z->nr_free[o])
			return 1;
	return 0;
}

int acma_scan_pageblocks(const acma_mem *m, uint64_t *fully_free, uint64_t *movable_only,
			 uint64_t *nfree_out, uint64_t *nmov_out)
{
	uint64_t nf = 0, nm = 0, words = (m->nr_pb + 63) / 64;

	if (fully_free)
		for (uint64_t w = 0; w < words; w++)
			fully_free[w] = 0;
	if (movable_only)
		for (uint64_t w = 0; w < words; w++)
			movable_only[w] = 0;
	for (uint64_t pb = 0; pb < m->nr_pb; pb++) {
		uint32_t f = m->pb_free[pb], mv = m->pb_mov[pb];
		uint64_t bit = 1ull << (pb & 63);

		if (f == PB_PAGES) {
			nf++;
			if (fully_free)
				fully_free[pb >> 6] |= bit;
		} else if (mv && f + mv == PB_PAGES) {
			nm++;
			if (movable_only)
				movable_only[pb >> 6] |= bit;
		}
	}
	if (nfree_out)
		*nfree_out = nf;
	if (nmov_out)
		*nmov_out = nm;
	return 0;
}
