/* base64.h: standard base64 (RFC 4648, with padding) for inline die images. */
#ifndef KERF_BASE64_H
#define KERF_BASE64_H

#include <stddef.h>

/* Encoded length for n bytes, without the NUL. */
size_t base64_encoded_len(size_t n);
/* Encode n bytes into out (base64_encoded_len(n) + 1 bytes); NUL-terminated. */
void base64_encode(const void *in, size_t n, char *out);
/*
 * Decode len characters into out (room for len / 4 * 3 bytes).  Returns
 * the decoded length, or -1 on a character outside the alphabet, bad
 * padding or a length that is not a multiple of 4.
 */
long base64_decode(const char *in, size_t len, unsigned char *out);

#endif
