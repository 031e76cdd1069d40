/*
 * klarf.h: KLARF (KLA Results File), the defect file yield systems read.
 * One module owns the format both ways: the tokenizer and reader that
 * kerf-acquire --klarf imports with, and the 1.2 writer kerf-persist
 * writes RUNDIR/klarf/ with, so that each reads back what the other wrote.
 *
 * Units in these structures are always µm and µm² (1.8's nm are
 * converted on reading).  A numeric field given as NA reads as NAN.
 *
 * Steps: klarf_read (or fill a struct klarf by hand); klarf_write;
 * klarf_free.
 */
#ifndef KERF_KLARF_H
#define KERF_KLARF_H

#include <stddef.h>
#include <stdio.h>

struct klarf_defect {
	long id;              /* DEFECTID */
	double xrel, yrel;    /* position inside the die, µm */
	long xindex, yindex;  /* die column and row */
	double xsize, ysize;  /* µm */
	double area;          /* DEFECTAREA, µm² */
	double dsize;         /* DSIZE, µm */
	long classnumber;     /* CLASSNUMBER */
	long test;            /* TEST */
	size_t line;          /* source line of the row, when read */
};

struct klarf_class {
	long num;
	char *name;
};

struct klarf_wafer {
	char *wafer_id;
	long slot;
	char *result_timestamp;       /* as written in the file, or NULL */
	long (*test_plan)[2];         /* SampleTestPlan: inspected dies (xindex, yindex) */
	size_t ntest_plan;
	double area_per_test;         /* AreaPerTest, µm² (0 when absent) */
	long ndie;                    /* written only: the SummaryList's NDIE, the dies its
					 DEFDENSITY divides by (0: ntest_plan; see wafer.h) */
	struct klarf_defect *defects;
	size_t ndefects;
	size_t line;                  /* source line of WaferID, when read */
	/* Added for files (1.8) that give each wafer its own centre. */
	double center[2];             /* this wafer's SampleCenterLocation, µm */
	int has_center;               /* 1: use center above, 0: klarf.center */
};

struct klarf {
	char *file_version;       /* "1.2" */
	char *file_timestamp;     /* "MM-DD-YY HH:MM:SS" */
	char *station;            /* InspectionStationID, its words joined by ' ' */
	char *sample_type;        /* "WAFER" */
	char *lot_id;
	char *device_id;
	char *setup_id;
	char *step_id;
	char *orientation;        /* OrientationMarkLocation, e.g. "DOWN" */
	double sample_size_mm;    /* SampleSize 1 D: wafer diameter in mm */
	double die_pitch[2];      /* µm */
	double die_origin[2];     /* µm */
	double center[2];         /* SampleCenterLocation, µm */
	struct klarf_class *classes;
	size_t nclasses;
	struct klarf_wafer *wafers;
	size_t nwafers;
};

/*
 * Read a whole KLARF file (flat 1.1/1.2/1.7, and nested 1.8).  On
 * failure returns -1 and writes a message naming the line to err, e.g.
 * "line 17: DefectList row has 9 values, DefectRecordSpec has 12".
 * 'name' is used in messages only.
 */
int klarf_read(FILE *f, const char *name, struct klarf *out, char *err, size_t errlen);

/*
 * Write k as KLARF 1.2 (every wafer of k, in order).  Returns 0, or -1
 * on a write error (errno set).  The caller writes to a temporary file
 * and renames it, so no reader sees half a file.
 */
int klarf_write(FILE *f, const struct klarf *k);

/* Free everything k owns (safe on a zeroed struct). */
void klarf_free(struct klarf *k);

#endif
