// SPDX-License-Identifier: GPL-2.0
/* Balloon pages (balloon.h): the guest side of virtio-balloon inflate, deflate and OOM deflate. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "balloon.h"

struct balloon {
	acma_balloon_info info;
	uint32_t *pfns;             /* the balloon's page list, oldest first */
	uint64_t cap;
};

void balloon_free(acma_mem *m)
{
	if (m->bl)
		free(m->bl->pfns);
	free(m->bl);
	m->bl = NULL;
}

int acma_balloon_enable(acma_mem *m, uint32_t deflate_on_oom)
{
	if (deflate_on_oom > 1)
		return ACMA_EINVAL;
	if (m->bl)
		return ACMA_ESTATE;
	m->bl = calloc(1, sizeof(*m->bl));
	if (!m->bl)
		return ACMA_ENOMEM;
	m->bl->info.deflate_on_oom = deflate_on_oom;
	return 0;
}

static int reserve(struct balloon *b, uint64_t n)
{
	if (n <= b->cap)
		return 0;
	uint64_t cap = b->cap ? b->cap : 1024;

	while (cap < n)
		cap *= 2;
	uint32_t *p = realloc(b->pfns, cap * sizeof(*p));

	if (!p)
		return ACMA_ENOMEM;
	b->pfns = p;
	b->cap = cap;
	return 0;
}

/* balloon_page_alloc: GFP_HIGHUSER_MOVABLE | __GFP_NORETRY: the fast path, the min watermark,
 * then once more after the kswapd reclaim the failed fast path woke; never OOM. */
static int balloon_page_alloc(acma_mem *m, uint32_t node, uint32_t *pfn)
{
	if (!try_zones(m, 0, ACMA_MT_MOVABLE, node, 1, 1, pfn) ||
	    !try_zones(m, 0, ACMA_MT_MOVABLE, node, 1, 0, pfn))
		return 0;
	wake_kswapd_if_needed(m);
	return try_zones(m, 0, ACMA_MT_MOVABLE, node, 1, 0, pfn);
}

int acma_balloon_inflate(acma_mem *m, uint32_t node, uint64_t n, uint32_t *out, uint64_t cap,
			 uint64_t *done)
{
	struct balloon *b = m->bl;
	uint32_t pfn;

	*done = 0;
	if (!b)
		return ACMA_ESTATE;
	if (node >= m->cfg.nr_nodes || cap < n || n > m->cfg.nr_pages)
		return ACMA_EINVAL;
	if (reserve(b, b->info.actual + n))
		return ACMA_ENOMEM;
	while (*done < n) {
		if (balloon_page_alloc(m, node, &pfn)) {
			b->info.alloc_failures++;
			break;
		}
		b->pfns[b->info.actual++] = pfn;
		out[(*done)++] = pfn;
	}
	b->info.inflated += *done;
	wake_kswapd_if_needed(m);
	return 0;
}

/* balloon_page_dequeue + release_pages_balloon: the newest pages go back to the allocator. */
static uint64_t deflate(acma_mem *m, struct balloon *b, uint64_t n, uint32_t *out)
{
	uint64_t k = 0;

	while (k < n && b->info.actual) {
		uint32_t pfn = b->pfns[--b->info.actual];

		buddy_free(m, pfn, 0, 0);
		if (out)
			out[k] = pfn;
		k++;
	}
	b->info.deflated += k;
	return k;
}

int acma_balloon_deflate(acma_mem *m, uint64_t n, uint32_t *out, uint64_t cap, uint64_t *done)
{
	*done = 0;
	if (!m->bl)
		return ACMA_ESTATE;
	if (cap < n && cap < m->bl->info.actual)
		return ACMA_EINVAL;
	*done = deflate(m, m->bl, n, out);
	return 0;
}

/* virtio_balloon_oom_notify: up to 256 pages back before the guest would OOM; the caller
 * retries its allocation when this freed anything. */
int balloon_oom_deflate(acma_mem *m)
{
	if (!m->bl || !m->bl->info.deflate_on_oom)
		return 0;
	uint64_t k = deflate(m, m->bl, ACMA_BALLOON_OOM_NR_PAGES, NULL);

	m->bl->info.oom_deflated += k;
	return (int)k;
}

int acma_balloon_get(const acma_mem *m, acma_balloon_info *out)
{
	if (!m->bl)
		return ACMA_ESTATE;
	*out = m->bl->info;
	return 0;
}

int acma_balloon_pages(const acma_mem *m, uint32_t *out, uint64_t cap)
{
	if (!m->bl)
		return ACMA_ESTATE;
	if (cap < m->bl->info.actual)
		return ACMA_EINVAL;
	if (m->bl->info.actual)
		memcpy(out, m->bl->pfns, m->bl->info.actual * sizeof(*out));
	return 0;
}

int balloon_walk(acma_mem *m, struct stream *s)
{
	uint8_t on = m->bl != NULL;

	snap_xfer(s, &on, 1);
	if (!on)
		return 0;
	if (on != 1)
		return ACMA_EINVAL;
	if (snap_reading(s)) {
		m->bl = calloc(1, sizeof(*m->bl));
		if (!m->bl)
			return ACMA_ENOMEM;
	}
	struct balloon *b = m->bl;

	snap_xfer(s, &b->info, sizeof(b->info));
	if (snap_reading(s)) {
		uint64_t n = b->info.actual;

		b->info.actual = 0;
		if (n > m->cfg.nr_pages || b->info.deflate_on_oom > 1 || reserve(b, n))
			return ACMA_EINVAL;
		b->info.actual = n;
	}
	snap_xfer(s, b->pfns, b->info.actual * sizeof(uint32_t));
	if (snap_reading(s))
		for (uint64_t i = 0; i < b->info.actual; i++)
			if (b->pfns[i] >= m->cfg.nr_pages || m->pg[b->pfns[i]].state != ACMA_PS_DRIVER)
				return ACMA_EINVAL;
	return 0;
}

/* Every balloon page is a driver page (and there are no more of them than driver pages). */
int balloon_check(const acma_mem *m)
{
	const struct balloon *b = m->bl;
	uint64_t driver = 0;

	if (!b)
		return 0;
	for (uint64_t i = 0; i < b->info.actual; i++)
		if (b->pfns[i] >= m->cfg.nr_pages || m->pg[b->pfns[i]].state != ACMA_PS_DRIVER)
			return 1;
	for (uint64_t i = 0; i < m->cfg.nr_pages; i++)
		driver += m->pg[i].state == ACMA_PS_DRIVER;
	return b->info.actual > driver;
}
