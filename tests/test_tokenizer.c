/*
 * tests/test_tokenizer.c: checks of llmc/tokenizer.h that need its insides.
 *
 *   build/test_tokenizer TOKENIZER_FILE MERGES_FILE
 *
 * 1. Every token's bytes encode, by BPE alone (no whole-piece lookup), to that
 *    one token. A merge that is missing or out of rank order breaks this for
 *    its token, whatever text the other tests happen to contain.
 * 2. Our BPE (merge the adjacent pair whose merge rule has the lowest rank)
 *    gives tiktoken's ids. tiktoken merges any adjacent pair whose
 *    concatenation is a token, lowest token id first; it is written out here
 *    directly, O(n^2), and compared on every token's bytes, on each split of a
 *    token into two tokens that is not its merge rule (the only place the two
 *    rules could part) in random contexts, and on random token strings.
 * 3. The API: unknown ids, the EOT, empty text, special tokens, a second
 *    state, the piece cache across clears.
 * Prints one PASS/FAIL line per check; exits 1 if any failed.
 */
#include "../llmc/tokenizer.h"

static int failures = 0;

static void report(int ok, const char *name, const char *detail) {
    if (ok) printf("PASS %s\n", name);
    else printf("FAIL %s: %s\n", name, detail);
    failures += !ok;
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n) {  // xorshift64*, deterministic
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 33) % n;
}

// tiktoken's byte-pair merge: parts [b[i], b[i+1]); merge the adjacent pair
// whose concatenation is the lowest-id token, leftmost on ties
static void tiktoken_bpe(const Tokenizer *t, const uint8_t *p, size_t n, TokenBuf *out) {
    size_t *b = (size_t *)malloc_check((n + 1) * sizeof(size_t));
    size_t m = n;  // parts
    for (size_t i = 0; i <= n; i++) b[i] = i;
    for (;;) {
        int best_id = -1;
        size_t best = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            size_t len = b[i + 2] - b[i];
            int id = tok_vocab_find(t, p + b[i], len, tok_hash_bytes(p + b[i], len));
            if (id >= 0 && (best_id < 0 || id < best_id)) {
                best_id = id;
                best = i;
            }
        }
        if (best_id < 0) break;
        memmove(&b[best + 1], &b[best + 2], (m - best - 1) * sizeof(size_t));
        m--;
    }
    for (size_t i = 0; i < m; i++) {
        size_t len = b[i + 1] - b[i];
        tokbuf_push(out, tok_vocab_find(t, p + b[i], len, tok_hash_bytes(p + b[i], len)));
    }
    free(b);
}

static int same(const TokenBuf *a, const TokenBuf *b) {
    return a->n == b->n && memcmp(a->ids, b->ids, a->n * sizeof(int32_t)) == 0;
}

// appends token id's bytes to buf
static size_t put_token(const Tokenizer *t, uint8_t *buf, size_t at, int id) {
    size_t len;
    const uint8_t *p = tokenizer_decode(t, id, &len);
    memcpy(buf + at, p, len);
    return at + len;
}

int main(int argc, char **argv) {
    if (argc != 3) fatal("usage: %s TOKENIZER_FILE MERGES_FILE", argv[0]);
    Tokenizer t;
    tokenizer_init(&t, argv[1]);
    tokenizer_init_encoder(&t, argv[2]);
    int V = t.vocab_size;
    TokenBuf a = {NULL, 0, 0}, b = {NULL, 0, 0};
    char msg[512];

    // 1. each token is its own BPE
    int bad = 0, first_bad = -1, tokens = 0;
    for (int id = 0; id < V; id++) {
        size_t len;
        const uint8_t *p = tokenizer_decode(&t, id, &len);
        if (id == t.eot_id || len < 2) continue;
        a.n = 0;
        tok_bpe(&t, &t.state, p, len, &a);
        tokens++;
        if (!(a.n == 1 && a.ids[0] == id)) {
            if (bad++ == 0) first_bad = id;
        }
    }
    snprintf(msg, sizeof(msg), "%d tokens do not BPE to themselves, the first is %d ('%s')", bad,
             first_bad, first_bad >= 0 ? (const char *)tokenizer_decode(&t, first_bad, NULL) : "");
    char name[128];
    snprintf(name, sizeof(name), "each of the %d multi-byte tokens is the BPE of its bytes", tokens);
    report(bad == 0, name, msg);

    // 2. our merge order = tiktoken's, on strings aimed at the non-rule splits
    uint8_t buf[8 * 256];
    long strings = 0, splits = 0, differ = 0;
    for (int id = 0; id < V && differ < 10; id++) {
        size_t len;
        const uint8_t *p = tokenizer_decode(&t, id, &len);
        if (id == t.eot_id || len < 2) continue;
        for (size_t k = 1; k < len; k++) {
            int left = tok_vocab_find(&t, p, k, tok_hash_bytes(p, k));
            int right = tok_vocab_find(&t, p + k, len - k, tok_hash_bytes(p + k, len - k));
            if (left < 0 || right < 0) continue;
            int rule = tok_pair_find(&t, left, right) != NULL;
            splits += !rule;
            for (int c = 0; c < (rule ? 1 : 8); c++) {  // c = 0: the token alone
                size_t n = 0;
                for (int j = 0; j < c % 3; j++) n = put_token(&t, buf, n, c < 4 ? (int)rnd(256) : (int)rnd(50256));
                n = put_token(&t, buf, n, left);
                n = put_token(&t, buf, n, right);
                for (int j = 0; j < c / 3; j++) n = put_token(&t, buf, n, c & 1 ? (int)rnd(256) : (int)rnd(50256));
                a.n = b.n = 0;
                tok_bpe(&t, &t.state, buf, n, &a);
                tiktoken_bpe(&t, buf, n, &b);
                strings++;
                if (!same(&a, &b) && differ++ == 0) {
                    snprintf(msg, sizeof(msg), "they differ on '%.*s' (%zu vs %zu tokens)", (int)n,
                             (const char *)buf, a.n, b.n);
                }
            }
        }
    }
    for (int s = 0; s < 200000 && differ < 10; s++, strings++) {
        size_t n = 0;
        int k = 2 + (int)rnd(5);
        for (int j = 0; j < k; j++) n = put_token(&t, buf, n, (int)rnd(50256));
        a.n = b.n = 0;
        tok_bpe(&t, &t.state, buf, n, &a);
        tiktoken_bpe(&t, buf, n, &b);
        if (!same(&a, &b) && differ++ == 0) {
            snprintf(msg, sizeof(msg), "they differ on '%.*s'", (int)n, (const char *)buf);
        }
    }
    snprintf(name, sizeof(name),
             "merge rules by rank = tiktoken's merge rule, on %ld strings (%ld non-rule splits)",
             strings, splits);
    report(differ == 0 && splits > 0, name, differ ? msg : "no non-rule splits found");

    // 3. the API
    size_t len = 1;
    report(tokenizer_decode(&t, -1, &len) == NULL && len == 0 && tokenizer_decode(&t, V, &len) == NULL,
           "decode of an unknown id is NULL, length 0", "returned bytes");
    const uint8_t *eot = tokenizer_decode(&t, t.eot_id, &len);
    report(len == 13 && memcmp(eot, "<|endoftext|>", 13) == 0, "decode(EOT) = <|endoftext|>",
           "other bytes");
    a.n = 0;
    tokenizer_encode(&t, "", 0, 1, &a);
    report(a.n == 0, "encode(\"\") = no tokens", "tokens");
    const char *sp = "a<|endoftext|>b";
    a.n = b.n = 0;
    tokenizer_encode(&t, sp, strlen(sp), 1, &a);
    tokenizer_encode(&t, sp, strlen(sp), 0, &b);
    report(a.n == 3 && a.ids[1] == t.eot_id && b.n > 3, "allow_special: EOT; otherwise text",
           "unexpected ids");

    // many distinct pieces: the cache clears several times; a second pass hits it
    size_t cap = 4 << 20, n = 0;
    char *text = (char *)malloc_check(cap);
    while (n + 64 < cap) {
        text[n++] = ' ';
        int w = 3 + (int)rnd(10);
        for (int j = 0; j < w; j++) text[n++] = (char)('a' + rnd(26));
    }
    TokenizerState s2;
    tokenizer_state_init(&s2, &t);
    TokenBuf c = {NULL, 0, 0};
    a.n = b.n = 0;
    tokenizer_encode(&t, text, n, 0, &a);
    tokenizer_encode(&t, text, n, 0, &b);
    tokenizer_encode_with(&t, &s2, text, n, 0, &c);
    report(same(&a, &b) && same(&a, &c), "cold, warm and second-state encodings agree (4 MB of words)",
           "they differ");
    tokenizer_state_free(&s2);
    free(text);
    tokbuf_free(&a);
    tokbuf_free(&b);
    tokbuf_free(&c);
    tokenizer_free(&t);
    return failures ? 1 : 0;
}
