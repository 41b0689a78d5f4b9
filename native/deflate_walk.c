/* A deflate (RFC 1951) block walker: decodes every symbol of a stream without producing output,
 * to find where its final block starts and where the stream ends, to the bit. libdeflate writes
 * only whole streams (its last block has BFINAL set); knowing that block's header bit lets us clear
 * it and append an empty stored block, which turns the stream into a pigz-style block that the
 * next one continues. Written from RFC 1951. */
#include "deflate_walk.h"
#include "piece_mark.h"

#include <string.h>

#define MAX_BITS 15
#define FAST_BITS 11
#define MAX_LITLEN 288
#define MAX_DIST 32
#define MAX_CODELEN 19

/* Huffman decoding tables: a FAST_BITS lookup (entry = symbol << 4 | length, 0 = longer code)
 * and the canonical counts and sorted symbols for codes longer than FAST_BITS. */
typedef struct {
  uint16_t fast[1 << FAST_BITS];
  uint16_t count[MAX_BITS + 1];
  uint16_t symbol[MAX_LITLEN];
} huffman;

/* LSB-first bit reader with a 64-bit buffer refilled eight bytes at a time (the buffer always
 * holds at least 56 bits after a refill: enough for a length, its extra bits, a distance and its
 * extra bits). Bytes past the end read as zero; the position check catches a stream that runs over. */
typedef struct {
  const uint8_t *p;
  size_t len;
  size_t pos; /* next byte to load; may pass len (virtual zero bytes) */
  uint64_t buf;
  unsigned cnt; /* valid bits in buf */
} bits;

static inline void refill(bits *b) {
  if (b->pos + 8 <= b->len) {
    uint64_t w;
    memcpy(&w, b->p + b->pos, 8); /* little-endian hosts only: x86-64 and arm64 */
    /* Bits above cnt already hold the same stream bytes from the last load, so OR is exact. */
    b->buf |= w << b->cnt;
    b->pos += (63 - b->cnt) >> 3;
    b->cnt |= 56;
    return;
  }
  while (b->cnt <= 56) {
    uint64_t byte = b->pos < b->len ? b->p[b->pos] : 0;
    b->buf |= byte << b->cnt;
    b->pos++;
    b->cnt += 8;
  }
}

static inline uint64_t bit_position(const bits *b) { return (uint64_t)b->pos * 8 - b->cnt; }

static inline uint32_t take(bits *b, unsigned n) {
  if (b->cnt < n) refill(b);
  uint32_t v = (uint32_t)(b->buf & ((1ull << n) - 1));
  b->buf >>= n;
  b->cnt -= n;
  return v;
}

static inline int overrun(const bits *b) { return bit_position(b) > (uint64_t)b->len * 8; }

/* Builds tables for `n` code lengths. Returns 0, or -1 for an over-subscribed code. Incomplete
 * codes are allowed (a lone distance code is legal); decoding a missing code fails later. */
static int build(huffman *h, const uint8_t *lengths, int n) {
  uint16_t offs[MAX_BITS + 2];
  memset(h->count, 0, sizeof h->count);
  for (int s = 0; s < n; s++) h->count[lengths[s]]++;
  h->count[0] = 0;
  int left = 1;
  for (int len = 1; len <= MAX_BITS; len++) {
    left <<= 1;
    left -= h->count[len];
    if (left < 0) return -1;
  }
  offs[1] = 0;
  for (int len = 1; len <= MAX_BITS; len++) offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
  for (int s = 0; s < n; s++)
    if (lengths[s] != 0) h->symbol[offs[lengths[s]]++] = (uint16_t)s;

  memset(h->fast, 0, sizeof h->fast);
  /* Canonical codes in order of (length, symbol); each short one is bit-reversed (the stream is
   * LSB-first, Huffman codes MSB-first) and replicated over the unused high bits of the table. */
  unsigned code = 0;
  int index = 0;
  for (int len = 1; len <= FAST_BITS; len++) {
    for (int k = 0; k < h->count[len]; k++, index++, code++) {
      unsigned rev = 0;
      for (int i = 0; i < len; i++) rev |= ((code >> i) & 1u) << (len - 1 - i);
      uint16_t entry = (uint16_t)(h->symbol[index] << 4 | len);
      for (unsigned fill = rev; fill < (1u << FAST_BITS); fill += 1u << len) h->fast[fill] = entry;
    }
    code <<= 1;
  }
  return 0;
}

/* Next symbol, or -1 when the bits match no code. Needs at least 15 bits in the buffer. */
static inline int decode(bits *b, const huffman *h) {
  uint16_t e = h->fast[b->buf & ((1u << FAST_BITS) - 1)];
  if (e != 0) {
    b->buf >>= e & 15;
    b->cnt -= e & 15;
    return e >> 4;
  }
  /* Canonical decoding one bit at a time for the rare long codes. */
  int code = 0, first = 0, index = 0;
  for (int len = 1; len <= MAX_BITS; len++) {
    code |= (int)((b->buf >> (len - 1)) & 1u);
    int count = h->count[len];
    if (code - first < count) {
      b->buf >>= len;
      b->cnt -= (unsigned)len;
      return h->symbol[index + (code - first)];
    }
    index += count;
    first += count;
    first <<= 1;
    code <<= 1;
  }
  return -1;
}

static const uint8_t LENGTH_EXTRA[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                         2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint8_t CODELEN_ORDER[MAX_CODELEN] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                                   11, 4, 12, 3, 13, 2, 14, 1, 15};

static inline unsigned dist_extra(int sym) { return sym < 4 ? 0 : (unsigned)(sym >> 1) - 1; }

static int fixed_tables(huffman *lit, huffman *dist) {
  uint8_t lengths[MAX_LITLEN];
  int s = 0;
  for (; s < 144; s++) lengths[s] = 8;
  for (; s < 256; s++) lengths[s] = 9;
  for (; s < 280; s++) lengths[s] = 7;
  for (; s < 288; s++) lengths[s] = 8;
  if (build(lit, lengths, 288) != 0) return -1;
  for (s = 0; s < 30; s++) lengths[s] = 5;
  return build(dist, lengths, 30);
}

static int dynamic_tables(bits *b, huffman *lit, huffman *dist) {
  int nlit = (int)take(b, 5) + 257;
  int ndist = (int)take(b, 5) + 1;
  int ncode = (int)take(b, 4) + 4;
  if (nlit > 286 || ndist > 30) return -1;
  uint8_t lengths[MAX_LITLEN + MAX_DIST];
  memset(lengths, 0, MAX_CODELEN);
  for (int i = 0; i < ncode; i++) lengths[CODELEN_ORDER[i]] = (uint8_t)take(b, 3);
  huffman codelen;
  if (build(&codelen, lengths, MAX_CODELEN) != 0) return -1;
  int i = 0;
  while (i < nlit + ndist) {
    refill(b);
    int sym = decode(b, &codelen);
    if (sym < 0 || overrun(b)) return -1;
    if (sym < 16) {
      lengths[i++] = (uint8_t)sym;
      continue;
    }
    uint8_t value = 0;
    int repeat;
    if (sym == 16) {
      if (i == 0) return -1;
      value = lengths[i - 1];
      repeat = 3 + (int)take(b, 2);
    } else if (sym == 17) {
      repeat = 3 + (int)take(b, 3);
    } else {
      repeat = 11 + (int)take(b, 7);
    }
    if (i + repeat > nlit + ndist) return -1;
    while (repeat-- > 0) lengths[i++] = value;
  }
  if (lengths[256] == 0) return -1; /* no end-of-block code */
  if (build(lit, lengths, nlit) != 0) return -1;
  return build(dist, lengths + nlit, ndist);
}

/* Skips one block's compressed symbols up to and including its end-of-block code. */
static int skip_symbols(bits *b, const huffman *lit, const huffman *dist) {
  for (;;) {
    refill(b);
    int sym = decode(b, lit);
    if (sym < 256) {
      if (sym < 0) return -1;
      continue;
    }
    if (sym == 256) return overrun(b) ? -1 : 0;
    sym -= 257;
    if (sym >= 29) return -1;
    unsigned n = LENGTH_EXTRA[sym];
    b->buf >>= n;
    b->cnt -= n;
    int d = decode(b, dist);
    if (d < 0 || d >= 30) return -1;
    n = dist_extra(d);
    b->buf >>= n;
    b->cnt -= n;
    /* Runaway guard: a stream that never ends would otherwise loop on virtual zero bytes. */
    if (b->pos > b->len + 16) return -1;
  }
}

static huffman fixed_lit, fixed_dist;
static int fixed_ready = 0;

int deflate_walk_init(void) {
  if (!fixed_ready && fixed_tables(&fixed_lit, &fixed_dist) == 0) fixed_ready = 1;
  return fixed_ready ? 0 : -1;
}

int deflate_walk(const uint8_t *p, size_t len, uint64_t *final_header_bit, uint64_t *end_bit) {
  huffman lit, dist;
  if (!fixed_ready) return -1;
  bits b = {p, len, 0, 0, 0};
  for (;;) {
    uint64_t header = bit_position(&b);
    unsigned final = take(&b, 1);
    unsigned type = take(&b, 2);
    if (overrun(&b)) return -1;
    if (type == 0) {
      size_t at = (size_t)((bit_position(&b) + 7) >> 3);
      if (at + 4 > len) return -1;
      unsigned n = p[at] | (unsigned)p[at + 1] << 8;
      unsigned ncomp = p[at + 2] | (unsigned)p[at + 3] << 8;
      if ((n ^ 0xffffu) != ncomp || at + 4 + n > len) return -1;
      b.pos = at + 4 + n; /* restart the reader after the stored bytes */
      b.buf = 0;
      b.cnt = 0;
    } else if (type == 1) {
      if (skip_symbols(&b, &fixed_lit, &fixed_dist) != 0) return -1;
    } else if (type == 2) {
      if (dynamic_tables(&b, &lit, &dist) != 0) return -1;
      if (skip_symbols(&b, &lit, &dist) != 0) return -1;
    } else {
      return -1;
    }
    if (final) {
      *final_header_bit = header;
      *end_bit = bit_position(&b);
      return 0;
    }
  }
}

size_t deflate_unfinalize(uint8_t *p, uint64_t final_header_bit, uint64_t end_bit) {
  p[final_header_bit >> 3] &= (uint8_t) ~(1u << (final_header_bit & 7));
  size_t used = (size_t)((end_bit + 7) >> 3);
  unsigned spare = (unsigned)(used * 8 - end_bit);
  if (spare > 0) p[used - 1] &= (uint8_t)((1u << (8 - spare)) - 1); /* padding bits read as zero */
  /* An empty stored block: 3 header bits of zero (in the padding when it has room, else in one
   * more zero byte), then LEN 0 / NLEN 0xffff at the next byte boundary. A second one follows:
   * the pair is the piece mark (piece_mark.h) that readers find by search. */
  if (spare < 3) p[used++] = 0;
  static const uint8_t tail[PIECE_MARK_LEN] = PIECE_MARK_BYTES;
  memcpy(p + used, tail, sizeof tail);
  return used + sizeof tail;
}
