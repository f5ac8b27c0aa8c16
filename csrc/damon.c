// SPDX-License-Identifier: GPL-2.0
/*
 * DAMON's regions and sampling, after mm/damon/core.c (newest mainline, "[N]" in
 * shared/spec/kernel-damon.md), vaddr.c and paddr.c. Regions live in caller-owned arrays
 * (acma_regions); every operation is a public function over them, so each can be checked
 * alone against the kernel's behaviour. Merge and split rewrite the arrays in one pass, so
 * an aggregation costs O(regions), not O(regions^2). The random choices (sampling addresses,
 * split points) come from the caller's RNG state, never from hidden static state.
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static inline uint64_t rng_next(uint64_t *s)
{
	return mix64((*s)++);
}

/* damon_rand(l, r): uniform in [l, r) */
static inline uint64_t damon_rand(uint64_t *s, uint64_t l, uint64_t r)
{
	return r > l ? l + rng_next(s) % (r - l) : l;
}

static inline uint64_t sz_of(const acma_regions *r, uint64_t i) { return r->end[i] - r->start[i]; }
static inline uint32_t absdiff(uint32_t a, uint32_t b) { return a > b ? a - b : b - a; }

static void copy_region(acma_regions *d, uint64_t di, const acma_regions *s, uint64_t si)
{
	d->start[di] = s->start[si];
	d->end[di] = s->end[si];
	d->sampling_addr[di] = s->sampling_addr[si];
	d->nr_accesses[di] = s->nr_accesses[si];
	d->last_nr_accesses[di] = s->last_nr_accesses[si];
	d->age[di] = s->age[si];
}

int acma_regions_check(const acma_regions *r)
{
	if (r->n > r->cap)
		return ACMA_EINVAL;
	for (uint64_t i = 0; i < r->n; i++)
		if (r->end[i] <= r->start[i] || (i && r->start[i] < r->end[i - 1]))
			return ACMA_EINVAL;
	return 0;
}

/* damon_split_region_at: [start, start+sz) stays, the right piece copies the counters. */
int acma_regions_split_at(acma_regions *r, uint64_t i, uint64_t sz)
{
	if (i >= r->n || r->n >= r->cap || !sz || sz >= sz_of(r, i))
		return ACMA_EINVAL;
	for (uint64_t k = r->n; k > i + 1; k--)
		copy_region(r, k, r, k - 1);
	copy_region(r, i + 1, r, i);
	r->end[i] = r->start[i] + sz;
	r->start[i + 1] = r->end[i];
	r->n++;
	return 0;
}

/* damon_merge_two_regions: size-weighted (floor) nr_accesses and age; left keeps last_nr. */
static void merge_into(acma_regions *r, uint64_t l, uint64_t i)
{
	uint64_t sl = sz_of(r, l), sr = sz_of(r, i);

	r->nr_accesses[l] = (uint32_t)((r->nr_accesses[l] * sl + r->nr_accesses[i] * sr) / (sl + sr));
	r->age[l] = (uint32_t)((r->age[l] * sl + r->age[i] * sr) / (sl + sr));
	r->end[l] = r->end[i];
}

int acma_regions_merge_two(acma_regions *r, uint64_t i)
{
	if (i >= r->n || i + 1 >= r->n || r->end[i] != r->start[i + 1])   /* i + 1 may wrap */
		return ACMA_EINVAL;
	merge_into(r, i, i + 1);
	for (uint64_t k = i + 1; k + 1 < r->n; k++)
		copy_region(r, k, r, k + 1);
	r->n--;
	return 0;
}

/*
 * damon_merge_regions_of, [N]: on the first pass of kdamond_merge_regions each region's age is
 * reset when nr_accesses moved by more than thres or exactly one of (nr, last) is zero, and
 * grows otherwise; then adjacent regions whose nr_accesses differ by at most thres merge
 * while the merged size stays within sz_limit.
 */
int acma_regions_merge(acma_regions *r, uint32_t thres, uint64_t sz_limit, uint32_t update_age)
{
	uint64_t k = 0;

	for (uint64_t i = 0; i < r->n; i++) {
		if (update_age) {
			uint32_t nr = r->nr_accesses[i], last = r->last_nr_accesses[i];

			if (absdiff(nr, last) > thres || (!nr != !last))
				r->age[i] = 0;
			else
				r->age[i]++;
		}
		if (k && r->end[k - 1] == r->start[i] &&
		    absdiff(r->nr_accesses[k - 1], r->nr_accesses[i]) <= thres &&
		    sz_of(r, k - 1) + sz_of(r, i) <= sz_limit) {
			merge_into(r, k - 1, i);
		} else {
			if (k != i)
				copy_region(r, k, r, i);
			k++;
		}
	}
	r->n = k;
	return 0;
}

/* Region i into up to nr_subs pieces (damon_split_regions_of): each time the LEFT piece is
 * cut at ALIGN_DOWN(rand[1,10) * sz / 10, min_sz). Writes the pieces at out[*k...]. */
static void split_one(const acma_regions *r, uint64_t i, uint32_t nr_subs, uint64_t min_sz,
		      uint64_t *rng, uint64_t *cuts, uint32_t *ncuts)
{
	uint64_t sz = sz_of(r, i);

	*ncuts = 0;
	for (uint32_t k = 0; k + 1 < nr_subs && sz > 2 * min_sz; k++) {
		uint64_t sub = damon_rand(rng, 1, 10) * sz / 10;

		sub -= sub % min_sz;
		if (!sub || sub >= sz)
			continue;
		cuts[(*ncuts)++] = r->start[i] + sub;   /* cuts go right to left */
		sz = sub;
	}
}

/* Rewrite every region (or, with step > 1, every region whose global index is offset mod
 * step, split in two) in one pass; out must hold up to nr_subs * n regions. */
static int split_pass(acma_regions *r, uint32_t nr_subs, uint64_t min_sz, uint64_t *rng,
		      uint64_t step, uint64_t offset, uint64_t index_base)
{
	uint64_t cuts[16];
	uint32_t ncuts;
	uint64_t total = 0;
	uint64_t *pos;

	if (!min_sz || nr_subs < 1 || nr_subs > 16)
		return ACMA_EINVAL;
	pos = malloc((r->n + 1) * sizeof(*pos) * 17);
	if (!pos)
		return ACMA_ENOMEM;
	/* first pass: draw the cuts in region order (deterministic), remember them */
	uint64_t *allcuts = pos + r->n + 1;

	for (uint64_t i = 0; i < r->n; i++) {
		uint32_t subs = nr_subs;

		if (step > 1)
			subs = ((index_base + i) % step == offset) ? 2 : 1;
		split_one(r, i, subs, min_sz, rng, cuts, &ncuts);
		pos[i] = total;
		for (uint32_t c = 0; c < 16; c++)
			allcuts[i * 16 + c] = c < ncuts ? cuts[c] : 0;
		total += 1 + ncuts;
	}
	pos[r->n] = total;
	if (total > r->cap) {
		free(pos);
		return ACMA_ENOSPC;
	}
	/* second pass, from the back so nothing is overwritten before it is read */
	for (uint64_t i = r->n; i-- > 0;) {
		uint64_t first = pos[i], npieces = pos[i + 1] - pos[i];
		uint64_t end = r->end[i];

		for (uint64_t k = npieces; k-- > 0;) {
			uint64_t at = first + k;

			copy_region(r, at, r, i);
			/* piece k covers [cut_{npieces-1-k} .. next) with cuts ordered right to left */
			r->start[at] = k ? allcuts[i * 16 + (npieces - 1 - k)] : r->start[i];
			r->end[at] = end;
			end = r->start[at];
		}
	}
	r->n = total;
	free(pos);
	return 0;
}

int acma_regions_split(acma_regions *r, uint32_t nr_subs, uint64_t min_sz, uint64_t *rng)
{
	return split_pass(r, nr_subs, min_sz, rng, 1, 0, 0);
}

/* [N] damon_split_some_regions: regions whose global index is offset mod step split once. */
int acma_regions_split_some(acma_regions *r, uint64_t step, uint64_t offset, uint64_t index_base,
			    uint64_t min_sz, uint64_t *rng)
{
	if (!step)
		return ACMA_EINVAL;
	return split_pass(r, 2, min_sz, rng, step < 2 ? 2 : step, step < 2 ? 0 : offset, index_base);
}

/* damon_va_evenly_split_region (2024 fix): exactly n pieces, the last to the original end. */
int acma_regions_evenly_split(acma_regions *r, uint64_t i, uint32_t n, uint64_t min_sz)
{
	if (i >= r->n || !n || !min_sz)
		return ACMA_EINVAL;
	uint64_t piece = sz_of(r, i) / n;

	piece -= piece % min_sz;
	if (!piece)
		return ACMA_EINVAL;
	if (n == 1)
		return 0;
	if (r->n + n - 1 > r->cap)
		return ACMA_ENOSPC;
	for (uint64_t k = r->n - 1; k > i; k--)
		copy_region(r, k + n - 1, r, k);
	uint64_t start = r->start[i], end = r->end[i];

	for (uint32_t k = 0; k < n; k++) {
		copy_region(r, i + k, r, i);
		r->start[i + k] = start + k * piece;
		r->end[i + k] = k + 1 == n ? end : start + (k + 1) * piece;
	}
	r->n += n - 1;
	return 0;
}

static uint64_t align_down(uint64_t x, uint64_t a) { return x - x % a; }

static void new_region(acma_regions *r, uint64_t i, uint64_t start, uint64_t end)
{
	r->start[i] = start;
	r->end[i] = end;
	r->sampling_addr[i] = start;
	r->nr_accesses[i] = r->last_nr_accesses[i] = r->age[i] = 0;
}
static uint64_t align_up(uint64_t x, uint64_t a) { return x % a ? x + a - x % a : x; }

/*
 * damon_set_regions, [N]: ranges (start, end pairs) are aligned and must be sorted and
 * disjoint; regions touching no range go; each range's first and last intersecting region
 * stretch to its aligned edges and holes between them fill with fresh regions; a range with no
 * region gets one. Writes into out (which may not alias r).
 */
int acma_regions_set(const acma_regions *r, const uint64_t *ranges, uint32_t nranges, uint64_t min_sz,
		     acma_regions *out)
{
	if (!min_sz)
		return ACMA_EINVAL;
	for (uint32_t k = 0; k < nranges; k++) {
		uint64_t s = align_down(ranges[2 * k], min_sz), e = align_up(ranges[2 * k + 1], min_sz);

		if (s >= e || (k && s < align_up(ranges[2 * k - 1], min_sz)))
			return ACMA_EINVAL;
	}
	uint64_t n = 0, i = 0;

	for (uint32_t k = 0; k < nranges; k++) {
		uint64_t s = align_down(ranges[2 * k], min_sz), e = align_up(ranges[2 * k + 1], min_sz);
		uint64_t j, cur = s;
		int first = 1;

		while (i < r->n && r->end[i] <= s)
			i++;                                  /* touches no range: dropped */
		for (j = i; j < r->n && r->start[j] < e; j++) {
			if (!first && r->start[j] > cur) {    /* a hole between two regions */
				if (n >= out->cap)
					return ACMA_ENOSPC;
				new_region(out, n++, cur, r->start[j]);
			}
			if (n >= out->cap)
				return ACMA_ENOSPC;
			copy_region(out, n, r, j);
			if (first)
				out->start[n] = s;
			if (j + 1 >= r->n || r->start[j + 1] >= e)
				out->end[n] = e;
			cur = out->end[n++];
			first = 0;
		}
		if (first) {
			if (n >= out->cap)
				return ACMA_ENOSPC;
			new_region(out, n++, s, e);
		}
		i = (j > i && r->end[j - 1] > e) ? j - 1 : j;  /* it may reach the next range too */
	}
	out->n = n;
	return 0;
}

/* [N] damon_apply_min_nr_regions' split: a region above max_sz becomes ceil(sz/max_sz)
 * pieces of max_sz (the last one shorter). */
int acma_regions_apply_min(acma_regions *r, uint64_t max_sz, uint64_t min_sz)
{
	if (!max_sz || !min_sz || max_sz % min_sz)
		return ACMA_EINVAL;
	uint64_t total = 0;

	for (uint64_t i = 0; i < r->n; i++)
		total += (sz_of(r, i) + max_sz - 1) / max_sz;
	if (total > r->cap)
		return ACMA_ENOSPC;
	for (uint64_t i = r->n, at = total; i-- > 0;) {
		uint64_t pieces = (sz_of(r, i) + max_sz - 1) / max_sz, start = r->start[i], end = r->end[i];

		for (uint64_t k = pieces; k-- > 0;) {
			at--;
			copy_region(r, at, r, i);
			r->start[at] = start + k * max_sz;
			r->end[at] = k + 1 == pieces ? end : start + (k + 1) * max_sz;
		}
	}
	r->n = total;
	return 0;
}

/* __damon_va_three_regions: the two largest gaps between VMAs cut their span in three. */
int acma_three_regions(const uint64_t *vstart, const uint64_t *vend, uint32_t n, uint64_t min_sz,
		       uint64_t *out6)
{
	uint64_t g1s = 0, g1e = 0, g2s = 0, g2e = 0;

	if (n < 3 || !min_sz || vend[0] <= vstart[0] || vend[n - 1] > UINT64_MAX - min_sz)
		return ACMA_EINVAL;   /* (the last end is aligned up: it must not wrap) */
	for (uint32_t i = 1; i < n; i++) {
		if (vstart[i] < vend[i - 1] || vend[i] <= vstart[i])
			return ACMA_EINVAL;
		uint64_t gs = vend[i - 1], ge = vstart[i];

		if (ge - gs > g1e - g1s) {
			g2s = g1s;
			g2e = g1e;
			g1s = gs;
			g1e = ge;
		} else if (ge - gs > g2e - g2s) {
			g2s = gs;
			g2e = ge;
		}
	}
	if (g2e == g2s)
		return ACMA_EINVAL;
	if (g1s > g2s) {          /* order the gaps by address */
		uint64_t ts = g1s, te = g1e;

		g1s = g2s;
		g1e = g2e;
		g2s = ts;
		g2e = te;
	}
	out6[0] = align_down(vstart[0], min_sz);
	out6[1] = align_up(g1s, min_sz);
	out6[2] = align_down(g1e, min_sz);
	out6[3] = align_up(g2s, min_sz);
	out6[4] = align_down(g2e, min_sz);
	out6[5] = align_up(vend[n - 1], min_sz);
	return 0;
}

/* The page a sampling address lands on, in two steps so a batch of regions can have its
 * memory loads in flight together: vaddr first finds the global virtual page (its pte is then
 * prefetched), paddr the pfn itself. NIL64: nothing mapped there. */
#define NIL64 UINT64_MAX

static uint64_t sample_key(const acma_mem *m, uint32_t ops, const acma_damon_target *t, uint64_t addr)
{
	if (ops == ACMA_OPS_PADDR)
		return (addr >> 12) < m->cfg.nr_pages ? addr >> 12 : NIL64;
	uint32_t lo = 0, hi = t->nr_vmas;

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;

		if (t->vma_start[mid] <= addr)
			lo = mid;
		else
			hi = mid;
	}
	if (!t->nr_vmas || addr < t->vma_start[lo] || addr >= t->vma_end[lo])
		return NIL64;
	uint64_t g = t->vma_gbase[lo] + ((addr - t->vma_start[lo]) >> 12);

	return g < m->nr_gvpn ? g : NIL64;
}

/* What one call of the sampler keeps: every VMA's lambda at the current and the previous
 * instant (all regions of a sample ask for the same two), and the last VMA found. */
struct lam_pair {
	uint64_t t_now, t_prev;
	double now, prev;
};

#define AHEAD 4                 /* samples whose addresses are drawn in advance */

struct sampler {
	acma_mem *m;
	uint32_t ops, vhint;
	uint64_t hseed;             /* mix64(seed): the first step of every page's hash */
	struct lam_pair *lam;       /* per VMA of the guest */
	uint64_t *key;              /* per region of all targets, for AHEAD samples in a ring */
	uint32_t *pfn;
	uint64_t stride;            /* room per target in key and pfn */
};

static struct vma *sampler_vma(struct sampler *s, uint64_t g, uint32_t *id)
{
	const acma_mem *m = s->m;

	if (s->vhint < m->nr_vmas && g - m->vmas[s->vhint].gbase < m->vmas[s->vhint].npages) {
		*id = s->vhint;
		return &m->vmas[s->vhint];
	}
	struct vma *v = vma_of(m, g, id);

	if (v)
		s->vhint = *id;
	return v;
}

/* vma_lambda, remembered for the instant now is (and was one step ago). */
static double sampler_lambda(struct sampler *s, const struct vma *v, uint32_t id, uint64_t t)
{
	struct lam_pair *c = &s->lam[id];

	if (t == c->t_now)
		return c->now;
	if (t == c->t_prev)
		return c->prev;
	double x = vma_lambda(v, t);

	if (t == s->m->now) {
		c->t_prev = c->t_now;
		c->prev = c->now;
		c->t_now = t;
		c->now = x;
	}
	return x;
}

/* page_young (access.c) for an LRU page, with the sampler's caches; the same answer and the
 * same side effects. */
static int sampler_page_young(struct sampler *s, uint32_t pfn, int clear)
{
	acma_mem *m = s->m;
	struct page *p = &m->pg[pfn];
	int young = !!(p->flags & ACMA_PG_YOUNG);

	if (!young && p->last_clear < m->now) {
		uint32_t id;
		const struct vma *v = sampler_vma(s, p->owner, &id);

		if (v && !v->explicit_only)
			young = touched_between(mix64(s->hseed ^ p->owner), sampler_lambda(s, v, id, p->last_clear),
						sampler_lambda(s, v, id, m->now));
	}
	if (clear) {
		p->flags &= (uint8_t)~ACMA_PG_YOUNG;
		p->last_clear = m->now;
	}
	return young;
}

/* damon_mkold (access.c): once PG_young is set, what the accessed bit said no longer matters,
 * only its clearing does. */
static void sampler_mkold(struct sampler *s, uint32_t pfn)
{
	struct page *p = &s->m->pg[pfn];

	if (p->flags2 & PG2_YOUNG) {             /* page_young's clearing alone */
		p->flags &= (uint8_t)~ACMA_PG_YOUNG;
		p->last_clear = s->m->now;
	} else if (sampler_page_young(s, pfn, 1)) {
		p->flags2 |= PG2_YOUNG;
	}
	p->flags2 |= PG2_IDLE;
}

/* damon_young (access.c), its two tests in the cheaper order. */
static int sampler_young(struct sampler *s, uint32_t pfn)
{
	return !(s->m->pg[pfn].flags2 & PG2_IDLE) || sampler_page_young(s, pfn, 0);
}

/* This sample's (or the next one's) keys -> pfns of pages DAMON may sample (paddr: only
 * folios on an LRU, damon_get_folio), each pass's loads issued before the next pass needs
 * them; with fetch_only the page records are only prefetched, for a later pass. */
static void keys_to_pfns(const acma_mem *m, uint32_t ops, const uint64_t *key, uint32_t *pfn, uint64_t n,
			 int fetch_only)
{
	if (ops != ACMA_OPS_PADDR) {
		for (uint64_t i = 0; i < n; i++) {
			uint32_t p = key[i] != NIL64 ? m->pte[key[i]] : PTE_UNALLOC;

			pfn[i] = pte_present(p) ? p : NIL;
		}
	} else {
		for (uint64_t i = 0; i < n; i++)
			pfn[i] = key[i] != NIL64 ? (uint32_t)key[i] : NIL;
	}
	for (uint64_t i = 0; i < n; i++)
		if (pfn[i] != NIL)
			__builtin_prefetch(&m->pg[pfn[i]]);
	if (fetch_only)
		return;
	for (uint64_t i = 0; i < n; i++)
		if (pfn[i] != NIL && m->pg[pfn[i]].state != ACMA_PS_ANON && m->pg[pfn[i]].state != ACMA_PS_FILE)
			pfn[i] = NIL;
}

/* damon_rand per region, in region order (the RNG's order), and the pages those addresses
 * land on; vaddr's ptes are prefetched for the pass that reads them. */
static void draw_addresses(struct sampler *s, const acma_damon_target *targets, uint32_t ntargets, uint64_t *rng,
			   uint64_t *keys)
{
	for (uint32_t ti = 0; ti < ntargets; ti++) {
		acma_regions *r = targets[ti].regions;
		uint64_t *k = keys + ti * s->stride;

		for (uint64_t i = 0; i < r->n; i++) {
			r->sampling_addr[i] = damon_rand(rng, r->start[i], r->end[i]);
			k[i] = sample_key(s->m, s->ops, &targets[ti], r->sampling_addr[i]);
			if (s->ops != ACMA_OPS_PADDR && k[i] != NIL64)
				__builtin_prefetch(&s->m->pte[k[i]]);
		}
	}
}

static void sampler_free(struct sampler *s)
{
	free(s->lam);
	free(s->key);
	free(s->pfn);
}

static int sampler_init(struct sampler *s, acma_mem *m, uint32_t ops, const acma_damon_target *targets,
			uint32_t ntargets, uint64_t most)
{
	memset(s, 0, sizeof(*s));
	s->m = m;
	s->ops = ops;
	s->hseed = mix64(m->cfg.seed);
	s->stride = most + 1;
	s->lam = malloc((m->nr_vmas + 1) * sizeof(*s->lam));
	s->key = malloc(AHEAD * s->stride * (ntargets + 1) * sizeof(*s->key));
	s->pfn = malloc(2 * s->stride * (ntargets + 1) * sizeof(*s->pfn));
	if (!s->lam || !s->key || !s->pfn) {
		sampler_free(s);
		return ACMA_ENOMEM;
	}
	for (uint32_t v = 0; v < m->nr_vmas; v++)
		s->lam[v].t_now = s->lam[v].t_prev = UINT64_MAX;
	return 0;
}

/* The arguments every sampling entry point checks; the largest region count. */
static int check_targets(const acma_damon_target *targets, uint32_t ntargets, uint64_t *most)
{
	*most = 0;
	for (uint32_t ti = 0; ti < ntargets; ti++) {
		if (!targets[ti].regions || acma_regions_check(targets[ti].regions))
			return ACMA_EINVAL;
		for (uint32_t v = 1; v < targets[ti].nr_vmas; v++)
			if (targets[ti].vma_start[v] < targets[ti].vma_end[v - 1])
				return ACMA_EINVAL;
		if (targets[ti].regions->n > *most)
			*most = targets[ti].regions->n;
	}
	return 0;
}

/*
 * nr_samples sampling intervals of kdamond's loop: prepare (a random address per region, its
 * accessed bit cleared: damon_va_mkold / damon_pa_mkold), let the guest run one interval,
 * check (damon_va_young / damon_pa_young: accessed if young since the clear), count. The
 * guest's faults and reclaim between samples happen in acma_run, in time order. Addresses are
 * drawn AHEAD samples early (in the RNG's order, so the same ones), their ptes prefetched
 * then and their page records AHEAD/2 samples early, so the loads of a big guest are on their
 * way while earlier samples run; every value is still read when it is used.
 */
static int sample_regions(struct sampler *s, const acma_damon_target *targets, uint32_t ntargets,
			  uint64_t sample_us, uint32_t nr_samples, uint64_t *rng)
{
	acma_mem *m = s->m;
	uint64_t half = s->stride * ntargets;

	for (uint32_t a = 0; a < AHEAD && a < nr_samples; a++)
		draw_addresses(s, targets, ntargets, rng, s->key + a * half);
	for (uint32_t smp = 0; smp < nr_samples; smp++) {
		uint64_t *key = s->key + (smp % AHEAD) * half;
		uint32_t *pfn = s->pfn;

		for (uint32_t ti = 0; ti < ntargets; ti++) {
			acma_regions *r = targets[ti].regions;
			uint32_t *f = pfn + ti * s->stride;

			keys_to_pfns(m, s->ops, key + ti * s->stride, f, r->n, 0);
			for (uint64_t i = 0; i < r->n; i++)
				if (f[i] != NIL)
					sampler_mkold(s, f[i]);
		}
		int err = acma_run(m, m->now + sample_us);

		if (err)
			return err;
		for (uint32_t ti = 0; ti < ntargets; ti++) {
			acma_regions *r = targets[ti].regions;
			uint32_t *f = pfn + ti * s->stride;

			/* faults and reclaim may have moved pages */
			keys_to_pfns(m, s->ops, key + ti * s->stride, f, r->n, 0);
			for (uint64_t i = 0; i < r->n; i++)
				if (f[i] != NIL && sampler_young(s, f[i]))
					r->nr_accesses[i]++;
		}
		if (smp + AHEAD < nr_samples)     /* this sample's slot takes the one AHEAD later */
			draw_addresses(s, targets, ntargets, rng, key);
		if (smp + AHEAD / 2 < nr_samples)
			for (uint32_t ti = 0; ti < ntargets; ti++)
				keys_to_pfns(m, s->ops, s->key + ((smp + AHEAD / 2) % AHEAD) * half + ti * s->stride,
					     s->pfn + half + ti * s->stride, targets[ti].regions->n, 1);
	}
	return 0;
}

static uint32_t max_nr_accesses(const acma_damon_target *targets, uint32_t ntargets)
{
	uint32_t mx = 0;

	for (uint32_t ti = 0; ti < ntargets; ti++)
		for (uint64_t i = 0; i < targets[ti].regions->n; i++)
			if (targets[ti].regions->nr_accesses[i] > mx)
				mx = targets[ti].regions->nr_accesses[i];
	return mx;
}

int acma_damon_sample(acma_mem *m, uint32_t ops, const acma_damon_target *targets, uint32_t ntargets,
		      uint64_t sample_us, uint32_t nr_samples, uint64_t *rng, uint32_t *max_nr)
{
	struct sampler s;
	uint64_t most;
	int err;

	if (ops > ACMA_OPS_PADDR || !sample_us || check_targets(targets, ntargets, &most))
		return ACMA_EINVAL;
	err = sampler_init(&s, m, ops, targets, ntargets, most);
	if (err)
		return err;
	err = sample_regions(&s, targets, ntargets, sample_us, nr_samples, rng);
	sampler_free(&s);
	if (err)
		return err;
	*max_nr = max_nr_accesses(targets, ntargets);
	return 0;
}

/* ------------------------------------------------------------------ kdamond's loop in C */

static uint64_t nr_regions_of(const acma_damon_target *targets, uint32_t ntargets)
{
	uint64_t n = 0;

	for (uint32_t ti = 0; ti < ntargets; ti++)
		n += targets[ti].regions->n;
	return n;
}

/* kdamond_merge_regions, [N]: repeat with a doubling threshold until max_nr_regions holds
 * (ages updated on the first pass only). */
static void merge_all(const acma_damon_target *targets, uint32_t ntargets, const acma_kdamond *k)
{
	uint64_t thres = k->max_nr_accesses / 10;
	int first = 1;

	for (;;) {
		for (uint32_t ti = 0; ti < ntargets; ti++)
			acma_regions_merge(targets[ti].regions, (uint32_t)(thres > UINT32_MAX ? UINT32_MAX : thres),
					   k->sz_limit, first);
		first = 0;
		thres = thres ? thres * 2 : 1;
		if (nr_regions_of(targets, ntargets) <= k->max_nr_regions || thres / 2 >= k->aggr_samples)
			break;
	}
}

/* damon_apply_min_nr_regions, [N]: the size limit is total / min_nr_regions (at least
 * min_region_sz), aligned up; every larger region is split to it. */
static int apply_min_all(const acma_damon_target *targets, uint32_t ntargets, acma_kdamond *k)
{
	unsigned __int128 total = 0;
	uint64_t mn = k->min_region_sz;

	for (uint32_t ti = 0; ti < ntargets; ti++)
		for (uint64_t i = 0; i < targets[ti].regions->n; i++)
			total += sz_of(targets[ti].regions, i);
	unsigned __int128 limit = total / k->min_nr_regions;

	if (limit < mn)
		limit = mn;
	limit = (limit + mn - 1) / mn * mn;
	if (limit > UINT64_MAX - mn)
		limit = UINT64_MAX / mn * mn;
	k->sz_limit = (uint64_t)limit;
	for (uint32_t ti = 0; ti < ntargets; ti++) {
		int err = acma_regions_apply_min(targets[ti].regions, k->sz_limit, mn);

		if (err)
			return err;
	}
	return 0;
}

/* kdamond_split_regions, [N]: nothing at max_nr_regions; above half of it, split_some with a
 * rotating offset; else every region in two, or three when the count stayed the same. */
static int split_all(const acma_damon_target *targets, uint32_t ntargets, acma_kdamond *k, uint64_t *rng)
{
	uint64_t nr = nr_regions_of(targets, ntargets), mx = k->max_nr_regions, mn = k->min_region_sz;
	int err = 0;

	if (nr >= mx) {
	} else if (nr > mx / 2) {
		uint64_t step = mx / (mx - nr), offset = k->split_rotation % step, base = 0;

		k->split_rotation++;
		for (uint32_t ti = 0; ti < ntargets && !err; ti++) {
			uint64_t n = targets[ti].regions->n;

			err = acma_regions_split_some(targets[ti].regions, step, offset, base, mn, rng);
			base += n;
		}
	} else {
		uint32_t nr_subs = k->last_nr_regions == nr && nr < mx / 3 ? 3 : 2;

		for (uint32_t ti = 0; ti < ntargets && !err; ti++)
			err = acma_regions_split(targets[ti].regions, nr_subs, mn, rng);
	}
	k->last_nr_regions = nr_regions_of(targets, ntargets);
	return err;
}

/*
 * nr_aggregations whole aggregation intervals of kdamond_fn, in its order: the samples left
 * in the window, kdamond_merge_regions, damon_apply_min_nr_regions, (the after-aggregation
 * hooks: the caller runs those intervals one at a time instead), kdamond_reset_aggregated,
 * kdamond_split_regions. The caller keeps the ops update and the intervals tuning outside.
 * *nr_regions_sum grows by the region count each aggregation leaves for the hooks.
 */
int acma_kdamond_run(acma_mem *m, uint32_t ops, const acma_damon_target *targets, uint32_t ntargets,
		     acma_kdamond *k, uint32_t nr_aggregations, uint64_t *rng, uint64_t *nr_regions_sum)
{
	struct sampler s;
	uint64_t most;
	int err;

	if (ops > ACMA_OPS_PADDR || !k->sample_us || !k->aggr_samples || k->min_nr_regions < 3 ||
	    k->max_nr_regions < k->min_nr_regions || !k->min_region_sz ||
	    (k->min_region_sz & (k->min_region_sz - 1)) || !k->sz_limit ||
	    check_targets(targets, ntargets, &most))
		return ACMA_EINVAL;
	for (uint32_t ti = 0; ti < ntargets; ti++)
		if (targets[ti].regions->cap > most)
			most = targets[ti].regions->cap;   /* regions split between aggregations */
	err = sampler_init(&s, m, ops, targets, ntargets, most);
	if (err)
		return err;
	for (uint32_t a = 0; a < nr_aggregations && !err; a++) {
		uint64_t n = k->next_aggregation > k->passed ? k->next_aggregation - k->passed : 1;

		if (n > UINT32_MAX)
			n = UINT32_MAX;
		err = sample_regions(&s, targets, ntargets, k->sample_us, (uint32_t)n, rng);
		if (err)
			break;
		k->passed += n;
		k->max_nr_accesses = max_nr_accesses(targets, ntargets);
		merge_all(targets, ntargets, k);
		err = apply_min_all(targets, ntargets, k);
		if (err)
			break;
		*nr_regions_sum += nr_regions_of(targets, ntargets);
		k->next_aggregation = k->passed + k->aggr_samples;
		for (uint32_t ti = 0; ti < ntargets; ti++) {
			acma_regions *r = targets[ti].regions;

			memcpy(r->last_nr_accesses, r->nr_accesses, r->n * sizeof(*r->nr_accesses));
			memset(r->nr_accesses, 0, r->n * sizeof(*r->nr_accesses));
		}
		err = split_all(targets, ntargets, k, rng);
	}
	sampler_free(&s);
	return err;
}
