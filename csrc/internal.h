/* SPDX-License-Identifier: GPL-2.0 */
/* The context object and helpers shared by the C files; never seen by Python. */
#ifndef ACMA_INTERNAL_H
#define ACMA_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "acma.h"

#define NIL 0xFFFFFFFFu
#define NR_MT 2                 /* free lists per order: unmovable, movable */
#define PB_PAGES (1u << ACMA_PAGEBLOCK_ORDER)
#define INF_KEY 1e300

/* pte encoding: a pfn when present; else bit 31 set, bits 29-30 the kind (fresh, swapped,
 * dropped file page) and bits 0-28 the shadow entry an eviction leaves (workingset.c): the
 * node's nonresident age in 28 bits, with PG_workingset above it. All ones: not in use. */
#define PTE_UNALLOC 0xFFFFFFFFu
#define PTE_NP 0x80000000u
#define PTE_KIND_SHIFT 29
#define PTE_SHADOW_MASK 0x1FFFFFFFu
enum { NP_FRESH = 0, NP_SWAPPED = 1, NP_FILE = 2 };
#define pte_present(p) (!((p) & PTE_NP))
#define pte_kind(p) (((p) >> PTE_KIND_SHIFT) & 3u)
#define pte_shadow(p) ((p) & PTE_SHADOW_MASK)
#define pte_np(kind, shadow) (PTE_NP | ((uint32_t)(kind) << PTE_KIND_SHIFT) | (uint32_t)(shadow))
#define SHADOW_WS (1u << 28)
#define SHADOW_AGE_MASK (SHADOW_WS - 1)

/* Everything acma keeps per 4 KiB page, in one cache-friendly record (the kernel spends 64
 * bytes on struct page): the accessed bit's last clear, the reverse map, list links shared by
 * the free lists and the LRU, state, flags and buddy order. */
struct page {
	uint64_t last_clear;
	uint32_t owner, prev, next;
	uint8_t state, flags, order, flags2;
};

/* flags2: page_idle's two folio flags, which keep DAMON and reclaim from hiding accesses
 * from each other (mm/page_idle.c, mm/rmap.c folio_referenced_one) */
enum { PG2_YOUNG = 1, PG2_IDLE = 2 };

struct list {                   /* an intrusive doubly linked list over page indices */
	uint32_t head, tail;
	uint64_t n;
};

struct zone {
	uint64_t free, managed, present;
	uint64_t wmark_min, wmark_low, wmark_high;
	struct list free_area[ACMA_MAX_ORDER + 1][NR_MT];
	uint64_t nr_free[ACMA_MAX_ORDER + 1];
};

enum { LRU_INACTIVE_ANON = 0, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE, NR_LRU };

struct node {
	struct list lru[NR_LRU];
	uint32_t nonresident_age;   /* workingset.c: evictions + activations */
	int kswapd_wake;
};

struct __attribute__((packed)) heap_ent {   /* a non-present page waiting for its next touch */
	double key;                 /* the touch's value on the VMA's cumulative intensity */
	uint32_t off;               /* page offset in the VMA */
};

struct vma {
	uint64_t gbase;
	uint32_t npages, nalloc;
	uint32_t kind, node, explicit_only;
	double write_frac;
	/* cumulative touch intensity per page: breakpoints (t, lambda, rate per µs) */
	uint64_t *bp_t;
	double *bp_lam, *bp_rate;
	uint32_t nbp, cap_bp;
	struct heap_ent *heap;
	uint32_t nheap, cap_heap;
	uint64_t next_us;           /* when the heap's first touch faults; UINT64_MAX if never */
	uint64_t nr_present, nr_swapped, nr_file;
};

struct acma_mem {
	acma_mem_config cfg;
	uint64_t now;
	uint32_t block_shift, nr_blocks, nr_zones;
	uint8_t *block_node, *block_zone, *block_online;
	struct page *pg;           /* one 24-byte record per page */
	/* per pageblock */
	uint8_t *pb_mt;
	uint16_t *pb_free, *pb_mov, *pb_unmov;
	uint64_t nr_pb;
	struct zone *zones;
	struct node *nodes;
	uint64_t state_count[ACMA_PS_NSTATES];
	uint64_t counters[ACMA_C_NR];
	uint64_t stall_ns[6];     /* ACMA_STALL_* kinds, then minor and major fault waits */
	uint64_t swap_used;
	/* VMAs and the global page table */
	struct vma *vmas;
	uint32_t nr_vmas, cap_vmas;
	uint32_t *pte;
	uint64_t nr_gvpn, cap_gvpn;
	/* one merged trace stream */
	const uint64_t *tr_t, *tr_gw;
	uint64_t tr_n, tr_pos;
	/* stall log drained by Python for PSI */
	acma_stall *stalls;
	uint64_t nr_stalls, cap_stalls;
	/* a nanosecond accumulator for costs charged to nobody in particular */
	double pending_ns;
	/* between guest and host (NULL until enabled): free page reporting (reporting.c), the
	 * host-page backing tracker (backing.c), balloon pages (balloon.c) */
	struct reporting *rep;
	struct backing *bk;
	struct balloon *bl;
};

/* rng.c-free hashing: splitmix64 finaliser, the counter-based generator of every draw */
static inline uint64_t mix64(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}
static inline uint64_t hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	return mix64(mix64(mix64(mix64(a) ^ b) ^ c) ^ d);
}
static inline double u01(uint64_t h) { return (double)(h >> 11) * 0x1.0p-53; }

static inline uint32_t pfn_block(const acma_mem *m, uint64_t pfn) { return (uint32_t)(pfn >> m->block_shift); }
static inline uint32_t pfn_zone(const acma_mem *m, uint64_t pfn)
{
	uint32_t b = pfn_block(m, pfn);
	return (uint32_t)m->block_node[b] * 2u + m->block_zone[b];
}
static inline uint32_t pfn_node(const acma_mem *m, uint64_t pfn) { return m->block_node[pfn_block(m, pfn)]; }

/* lists (list.c) */
void list_init(struct list *l);
void list_add_head(acma_mem *m, struct list *l, uint32_t i);
void list_add_tail(acma_mem *m, struct list *l, uint32_t i);
void list_del(acma_mem *m, struct list *l, uint32_t i);
void list_rotate_to_front(acma_mem *m, struct list *l, uint32_t i);

/* buddy_free flags (__free_one_page's FPI_*) */
#define FPI_TO_TAIL 1u
#define FPI_SKIP_REPORT 2u

/* page state bookkeeping (buddy.c) */
void set_used_state(acma_mem *m, uint32_t pfn, uint32_t npages, uint8_t from, uint8_t to);
int buddy_alloc(acma_mem *m, uint32_t zone, uint32_t order, uint32_t mt, uint32_t *pfn);
void buddy_free(acma_mem *m, uint32_t pfn, uint32_t order, uint32_t fpi);
int buddy_isolate_free(acma_mem *m, uint32_t pfn);     /* __isolate_free_page: 1 on success */
void buddy_putback_isolated(acma_mem *m, uint32_t pfn, uint32_t order);
void buddy_take_block(acma_mem *m, uint32_t pfn);   /* remove a free head from its list */
int zone_watermark_ok(const acma_mem *m, uint32_t zone, uint32_t order, uint64_t mark);
int try_zones(acma_mem *m, uint32_t order, uint32_t mt, uint32_t node, int movable,
	      int mark, uint32_t *pfn);
int alloc_with_reclaim(acma_mem *m, uint32_t order, uint32_t mt, uint32_t node, int movable,
		       uint32_t *pfn);

/* LRU and reclaim (reclaim.c) */
void lru_add(acma_mem *m, uint32_t pfn);
void lru_del(acma_mem *m, uint32_t pfn);
uint64_t shrink_node(acma_mem *m, uint32_t node, uint64_t nr, int kswapd);
void folio_activate_page(acma_mem *m, uint32_t pfn);
int folio_deactivate_page(acma_mem *m, uint32_t pfn);
void wake_kswapd_if_needed(acma_mem *m);

/* access model (access.c) */
struct vma *vma_of(const acma_mem *m, uint64_t gvpn, uint32_t *id);
double vma_lambda(const struct vma *v, uint64_t t);
int page_young(acma_mem *m, uint32_t pfn, int clear);
int page_referenced(acma_mem *m, uint32_t pfn);
void damon_mkold(acma_mem *m, uint32_t pfn);
int damon_young(acma_mem *m, uint32_t pfn);
double first_arrival_after(uint64_t seed, uint64_t gvpn, double x);

/* VMAs (vma.c) */
void vma_update_next(acma_mem *m, struct vma *v);
int evict_page(acma_mem *m, uint32_t pfn, int to_swap);

/* memory (mem.c) */
void *alloc_huge(size_t bytes);
void move_page(acma_mem *m, uint32_t pfn, uint32_t np);

/* DAMOS willneed (vma.c): read a swapped or dropped page back without a touch */
int prefetch_page(acma_mem *m, uint64_t gvpn);

/* costs (mem.c) */
void charge_stall(acma_mem *m, uint32_t kind, double us);

/* between guest and host: hooks the allocator calls, checks and checkpoint sections */
static inline int state_holds_data(uint8_t s)
{
	return s == ACMA_PS_ANON || s == ACMA_PS_FILE || s == ACMA_PS_KERNEL;
}
void reporting_notify_free(acma_mem *m, uint32_t order);    /* reporting.c */
void backing_use(acma_mem *m, uint32_t pfn, uint32_t npages);  /* backing.c */
int balloon_oom_deflate(acma_mem *m);                        /* balloon.c: pages freed */
struct stream;                                               /* snapshot.c */
void snap_xfer(struct stream *s, void *p, uint64_t n);
int snap_reading(const struct stream *s);
int reporting_walk(acma_mem *m, struct stream *s);
int backing_walk(acma_mem *m, struct stream *s);
int balloon_walk(acma_mem *m, struct stream *s);
void reporting_free(acma_mem *m);
void backing_free(acma_mem *m);
void balloon_free(acma_mem *m);
int reporting_check(const acma_mem *m);
int backing_check(const acma_mem *m);
int balloon_check(const acma_mem *m);

#endif
