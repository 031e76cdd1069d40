/*
 * strvec.h: a growable, NULL-terminated vector of strings, for building
 * argument vectors (git's strvec).  The vector owns copies of what is
 * pushed; v is always NULL-terminated once something is pushed, so it
 * can go straight to execvp.  A zeroed struct is an empty vector.
 */
#ifndef KERF_STRVEC_H
#define KERF_STRVEC_H

struct strvec {
	char **v; /* n strings, then NULL; NULL while empty */
	int n, cap;
};

/* Append a copy of s. */
void strvec_push(struct strvec *sv, const char *s);
/* Append a copy of each string of 'from'. */
void strvec_pushv(struct strvec *sv, const struct strvec *from);
/* Free the strings and the vector; sv is empty again.  Safe on an empty one. */
void strvec_clear(struct strvec *sv);

#endif
