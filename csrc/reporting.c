// SPDX-License-Identifier: GPL-2.0
/*
 * Free page reporting, after mm/page_reporting.c (kernel-damon.md section 5):
 * __page_reporting_request's IDLE/REQUESTED/ACTIVE machine with its delayed work,
 * page_reporting_process over every zone, page_reporting_process_zone's watermark check and
 * leftover report, page_reporting_cycle's budget, scatterlist filled from the end, list
 * rotation and restart from the head after each report, and page_reporting_drain.
 *
 * The kernel's pass calls prdev->report() synchronously; here the pass stops at each report
 * and resumes in acma_reporting_done, so the device (the host) can be Python code.
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "reporting.h"

#define NO_WORK UINT64_MAX

enum { P_ZONE_START, P_LIST_START, P_LIST, P_LEFTOVER };

struct reporting {
	acma_reporting_info info;
	/* where the pass is: zone, free list (order, migratetype), phase */
	uint32_t zone, order, mt, phase;
	uint32_t cursor;            /* next page of the list to look at (NIL: the list's end) */
	int64_t budget;             /* reports left for this list (page_reporting_cycle) */
	uint32_t offset;            /* free scatterlist entries; filled from the end */
	uint32_t pending, pending_at;   /* a batch out to the device: entries, first index */
	uint32_t abort;             /* the device failed: the pass ends */
	uint32_t sg_pfn[ACMA_REPORTING_MAX_CAPACITY];
	uint8_t sg_order[ACMA_REPORTING_MAX_CAPACITY];
};

/* __page_reporting_request */
static void request(acma_mem *m, struct reporting *r)
{
	uint32_t old = r->info.state;

	if (old == ACMA_REPORTING_REQUESTED)
		return;
	r->info.state = ACMA_REPORTING_REQUESTED;
	if (old != ACMA_REPORTING_IDLE)
		return;          /* a running pass will see REQUESTED and queue itself again */
	r->info.requests++;
	r->info.due_us = m->now + r->info.delay_us;
}

/* page_reporting_notify_free, called by __free_one_page with the merged order */
void reporting_notify_free(acma_mem *m, uint32_t order)
{
	if (m->rep && order >= m->rep->info.order)
		request(m, m->rep);
}

int acma_reporting_enable(acma_mem *m, uint32_t order, uint32_t capacity, uint64_t delay_us)
{
	if (order > ACMA_MAX_ORDER || !capacity || capacity > ACMA_REPORTING_MAX_CAPACITY ||
	    delay_us > (1ull << 40))
		return ACMA_EINVAL;
	if (m->rep)
		return ACMA_ESTATE;
	struct reporting *r = calloc(1, sizeof(*r));

	if (!r)
		return ACMA_ENOMEM;
	r->info.order = order;
	r->info.capacity = capacity;
	r->info.delay_us = delay_us;
	r->info.due_us = NO_WORK;
	m->rep = r;
	request(m, r);   /* page_reporting_register: "begin initial flush of zones" */
	return 0;
}

/* page_reporting_drain: every entry back to its free list's tail; Reported if the device took
 * it and the block did not merge. */
static void drain(acma_mem *m, struct reporting *r, int ok)
{
	uint64_t pages = 0;

	for (uint32_t i = r->pending_at; i < r->pending_at + r->pending; i++) {
		uint32_t pfn = r->sg_pfn[i], order = r->sg_order[i];

		buddy_putback_isolated(m, pfn, order);
		pages += 1ull << order;
		if (ok && (m->pg[pfn].flags & ACMA_PG_BUDDY) && m->pg[pfn].order == order)
			m->pg[pfn].flags |= ACMA_PG_REPORTED;
	}
	r->info.reports++;
	if (ok) {
		r->info.blocks_reported += r->pending;
		r->info.pages_reported += pages;
	} else {
		r->info.failed_reports++;
	}
	r->pending = 0;
}

void reporting_free(acma_mem *m)
{
	free(m->rep);
	m->rep = NULL;
}

int acma_reporting_disable(acma_mem *m)
{
	if (!m->rep)
		return ACMA_ESTATE;
	if (m->rep->pending)
		drain(m, m->rep, 0);
	reporting_free(m);
	return 0;
}

int acma_reporting_get(const acma_mem *m, acma_reporting_info *out)
{
	if (!m->rep)
		return ACMA_ESTATE;
	*out = m->rep->info;
	return 0;
}

static void emit(struct reporting *r, uint32_t at, uint32_t *pfns, uint8_t *orders, uint32_t *n)
{
	r->pending_at = at;
	r->pending = r->info.capacity - at;
	memcpy(pfns, r->sg_pfn + at, r->pending * sizeof(*pfns));
	memcpy(orders, r->sg_order + at, r->pending);
	*n = r->pending;
}

/* The end of page_reporting_cycle: the page to resume at becomes the list's head. */
static void end_list(acma_mem *m, struct reporting *r, uint32_t resume)
{
	if (resume != NIL)
		list_rotate_to_front(m, &m->zones[r->zone].free_area[r->order][r->mt], resume);
	r->mt++;
	r->phase = P_LIST_START;
}

/* page_reporting_cycle's loop from the cursor: 1 when a full scatterlist is ready to report */
static int cycle(acma_mem *m, struct reporting *r)
{
	struct list *l = &m->zones[r->zone].free_area[r->order][r->mt];

	while (r->cursor != NIL) {
		uint32_t page = r->cursor, next = m->pg[page].next;

		if (m->pg[page].flags & ACMA_PG_REPORTED) {
			r->cursor = next;
			continue;
		}
		if (r->budget < 0) {
			r->info.state = ACMA_REPORTING_REQUESTED;
			end_list(m, r, page);
			return 0;
		}
		if (r->offset) {
			if (!buddy_isolate_free(m, page)) {
				end_list(m, r, page);
				return 0;
			}
			r->offset--;
			r->sg_pfn[r->offset] = page;
			r->sg_order[r->offset] = (uint8_t)r->order;
			r->cursor = next;
			continue;
		}
		list_rotate_to_front(m, l, page);   /* the first unprocessed page leads the list */
		return 1;
	}
	end_list(m, r, NIL);
	return 0;
}

/* page_reporting_process's end: back to IDLE, or queue the work again if requested meanwhile */
static void end_pass(acma_mem *m, struct reporting *r)
{
	r->info.in_pass = 0;
	if (r->info.state == ACMA_REPORTING_REQUESTED)
		r->info.due_us = m->now + r->info.delay_us;
	else
		r->info.state = ACMA_REPORTING_IDLE;
}

int acma_reporting_next(acma_mem *m, uint32_t *pfns, uint8_t *orders, uint32_t cap, uint32_t *n)
{
	struct reporting *r = m->rep;

	*n = 0;
	if (!r)
		return ACMA_ESTATE;
	if (r->pending)
		return ACMA_ESTATE;   /* acma_reporting_done first */
	if (cap < r->info.capacity)
		return ACMA_EINVAL;
	if (!r->info.in_pass) {
		if (r->info.due_us > m->now)
			return 0;
		r->info.due_us = NO_WORK;
		r->info.state = ACMA_REPORTING_ACTIVE;
		r->info.in_pass = 1;
		r->info.passes++;
		r->zone = 0;
		r->abort = 0;
		r->phase = P_ZONE_START;
	}
	while (!r->abort) {
		if (r->phase == P_ZONE_START) {
			if (r->zone >= m->nr_zones)
				break;
			struct zone *z = &m->zones[r->zone];

			r->offset = r->info.capacity;
			if (!zone_watermark_ok(m, r->zone, 0,
					       z->wmark_low + ((uint64_t)r->info.capacity << r->info.order))) {
				r->info.zones_skipped++;
				r->zone++;
				continue;
			}
			r->order = r->info.order;
			r->mt = 0;
			r->phase = P_LIST_START;
		} else if (r->phase == P_LIST_START) {
			if (r->mt == NR_MT) {
				r->mt = 0;
				r->order++;
			}
			if (r->order > ACMA_MAX_ORDER) {
				r->phase = P_LEFTOVER;
				continue;
			}
			struct zone *z = &m->zones[r->zone];
			struct list *l = &z->free_area[r->order][r->mt];

			if (l->head == NIL) {
				r->mt++;
				continue;
			}
			uint64_t per = (uint64_t)r->info.capacity * 16;

			r->budget = (int64_t)((z->nr_free[r->order] + per - 1) / per);
			r->cursor = l->head;
			r->phase = P_LIST;
		} else if (r->phase == P_LIST) {
			if (cycle(m, r)) {
				emit(r, 0, pfns, orders, n);
				return 0;
			}
		} else {   /* P_LEFTOVER: report what the zone's lists left in the scatterlist */
			if (r->offset < r->info.capacity) {
				emit(r, r->offset, pfns, orders, n);
				return 0;
			}
			r->zone++;
			r->phase = P_ZONE_START;
		}
	}
	end_pass(m, r);
	return 0;
}

int acma_reporting_done(acma_mem *m, uint32_t ok)
{
	struct reporting *r = m->rep;

	if (!r || !r->pending)
		return ACMA_ESTATE;
	if (ok > 1)
		return ACMA_EINVAL;
	drain(m, r, (int)ok);
	r->offset = r->info.capacity;
	if (r->phase == P_LIST) {
		r->budget--;
		r->cursor = m->zones[r->zone].free_area[r->order][r->mt].head;
	} else {
		r->zone++;
		r->phase = P_ZONE_START;
	}
	if (!ok)
		r->abort = 1;   /* the error ends the zone and the pass */
	return 0;
}

/* Checkpoint section: a flag, then the whole record (plain data), validated on load. */
int reporting_walk(acma_mem *m, struct stream *s)
{
	uint8_t on = m->rep != NULL;

	snap_xfer(s, &on, 1);
	if (!on)
		return 0;
	if (snap_reading(s)) {
		if (on != 1)
			return ACMA_EINVAL;
		m->rep = calloc(1, sizeof(*m->rep));
		if (!m->rep)
			return ACMA_ENOMEM;
	}
	struct reporting *r = m->rep;

	snap_xfer(s, r, sizeof(*r));
	if (!snap_reading(s))
		return 0;
	if (r->info.order > ACMA_MAX_ORDER || !r->info.capacity ||
	    r->info.capacity > ACMA_REPORTING_MAX_CAPACITY || r->info.state > ACMA_REPORTING_ACTIVE ||
	    r->zone > m->nr_zones || r->order > ACMA_MAX_ORDER + 1 || r->mt > NR_MT ||
	    r->phase > P_LEFTOVER || r->offset > r->info.capacity ||
	    r->pending_at + r->pending > r->info.capacity ||
	    (r->cursor != NIL && r->cursor >= m->cfg.nr_pages))
		return ACMA_EINVAL;
	for (uint32_t i = r->pending_at; i < r->pending_at + r->pending; i++)
		if (r->sg_order[i] > ACMA_MAX_ORDER || r->sg_pfn[i] >= m->cfg.nr_pages ||
		    (r->sg_pfn[i] & ((1u << r->sg_order[i]) - 1)) ||
		    r->sg_pfn[i] + (1ull << r->sg_order[i]) > m->cfg.nr_pages)
			return ACMA_EINVAL;
	return 0;
}

/* Every Reported page heads a free block; a batch out to the device is isolated (DRIVER);
 * the pass's cursor is a free head on the list the pass is walking. */
int reporting_check(const acma_mem *m)
{
	const struct reporting *r = m->rep;

	if (r && r->info.in_pass && r->phase == P_LIST) {
		if (r->zone >= m->nr_zones || r->order > ACMA_MAX_ORDER || r->mt >= NR_MT)
			return 1;
		uint32_t c = r->cursor;

		if (c != NIL && (!(m->pg[c].flags & ACMA_PG_BUDDY) || m->pg[c].order != r->order ||
				 pfn_zone(m, c) != r->zone ||
				 (m->pb_mt[c >> ACMA_PAGEBLOCK_ORDER] == ACMA_MT_MOVABLE) != r->mt))
			return 1;
	}
	for (uint64_t i = 0; i < m->cfg.nr_pages; i++)
		if ((m->pg[i].flags & ACMA_PG_REPORTED) &&
		    (!(m->pg[i].flags & ACMA_PG_BUDDY) || m->pg[i].state != ACMA_PS_FREE))
			return 1;
	if (m->rep)
		for (uint32_t i = m->rep->pending_at; i < m->rep->pending_at + m->rep->pending; i++)
			for (uint64_t p = m->rep->sg_pfn[i]; p < m->rep->sg_pfn[i] + (1ull << m->rep->sg_order[i]); p++)
				if (p >= m->cfg.nr_pages || m->pg[p].state != ACMA_PS_DRIVER)
					return 1;
	return 0;
}
