/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memmap_on_memory (mm/memory_hotplug.c mhp_init_memmap_on_memory /
 * mhp_deinit_memmap_on_memory): a hot-added block keeps its own struct pages in its first
 * pages, which never reach the buddy allocator (kernel pages of UNMOVABLE pageblocks, present
 * but not managed); offlining gives them up with the block.
 */
#ifndef ACMA_HOTPLUG_H
#define ACMA_HOTPLUG_H
#include "acma.h"

/* CDEF BEGIN */
/* Online block with its first nr_vmemmap pages holding its memmap (a whole number of
 * pageblocks, less than the block). */
int acma_block_online_memmap(acma_mem *m, uint32_t block, uint32_t zone_type, uint32_t nr_vmemmap);
/* Offline such a block (EBUSY, with nothing changed, as acma_block_offline). */
int acma_block_offline_memmap(acma_mem *m, uint32_t block, uint32_t nr_vmemmap);
/* CDEF END */

#endif
