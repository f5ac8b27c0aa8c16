// SPDX-License-Identifier: GPL-2.0
/*
 * The host-page backing tracker (backing.h). One bit per guest page says "discarded on the
 * host and not written since"; one count per host page says how many of its guest pages are.
 * A host page is backed unless all of them are. A write to a discarded page of an unbacked
 * host page is a host fault that populates the whole host page (zeroed); a write to one of a
 * backed host page only clears its bit (the host page was never given back). Time spent with
 * pages backed is integrated exactly at every change, so host GiB-hours need no sampling.
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "backing.h"

#define MAX_HP_ORDER 18         /* 1 GiB host pages */

struct backing {
	acma_backing_info info;
	uint64_t *disc;             /* bit per guest page: discarded, not written since */
	uint32_t *ndisc;            /* per host page: discarded guest pages */
	uint64_t area, peak, since, last_t;
};

static inline int bit(const uint64_t *b, uint64_t i) { return (int)((b[i >> 6] >> (i & 63)) & 1); }
static inline void set_bit(uint64_t *b, uint64_t i) { b[i >> 6] |= 1ull << (i & 63); }
static inline void clear_bit(uint64_t *b, uint64_t i) { b[i >> 6] &= ~(1ull << (i & 63)); }

/* Integrate backed host pages up to now before their number changes. */
static void tick(const acma_mem *m, struct backing *b)
{
	if (m->now > b->last_t) {
		b->area += b->info.backed * (m->now - b->last_t);
		b->last_t = m->now;
	}
}

/* A host fault: the host page gets a zeroed page; every guest page of it is backed again. */
static void populate(acma_mem *m, struct backing *b, uint64_t h)
{
	uint64_t hp = 1ull << b->info.hp_order, first = h << b->info.hp_order;
	double us = b->info.fault_us + b->info.zero_us * (double)hp;

	for (uint64_t i = first; i < first + hp; i++)
		clear_bit(b->disc, i);
	b->info.discarded -= b->ndisc[h];
	b->ndisc[h] = 0;
	tick(m, b);
	b->info.backed++;
	if (b->info.backed > b->peak)
		b->peak = b->info.backed;
	b->info.faults++;
	b->info.fault_ns += (uint64_t)(us * 1e3 + 0.5);
	charge_stall(m, ACMA_WAIT_MINOR, us);   /* the guest's write waits for the host's fault */
}

/* set_used_state's hook: pages [pfn, +npages) are about to hold guest data. */
void backing_use(acma_mem *m, uint32_t pfn, uint32_t npages)
{
	struct backing *b = m->bk;
	uint32_t o = b->info.hp_order;

	for (uint64_t i = pfn; i < (uint64_t)pfn + npages; i++) {
		if (!bit(b->disc, i))
			continue;
		uint64_t h = i >> o;

		if (b->ndisc[h] == 1u << o) {
			populate(m, b, h);
		} else {
			clear_bit(b->disc, i);
			b->ndisc[h]--;
			b->info.discarded--;
		}
	}
}

void backing_free(acma_mem *m)
{
	if (!m->bk)
		return;
	free(m->bk->disc);
	free(m->bk->ndisc);
	free(m->bk);
	m->bk = NULL;
}

/* The books from the bitmap: per-host-page counts, discarded and backed totals. */
static void recount(acma_mem *m, struct backing *b)
{
	uint32_t o = b->info.hp_order;

	memset(b->ndisc, 0, b->info.nr_host_pages * sizeof(uint32_t));
	b->info.discarded = 0;
	for (uint64_t i = 0; i < m->cfg.nr_pages; i++)
		if (bit(b->disc, i)) {
			b->ndisc[i >> o]++;
			b->info.discarded++;
		}
	b->info.backed = 0;
	for (uint64_t h = 0; h < b->info.nr_host_pages; h++)
		b->info.backed += b->ndisc[h] < 1u << o;
}

static struct backing *backing_alloc(const acma_mem *m, uint32_t hp_order)
{
	struct backing *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->info.hp_order = hp_order;
	b->info.nr_host_pages = m->cfg.nr_pages >> hp_order;
	b->disc = calloc((m->cfg.nr_pages + 63) / 64, 8);
	b->ndisc = calloc(b->info.nr_host_pages, sizeof(uint32_t));
	if (!b->disc || !b->ndisc) {
		free(b->disc);
		free(b->ndisc);
		free(b);
		return NULL;
	}
	return b;
}

static int valid_hp_order(const acma_mem *m, uint32_t hp_order)
{
	return hp_order <= MAX_HP_ORDER && !(m->cfg.nr_pages & ((1ull << hp_order) - 1));
}

int acma_backing_enable(acma_mem *m, uint32_t hp_order, uint32_t prefaulted, double fault_us,
			double zero_us)
{
	if (!valid_hp_order(m, hp_order) || prefaulted > 1 || !(fault_us >= 0 && fault_us <= 1e6) ||
	    !(zero_us >= 0 && zero_us <= 1e6))
		return ACMA_EINVAL;
	if (m->bk)
		return ACMA_ESTATE;
	struct backing *b = backing_alloc(m, hp_order);

	if (!b)
		return ACMA_ENOMEM;
	b->info.fault_us = fault_us;
	b->info.zero_us = zero_us;
	if (!prefaulted)
		for (uint64_t i = 0; i < m->cfg.nr_pages; i++)
			if (!state_holds_data(m->pg[i].state))
				set_bit(b->disc, i);
	/* a host page holding any data is backed whole: its other pages are not discarded */
	for (uint64_t i = 0; i < m->cfg.nr_pages; i++)
		if (state_holds_data(m->pg[i].state)) {
			uint64_t first = i >> hp_order << hp_order;

			for (uint64_t k = first; k < first + (1ull << hp_order); k++)
				clear_bit(b->disc, k);
		}
	recount(m, b);
	b->peak = b->info.backed;
	b->since = b->last_t = m->now;
	m->bk = b;
	return 0;
}

int acma_backing_disable(acma_mem *m)
{
	if (!m->bk)
		return ACMA_ESTATE;
	backing_free(m);
	return 0;
}

int acma_backing_get(const acma_mem *m, acma_backing_info *out)
{
	if (!m->bk)
		return ACMA_ESTATE;
	*out = m->bk->info;
	return 0;
}

static int range_discardable(const acma_mem *m, uint64_t pfn, uint64_t n)
{
	if (pfn > m->cfg.nr_pages || n > m->cfg.nr_pages - pfn)
		return ACMA_EINVAL;
	for (uint64_t i = pfn; i < pfn + n; i++)
		if (state_holds_data(m->pg[i].state))
			return ACMA_EBUSY;
	return 0;
}

static uint64_t discard(acma_mem *m, struct backing *b, uint64_t pfn, uint64_t n)
{
	uint32_t o = b->info.hp_order;
	uint64_t released = 0;

	for (uint64_t i = pfn; i < pfn + n; i++) {
		if (bit(b->disc, i))
			continue;
		uint64_t h = i >> o;

		set_bit(b->disc, i);
		b->info.discarded++;
		if (++b->ndisc[h] == 1u << o) {
			tick(m, b);
			b->info.backed--;
			released++;
		}
	}
	b->info.released += released;
	b->info.discard_calls++;
	return released;
}

int acma_backing_discard(acma_mem *m, uint64_t pfn, uint64_t n, uint64_t *released)
{
	int err;

	*released = 0;
	if (!m->bk)
		return ACMA_ESTATE;
	err = range_discardable(m, pfn, n);
	if (err)
		return err;
	*released = discard(m, m->bk, pfn, n);
	return 0;
}

int acma_backing_discard_blocks(acma_mem *m, const uint32_t *pfns, const uint8_t *orders,
				uint64_t n, uint64_t *released)
{
	*released = 0;
	if (!m->bk)
		return ACMA_ESTATE;
	for (uint64_t k = 0; k < n; k++) {
		if (orders[k] > ACMA_MAX_ORDER || (pfns[k] & ((1u << orders[k]) - 1)))
			return ACMA_EINVAL;
		int err = range_discardable(m, pfns[k], 1ull << orders[k]);

		if (err)
			return err;
	}
	for (uint64_t k = 0; k < n; k++)
		*released += discard(m, m->bk, pfns[k], 1ull << orders[k]);
	return 0;
}

int acma_backing_drain(acma_mem *m, acma_backing_window *out)
{
	struct backing *b = m->bk;

	if (!b)
		return ACMA_ESTATE;
	tick(m, b);
	out->backed_us = b->area;
	out->peak_backed = b->peak;
	out->since_us = b->since;
	out->until_us = m->now;
	b->area = 0;
	b->peak = b->info.backed;
	b->since = m->now;
	return 0;
}

int acma_backing_map(const acma_mem *m, uint8_t *out, uint64_t cap)
{
	const struct backing *b = m->bk;

	if (!b)
		return ACMA_ESTATE;
	if (cap < b->info.nr_host_pages)
		return ACMA_EINVAL;
	for (uint64_t h = 0; h < b->info.nr_host_pages; h++)
		out[h] = b->ndisc[h] < 1u << b->info.hp_order;
	return 0;
}

int backing_walk(acma_mem *m, struct stream *s)
{
	uint8_t on = m->bk != NULL;
	acma_backing_info info;

	snap_xfer(s, &on, 1);
	if (!on)
		return 0;
	if (on != 1)
		return ACMA_EINVAL;
	if (!snap_reading(s))
		info = m->bk->info;
	snap_xfer(s, &info, sizeof(info));
	if (snap_reading(s)) {
		if (!valid_hp_order(m, info.hp_order) || !(info.fault_us >= 0 && info.fault_us <= 1e6) ||
		    !(info.zero_us >= 0 && info.zero_us <= 1e6))
			return ACMA_EINVAL;
		m->bk = backing_alloc(m, info.hp_order);
		if (!m->bk)
			return ACMA_ENOMEM;
	}
	struct backing *b = m->bk;

	snap_xfer(s, b->disc, (m->cfg.nr_pages + 63) / 64 * 8);
	snap_xfer(s, &b->area, sizeof(b->area));
	snap_xfer(s, &b->peak, sizeof(b->peak));
	snap_xfer(s, &b->since, sizeof(b->since));
	snap_xfer(s, &b->last_t, sizeof(b->last_t));
	if (snap_reading(s)) {
		uint64_t backed = info.backed, discarded = info.discarded;

		b->info = info;
		recount(m, b);   /* derived from the bitmap; a mismatch means a corrupt blob */
		if (b->info.backed != backed || b->info.discarded != discarded)
			return ACMA_EINVAL;
	}
	return 0;
}

/* No page with guest data is discarded; the per-host-page counts and totals add up. */
int backing_check(const acma_mem *m)
{
	const struct backing *b = m->bk;
	uint32_t o;
	uint64_t backed = 0, discarded = 0;

	if (!b)
		return 0;
	o = b->info.hp_order;
	for (uint64_t h = 0; h < b->info.nr_host_pages; h++) {
		uint32_t k = 0;

		for (uint64_t i = h << o; i < (h + 1) << o; i++) {
			if (!bit(b->disc, i))
				continue;
			if (state_holds_data(m->pg[i].state))
				return 1;
			k++;
		}
		if (k != b->ndisc[h])
			return 1;
		backed += k < 1u << o;
		discarded += k;
	}
	return backed == b->info.backed && discarded == b->info.discarded ? 0 : 1;
}
