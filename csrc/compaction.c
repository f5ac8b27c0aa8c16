// SPDX-License-Identifier: GPL-2.0
/*
 * compact_zone for order -1 (compaction.h). The functions follow mm/compaction.c by name:
 * compact_finished, isolate_migratepages(_block), isolate_freepages(_block),
 * suitable_migration_target, compaction_alloc (free pages kept per order, the smallest split
 * first), migrate_pages, release_free_list. Isolated free pages are ACMA_PS_DRIVER while the
 * compaction holds them; isolated migrate pages stay mapped (migration is instantaneous).
 */
#include <stdlib.h>
#include "internal.h"
#include "compaction.h"

#define COMPACT_CLUSTER_MAX 32
#define HPAGE_ORDER ACMA_PAGEBLOCK_ORDER   /* COMPACTION_HPAGE_ORDER */

struct freelist {                  /* isolated free blocks of one order; [0] is the head */
	uint32_t *pfn;
	uint64_t n, cap;
};

struct cc {
	acma_mem *m;
	uint32_t zone, proactive, wmark_low;
	uint64_t start, end;           /* the zone's span (pfns of its blocks, holes allowed) */
	uint64_t migrate_pfn, free_pfn;
	uint32_t migrate[COMPACT_CLUSTER_MAX];
	uint32_t nr_migrate;
	uint64_t nr_free;
	struct freelist fl[ACMA_MAX_ORDER + 1];
	acma_compact_stats *st;
	int nomem;
};

static uint64_t pb_start(uint64_t pfn) { return pfn & ~(uint64_t)(PB_PAGES - 1); }
static uint64_t pb_end(uint64_t pfn) { return pb_start(pfn) + PB_PAGES; }

/* pageblock_pfn_to_page: NULL (0) when the pageblock is a hole of this zone */
static int pb_in_zone(const struct cc *cc, uint64_t pfn)
{
	const acma_mem *m = cc->m;

	return pfn < m->cfg.nr_pages && m->block_online[pfn_block(m, pfn)] && pfn_zone(m, pfn) == cc->zone;
}

static unsigned extfrag(const acma_mem *m, uint32_t zone, uint32_t order)
{
	const struct zone *z = &m->zones[zone];
	uint64_t free = 0, suitable = 0;

	for (uint32_t o = 0; o <= ACMA_MAX_ORDER; o++) {
		free += z->nr_free[o] << o;
		if (o >= order)
			suitable += z->nr_free[o] << (o - order);
	}
	return free ? (unsigned)((free - (suitable << order)) * 100 / free) : 0;
}

int acma_fragmentation_score_zone(const acma_mem *m, uint32_t zone, uint32_t *score)
{
	if (zone >= m->nr_zones)
		return ACMA_EINVAL;
	*score = extfrag(m, zone, HPAGE_ORDER);
	return 0;
}

int acma_fragmentation_score_node(const acma_mem *m, uint32_t node, uint32_t *score)
{
	if (node >= m->cfg.nr_nodes)
		return ACMA_EINVAL;
	uint64_t node_present = 0, s = 0;

	for (uint32_t t = 0; t < 2; t++)
		node_present += m->zones[node * 2 + t].present;
	for (uint32_t t = 0; t < 2; t++) {
		const struct zone *z = &m->zones[node * 2 + t];

		if (z->present)
			s += z->present * extfrag(m, node * 2 + t, HPAGE_ORDER) / (node_present + 1);
	}
	*score = (uint32_t)s;
	return 0;
}

static int fl_push(struct freelist *f, uint32_t pfn, int head)
{
	if (f->n == f->cap) {
		uint64_t cap = f->cap ? f->cap * 2 : 64;
		uint32_t *p = realloc(f->pfn, cap * sizeof(*p));

		if (!p)
			return ACMA_ENOMEM;
		f->pfn = p;
		f->cap = cap;
	}
	if (head) {
		for (uint64_t i = f->n; i > 0; i--)
			f->pfn[i] = f->pfn[i - 1];
		f->pfn[0] = pfn;
	} else {
		f->pfn[f->n] = pfn;
	}
	f->n++;
	return 0;
}

/* compact_scanners_met */
static int scanners_met(const struct cc *cc)
{
	return (cc->free_pfn >> ACMA_PAGEBLOCK_ORDER) <= (cc->migrate_pfn >> ACMA_PAGEBLOCK_ORDER);
}

/* __compact_finished for order -1: scanners met, or (proactive) the score is low enough */
static int compact_finished(const struct cc *cc)
{
	if (scanners_met(cc))
		return ACMA_COMPACT_COMPLETE;
	if (cc->proactive && extfrag(cc->m, cc->zone, HPAGE_ORDER) <= cc->wmark_low)
		return ACMA_COMPACT_SUCCESS;
	return -1;   /* COMPACT_CONTINUE */
}

/* isolate_migratepages_block over [low, end): skip free blocks whole; isolate LRU pages until
 * COMPACT_CLUSTER_MAX; the scanner resumes after the last one. */
static void isolate_migratepages_block(struct cc *cc, uint64_t low, uint64_t end)
{
	acma_mem *m = cc->m;
	uint64_t scanned = 0;

	for (; low < end; low++) {
		const struct page *p = &m->pg[low];

		scanned++;
		if (p->flags & ACMA_PG_BUDDY) {
			low += (1ull << p->order) - 1;
			scanned += (1ull << p->order) - 1;
			continue;
		}
		if (p->state != ACMA_PS_ANON && p->state != ACMA_PS_FILE)
			continue;
		cc->migrate[cc->nr_migrate++] = (uint32_t)low;
		cc->st->isolated++;
		if (cc->nr_migrate == COMPACT_CLUSTER_MAX) {
			low++;
			break;
		}
	}
	cc->migrate_pfn = low;
	cc->st->migrate_scanned += scanned;
}

/* isolate_migratepages: from the cached position, the first pageblock of the zone that is
 * not a hole, below the free scanner. 1 when something was isolated. */
static int isolate_migratepages(struct cc *cc)
{
	uint64_t low = cc->migrate_pfn, bstart = pb_start(low), bend = pb_end(low);

	if (bstart < cc->start)
		bstart = cc->start;
	for (; bend <= cc->free_pfn; cc->migrate_pfn = low = bend, bstart = bend, bend += PB_PAGES) {
		if (!pb_in_zone(cc, bstart))
			continue;
		isolate_migratepages_block(cc, low, bend);
		break;
	}
	return cc->nr_migrate != 0;
}

/* suitable_migration_target for order -1: not a free block of a pageblock or more, and a
 * MOVABLE pageblock */
static int suitable_target(const struct cc *cc, uint64_t bstart)
{
	const struct page *p = &cc->m->pg[bstart];

	if ((p->flags & ACMA_PG_BUDDY) && p->order >= ACMA_PAGEBLOCK_ORDER)
		return 0;
	return cc->m->pb_mt[bstart >> ACMA_PAGEBLOCK_ORDER] == ACMA_MT_MOVABLE;
}

/* isolate_freepages_block, non-strict, stride 1: free heads in [*start, end) to the per-order
 * lists' tails until as many free pages as pages to migrate are held */
static void isolate_freepages_block(struct cc *cc, uint64_t *start, uint64_t end)
{
	acma_mem *m = cc->m;
	uint64_t pfn = *start, scanned = 0;

	for (; pfn < end; pfn++) {
		scanned++;
		if (!(m->pg[pfn].flags & ACMA_PG_BUDDY))
			continue;
		uint32_t order = m->pg[pfn].order;
		uint64_t n = 1ull << order;

		if (!buddy_isolate_free(m, (uint32_t)pfn))
			break;
		if (fl_push(&cc->fl[order], (uint32_t)pfn, 0)) {
			cc->nomem = 1;
			buddy_putback_isolated(m, (uint32_t)pfn, order);
			break;
		}
		scanned += n - 1;
		cc->nr_free += n;
		cc->st->isolated += n;
		if (cc->nr_migrate <= cc->nr_free) {
			pfn += n;
			break;
		}
		pfn += n - 1;
	}
	*start = pfn;
	cc->st->free_scanned += scanned;
}

/* isolate_freepages: pageblock by pageblock down from the free scanner to the one above
 * the migrate scanner's */
static void isolate_freepages(struct cc *cc)
{
	int64_t bstart = (int64_t)pb_start(cc->free_pfn);
	uint64_t bend = pb_end(cc->free_pfn), iso = cc->free_pfn;
	int64_t low = (int64_t)pb_end(cc->migrate_pfn);

	if (bend > cc->end)
		bend = cc->end;
	for (; bstart >= low; bend = (uint64_t)bstart, bstart -= PB_PAGES, iso = (uint64_t)bstart) {
		if (!pb_in_zone(cc, (uint64_t)bstart) || !suitable_target(cc, (uint64_t)bstart))
			continue;
		isolate_freepages_block(cc, &iso, bend);
		if (cc->nr_free >= cc->nr_migrate) {
			if (iso >= bend)
				iso = (uint64_t)(bstart - PB_PAGES);
			break;
		} else if (iso < bend) {
			break;
		}
	}
	cc->free_pfn = iso;
}

/* compaction_alloc: the head of the smallest non-empty order's list; a larger block is split,
 * the upper halves going to the heads of the lower lists. 0 (and *pfn) or -1 when none. */
static int compaction_alloc(struct cc *cc, uint32_t *pfn)
{
	int tried = 0;

	for (;;) {
		uint32_t o = 0;

		while (o <= ACMA_MAX_ORDER && !cc->fl[o].n)
			o++;
		if (o <= ACMA_MAX_ORDER) {
			struct freelist *f = &cc->fl[o];
			uint32_t p = f->pfn[0];

			for (uint64_t i = 1; i < f->n; i++)
				f->pfn[i - 1] = f->pfn[i];
			f->n--;
			while (o > 0) {
				o--;
				if (fl_push(&cc->fl[o], p + (1u << o), 1)) {
					cc->nomem = 1;   /* give the half back rather than lose it */
					buddy_putback_isolated(cc->m, p + (1u << o), o);
					cc->nr_free -= 1u << o;
				}
			}
			cc->nr_free--;
			*pfn = p;
			return 0;
		}
		if (tried)
			return -1;
		isolate_freepages(cc);
		tried = 1;
	}
}

/* migrate_pages: the isolated list from its head (the last isolated page first) */
static int migrate_pages(struct cc *cc)
{
	acma_mem *m = cc->m;
	double us = 0;
	int err = 0;

	for (int i = (int)cc->nr_migrate - 1; i >= 0; i--) {
		uint32_t src = cc->migrate[i], dst;

		if (err || compaction_alloc(cc, &dst)) {
			err = 1;
			cc->st->migrate_failed++;
			m->counters[ACMA_C_PGMIGRATE_FAIL]++;
			continue;   /* putback_movable_pages: the page stays where it is */
		}
		move_page(m, src, dst);
		cc->st->migrated++;
		us += m->cfg.costs.migrate_us;
	}
	cc->nr_migrate = 0;
	if (us > 0) {
		charge_stall(m, ACMA_STALL_COMPACT, us);
		cc->st->cost_ns += (uint64_t)(us * 1e3 + 0.5);
	}
	return err;
}

/* release_free_list: what the free scanner took and migration did not use goes back */
static void release_free_list(struct cc *cc)
{
	for (uint32_t o = 0; o <= ACMA_MAX_ORDER; o++) {
		for (uint64_t i = 0; i < cc->fl[o].n; i++)
			buddy_free(cc->m, cc->fl[o].pfn[i], o, 0);
		free(cc->fl[o].pfn);
	}
}

int acma_compact_zone(acma_mem *m, uint32_t zone, uint32_t proactive, uint32_t proactiveness,
		      acma_compact_stats *st, uint32_t *result)
{
	if (zone >= m->nr_zones || proactive > 1 || (proactive && (!proactiveness || proactiveness > 100)))
		return ACMA_EINVAL;
	struct cc cc = { .m = m, .zone = zone, .proactive = proactive, .st = st };
	uint64_t first = UINT64_MAX, last = 0;

	cc.wmark_low = proactiveness >= 95 ? 5 : 100 - proactiveness;   /* fragmentation_score_wmark(true) */
	for (uint32_t b = 0; b < m->nr_blocks; b++)
		if (m->block_online[b] && (uint32_t)m->block_node[b] * 2 + m->block_zone[b] == zone) {
			uint64_t s = (uint64_t)b << m->block_shift;

			if (first == UINT64_MAX)
				first = s;
			last = s + (1ull << m->block_shift);
		}
	*result = ACMA_COMPACT_SKIPPED;
	if (first == UINT64_MAX)
		return 0;
	cc.start = cc.migrate_pfn = first;
	cc.end = last;
	cc.free_pfn = pb_start(last - 1);
	int ret;

	while ((ret = compact_finished(&cc)) < 0) {
		if (!isolate_migratepages(&cc))
			continue;
		if (migrate_pages(&cc) && !scanners_met(&cc)) {
			ret = ACMA_COMPACT_CONTENDED;
			break;
		}
		if (cc.nomem) {
			ret = ACMA_COMPACT_CONTENDED;
			break;
		}
	}
	release_free_list(&cc);
	*result = (uint32_t)ret;
	return cc.nomem ? ACMA_ENOMEM : 0;
}
