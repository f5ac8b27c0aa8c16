// SPDX-License-Identifier: GPL-2.0
/* memmap_on_memory (hotplug.h), around acma_block_online / acma_block_offline. */
#include "internal.h"
#include "hotplug.h"

static int valid(const acma_mem *m, uint32_t block, uint32_t nr)
{
	return block < m->nr_blocks && nr && !(nr % PB_PAGES) && nr < (1u << m->block_shift);
}

/* Take [start, start + nr) out of the free lists as kernel pages in UNMOVABLE pageblocks: the
 * free blocks covering it come off their lists, what lies beyond it goes back. 0 or EBUSY. */
static int take_vmemmap(acma_mem *m, uint32_t start, uint32_t nr)
{
	struct zone *z = &m->zones[pfn_zone(m, start)];

	for (uint32_t p = start; p < start + nr; p++)
		if (m->pg[p].state != ACMA_PS_FREE)
			return ACMA_EBUSY;
	for (uint32_t p = start; p < start + nr;) {
		uint32_t o = m->pg[p].order, n = 1u << o;   /* p heads a free block (aligned range) */

		z->free -= n;
		buddy_take_block(m, p);
		for (uint32_t i = p; i < p + n; i++)
			m->pb_free[i >> ACMA_PAGEBLOCK_ORDER]--;
		set_used_state(m, p, n, ACMA_PS_FREE, ACMA_PS_DRIVER);
		if (p + n > start + nr) {   /* a block reaching past the range: its tail goes back */
			for (uint32_t q = start + nr; q < p + n; q += PB_PAGES)
				buddy_free(m, q, ACMA_PAGEBLOCK_ORDER, FPI_TO_TAIL | FPI_SKIP_REPORT);
			m->counters[ACMA_C_PGFREE] -= p + n - (start + nr);
		}
		p += n;
	}
	set_used_state(m, start, nr, ACMA_PS_DRIVER, ACMA_PS_KERNEL);
	for (uint32_t pb = start >> ACMA_PAGEBLOCK_ORDER; pb < (start + nr) >> ACMA_PAGEBLOCK_ORDER; pb++)
		m->pb_mt[pb] = ACMA_MT_UNMOVABLE;
	z->managed -= nr;
	return 0;
}

int acma_block_online_memmap(acma_mem *m, uint32_t block, uint32_t zone_type, uint32_t nr_vmemmap)
{
	if (!valid(m, block, nr_vmemmap))
		return ACMA_EINVAL;
	int err = acma_block_online(m, block, zone_type);

	if (err)
		return err;
	return take_vmemmap(m, block << m->block_shift, nr_vmemmap);   /* a fresh block: all free */
}

int acma_block_offline_memmap(acma_mem *m, uint32_t block, uint32_t nr_vmemmap)
{
	if (!valid(m, block, nr_vmemmap))
		return ACMA_EINVAL;
	if (!m->block_online[block])
		return ACMA_ESTATE;
	uint32_t start = block << m->block_shift, n = 1u << m->block_shift;

	for (uint32_t p = start; p < start + nr_vmemmap; p++)
		if (m->pg[p].state != ACMA_PS_KERNEL)
			return ACMA_EINVAL;   /* not a memmap_on_memory block */
	for (uint32_t p = start + nr_vmemmap; p < start + n; p++)
		if (m->pg[p].state == ACMA_PS_KERNEL || m->pg[p].state == ACMA_PS_DRIVER)
			return ACMA_EBUSY;
	/* the memmap goes with the block: hand its pages to the offlining as free ones */
	m->zones[pfn_zone(m, start)].managed += nr_vmemmap;
	set_used_state(m, start, nr_vmemmap, ACMA_PS_KERNEL, ACMA_PS_DRIVER);
	for (uint32_t p = start; p < start + nr_vmemmap; p += PB_PAGES)
		buddy_free(m, p, ACMA_PAGEBLOCK_ORDER, FPI_TO_TAIL | FPI_SKIP_REPORT);
	m->counters[ACMA_C_PGFREE] -= nr_vmemmap;
	int err = acma_block_offline(m, block);

	if (err && take_vmemmap(m, start, nr_vmemmap))
		return ACMA_ESTATE;   /* cannot happen: the undone isolation freed the range again */
	return err;
}
