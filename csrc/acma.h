/* SPDX-License-Identifier: GPL-2.0 */
/*
 * acma's C core: the guest's physical pages, buddy allocator, LRU and reclaim, the
 * access model, VMAs with page tables, and the event loop that turns touches into faults.
 *
 * Everything between CDEF BEGIN and CDEF END is read by build_ffi.py as the cffi cdef, so it
 * holds only plain declarations. Every function returns 0 or a negative ACMA_E* code and never
 * aborts; acma_strerror() gives the message.
 */
#ifndef ACMA_H
#define ACMA_H
#include <stdint.h>

/* CDEF BEGIN */
enum {
	ACMA_OK = 0,
	ACMA_EINVAL = -1,   /* an argument is out of range */
	ACMA_ENOMEM = -2,   /* the host process could not allocate memory */
	ACMA_EOOM = -3,     /* the guest ran out of memory (no page even after reclaim) */
	ACMA_EBUSY = -4,    /* a page or block is in a state that forbids the operation */
	ACMA_ESTATE = -5,   /* the object is not in the state the call needs */
	ACMA_ENOSPC = -6,   /* swap is full */
};

/* Physical page states: every page is in exactly one. */
enum {
	ACMA_PS_FREE = 0,     /* in the buddy allocator */
	ACMA_PS_ANON = 1,     /* anonymous, mapped by one process, on an LRU */
	ACMA_PS_FILE = 2,     /* page cache, mapped by one process, on an LRU */
	ACMA_PS_KERNEL = 3,   /* kernel allocation (slab, page tables): unmovable */
	ACMA_PS_DRIVER = 4,   /* taken by a driver (balloon, reporting, ACMA) */
	ACMA_PS_OFFLINE = 5,  /* in an offline memory block */
	ACMA_PS_NSTATES = 6,
};

/* Page flags (one byte per page). */
enum {
	ACMA_PG_YOUNG = 1,       /* accessed bit set by an explicit touch (fault, trace event) */
	ACMA_PG_REFERENCED = 2,  /* PG_referenced */
	ACMA_PG_ACTIVE = 4,      /* on the active LRU list */
	ACMA_PG_DIRTY = 8,
	ACMA_PG_WORKINGSET = 16, /* PG_workingset: was active before deactivation */
	ACMA_PG_BUDDY = 32,      /* head of a free buddy block */
	ACMA_PG_REPORTED = 64,   /* free block reported to the host */
	ACMA_PG_ISOLATED = 128,  /* pageblock isolated (offlining) */
};

enum { ACMA_MT_UNMOVABLE = 0, ACMA_MT_MOVABLE = 1, ACMA_MT_ISOLATE = 2 };
enum { ACMA_ZONE_NORMAL = 0, ACMA_ZONE_MOVABLE = 1 };
enum { ACMA_VMA_ANON = 0, ACMA_VMA_FILE = 1 };
/* Stall kinds logged for PSI. */
enum { ACMA_STALL_REFAULT = 0, ACMA_STALL_DIRECT_RECLAIM = 1, ACMA_STALL_KSWAPD = 2,
       ACMA_STALL_COMPACT = 3, ACMA_WAIT_MINOR = 4, ACMA_WAIT_MAJOR = 5 };
/* Kinds below ACMA_WAIT_MINOR are PSI memstalls and go to the stall log; the waits are the
 * ordinary fault costs a workload pays, kept as totals only. */

#define ACMA_MAX_ORDER 10
#define ACMA_PAGEBLOCK_ORDER 9
#define ACMA_MAX_NODES 64
#define ACMA_NR_COUNTERS 32

/* Event counters, the names /proc/vmstat uses where there is one. */
enum {
	ACMA_C_PGFAULT = 0, ACMA_C_PGMAJFAULT, ACMA_C_PSWPIN, ACMA_C_PSWPOUT,
	ACMA_C_PGSCAN_KSWAPD, ACMA_C_PGSCAN_DIRECT, ACMA_C_PGSTEAL_KSWAPD, ACMA_C_PGSTEAL_DIRECT,
	ACMA_C_PGACTIVATE, ACMA_C_PGDEACTIVATE, ACMA_C_PGROTATED, ACMA_C_ALLOCSTALL,
	ACMA_C_WORKINGSET_REFAULT, ACMA_C_WORKINGSET_ACTIVATE, ACMA_C_WORKINGSET_RESTORE,
	ACMA_C_PGMIGRATE_SUCCESS, ACMA_C_PGMIGRATE_FAIL, ACMA_C_OOM, ACMA_C_KSWAPD_WAKE,
	ACMA_C_FALLBACK_STEAL, ACMA_C_FALLBACK_CLAIM, ACMA_C_PGFREE, ACMA_C_PGALLOC,
	ACMA_C_TRACE_EVENTS, ACMA_C_FILE_DROPPED, ACMA_C_NR
};

/* Costs in microseconds (floating; the run loop accumulates them exactly in ns). */
typedef struct {
	double minor_fault_us;    /* fault entry + page-table update, excluding zeroing */
	double zero_page_us;      /* clearing one 4 KiB page */
	double swapin_us;         /* zswap-like decompression on a major anon fault */
	double swapout_us;        /* compression when reclaim swaps a page out */
	double file_read_us;      /* reading one page of a dropped file page back */
	double file_write_us;     /* writing back one dirty file page before dropping it */
	double reclaim_scan_us;   /* scanning one LRU page during reclaim */
	double migrate_us;        /* migrating one 4 KiB page (copy + remap) */
} acma_costs;

typedef struct {
	uint64_t nr_pages;        /* guest physical pages (4 KiB) */
	uint32_t block_pages;     /* memory block size in pages (power of 2, >= 1024) */
	uint32_t nr_nodes;
	uint64_t seed;
	uint64_t swap_pages;      /* swap capacity in pages */
	uint32_t swappiness;      /* 0..200 */
	acma_costs costs;
} acma_mem_config;

typedef struct {
	uint64_t t_us;            /* when the stall began */
	uint64_t dur_ns;
	uint32_t kind;            /* ACMA_STALL_* */
	uint32_t pad;
} acma_stall;

typedef struct acma_mem acma_mem;

const char *acma_strerror(int err);

/* Lifecycle. block_node/block_zone/block_online have nr_pages/block_pages entries. */
int acma_mem_new(const acma_mem_config *cfg, const uint8_t *block_node,
		 const uint8_t *block_zone, const uint8_t *block_online, acma_mem **out);
void acma_mem_free(acma_mem *m);
uint64_t acma_mem_bytes(const acma_mem *m);   /* host memory the context holds */
uint64_t acma_now(const acma_mem *m);

/* Zones: index = node * 2 + zone type. Watermarks in pages. */
int acma_zone_set_watermarks(acma_mem *m, uint32_t zone, uint64_t min, uint64_t low,
			     uint64_t high);
int acma_zone_info(const acma_mem *m, uint32_t zone, uint64_t *out6);
	/* free, managed, present(online), min, low, high */

/* Whole-memory views. */
int acma_state_counts(const acma_mem *m, uint64_t *out /* ACMA_PS_NSTATES */);
int acma_counters(const acma_mem *m, uint64_t *out /* ACMA_C_NR */);
int acma_node_lru(const acma_mem *m, uint32_t node, uint64_t *out4);
	/* inactive anon, active anon, inactive file, active file */
int acma_swap_used(const acma_mem *m, uint64_t *out);
int acma_stall_totals(const acma_mem *m, uint64_t *out6 /* ns per stall/wait kind */);
int acma_buddyinfo(const acma_mem *m, uint32_t zone, uint64_t *out /* 11 */);
int acma_copy_pages(const acma_mem *m, uint64_t start, uint64_t n, uint8_t *state,
		    uint8_t *flags, uint8_t *order, uint32_t *owner);
int acma_copy_pageblocks(const acma_mem *m, uint8_t *mt, uint16_t *nfree, uint16_t *nmovable,
			 uint16_t *nunmovable);
int acma_free_list(const acma_mem *m, uint32_t zone, uint32_t order, uint32_t mt,
		   uint32_t *out, uint64_t cap, uint64_t *n);

/* The 2 MiB contiguity search: one bit per pageblock in each output (may be NULL). */
int acma_scan_pageblocks(const acma_mem *m, uint64_t *fully_free, uint64_t *movable_only,
			 uint64_t *nfree_out, uint64_t *nmov_out);

/* Allocation by the kernel or a driver (unmovable or movable), and its free. */
int acma_alloc_pages(acma_mem *m, uint32_t order, uint32_t mt, uint32_t state, uint32_t node,
		     uint32_t *pfn);
int acma_free_pages(acma_mem *m, uint32_t pfn, uint32_t order);

/* Memory blocks. */
int acma_block_online(acma_mem *m, uint32_t block, uint32_t zone_type);
int acma_block_offline(acma_mem *m, uint32_t block);
int acma_migrate_page(acma_mem *m, uint32_t pfn, uint32_t *new_pfn);

/* VMAs: a process's range in acma's global virtual page space. */
int acma_vma_add(acma_mem *m, uint32_t kind, uint32_t npages, uint32_t nalloc, uint32_t node,
		 uint32_t explicit_only, uint32_t *vma_id, uint64_t *gbase);
int acma_vma_set_rate(acma_mem *m, uint32_t vma, double rate_hz, double write_frac);
int acma_vma_resize(acma_mem *m, uint32_t vma, uint32_t nalloc);
int acma_vma_info(const acma_mem *m, uint32_t vma, uint64_t *out8);
	/* gbase, npages, nalloc, present, swapped, file_evicted, fresh, next_fault_us */
int acma_vma_ptes(const acma_mem *m, uint32_t vma, uint32_t *out);

/* Time: process every touch-fault and trace event before t_end, then set now = t_end. */
int acma_run(acma_mem *m, uint64_t t_end);
int acma_set_trace(acma_mem *m, const uint64_t *t_us, const uint64_t *gvpn_w, uint64_t n);
int acma_trace_pos(const acma_mem *m, uint64_t *pos);
int acma_touch(acma_mem *m, uint64_t gvpn, uint32_t write);
uint64_t acma_stall_drain(acma_mem *m, acma_stall *out, uint64_t cap);

/* Reclaim on demand (proactive or test): returns pages reclaimed in *done. */
int acma_reclaim(acma_mem *m, uint32_t node, uint64_t nr, uint64_t *done);

/* Accessed bits. out[i] = 1 if young; the bit is then cleared (last clear = now). */
int acma_young_pfns(acma_mem *m, const uint32_t *pfns, uint64_t n, uint8_t *out, uint32_t clear);
int acma_young_gvpns(acma_mem *m, const uint64_t *gvpns, uint64_t n, uint8_t *out,
		     uint32_t clear);
/* /sys/kernel/mm/page_idle/bitmap: bit = 1 for an idle LRU page; then every page is marked idle. */
int acma_idle_bitmap(acma_mem *m, uint64_t pfn_start, uint64_t npages, uint64_t *bitmap);

/* Ground truth of the synthetic access model. */
int acma_truth_accessed(const acma_mem *m, uint32_t vma, uint64_t t0, uint64_t t1, uint8_t *out);
double acma_vma_lambda(const acma_mem *m, uint32_t vma, uint64_t t);
double acma_first_arrival_after(uint64_t seed, uint64_t gvpn, double x);
int acma_touched_between(uint64_t seed, uint64_t gvpn, double x0, double x1);

/* Checkpoints: save needs *len bytes (ENOSPC and the size when buf is NULL or too small). */
int acma_mem_save(const acma_mem *m, uint8_t *buf, uint64_t cap, uint64_t *len);
int acma_mem_load(const uint8_t *buf, uint64_t len, acma_mem **out);
int acma_trace_seek(acma_mem *m, uint64_t pos);

/* DAMON regions: caller-owned arrays with capacity (csrc/damon.c). */
enum { ACMA_OPS_VADDR = 0, ACMA_OPS_PADDR = 1 };
typedef struct {
	uint64_t *start, *end, *sampling_addr;
	uint32_t *nr_accesses, *last_nr_accesses, *age;
	uint64_t n, cap;
} acma_regions;
typedef struct {
	acma_regions *regions;
	const uint64_t *vma_start, *vma_end, *vma_gbase;   /* vaddr: the process's VMAs, sorted */
	uint32_t nr_vmas;
} acma_damon_target;
int acma_regions_check(const acma_regions *r);
int acma_regions_split_at(acma_regions *r, uint64_t i, uint64_t sz);
int acma_regions_merge_two(acma_regions *r, uint64_t i);
int acma_regions_merge(acma_regions *r, uint32_t thres, uint64_t sz_limit, uint32_t update_age);
int acma_regions_split(acma_regions *r, uint32_t nr_subs, uint64_t min_sz, uint64_t *rng);
int acma_regions_split_some(acma_regions *r, uint64_t step, uint64_t offset, uint64_t index_base,
			    uint64_t min_sz, uint64_t *rng);
int acma_regions_evenly_split(acma_regions *r, uint64_t i, uint32_t n, uint64_t min_sz);
int acma_regions_set(const acma_regions *r, const uint64_t *ranges, uint32_t nranges, uint64_t min_sz,
		     acma_regions *out);
int acma_regions_apply_min(acma_regions *r, uint64_t max_sz, uint64_t min_sz);
int acma_three_regions(const uint64_t *vstart, const uint64_t *vend, uint32_t n, uint64_t min_sz,
		       uint64_t *out6);
int acma_damon_sample(acma_mem *m, uint32_t ops, const acma_damon_target *targets, uint32_t ntargets,
		      uint64_t sample_us, uint32_t nr_samples, uint64_t *rng, uint32_t *max_nr);
/* kdamond's loop over whole aggregation intervals (attributes, then the state it carries). */
typedef struct {
	uint64_t sample_us, min_region_sz;
	uint32_t aggr_samples, min_nr_regions, max_nr_regions;
	uint64_t passed, next_aggregation, split_rotation, sz_limit, last_nr_regions;
	uint32_t max_nr_accesses;
} acma_kdamond;
int acma_kdamond_run(acma_mem *m, uint32_t ops, const acma_damon_target *targets, uint32_t ntargets,
		     acma_kdamond *k, uint32_t nr_aggregations, uint64_t *rng, uint64_t *nr_regions_sum);

/* Self-check of every invariant: 0 when consistent, else ACMA_ESTATE (detail in *what). */
int acma_check(const acma_mem *m, uint64_t *what);
/* CDEF END */

#endif
