/* base64.c: see base64.h. */
#include "base64.h"

#include <stdint.h>

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void base64_encode(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t i = 0, o = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
}

static signed char decode_table[256];

/*
 * dec[k][c]: character c's six bits in place k of a group of four
 * (shifted left by 18, 12, 6, 0), or BAD for a character outside the
 * alphabet, so that one OR of four lookups decodes a group and one test
 * finds any bad character in it.
 */
#define BAD 0xff000000u
static uint32_t dec[4][256];

/* Filled before main, so threads never race on them. */
__attribute__((constructor)) static void init_table(void)
{
	for (int i = 0; i < 256; i++) {
		decode_table[i] = -1;
		for (int k = 0; k < 4; k++)
			dec[k][i] = BAD;
	}
	for (int i = 0; i < 64; i++) {
		unsigned char c = (unsigned char)alphabet[i];
		decode_table[c] = (signed char)i;
		for (int k = 0; k < 4; k++)
			dec[k][c] = (uint32_t)i << (18 - 6 * k);
	}
}

long base64_decode(const char *in, size_t len, unsigned char *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0, i = 0;
	if (len % 4)
		return -1;
	/* Every group but the last, which alone may hold padding. */
	for (; i + 4 < len; i += 4, o += 3) {
		uint32_t v = dec[0][p[i]] | dec[1][p[i + 1]] | dec[2][p[i + 2]] | dec[3][p[i + 3]];
		if (v & BAD)
			return -1;
		out[o] = (unsigned char)(v >> 16);
		out[o + 1] = (unsigned char)(v >> 8);
		out[o + 2] = (unsigned char)v;
	}
	/* The last group: "xx==" holds one byte, "xxx=" two. */
	if (i < len) {
		int a = decode_table[p[i]], b = decode_table[p[i + 1]];
		int c = decode_table[p[i + 2]], d = decode_table[p[i + 3]];
		if (a < 0 || b < 0)
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		if (p[i + 2] == '=' && p[i + 3] == '=')
			return (long)o;
		if (c < 0)
			return -1;
		out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		if (p[i + 3] == '=')
			return (long)o;
		if (d < 0)
			return -1;
		out[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	return (long)o;
}
