/*
 * klarf-dump: read a KLARF file with klarf_read and print what was read,
 * one line per wafer and per defect (µm, 3 decimals), or with -w write it
 * back as KLARF 1.2 with klarf_write.  Exit 65 with the reader's message
 * on a bad file.  Usage: klarf-dump [-w] FILE
 */
#include "exitcode.h"
#include "log.h"
#include "cli.h"
#include "out.h"
#include "klarf.h"

#include <math.h>
#include <string.h>

#include "banned.h"

static void num(const char *name, double v)
{
	if (isnan(v))
		printf(" %s=NA", name);
	else
		printf(" %s=%.3f", name, v);
}

int main(int argc, char **argv)
{
	struct klarf k;
	char err[512];
	int write = 0;
	FILE *f;

	log_init(argv[0]);
	if (argc == 3 && !strcmp(argv[1], "-w")) {
		write = 1;
		argv++;
		argc--;
	}
	if (argc != 2)
		cli_usage_error("usage: klarf-dump [-w] FILE");
	f = fopen(argv[1], "r");
	if (!f)
		cli_die(66, "cannot open '%s': %m", argv[1]);
	if (klarf_read(f, argv[1], &k, err, sizeof err) < 0) {
		fprintf(stderr, "klarf-dump: %s: %s\n", argv[1], err);
		fclose(f);
		return KERF_EX_DATAERR;
	}
	fclose(f);
	if (write) {
		if (klarf_write(stdout, &k) < 0)
			return KERF_EX_IOERR;
		klarf_free(&k);
		return fshut(stdout, "standard output");
	}
	printf("version %s lot %s size %.3f pitch %.3f %.3f origin %.3f %.3f center %.3f %.3f classes %zu\n",
	       k.file_version ? k.file_version : "-", k.lot_id ? k.lot_id : "-", k.sample_size_mm,
	       k.die_pitch[0], k.die_pitch[1], k.die_origin[0], k.die_origin[1],
	       k.center[0], k.center[1], k.nclasses);
	for (size_t i = 0; i < k.nwafers; i++) {
		struct klarf_wafer *w = &k.wafers[i];
		printf("wafer %s slot %ld plan %zu defects %zu\n", w->wafer_id, w->slot, w->ntest_plan, w->ndefects);
		for (size_t j = 0; j < w->ndefects; j++) {
			struct klarf_defect *d = &w->defects[j];
			printf("defect %ld die %ld %ld", d->id, d->xindex, d->yindex);
			num("xrel", d->xrel);
			num("yrel", d->yrel);
			num("xsize", d->xsize);
			num("ysize", d->ysize);
			num("area", d->area);
			num("dsize", d->dsize);
			printf(" class %ld test %ld\n", d->classnumber, d->test);
		}
	}
	klarf_free(&k);
	return fshut(stdout, "standard output");
}
