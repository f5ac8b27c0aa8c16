// SPDX-License-Identifier: GPL-2.0
/* Intrusive doubly linked lists over page indices: one prev/next pair per page serves the
 * buddy free lists and the LRU lists alike, as struct page's lru field does in the kernel. */
#include "internal.h"

void list_init(struct list *l)
{
	l->head = l->tail = NIL;
	l->n = 0;
}

void list_add_head(acma_mem *m, struct list *l, uint32_t i)
{
	m->prev[i] = NIL;
	m->next[i] = l->head;
	if (l->head != NIL)
		m->prev[l->head] = i;
	else
		l->tail = i;
	l->head = i;
	l->n++;
}

void list_add_tail(acma_mem *m, struct list *l, uint32_t i)
{
	m->next[i] = NIL;
	m->prev[i] = l->tail;
	if (l->tail != NIL)
		m->next[l->tail] = i;
	else
		l->head = i;
	l->tail = i;
	l->n++;
}

void list_del(acma_mem *m, struct list *l, uint32_t i)
{
	uint32_t p = m->prev[i], n = m->next[i];

	if (p != NIL)
		m->next[p] = n;
	else
		l->head = n;
	if (n != NIL)
		m->prev[n] = p;
	else
		l->tail = p;
	m->prev[i] = m->next[i] = NIL;
	l->n--;
}
