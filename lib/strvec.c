/* strvec.c: see strvec.h. */
#include "strvec.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void strvec_push(struct strvec *sv, const char *s)
{
	if (sv->n + 2 > sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 8;
		sv->v = xrealloc(sv->v, (size_t)sv->cap * sizeof *sv->v);
	}
	sv->v[sv->n++] = xstrdup(s);
	sv->v[sv->n] = NULL;
}

void strvec_pushv(struct strvec *sv, const struct strvec *from)
{
	for (int i = 0; i < from->n; i++)
		strvec_push(sv, from->v[i]);
}

void strvec_clear(struct strvec *sv)
{
	for (int i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof *sv);
}
