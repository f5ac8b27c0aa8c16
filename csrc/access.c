// SPDX-License-Identifier: GPL-2.0
/*
 * The access model. Every page of a synthetic VMA is touched as a Poisson process whose
 * intensity follows the VMA's phases; the process is realised lazily and consistently:
 * the cumulative intensity axis (lambda, expected touches per page) is cut into unit cells,
 * and cell k of page g holds Poisson(1) touches at positions drawn from hash(seed, g, k, j).
 * So "was page g touched between times a and b" has one answer, whoever asks and in whatever
 * order: the young bit (a touch since the last clear), reclaim's referenced check, DAMON's
 * samples and the ground truth all read the same realisation, in O(1) expected time.
 */
#include <math.h>
#include "internal.h"

#define EXP_MINUS_1 0.36787944117144233
#define POISSON_CAP 24
#define CELL_SALT 0x5eedull
/* Past 2^52 expected touches a double no longer tells cells apart: a page saturates there
 * and is not touched again (at 1e6 touches a second that is 143 years away). */
#define LAMBDA_MAX 4503599627370496.0

/* The partial sums Poisson(1) inversion compares u with, computed by the inversion loop's
 * own floating-point steps (p /= n; c += p), so a table search stops exactly where the loop
 * would: the touch count of a cell is the first n with u <= cdf[n], capped at POISSON_CAP. */
static double poisson_cdf[POISSON_CAP];

__attribute__((constructor)) static void poisson_cdf_init(void)
{
	double p = EXP_MINUS_1, c = p;

	poisson_cdf[0] = c;
	for (int n = 1; n < POISSON_CAP; n++) {
		p /= n;
		c += p;
		poisson_cdf[n] = c;
	}
}

static inline int poisson1(double u)
{
	int n = 0;

	while (n < POISSON_CAP && u > poisson_cdf[n])
		n++;
	return n;
}

/* hash4(seed, g, k, j) is mix64(cell_hash(page_hash(seed, g), k) ^ j): the page's and the
 * cell's parts are computed once and shared by the cell's count and its positions. */
uint64_t page_hash(uint64_t seed, uint64_t gvpn)
{
	return mix64(mix64(seed) ^ gvpn);
}

static inline uint64_t cell_hash(uint64_t hg, uint64_t k) { return mix64(hg ^ k); }

/* The lambda value of the first touch strictly after x of the page hashed hg; INF_KEY once x
 * saturates (NaN included). */
double arrival_after(uint64_t hg, double x)
{
	if (!(x < LAMBDA_MAX))
		return INF_KEY;
	if (x < 0)
		x = 0;
	for (uint64_t k = (uint64_t)x;; k++) {
		uint64_t hk = cell_hash(hg, k);
		int n = poisson1(u01(mix64(hk ^ CELL_SALT)));
		double best = INF_KEY;

		for (int j = 1; j <= n; j++) {
			double pos = (double)k + u01(mix64(hk ^ (uint64_t)j));

			if (pos > x && pos < best)
				best = pos;
		}
		if (best < INF_KEY)
			return best;
	}
}

/*
 * Is there a touch in (x0, x1]? Exactly arrival_after(hg, x0) <= x1 (x1 below INF_KEY), with
 * less hashing: the scan stops at the first cell past x1; a cell lying wholly inside (x0, x1]
 * answers yes by its count alone (its positions round into [k, k+1]); and the first cell with
 * a touch after x0 decides (touches of later cells come after all of its own).
 */
int touched_between(uint64_t hg, double x0, double x1)
{
	if (!(x1 > x0))
		return 0;
	if (!(x0 < LAMBDA_MAX))
		return INF_KEY <= x1;   /* saturated: "never again", as arrival_after's INF_KEY */
	if (x0 < 0)
		x0 = 0;
	for (uint64_t k = (uint64_t)x0;; k++) {
		double kf = (double)k;

		if (kf > x1)
			return 0;
		uint64_t hk = cell_hash(hg, k);
		int n = poisson1(u01(mix64(hk ^ CELL_SALT)));

		if (!n)
			continue;
		if (kf > x0 && kf + 1.0 <= x1)
			return 1;
		int after = 0;

		for (int j = 1; j <= n; j++) {
			double pos = kf + u01(mix64(hk ^ (uint64_t)j));

			if (pos > x0) {
				if (pos <= x1)
					return 1;
				after = 1;
			}
		}
		if (after)
			return 0;
	}
}

/* The lambda value of the first touch of page g strictly after x; INF_KEY once x saturates. */
double first_arrival_after(uint64_t seed, uint64_t gvpn, double x)
{
	return arrival_after(page_hash(seed, gvpn), x);
}

double acma_first_arrival_after(uint64_t seed, uint64_t gvpn, double x)
{
	return first_arrival_after(seed, gvpn, x);
}

int acma_touched_between(uint64_t seed, uint64_t gvpn, double x0, double x1)
{
	return touched_between(page_hash(seed, gvpn), x0, x1);
}

/* The VMA holding global virtual page g (VMAs are created with increasing gbase). */
struct vma *vma_of(const acma_mem *m, uint64_t gvpn, uint32_t *id)
{
	uint32_t lo = 0, hi = m->nr_vmas;

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;

		if (m->vmas[mid].gbase <= gvpn)
			lo = mid;
		else
			hi = mid;
	}
	if (!m->nr_vmas || gvpn < m->vmas[lo].gbase || gvpn >= m->vmas[lo].gbase + m->vmas[lo].npages)
		return NULL;
	if (id)
		*id = lo;
	return &m->vmas[lo];
}

/* Cumulative touches per page of the VMA at time t (µs). */
double vma_lambda(const struct vma *v, uint64_t t)
{
	uint32_t lo = 0, hi = v->nbp;

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;

		if (v->bp_t[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	if (t <= v->bp_t[lo])
		return v->bp_lam[lo];
	return v->bp_lam[lo] + v->bp_rate[lo] * (double)(t - v->bp_t[lo]);
}

double acma_vma_lambda(const acma_mem *m, uint32_t vma, uint64_t t)
{
	if (vma >= m->nr_vmas)
		return -1.0;
	return vma_lambda(&m->vmas[vma], t);
}

/* Was the mapped page touched since its accessed bit was last cleared? Optionally clear it. */
int page_young(acma_mem *m, uint32_t pfn, int clear)
{
	uint8_t s = m->pg[pfn].state;
	int young;

	if (s != ACMA_PS_ANON && s != ACMA_PS_FILE)
		return 0;
	young = !!(m->pg[pfn].flags & ACMA_PG_YOUNG);
	if (!young && m->pg[pfn].last_clear < m->now) {
		uint64_t g = m->pg[pfn].owner;
		const struct vma *v = vma_of(m, g, NULL);

		if (v && !v->explicit_only) {
			double x0 = vma_lambda(v, m->pg[pfn].last_clear);
			double x1 = vma_lambda(v, m->now);

			young = touched_between(page_hash(m->cfg.seed, g), x0, x1);
		}
	}
	if (clear) {
		m->pg[pfn].flags &= (uint8_t)~ACMA_PG_YOUNG;
		m->pg[pfn].last_clear = m->now;
	}
	return young;
}

/* folio_referenced for reclaim: the accessed bit (cleared), or page_idle's PG_young that a
 * DAMON mkold left; either clears PG_idle. */
int page_referenced(acma_mem *m, uint32_t pfn)
{
	struct page *p = &m->pg[pfn];
	int young = page_young(m, pfn, 1);

	if (p->flags2 & PG2_YOUNG) {
		young = 1;
		p->flags2 &= (uint8_t)~PG2_YOUNG;
	}
	if (young)
		p->flags2 &= (uint8_t)~PG2_IDLE;
	return young;
}

/* damon_va_mkold / damon_pa_mkold: clear the accessed bit, keep what it said in PG_young
 * (so reclaim still sees the access), and mark the folio idle. */
void damon_mkold(acma_mem *m, uint32_t pfn)
{
	if (page_young(m, pfn, 1))
		m->pg[pfn].flags2 |= PG2_YOUNG;
	m->pg[pfn].flags2 |= PG2_IDLE;
}

/* damon_va_young / damon_pa_young: accessed if the bit is set again, or if something (reclaim
 * finding it referenced) cleared PG_idle since the mkold. */
int damon_young(acma_mem *m, uint32_t pfn)
{
	return page_young(m, pfn, 0) || !(m->pg[pfn].flags2 & PG2_IDLE);
}

int acma_young_pfns(acma_mem *m, const uint32_t *pfns, uint64_t n, uint8_t *out, uint32_t clear)
{
	for (uint64_t i = 0; i < n; i++)
		if (pfns[i] >= m->cfg.nr_pages)
			return ACMA_EINVAL;
	for (uint64_t i = 0; i < n; i++)
		out[i] = (uint8_t)page_young(m, pfns[i], (int)clear);
	return 0;
}

int acma_young_gvpns(acma_mem *m, const uint64_t *gvpns, uint64_t n, uint8_t *out, uint32_t clear)
{
	for (uint64_t i = 0; i < n; i++)
		if (gvpns[i] >= m->nr_gvpn)
			return ACMA_EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t p = m->pte[gvpns[i]];

		out[i] = pte_present(p) ? (uint8_t)page_young(m, p, (int)clear) : 0;
	}
	return 0;
}

int acma_idle_bitmap(acma_mem *m, uint64_t pfn_start, uint64_t npages, uint64_t *bitmap)
{
	if (pfn_start > m->cfg.nr_pages || npages > m->cfg.nr_pages - pfn_start)
		return ACMA_EINVAL;
	for (uint64_t w = 0; w < (npages + 63) / 64; w++)
		bitmap[w] = 0;
	for (uint64_t i = 0; i < npages; i++) {
		uint32_t pfn = (uint32_t)(pfn_start + i);
		uint8_t s = m->pg[pfn].state;

		if (s != ACMA_PS_ANON && s != ACMA_PS_FILE)
			continue;
		/* read: page_idle_clear_pte_refs, then the PG_idle bit; write: set it again */
		if (page_young(m, pfn, 1))
			m->pg[pfn].flags2 = (uint8_t)((m->pg[pfn].flags2 | PG2_YOUNG) & ~PG2_IDLE);
		if (m->pg[pfn].flags2 & PG2_IDLE)
			bitmap[i >> 6] |= 1ull << (i & 63);
		m->pg[pfn].flags2 |= PG2_IDLE;
	}
	return 0;
}

int acma_truth_accessed(const acma_mem *m, uint32_t vma, uint64_t t0, uint64_t t1, uint8_t *out)
{
	if (vma >= m->nr_vmas || t0 > t1)
		return ACMA_EINVAL;
	const struct vma *v = &m->vmas[vma];

	if (v->explicit_only)
		return ACMA_ESTATE;
	double x0 = vma_lambda(v, t0), x1 = vma_lambda(v, t1);

	for (uint32_t off = 0; off < v->npages; off++)
		out[off] = off < v->nalloc && touched_between(page_hash(m->cfg.seed, v->gbase + off), x0, x1);
	return 0;
}
