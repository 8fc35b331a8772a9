/*
 * tokenizer.h: GPT-2 byte-level BPE, decode and encode, in C.
 *
 * Decode needs only llm.c's tokenizer file (magic 20240328, version 1 or 2):
 * header [2] vocab size, [3] EOT id (version 2; version 1 means 50256), then
 * per token id a uint8 length (> 0) and the token's bytes.
 *
 * Encode also needs our merges file (MERGES_MAGIC, version 1): [2] number of
 * merges, then per merge three int32 (left id, right id, merged id); merge k
 * has rank k (GPT-2's vocab.bpe order). The encoder gives the same ids as
 * tiktoken's `gpt2` encoding:
 *   1. With allow_special, each "<|endoftext|>" becomes the EOT id and the
 *      text between is encoded separately; without it, it is ordinary text.
 *   2. Text is split into pieces with GPT-2's pattern (PCRE2, UTF + UCP, JIT
 *      when available), where \s is spelled out as the Unicode White_Space
 *      set, as tiktoken's Rust regex has it (PCRE2's own \s adds U+180E):
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   3. A piece that is a token is that token. Otherwise its bytes start as
 *      byte tokens, and the adjacent pair with the lowest-ranked merge is
 *      merged (the leftmost on ties) until no adjacent pair has a merge.
 *      tiktoken instead merges any pair whose concatenation is a token,
 *      ranked by that token's id; for GPT-2 the two agree (merge k makes token
 *      256 + k, and tests/test_tokenizer.c checks the two rules give the same
 *      ids on every token and on strings aimed at the other splits). Pieces
 *      are cached per TokenizerState.
 *
 * Bytes that are not valid UTF-8: every byte that is not part of a
 * well-formed character (Unicode Table 3-7: no overlongs, surrogates or code
 * points past U+10FFFF) becomes its own byte token, and the valid stretches
 * between such bytes are encoded each on its own, as separate texts. So an
 * invalid byte is a boundary no piece crosses (PCRE2_MATCH_INVALID_UTF's
 * rule, done here so PCRE2 only ever sees valid UTF-8, which keeps its
 * interpreter linear), and decode(encode(x)) == x for any bytes. tiktoken
 * takes strings, not bytes: its callers replace invalid UTF-8 with U+FFFD
 * first (and js-tiktoken encodes a lone UTF-16 surrogate as U+FFFD).
 *
 * Unicode letter and number classes come from the installed PCRE2's tables
 * (Unicode 14 in PCRE2 10.42); code points assigned in later versions are not
 * letters or numbers here, where a newer tiktoken build may say they are.
 * js-tiktoken, the test oracle, uses JavaScript's \s, which has U+FEFF and
 * lacks U+0085, so it splits differently from tiktoken around those two.
 *
 * Use (link with -lpcre2-8; the Makefile has it as $(PCRE2_LIBS)):
 *   Tokenizer t;
 *   tokenizer_init(&t, "build/gpt2_tokenizer.bin");        // decode
 *   tokenizer_init_encoder(&t, "build/gpt2_merges.bin");   // and encode
 *   TokenBuf ids = {0};
 *   tokenizer_encode(&t, text, len, allow_special, &ids);  // appends to ids
 *   const uint8_t *bytes = tokenizer_decode(&t, id, &n);   // NULL if unknown
 *   tokbuf_free(&ids); tokenizer_free(&t);
 * A Tokenizer is read-only once loaded and may be shared by threads, each
 * with its own TokenizerState and tokenizer_encode_with(); tokenizer_encode()
 * uses the Tokenizer's own state. Errors in the files are fatal().
 */
#ifndef LLMC_TOKENIZER_H
#define LLMC_TOKENIZER_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "formats.h"
#include "utils.h"

// ----------------------------------------------------------------------------
// growable list of token ids

typedef struct {
    int32_t *ids;
    size_t n, cap;
} TokenBuf;

static inline void tokbuf_reserve(TokenBuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + extra) cap *= 2;
    int32_t *ids = (int32_t *)realloc(b->ids, cap * sizeof(int32_t));
    if (ids == NULL) fatal("out of memory growing a token list to %zu ids", cap);
    b->ids = ids;
    b->cap = cap;
}

static inline void tokbuf_push(TokenBuf *b, int32_t id) {
    if (b->n == b->cap) tokbuf_reserve(b, 1);
    b->ids[b->n++] = id;
}

static inline void tokbuf_free(TokenBuf *b) {
    free(b->ids);
    b->ids = NULL;
    b->n = b->cap = 0;
}

// ----------------------------------------------------------------------------
// limits and hashing

#define TOKENIZER_MAX_VOCAB (1 << 20)
#define TOKENIZER_MAX_MERGES (1 << 24)
#define TOKENIZER_V1_EOT 50256           // llm.c's version 1 files imply GPT-2's EOT
#define TOK_CACHE_SLOTS (1 << 16)        // per state; cleared when half full
#define TOK_CACHE_MAX_PIECE 128          // longer pieces are not cached (bytes)
#define TOK_CACHE_KEY_BYTES (1 << 20)    // cached piece bytes before a clear
#define TOK_CACHE_IDS (1 << 18)          // cached ids before a clear

// hash of a byte string: 8 bytes at a time, multiply and fold
static inline uint64_t tok_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 32);
}

static inline uint32_t tok_pow2_at_least(size_t n) {
    uint32_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

// ----------------------------------------------------------------------------
// per-thread encoder state: regex match data, piece cache, BPE scratch

typedef struct {
    uint64_t hash;
    uint32_t key_off;   // into keys
    uint32_t ids_off;   // into ids
    uint16_t key_len;   // 0 = empty slot
    uint16_t n_ids;
} TokCacheSlot;

typedef struct {
    int32_t rank, start;  // heap order: lowest rank, then leftmost
    uint32_t ver;         // valid while the part at `start` has this version
    int32_t merged;
} TokHeapEntry;

typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    TokCacheSlot *slots;  // (TOK_CACHE_SLOTS)
    uint32_t used;
    uint8_t *keys;        // (TOK_CACHE_KEY_BYTES)
    size_t keys_used;
    int32_t *ids;         // (TOK_CACHE_IDS)
    size_t ids_used;
    // BPE over one piece of n bytes: parts are named by their first byte
    int32_t *tok, *next, *prev;  // (n) token of the part, neighbours; tok -1 = merged away
    uint32_t *ver;               // (n) bumped whenever the pair starting here changes
    size_t scratch_cap;
    TokHeapEntry *heap;          // (2n): n-1 pairs at first, at most one more per merge
} TokenizerState;

// ----------------------------------------------------------------------------
// the tokenizer

typedef struct {
    uint64_t key;  // left << 32 | right; UINT64_MAX = empty
    int32_t rank, merged;
} TokPair;

typedef struct {
    int vocab_size;
    int eot_id;
    uint8_t *blob;      // every token's bytes, each followed by a NUL
    uint32_t *offset;   // (V+1) token i is blob[offset[i]], length offset[i+1] - offset[i] - 1
    // encoder, after tokenizer_init_encoder()
    int can_encode;
    int32_t byte_id[256];   // the token of each single byte
    int32_t *vocab_slots;   // hash of token bytes -> id, -1 empty
    uint32_t vocab_mask;
    TokPair *pairs;         // hash of (left, right) -> (rank, merged)
    int pair_shift;
    int n_pairs;
    pcre2_code *re;
    int jit;
    TokenizerState state;   // used by tokenizer_encode()
} Tokenizer;

static inline size_t tokenizer_token_len(const Tokenizer *t, int id) {
    return t->offset[id + 1] - t->offset[id] - 1;
}

// Bytes of token `id` (NUL-terminated for convenience; a token may itself hold
// a NUL byte, so use *len). Returns NULL with *len = 0 for an unknown id.
static inline const uint8_t *tokenizer_decode(const Tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->vocab_size) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = tokenizer_token_len(t, id);
    return t->blob + t->offset[id];
}

// Loads llm.c's tokenizer file: enough to decode.
static inline void tokenizer_init(Tokenizer *t, const char *path) {
    memset(t, 0, sizeof(*t));
    static const int versions[] = {TOKENIZER_VERSION_1, TOKENIZER_VERSION_2};
    int32_t header[HEADER_INTS];
    FILE *f = open_with_header(path, "tokenizer", TOKENIZER_MAGIC, versions, 2, header);
    int V = header[2];
    if (V < 1 || V > TOKENIZER_MAX_VOCAB) {
        fatal("tokenizer '%s' has vocab size %d, expected 1..%d", path, V, TOKENIZER_MAX_VOCAB);
    }
    int eot = header[1] == TOKENIZER_VERSION_1 ? TOKENIZER_V1_EOT : header[3];
    if (eot < 0 || eot >= V) {
        fatal("tokenizer '%s' has EOT id %d, outside its vocab of %d%s", path, eot, V,
              header[1] == TOKENIZER_VERSION_1 ? " (version 1 implies 50256)" : "");
    }
    long long body = file_size_of(f) - (long long)HEADER_BYTES;
    uint8_t *raw = (uint8_t *)malloc_check(body > 0 ? (size_t)body : 1);
    fread_check(raw, 1, (size_t)body, f, path);
    fclose_check(f);

    // lengths and bytes, each token NUL-terminated in the blob
    t->offset = (uint32_t *)malloc_check((size_t)(V + 1) * sizeof(uint32_t));
    t->blob = (uint8_t *)malloc_check((size_t)body + 1);
    size_t pos = 0, out = 0;
    for (int i = 0; i < V; i++) {
        if (pos >= (size_t)body) {
            fatal("tokenizer '%s' is truncated: it ends at token %d of %d", path, i, V);
        }
        size_t n = raw[pos++];
        if (n == 0) fatal("tokenizer '%s': token %d has length 0", path, i);
        if (pos + n > (size_t)body) {
            fatal("tokenizer '%s' is truncated: token %d of %d needs %zu bytes, %zu left", path, i,
                  V, n, (size_t)body - pos);
        }
        t->offset[i] = (uint32_t)out;
        memcpy(t->blob + out, raw + pos, n);
        out += n;
        t->blob[out++] = 0;
        pos += n;
    }
    t->offset[V] = (uint32_t)out;
    if (pos != (size_t)body) {
        fatal("tokenizer '%s' has %zu bytes after its last token", path, (size_t)body - pos);
    }
    free(raw);
    t->vocab_size = V;
    t->eot_id = eot;
}

static inline void tokenizer_state_init(TokenizerState *s, const Tokenizer *t) {
    memset(s, 0, sizeof(*s));
    s->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (s->md == NULL || s->mctx == NULL) fatal("out of memory creating PCRE2 match data");
    if (t->jit) {
        s->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
        if (s->jit_stack == NULL) fatal("out of memory creating the PCRE2 JIT stack");
        pcre2_jit_stack_assign(s->mctx, NULL, s->jit_stack);
    }
    s->slots = (TokCacheSlot *)calloc_check(TOK_CACHE_SLOTS, sizeof(TokCacheSlot));
    s->keys = (uint8_t *)malloc_check(TOK_CACHE_KEY_BYTES);
    s->ids = (int32_t *)malloc_check(TOK_CACHE_IDS * sizeof(int32_t));
}

static inline void tokenizer_state_free(TokenizerState *s) {
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    if (s->jit_stack) pcre2_jit_stack_free(s->jit_stack);
    free(s->slots);
    free(s->keys);
    free(s->ids);
    free(s->tok);
    free(s->next);
    free(s->prev);
    free(s->ver);
    free(s->heap);
    memset(s, 0, sizeof(*s));
}

// the token whose bytes are exactly p[0..n), or -1 (the EOT is never found)
static inline int tok_vocab_find(const Tokenizer *t, const uint8_t *p, size_t n, uint64_t h) {
    for (uint32_t i = (uint32_t)h & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        int id = t->vocab_slots[i];
        if (id < 0) return -1;
        if (tokenizer_token_len(t, id) == n && memcmp(t->blob + t->offset[id], p, n) == 0) {
            return id;
        }
    }
}

static inline uint64_t tok_pair_key(int32_t left, int32_t right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

static inline TokPair *tok_pair_slot(const Tokenizer *t, uint64_t key) {
    uint32_t mask = (1u << (64 - t->pair_shift)) - 1;
    for (uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> t->pair_shift);;
         i = (i + 1) & mask) {
        TokPair *p = &t->pairs[i];
        if (p->key == key || p->key == UINT64_MAX) return p;
    }
}

// The merge of two adjacent tokens, or NULL when no merge joins this pair.
static inline const TokPair *tok_pair_find(const Tokenizer *t, int32_t left, int32_t right) {
    const TokPair *p = tok_pair_slot(t, tok_pair_key(left, right));
    return p->key == UINT64_MAX ? NULL : p;
}

// Loads our merges file and compiles the pre-split pattern: enough to encode.
static inline void tokenizer_init_encoder(Tokenizer *t, const char *path) {
    int V = t->vocab_size;
    if (V < 256) fatal("cannot encode with a vocab of %d tokens: the 256 bytes need one each", V);

    // byte tokens and the bytes -> id hash, from the vocab itself
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    uint32_t slots = tok_pow2_at_least((size_t)V * 2);
    t->vocab_mask = slots - 1;
    t->vocab_slots = (int32_t *)malloc_check(slots * sizeof(int32_t));
    for (uint32_t i = 0; i < slots; i++) t->vocab_slots[i] = -1;
    for (int id = 0; id < V; id++) {
        if (id == t->eot_id) continue;
        const uint8_t *p = t->blob + t->offset[id];
        size_t n = tokenizer_token_len(t, id);
        if (n == 1 && t->byte_id[p[0]] < 0) t->byte_id[p[0]] = id;
        uint64_t h = tok_hash_bytes(p, n);
        if (tok_vocab_find(t, p, n, h) >= 0) continue;  // a duplicate: the lowest id wins
        uint32_t i = (uint32_t)h & t->vocab_mask;
        while (t->vocab_slots[i] >= 0) i = (i + 1) & t->vocab_mask;
        t->vocab_slots[i] = id;
    }
    for (int b = 0; b < 256; b++) {
        if (t->byte_id[b] < 0) fatal("cannot encode: the vocab has no token for byte 0x%02x", b);
    }

    // merges: (left, right) -> (rank, merged)
    static const int versions[] = {MERGES_VERSION};
    int32_t header[HEADER_INTS];
    FILE *f = open_with_header(path, "merges", MERGES_MAGIC, versions, 1, header);
    int n = header[2];
    if (n < 0 || n > TOKENIZER_MAX_MERGES) {
        fatal("merges '%s' has %d entries, expected 0..%d", path, n, TOKENIZER_MAX_MERGES);
    }
    check_file_size(f, path, "merges", (long long)HEADER_BYTES + 12LL * n);
    int32_t *e = (int32_t *)malloc_check((size_t)n * 3 * sizeof(int32_t) + 1);
    fread_check(e, sizeof(int32_t), (size_t)n * 3, f, path);
    fclose_check(f);
    int bits = 1;
    while ((1u << bits) < (uint32_t)n * 2 + 2) bits++;
    t->pair_shift = 64 - bits;
    t->pairs = (TokPair *)malloc_check(((size_t)1 << bits) * sizeof(TokPair));
    for (size_t i = 0; i < ((size_t)1 << bits); i++) t->pairs[i].key = UINT64_MAX;
    uint8_t *made = (uint8_t *)calloc_check((size_t)V, 1);  // token already made by a merge
    for (int k = 0; k < n; k++) {
        int32_t l = e[3 * k], r = e[3 * k + 1], m = e[3 * k + 2];
        if (l < 0 || l >= V || r < 0 || r >= V || m < 0 || m >= V || l == t->eot_id ||
            r == t->eot_id || m == t->eot_id) {
            fatal("merges '%s' merge %d (%d, %d -> %d) has an id outside the vocab of %d or the EOT",
                  path, k, l, r, m, V);
        }
        size_t nl = tokenizer_token_len(t, l), nr = tokenizer_token_len(t, r);
        if (tokenizer_token_len(t, m) != nl + nr ||
            memcmp(t->blob + t->offset[m], t->blob + t->offset[l], nl) != 0 ||
            memcmp(t->blob + t->offset[m] + nl, t->blob + t->offset[r], nr) != 0) {
            fatal("merges '%s' merge %d: token %d is not token %d followed by token %d "
                  "(merges made for another vocab?)", path, k, m, l, r);
        }
        TokPair *p = tok_pair_slot(t, tok_pair_key(l, r));
        if (p->key != UINT64_MAX) fatal("merges '%s' merge %d: pair (%d, %d) repeats", path, k, l, r);
        if (made[m]) fatal("merges '%s' merge %d: token %d is made by an earlier merge too", path, k, m);
        made[m] = 1;
        p->key = tok_pair_key(l, r);
        p->rank = k;
        p->merged = m;
    }
    free(made);
    free(e);
    t->n_pairs = n;

    // the pre-split pattern; WS is the Unicode White_Space property
#define TOK_WS "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
               "\\x{202F}\\x{205F}\\x{3000}"
    static const char pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" TOK_WS
                                  "\\p{L}\\p{N}]+|[" TOK_WS "]+(?![^" TOK_WS "])|[" TOK_WS "]+";
#undef TOK_WS
    int err;
    PCRE2_SIZE err_off;
    t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP, &err, &err_off, NULL);
    if (t->re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        fatal("PCRE2 cannot compile the GPT-2 pattern at offset %zu: %s", (size_t)err_off, msg);
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    t->can_encode = 1;
    tokenizer_state_init(&t->state, t);
}

static inline void tokenizer_free(Tokenizer *t) {
    if (t->can_encode) tokenizer_state_free(&t->state);
    if (t->re) pcre2_code_free(t->re);
    free(t->blob);
    free(t->offset);
    free(t->vocab_slots);
    free(t->pairs);
    memset(t, 0, sizeof(*t));
}

// ----------------------------------------------------------------------------
// encoding

static inline void tok_scratch_reserve(TokenizerState *s, size_t n) {
    if (n <= s->scratch_cap) return;
    size_t cap = s->scratch_cap ? s->scratch_cap : 64;
    while (cap < n) cap *= 2;
    free(s->tok);
    free(s->next);
    free(s->prev);
    free(s->ver);
    free(s->heap);
    s->tok = (int32_t *)malloc_check(cap * sizeof(int32_t));
    s->next = (int32_t *)malloc_check(cap * sizeof(int32_t));
    s->prev = (int32_t *)malloc_check(cap * sizeof(int32_t));
    s->ver = (uint32_t *)malloc_check(cap * sizeof(uint32_t));
    s->heap = (TokHeapEntry *)malloc_check(cap * 2 * sizeof(TokHeapEntry));
    s->scratch_cap = cap;
}

static inline int tok_heap_less(const TokHeapEntry *a, const TokHeapEntry *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->start < b->start);
}

static inline void tok_heap_push(TokHeapEntry *h, size_t *n, TokHeapEntry e) {
    size_t i = (*n)++;
    while (i > 0 && tok_heap_less(&e, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static inline TokHeapEntry tok_heap_pop(TokHeapEntry *h, size_t *n) {
    TokHeapEntry top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && tok_heap_less(&h[c + 1], &h[c])) c++;
        if (!tok_heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

// pushes the pair starting at part i (if it merges) with i's current version
static inline void tok_bpe_offer(const Tokenizer *t, TokenizerState *s, size_t *nh, int32_t i,
                                 int32_t n) {
    int32_t j = s->next[i];
    if (j >= n) return;
    const TokPair *p = tok_pair_find(t, s->tok[i], s->tok[j]);
    if (p == NULL) return;
    TokHeapEntry e = {p->rank, i, s->ver[i], p->merged};
    tok_heap_push(s->heap, nh, e);
}

// BPE of one piece, tiktoken's order: repeatedly merge the adjacent pair of
// lowest rank, leftmost first. A heap keyed by (rank, start) with versioned
// entries makes it O(n log n); stale entries are skipped when popped.
static inline void tok_bpe(const Tokenizer *t, TokenizerState *s, const uint8_t *p, size_t len,
                           TokenBuf *out) {
    int32_t n = (int32_t)len;
    tok_scratch_reserve(s, len);
    for (int32_t i = 0; i < n; i++) {
        s->tok[i] = t->byte_id[p[i]];
        s->next[i] = i + 1;
        s->prev[i] = i - 1;
        s->ver[i] = 0;
    }
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < n; i++) tok_bpe_offer(t, s, &nh, i, n);
    while (nh > 0) {
        TokHeapEntry e = tok_heap_pop(s->heap, &nh);
        int32_t i = e.start;
        if (s->tok[i] < 0 || s->ver[i] != e.ver) continue;  // stale
        int32_t j = s->next[i];
        s->tok[i] = e.merged;
        s->tok[j] = -1;
        s->next[i] = s->next[j];
        if (s->next[j] < n) s->prev[s->next[j]] = i;
        s->ver[i]++;
        tok_bpe_offer(t, s, &nh, i, n);
        if (s->prev[i] >= 0) {
            s->ver[s->prev[i]]++;
            tok_bpe_offer(t, s, &nh, s->prev[i], n);
        }
    }
    tokbuf_reserve(out, len);
    for (int32_t i = 0; i < n; i = s->next[i]) out->ids[out->n++] = s->tok[i];
}

static inline void tok_cache_clear(TokenizerState *s) {
    memset(s->slots, 0, TOK_CACHE_SLOTS * sizeof(TokCacheSlot));
    s->used = 0;
    s->keys_used = s->ids_used = 0;
}

// encodes one piece of the pre-split
static inline void tok_encode_piece(const Tokenizer *t, TokenizerState *s, const uint8_t *p,
                                    size_t n, TokenBuf *out) {
    if (n == 1) {
        tokbuf_push(out, t->byte_id[p[0]]);
        return;
    }
    uint64_t h = tok_hash_bytes(p, n);
    int id = tok_vocab_find(t, p, n, h);
    if (id >= 0) {
        tokbuf_push(out, id);
        return;
    }
    if (n > TOK_CACHE_MAX_PIECE) {
        tok_bpe(t, s, p, n, out);
        return;
    }
    uint32_t i = (uint32_t)h & (TOK_CACHE_SLOTS - 1);
    for (; s->slots[i].key_len != 0; i = (i + 1) & (TOK_CACHE_SLOTS - 1)) {
        TokCacheSlot *c = &s->slots[i];
        if (c->hash == h && c->key_len == n && memcmp(s->keys + c->key_off, p, n) == 0) {
            tokbuf_reserve(out, c->n_ids);
            memcpy(out->ids + out->n, s->ids + c->ids_off, c->n_ids * sizeof(int32_t));
            out->n += c->n_ids;
            return;
        }
    }
    size_t start = out->n;
    tok_bpe(t, s, p, n, out);
    size_t k = out->n - start;
    if (s->used >= TOK_CACHE_SLOTS / 2 || s->keys_used + n > TOK_CACHE_KEY_BYTES ||
        s->ids_used + k > TOK_CACHE_IDS) {
        tok_cache_clear(s);
        i = (uint32_t)h & (TOK_CACHE_SLOTS - 1);
    }
    TokCacheSlot *c = &s->slots[i];
    c->hash = h;
    c->key_off = (uint32_t)s->keys_used;
    c->ids_off = (uint32_t)s->ids_used;
    c->key_len = (uint16_t)n;
    c->n_ids = (uint16_t)k;
    memcpy(s->keys + s->keys_used, p, n);
    memcpy(s->ids + s->ids_used, out->ids + start, k * sizeof(int32_t));
    s->keys_used += n;
    s->ids_used += k;
    s->used++;
}

// length of the well-formed UTF-8 character at p (Unicode Table 3-7), or 0
static inline size_t tok_utf8_len(const uint8_t *p, size_t n) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    if (c < 0xC2 || c > 0xF4) return 0;  // continuation, overlong lead, past U+10FFFF
    size_t k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n < k) return 0;
    uint8_t lo = 0x80, hi = 0xBF;  // the second byte's range
    if (c == 0xE0) lo = 0xA0;      // no overlongs
    if (c == 0xED) hi = 0x9F;      // no surrogates
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;      // nothing past U+10FFFF
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < k; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
    }
    return k;
}

// length of the longest valid UTF-8 prefix of p[0..n)
static inline size_t tok_utf8_valid_prefix(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {  // 8 ASCII bytes at a time
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        size_t k = tok_utf8_len(p + i, n - i);
        if (k == 0) break;
        i += k;
    }
    return i;
}

// pre-split and BPE of valid UTF-8 text
static inline void tok_encode_valid(const Tokenizer *t, TokenizerState *s, const uint8_t *text,
                                    size_t len, TokenBuf *out) {
    size_t off = 0;
    while (off < len) {
        int rc = t->jit ? pcre2_jit_match(t->re, text, len, off, 0, s->md, s->mctx)
                        : pcre2_match(t->re, text, len, off, PCRE2_NO_UTF_CHECK, s->md, s->mctx);
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof(msg));
            fatal("PCRE2 match failed at byte %zu: %s", off, msg);
        }
        // every character is in one class of the pattern, so the match starts at off
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        if (ov[0] != off || ov[1] <= off) {
            fatal("PCRE2 matched [%zu, %zu) from byte %zu: the pattern does not cover the text",
                  (size_t)ov[0], (size_t)ov[1], off);
        }
        tok_encode_piece(t, s, text + off, ov[1] - off, out);
        off = ov[1];
    }
}

// Text with no special tokens in it. The pattern runs on each maximal stretch
// of valid UTF-8 on its own (each stretch's end is the end of its subject);
// every byte between stretches is a byte token.
static inline void tok_encode_ordinary(const Tokenizer *t, TokenizerState *s, const uint8_t *text,
                                       size_t len, TokenBuf *out) {
    size_t i = 0;
    while (i < len) {
        size_t v = tok_utf8_valid_prefix(text + i, len - i);
        if (v > 0) tok_encode_valid(t, s, text + i, v, out);
        i += v;
        while (i < len && tok_utf8_len(text + i, len - i) == 0) tokbuf_push(out, t->byte_id[text[i++]]);
    }
}

// Appends the ids of text[0..len) to out, using state s (one per thread).
// With allow_special, the EOT token's text becomes the EOT id.
static inline void tokenizer_encode_with(const Tokenizer *t, TokenizerState *s, const void *text,
                                         size_t len, int allow_special, TokenBuf *out) {
    if (!t->can_encode) fatal("tokenizer_encode: no merges loaded (call tokenizer_init_encoder)");
    const uint8_t *p = (const uint8_t *)text;
    const uint8_t *eot = t->blob + t->offset[t->eot_id];
    size_t eot_len = tokenizer_token_len(t, t->eot_id);
    size_t start = 0;
    while (allow_special) {
        size_t at = start;
        const uint8_t *hit = NULL;
        while (at + eot_len <= len) {
            const uint8_t *c = (const uint8_t *)memchr(p + at, eot[0], len - eot_len + 1 - at);
            if (c == NULL) break;
            if (memcmp(c, eot, eot_len) == 0) {
                hit = c;
                break;
            }
            at = (size_t)(c - p) + 1;
        }
        if (hit == NULL) break;
        tok_encode_ordinary(t, s, p + start, (size_t)(hit - p) - start, out);
        tokbuf_push(out, t->eot_id);
        start = (size_t)(hit - p) + eot_len;
    }
    tok_encode_ordinary(t, s, p + start, len - start, out);
}

// tokenizer_encode_with() on the tokenizer's own state: not for concurrent use
static inline void tokenizer_encode(Tokenizer *t, const void *text, size_t len, int allow_special,
                                    TokenBuf *out) {
    tokenizer_encode_with(t, &t->state, text, len, allow_special, out);
}

#endif  // LLMC_TOKENIZER_H
