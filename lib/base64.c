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

/* Filled before main, so threads never race on it. */
__attribute__((constructor)) static void init_table(void)
{
	for (int i = 0; i < 256; i++)
		decode_table[i] = -1;
	for (int i = 0; i < 64; i++)
		decode_table[(unsigned char)alphabet[i]] = (signed char)i;
}

long base64_decode(const char *in, size_t len, unsigned char *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int a = decode_table[p[i]], b = decode_table[p[i + 1]];
		int c = decode_table[p[i + 2]], d = decode_table[p[i + 3]];
		int last = (i + 4 == len);
		if (a < 0 || b < 0)
			return -1;
		if (last && p[i + 2] == '=' && p[i + 3] == '=') {
			out[o++] = (unsigned char)(a << 2 | b >> 4);
			break;
		}
		if (last && p[i + 3] == '=') {
			if (c < 0)
				return -1;
			out[o++] = (unsigned char)(a << 2 | b >> 4);
			out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
			break;
		}
		if (c < 0 || d < 0)
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		out[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	return (long)o;
}
