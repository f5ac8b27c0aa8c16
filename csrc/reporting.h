/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Free page reporting, after mm/page_reporting.c: freeing a block of at least the reporting
 * order requests a pass (IDLE -> REQUESTED, delayed work due 2 s later); the pass walks every
 * zone's free lists of the reporting order and above, isolates unreported blocks into a
 * scatterlist of `capacity` entries and hands each full list to the device, which may fail.
 *
 * The pass is driven one report at a time so the device can live in Python: call
 * acma_reporting_next until it returns no entries, and acma_reporting_done after each batch.
 */
#ifndef ACMA_REPORTING_H
#define ACMA_REPORTING_H
#include "acma.h"

/* CDEF BEGIN */
enum { ACMA_REPORTING_IDLE = 0, ACMA_REPORTING_REQUESTED = 1, ACMA_REPORTING_ACTIVE = 2 };
#define ACMA_REPORTING_MAX_CAPACITY 256

typedef struct {
	uint32_t state;           /* ACMA_REPORTING_* */
	uint32_t order;           /* page_reporting_order */
	uint32_t capacity;        /* scatterlist entries per report */
	uint32_t in_pass;         /* a pass is under way (between next calls) */
	uint64_t delay_us;
	uint64_t due_us;          /* the delayed work's time; UINT64_MAX when none is queued */
	uint64_t passes, reports, failed_reports, blocks_reported, pages_reported;
	uint64_t zones_skipped;   /* zones under low + capacity << order at a pass */
	uint64_t requests;        /* notifies that moved IDLE -> REQUESTED */
} acma_reporting_info;

/* page_reporting_register: order 0..ACMA_MAX_ORDER, capacity 1..256, delay in µs. The
 * registration itself requests the first pass. ESTATE if already registered. */
int acma_reporting_enable(acma_mem *m, uint32_t order, uint32_t capacity, uint64_t delay_us);
/* page_reporting_unregister: cancels the work; a batch out to the device goes back unreported. */
int acma_reporting_disable(acma_mem *m);
int acma_reporting_get(const acma_mem *m, acma_reporting_info *out);
/* Run the pass until the next report: the isolated blocks' head pfns and orders (in
 * scatterlist order) go to pfns/orders (cap >= capacity) and *n. *n = 0: no pass is due at
 * now, or the pass just ended (the state machine has moved on). */
int acma_reporting_next(acma_mem *m, uint32_t *pfns, uint8_t *orders, uint32_t cap, uint32_t *n);
/* The device's answer to the batch: ok = 1 marks the blocks Reported (page_reporting_drain),
 * ok = 0 puts them back unreported and ends the pass. */
int acma_reporting_done(acma_mem *m, uint32_t ok);
/* CDEF END */

#endif
