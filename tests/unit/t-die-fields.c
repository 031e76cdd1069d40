/*
 * t-die-fields: kerf-detect's one-pass die event reader (lib/die_fields.c)
 * against jansson, line by line.
 *   t-die-fields mutate   die lines built here and systematic mutations of
 *                         them (mutate.h)
 *   t-die-fields lines    the die event lines on stdin (kerf-acquire --sim),
 *                         each of which must be taken, and byte mutations
 *                         of the first
 * Whenever die_fields_scan takes a line, json_loadb (flags 0, as
 * kerf-detect) must parse it, die_fields_from_json must read the same
 * values from the result, and image_from_fields must make the same image
 * or the same reject of both.  Whenever die_fields_scan_event (kerf-
 * validate's) takes a line, die_fields_scan must take it too, json_loadb
 * with JSON_REJECT_DUPLICATES must parse it into an object with the same
 * values, and the line must hold no raw control byte.  Prints "tried N
 * taken T declined D" (of die_fields_scan) and each disagreement on
 * stderr; exits 1 on any.
 */
#include "util.h"
#include "die_fields.h"
#include "image.h"
#include "line.h"
#include "log.h"
#include "mutate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static struct {
	long tried, taken, declined, wrong;
} tally;

static void report(const char *what, const char *line, size_t len, const char *why)
{
	tally.wrong++;
	fprintf(stderr, "t-die-fields: %s: %s: %.*s\n", what, why, (int)(len < 600 ? len : 600), line);
}

/* Whether both readings make the same image, or the same reject. */
static int same_image(const struct image_fields *a, const struct image_fields *b)
{
	struct image ia, ib;
	const char *ra = "", *rb = "";
	char ma[256] = "", mb[256] = "";
	int x = image_from_fields(a, 0, 0, &ia, &ra, ma, sizeof ma);
	int y = image_from_fields(b, 0, 0, &ib, &rb, mb, sizeof mb);
	int same = x == y;
	if (same && x == 0)
		same = ia.w == ib.w && ia.h == ib.h && !memcmp(ia.px, ib.px, (size_t)ia.w * (size_t)ia.h);
	else if (same)
		same = !strcmp(ra, rb) && !strcmp(ma, mb);
	image_release(&ia);
	image_release(&ib);
	return same;
}

/*
 * The strict scanner on a copy of the line, which die_fields_scan took or
 * not (took); returns whether it took it.
 */
static int check_strict(const char *what, const char *line, size_t len, int took)
{
	struct die_fields a, b;
	json_error_t err;
	json_t *ev;
	char *copy = xmalloc(len + 1);

	memcpy(copy, line, len);
	if (!die_fields_scan_event(copy, len, &a)) {
		free(copy);
		return 0;
	}
	ev = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (!took)
		report(what, line, len, "taken by the strict scanner only");
	else if (!json_is_object(ev))
		report(what, line, len, "taken strictly, but jansson does not parse it (duplicates rejected)");
	else if (line_control_at(line, len) < len)
		report(what, line, len, "taken strictly, but it holds a raw control byte");
	else if (die_fields_from_json(ev, &b), !die_fields_equal(&a, &b))
		report(what, line, len, "taken strictly, but jansson reads other values");
	else if ((a.run && a.run[a.run_len]) || (a.img.data && a.img.data[a.img.data_len]))
		report(what, line, len, "taken strictly, but its strings are not terminated");
	json_decref(ev);
	free(copy);
	return 1;
}

/* Try one line; returns whether the scanner took it. */
static int check(const char *what, const char *line, size_t len)
{
	struct die_fields a, b;
	json_error_t err;
	json_t *ev;
	int took;

	tally.tried++;
	took = die_fields_scan(line, len, &a);
	check_strict(what, line, len, took);
	if (!took) {
		tally.declined++;
		return 0;
	}
	tally.taken++;
	ev = json_loadb(line, len, 0, &err);
	if (!ev) {
		report(what, line, len, "taken, but jansson does not parse it");
		return 1;
	}
	die_fields_from_json(ev, &b);
	if (!die_fields_equal(&a, &b))
		report(what, line, len, "taken, but jansson reads other values");
	else if (!same_image(&a.img, &b.img))
		report(what, line, len, "taken, but the image differs");
	json_decref(ev);
	return 1;
}

static void must_take(const char *what, const char *line, size_t len)
{
	if (!check(what, line, len))
		report(what, line, len, "a plain die line is declined");
}

/* For mutate.h. */
static void try_line(const char *what, const char *line, size_t len, int take)
{
	if (take)
		must_take(what, line, len);
	else
		check(what, line, len);
}

static void lines(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long dies = 0;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			n--;
		if (!memmem(line, (size_t)n, "\"type\":\"die\"", 12))
			continue;
		if (!dies++)
			mutate_sim_die(line, (size_t)n);
		must_take("a sim die", line, (size_t)n);
		if (!check_strict("a sim die", line, (size_t)n, 1))
			report("a sim die", line, (size_t)n, "a plain die line is declined by the strict scanner");
	}
	free(line);
	printf("dies %ld\n", dies);
}

int main(int argc, char **argv)
{
	log_init(argv[0]);
	mutate_try = try_line;
	if (argc == 2 && !strcmp(argv[1], "mutate"))
		mutate_dies();
	else if (argc == 2 && !strcmp(argv[1], "lines"))
		lines();
	else {
		fprintf(stderr, "usage: t-die-fields mutate|lines\n");
		return 64;
	}
	printf("tried %ld taken %ld declined %ld wrong %ld\n", tally.tried, tally.taken, tally.declined, tally.wrong);
	return tally.wrong ? 1 : 0;
}
