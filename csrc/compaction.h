/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Memory compaction, after mm/compaction.c's compact_zone for order -1 (compact_node, and
 * kcompactd's proactive_compact_node): a migrate scanner walks up from the zone's start
 * isolating up to 32 movable pages at a time, a free scanner walks down from its end taking
 * free pages from MOVABLE pageblocks, and each page moves to a free page near the top, until
 * the scanners meet (or, proactive, the zone's fragmentation score drops to the low mark).
 * Access-oblivious by design. Every migration costs Costs.migrate_us, logged as a compaction stall.
 */
#ifndef ACMA_COMPACTION_H
#define ACMA_COMPACTION_H
#include "acma.h"

/* CDEF BEGIN */
enum { ACMA_COMPACT_SKIPPED = 0, ACMA_COMPACT_COMPLETE = 1, ACMA_COMPACT_SUCCESS = 2,
       ACMA_COMPACT_CONTENDED = 3 };

typedef struct {
	uint64_t migrate_scanned;  /* compact_migrate_scanned */
	uint64_t free_scanned;     /* compact_free_scanned */
	uint64_t isolated;         /* compact_isolated: migrate and free pages isolated */
	uint64_t migrated;         /* pages moved (pgmigrate_success counts them too) */
	uint64_t migrate_failed;   /* isolated pages put back for want of a free page */
	uint64_t cost_ns;          /* migration time charged as ACMA_STALL_COMPACT */
} acma_compact_stats;

/* compact_zone over zone (node * 2 + type). proactiveness 1..100 with proactive = 1 stops
 * once the zone's score is at most max(100 - proactiveness, 5). *result: ACMA_COMPACT_*.
 * Counts add to *st. */
int acma_compact_zone(acma_mem *m, uint32_t zone, uint32_t proactive, uint32_t proactiveness,
		      acma_compact_stats *st, uint32_t *result);
/* extfrag_for_order(zone, 9): percent of free memory in blocks smaller than a pageblock. */
int acma_fragmentation_score_zone(const acma_mem *m, uint32_t zone, uint32_t *score);
/* fragmentation_score_node: zone scores weighted by present pages / (node present + 1). */
int acma_fragmentation_score_node(const acma_mem *m, uint32_t node, uint32_t *score);
/* CDEF END */

#endif
