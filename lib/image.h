/*
 * image.h: one die image, decoded from a die event.  The image is 8-bit
 * grey, row-major, w*h bytes; it comes inline (base64 "data" with the
 * XXH3-64 of the raw pixels in "xxh3") or as a "path" to a file of raw
 * pixels (also checked against "xxh3").
 *
 * Steps: image_from_event (or image_from_line, or image_from_fields
 * with the members already read) fills a struct image; image_release
 * frees its pixels.  On failure nothing is left to free.
 */
#ifndef KERF_IMAGE_H
#define KERF_IMAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS (64L * 1024 * 1024)

struct image {
	int w, h;
	uint8_t *px;   /* w*h bytes; owned by the image */
};

/*
 * The members of a die event an image is made from, as plain values.
 * Strings point into whoever holds them (a parsed event, a line of
 * bytes) and need no NUL; only one of data and path is used, data first.
 */
struct image_fields {
	long long w, h;        /* 0 when absent or not an integer */
	const char *xxh3;      /* NULL when absent or not a string */
	const char *data;      /* likewise: base64 of the pixels */
	const char *path;      /* likewise: a file of raw pixels */
	size_t xxh3_len, data_len, path_len;
};

/* Read them from a parsed die event (an object); they point into it. */
void image_fields_from_json(const json_t *die, struct image_fields *f);

/*
 * Decode the image those members describe: every check of a die image
 * and its reasons are here.  want_w and want_h are the size announced
 * by run_start's die_px (0 when unknown): a die of another size is
 * refused.  Returns 0, or -1 with a stable reason code in *reason and a
 * message in msg, as image_from_event below.
 */
int image_from_fields(const struct image_fields *f, int want_w, int want_h, struct image *img,
		      const char **reason, char *msg, size_t msglen);

/*
 * Decode the image of a parsed die event.  want_w and want_h are the
 * size announced by run_start's die_px (0 when unknown): a die of another
 * size is refused.  Returns 0, or -1 with a stable reason code in *reason
 * and a message in msg:
 *   bad_image   no data/path, w or h missing or out of range, data not
 *               base64, the file cannot be read
 *   image_size  decoded bytes differ from w*h, or w,h differ from die_px
 *   checksum    xxh3 missing, malformed or not the pixels' XXH3-64
 */
int image_from_event(const json_t *die, int want_w, int want_h, struct image *img,
		     const char **reason, char *msg, size_t msglen);

/* The same from a line of bytes (parses it first; reason "bad_image" if
 * the line is not a JSON object). */
int image_from_line(const char *line, size_t len, int want_w, int want_h, struct image *img,
		    const char **reason, char *msg, size_t msglen);

/* A new image of w*h pixels set to 0. */
void image_alloc(struct image *img, int w, int h);
/* Free the pixels; safe on a released or zeroed image. */
void image_release(struct image *img);

#endif
