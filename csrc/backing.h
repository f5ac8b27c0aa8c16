/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which host pages back a guest. The guest's memory is a range of host pages of 2^hp_order
 * guest pages (4 KiB to 2 MiB and beyond). A host page is populated when the guest first
 * writes any of its pages (a host fault plus zeroing of the whole host page, charged to the
 * guest) and released when every one of its guest pages has been discarded: reported,
 * ballooned or handed to the host by a driver (QEMU's ram_block_discard_range). A page that
 * holds guest data is never discarded (EBUSY); acma_check proves it after every step.
 */
#ifndef ACMA_BACKING_H
#define ACMA_BACKING_H
#include "acma.h"

/* CDEF BEGIN */
typedef struct {
	uint32_t hp_order;        /* host page = 2^hp_order guest pages */
	uint32_t pad;
	uint64_t nr_host_pages;   /* host pages spanning the guest */
	uint64_t backed;          /* host pages populated now */
	uint64_t discarded;       /* guest pages discarded and not written since */
	uint64_t faults;          /* host faults (populations), since enable */
	uint64_t fault_ns;        /* their cost, charged to the guest's fault waits */
	uint64_t released;        /* host pages released, since enable */
	uint64_t discard_calls;
	double fault_us;          /* cost of one host fault, excluding zeroing */
	double zero_us;           /* zeroing of one 4 KiB page on the host */
} acma_backing_info;

typedef struct {
	uint64_t backed_us;       /* integral of backed host pages over time (host pages x µs) */
	uint64_t peak_backed;     /* most host pages backed at once */
	uint64_t since_us, until_us;
} acma_backing_window;

/* Start tracking: prefaulted = 0 makes every host page unbacked except those holding a page
 * with guest data now (a fresh boot's "unbacked until touched"); 1 makes all backed. */
int acma_backing_enable(acma_mem *m, uint32_t hp_order, uint32_t prefaulted, double fault_us,
			double zero_us);
int acma_backing_disable(acma_mem *m);
int acma_backing_get(const acma_mem *m, acma_backing_info *out);
/* Discard guest pages [pfn, pfn + n): EBUSY (and nothing done) if one holds guest data
 * (anon, file or kernel); *released = host pages released by this call. */
int acma_backing_discard(acma_mem *m, uint64_t pfn, uint64_t n, uint64_t *released);
/* The same for a list of naturally aligned blocks (the shape of a report or a balloon batch). */
int acma_backing_discard_blocks(acma_mem *m, const uint32_t *pfns, const uint8_t *orders,
				uint64_t n, uint64_t *released);
/* The time integral and peak since the last drain (then both restart from now). */
int acma_backing_drain(acma_mem *m, acma_backing_window *out);
/* One byte per host page: 1 if backed. */
int acma_backing_map(const acma_mem *m, uint8_t *out, uint64_t cap);
/* CDEF END */

#endif
