/*
 * om-text: print, with lib/openmetrics.h, a text that holds every case
 * the writer spells: a gauge with a unit, a counter (X_total), a family
 * with no sample (left out), escapes in label values and in help (a
 * double quote in each), values that are not finite, a large whole
 * number, a fraction, samples with and without labels.  tests/metrics.bats
 * compares it with tests/data/metrics/om-text.out and has promtool
 * parse it.
 */
#include "openmetrics.h"
#include "out.h"

#include <math.h>
#include <stdio.h>

#include "banned.h"

int main(void)
{
	struct om m;
	size_t len, len2;
	const char *text;

	om_init(&m);
	om_family(&m, "demo_queue_bytes", OM_GAUGE, "bytes", "Bytes waiting, \"quoted\" and back\\slashed,\nand a second line.");
	om_sample_int(&m, NULL, 0);
	om_sample_int(&m, (const char *[]){ "key", "tool \"A\"\\1\nline", NULL }, 9007199254740993LL);
	om_family(&m, "demo_never", OM_GAUGE, NULL, "A family with no sample: not written.");
	om_family(&m, "demo_files", OM_COUNTER, NULL, "Files taken.");
	om_sample_int(&m, (const char *[]){ "key", "a", "state", "done", NULL }, 3);
	om_sample_int(&m, (const char *[]){ "key", "", NULL }, 0);
	om_family(&m, "demo_age_seconds", OM_GAUGE, "seconds", "Age of the oldest waiting file.");
	om_sample(&m, (const char *[]){ "key", "a", NULL }, 0.1);
	om_sample(&m, (const char *[]){ "key", "b", NULL }, 1.0 / 3.0);
	om_sample(&m, (const char *[]){ "key", "c", NULL }, NAN);
	om_sample(&m, (const char *[]){ "key", "d", NULL }, INFINITY);
	om_sample(&m, (const char *[]){ "key", "e", NULL }, -INFINITY);
	om_sample(&m, (const char *[]){ "key", "f", NULL }, 1e21);
	text = om_end(&m, &len);
	fwrite(text, 1, len, stdout);
	/* A second om_end adds nothing. */
	om_end(&m, &len2);
	om_release(&m);
	return len2 == len ? fshut(stdout, "standard output") : 1;
}
