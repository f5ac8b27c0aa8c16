/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DAMOS actions on the guest model, one call per region range: the per-page loops of
 * mm/damon/paddr.c (damon_pa_apply_scheme and its helpers) and vaddr.c (the madvise actions,
 * damos_va_migrate, damos_va_stat), with the ops-layer filters of damos_pa_filter_out /
 * damos_va_filter_out. The DAMOS core (quotas, scores, core filters, stats) is Python
 * (acma/damos/engine.py).
 */
#ifndef ACMA_DAMOS_OPS_H
#define ACMA_DAMOS_OPS_H
#include <stdint.h>
#include "acma.h"

/* CDEF BEGIN */
/* The kernel's enum damos_action order. */
enum {
	ACMA_DAMOS_WILLNEED = 0, ACMA_DAMOS_COLD, ACMA_DAMOS_PAGEOUT, ACMA_DAMOS_HUGEPAGE,
	ACMA_DAMOS_NOHUGEPAGE, ACMA_DAMOS_LRU_PRIO, ACMA_DAMOS_LRU_DEPRIO, ACMA_DAMOS_MIGRATE_HOT,
	ACMA_DAMOS_MIGRATE_COLD, ACMA_DAMOS_STAT, ACMA_DAMOS_NR_ACTIONS
};
/* Ops-layer filter types (the kernel's enum damos_filter_type order, ops part). */
enum {
	ACMA_DAMOS_F_ANON = 0, ACMA_DAMOS_F_ACTIVE, ACMA_DAMOS_F_MEMCG, ACMA_DAMOS_F_YOUNG,
	ACMA_DAMOS_F_HUGEPAGE_SIZE, ACMA_DAMOS_F_UNMAPPED, ACMA_DAMOS_F_NR
};

typedef struct {
	uint32_t type;            /* ACMA_DAMOS_F_* */
	uint32_t matching, allow; /* a filter hits when its predicate equals matching */
	uint32_t memcg;           /* memcg: the cgroup id */
	uint64_t min_sz, max_sz;  /* hugepage_size: folio bytes, inclusive */
} acma_damos_filter;

typedef struct {
	uint32_t ops;                     /* ACMA_OPS_VADDR or ACMA_OPS_PADDR */
	uint32_t action;                  /* ACMA_DAMOS_* */
	/* the range: vaddr, global virtual pages [seg_start, +seg_len) (one piece per VMA the
	 * region overlaps) with seg_ilx the interleave index of each piece's first page;
	 * paddr, pfn ranges (seg_ilx unused, may be NULL) */
	const uint64_t *seg_start, *seg_len, *seg_ilx;
	uint32_t nr_segs;
	const acma_damos_filter *filters; /* ops filters in order; the first hit decides */
	uint32_t nr_filters;
	uint32_t default_reject;          /* when no filter hits */
	const uint32_t *vma_memcg;        /* cgroup id of each VMA (NULL: all in the root, 0) */
	uint32_t nr_vma_memcg;
	uint32_t target_nid;              /* migrate: destination without weighted dests */
	const uint32_t *dest_nid, *dest_weight;   /* migrate (vaddr): weighted destinations */
	uint32_t nr_dests;
} acma_damos_req;

typedef struct {
	uint64_t visited;   /* pages on an LRU the walk looked at */
	uint64_t passed;    /* of those, pages the ops filters let through */
	uint64_t applied;   /* pages the action changed */
	double cost_ns;     /* the kdamond's work, in the guest's cost units */
} acma_damos_res;

int acma_damos_apply(acma_mem *m, const acma_damos_req *req, acma_damos_res *res);
/* Pages of cgroup memcg mapped on node nid (ACMA_MAX_NODES: every node), by page table walk
 * of its VMAs: the memcg goal metrics' count of (in)active anon+file pages. */
int acma_memcg_pages(const acma_mem *m, const uint32_t *vma_memcg, uint32_t nr_vma_memcg,
		     uint32_t memcg, uint32_t nid, uint64_t *out);
/* CDEF END */

#endif
