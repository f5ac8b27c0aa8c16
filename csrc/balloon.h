/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Balloon pages at the guest level, after drivers/virtio/virtio_balloon.c and mm/balloon.c:
 * inflating takes 4 KiB movable pages from the buddy allocator (state DRIVER) onto the
 * balloon's list; deflating gives the most recently inflated back; with DEFLATE_ON_OOM the
 * guest deflates up to 256 pages each time it would otherwise go OOM. The device protocol
 * (num_pages, actual, the virtqueues) lives with the host.
 */
#ifndef ACMA_BALLOON_H
#define ACMA_BALLOON_H
#include "acma.h"

/* CDEF BEGIN */
#define ACMA_BALLOON_OOM_NR_PAGES 256
typedef struct {
	uint64_t actual;          /* pages in the balloon */
	uint32_t deflate_on_oom;
	uint32_t pad;
	uint64_t inflated, deflated, oom_deflated;   /* pages, since enable */
	uint64_t alloc_failures;  /* "Out of puff!": an inflate stopped on a failed allocation */
} acma_balloon_info;

int acma_balloon_enable(acma_mem *m, uint32_t deflate_on_oom);
/* Inflate by up to n pages from node's zonelist; their pfns go to out (cap >= n), *done. */
int acma_balloon_inflate(acma_mem *m, uint32_t node, uint64_t n, uint32_t *out, uint64_t cap,
			 uint64_t *done);
/* Deflate up to n pages (last in, first out); their pfns go to out, *done. */
int acma_balloon_deflate(acma_mem *m, uint64_t n, uint32_t *out, uint64_t cap, uint64_t *done);
int acma_balloon_get(const acma_mem *m, acma_balloon_info *out);
/* The balloon's pages, oldest first (cap >= actual). */
int acma_balloon_pages(const acma_mem *m, uint32_t *out, uint64_t cap);
/* CDEF END */

#endif
