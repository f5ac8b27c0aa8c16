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
	m->pg[i].prev = NIL;
	m->pg[i].next = l->head;
	if (l->head != NIL)
		m->pg[l->head].prev = i;
	else
		l->tail = i;
	l->head = i;
	l->n++;
}

void list_add_tail(acma_mem *m, struct list *l, uint32_t i)
{
	m->pg[i].next = NIL;
	m->pg[i].prev = l->tail;
	if (l->tail != NIL)
		m->pg[l->tail].next = i;
	else
		l->head = i;
	l->tail = i;
	l->n++;
}

void list_del(acma_mem *m, struct list *l, uint32_t i)
{
	uint32_t p = m->pg[i].prev, n = m->pg[i].next;

	if (p != NIL)
		m->pg[p].next = n;
	else
		l->head = n;
	if (n != NIL)
		m->pg[n].prev = p;
	else
		l->tail = p;
	m->pg[i].prev = m->pg[i].next = NIL;
	l->n--;
}

/* list_rotate_to_front: i becomes the head; the entries before it move, in order, to the tail. */
void list_rotate_to_front(acma_mem *m, struct list *l, uint32_t i)
{
	uint32_t p = m->pg[i].prev;

	if (p == NIL)
		return;
	m->pg[l->tail].next = l->head;
	m->pg[l->head].prev = l->tail;
	m->pg[p].next = NIL;
	m->pg[i].prev = NIL;
	l->head = i;
	l->tail = p;
}
