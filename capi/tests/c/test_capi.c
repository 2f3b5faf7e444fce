/*
 * Host test of the runnel C API (capi/include/runnel.h, librunnel_capi.a).
 *
 * Built and run by capi/tests/c_api.rs (`cargo test -p runnel-capi --test c_api`) with
 *   gcc -std=c11 -Wall -Wextra -Werror -pedantic -fsanitize=address,undefined ...
 * and, when valgrind is installed, once more without sanitizers under valgrind (which also sees
 * the library's own memory accesses, which ASan does not instrument).
 *
 *   test_capi [--misuse TOKEN_DIR FRAME_DIR INT_TOKEN_DIR INT_FRAME_DIR] CASE_DIR...
 *
 * (the --misuse directories: float token and frame models, integer-only token and frame models)
 *
 * A CASE_DIR holds `model.rnl` and `case.bin` (all little-endian):
 *
 *   char     magic[4] = "RNLC"
 *   uint32   version = 2
 *   uint32   input_kind      0 tokens, 1 frames (RUNNEL_INPUT_*)
 *   uint32   steps
 *   uint32   input_dim       vocabulary size or frame width
 *   uint32   output_dim
 *   uint32   state_bytes     what `runnel convert` reports
 *   float32  tolerance       max |output - expected|; 0 means bit-identical
 *   uint32   integer         1: an integer-only model (`runnel convert --integer`), else 0
 *   float32  frame_scale     integer: the model's frame and logit grids (what
 *   float32  logit_scale       runnel_model_get_integer_scales() must report); else 0
 *   then     steps inputs:   uint32 token, or float32[input_dim]
 *   then     (integer frame models) the frames on the int8 frame grid: int8[steps * input_dim],
 *            zero-padded to a multiple of 4 bytes
 *   then     steps x output_dim expected outputs: float32, or (integer) the int32 logits of the
 *            integer entry points, bit-identical
 *
 * Every step is also run on a second session over the same model (unaligned arena, larger
 * output buffer) with failing calls in between, which must change nothing; then the first
 * session is reset and must reproduce its outputs bit for bit. On an integer-only model the
 * first session steps through the integer entry points and the second through the float ones,
 * which must return the first's integers times logit_scale.
 *
 * Prints one line per case and ends with "test_capi: N passed, N failed"; exits 1 on failure.
 */
#include "runnel.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long g_pass, g_fail;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (cond) {                                                                               \
            g_pass++;                                                                             \
        } else {                                                                                  \
            g_fail++;                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
        }                                                                                         \
    } while (0)

#define EXPECT(call, want)                                                                        \
    do {                                                                                          \
        runnel_status got_ = (call);                                                              \
        CHECK(got_ == (want), "%s returned %d (%s), expected %s (%d)", #call, (int)got_,          \
              runnel_status_message(got_), #want, (int)(want));                                   \
    } while (0)

/* ---------------------------------------------------------------------------------- files -- */

typedef struct {
    unsigned char *data; /* 16-byte aligned, zero padding after len */
    size_t len;
} buffer;

/* `n` bytes (rounded up to 16) at a 16-byte aligned address; exits on failure. */
static void *alloc16(size_t n) {
    void *p = aligned_alloc(16, (n + 15) / 16 * 16);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static buffer read_file(const char *dir, const char *name) {
    char path[4096];
    buffer b = {NULL, 0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) {
        fprintf(stderr, "cannot size %s\n", path);
        exit(2);
    }
    b.len = (size_t)n;
    b.data = alloc16(b.len + 16);
    if (!b.data || fread(b.data, 1, b.len, f) != b.len) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    memset(b.data + b.len, 0, (b.len + 16) / 16 * 16 - b.len);
    fclose(f);
    return b;
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float get_f32(const unsigned char *p) {
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

typedef struct {
    buffer blob;
    uint32_t kind, steps, input_dim, output_dim, state_bytes;
    float tol;
    uint32_t integer;          /* an integer-only model */
    float frame_scale, logit_scale;
    uint32_t *tokens;          /* [steps] (tokens) */
    float *frames;             /* [steps * input_dim] (frames) */
    int8_t *frames_i8;         /* [steps * input_dim] (integer frame models) */
    float *expected;           /* [steps * output_dim] (float models) */
    int32_t *expected_i;       /* [steps * output_dim] (integer models) */
} test_case;

static test_case load_case(const char *dir) {
    test_case c;
    memset(&c, 0, sizeof c);
    c.blob = read_file(dir, "model.rnl");
    buffer b = read_file(dir, "case.bin");
    if (b.len < 44 || memcmp(b.data, "RNLC", 4) != 0 || get_u32(b.data + 4) != 2) {
        fprintf(stderr, "%s/case.bin: bad header\n", dir);
        exit(2);
    }
    c.kind = get_u32(b.data + 8);
    c.steps = get_u32(b.data + 12);
    c.input_dim = get_u32(b.data + 16);
    c.output_dim = get_u32(b.data + 20);
    c.state_bytes = get_u32(b.data + 24);
    c.tol = get_f32(b.data + 28);
    c.integer = get_u32(b.data + 32);
    c.frame_scale = get_f32(b.data + 36);
    c.logit_scale = get_f32(b.data + 40);
    size_t per_in = c.kind == RUNNEL_INPUT_TOKENS ? 1 : c.input_dim;
    size_t n_i8 = c.integer && c.kind == RUNNEL_INPUT_FRAMES ? (size_t)c.steps * c.input_dim : 0;
    size_t need = 44 + 4 * ((size_t)c.steps * per_in + (size_t)c.steps * c.output_dim) +
                  (n_i8 + 3) / 4 * 4;
    if (b.len != need) {
        fprintf(stderr, "%s/case.bin: %zu bytes, expected %zu\n", dir, b.len, need);
        exit(2);
    }
    const unsigned char *p = b.data + 44;
    if (c.kind == RUNNEL_INPUT_TOKENS) {
        c.tokens = malloc(sizeof *c.tokens * c.steps);
        for (uint32_t i = 0; i < c.steps; i++, p += 4) c.tokens[i] = get_u32(p);
    } else {
        c.frames = malloc(sizeof *c.frames * c.steps * c.input_dim);
        for (size_t i = 0; i < (size_t)c.steps * c.input_dim; i++, p += 4) c.frames[i] = get_f32(p);
    }
    if (n_i8) {
        c.frames_i8 = malloc(n_i8);
        memcpy(c.frames_i8, p, n_i8);
        p += (n_i8 + 3) / 4 * 4;
    }
    if (c.integer) {
        c.expected_i = malloc(sizeof *c.expected_i * c.steps * c.output_dim);
        for (size_t i = 0; i < (size_t)c.steps * c.output_dim; i++, p += 4)
            c.expected_i[i] = (int32_t)get_u32(p);
    } else {
        c.expected = malloc(sizeof *c.expected * c.steps * c.output_dim);
        for (size_t i = 0; i < (size_t)c.steps * c.output_dim; i++, p += 4) c.expected[i] = get_f32(p);
    }
    free(b.data);
    return c;
}

static void free_case(test_case *c) {
    free(c->blob.data);
    free(c->tokens);
    free(c->frames);
    free(c->frames_i8);
    free(c->expected);
    free(c->expected_i);
}

/* One step of `c` on `s`: token or frame `t`. */
static runnel_status step(runnel_session *s, const test_case *c, uint32_t t, float *out,
                          size_t out_len) {
    if (c->kind == RUNNEL_INPUT_TOKENS) return runnel_session_step_token(s, c->tokens[t], out, out_len);
    return runnel_session_step_frame(s, c->frames + (size_t)t * c->input_dim, c->input_dim, out,
                                     out_len);
}

/* One step of `c` on `s` through the integer entry points (an integer-only model). */
static runnel_status step_int(runnel_session *s, const test_case *c, uint32_t t, int32_t *out,
                              size_t out_len) {
    if (c->kind == RUNNEL_INPUT_TOKENS)
        return runnel_session_step_token_int(s, c->tokens[t], out, out_len);
    return runnel_session_step_frame_int(s, c->frames_i8 + (size_t)t * c->input_dim, c->input_dim,
                                         out, out_len);
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ----------------------------------------------------------------------------- run a case -- */

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void run_int_case(const char *dir, test_case *c);

static void run_case(const char *dir) {
    test_case c = load_case(dir);
    if (c.integer) {
        run_int_case(dir, &c);
        return;
    }
    unsigned long fail0 = g_fail;
    const uint32_t od = c.output_dim;

    static runnel_model model; /* a static, as firmware would place it */
    EXPECT(runnel_model_open(&model, c.blob.data, c.blob.len), RUNNEL_OK);
    runnel_model_info info;
    memset(&info, 0xff, sizeof info);
    EXPECT(runnel_model_get_info(&model, &info), RUNNEL_OK);
    CHECK(info.input_kind == c.kind && info.input_dim == c.input_dim && info.output_dim == od &&
              info.state_bytes == c.state_bytes && info.blob_bytes == c.blob.len,
          "%s: info kind %u dim %u out %u state %u blob %u", dir, (unsigned)info.input_kind,
          (unsigned)info.input_dim, (unsigned)info.output_dim, (unsigned)info.state_bytes,
          (unsigned)info.blob_bytes);
    {
        runnel_integer_scales scales = {-1.0f, -1.0f};
        EXPECT(runnel_model_get_integer_scales(&model, &scales), RUNNEL_ERR_NOT_INTEGER);
        CHECK(scales.frame_scale == -1.0f && scales.logit_scale == -1.0f,
              "%s: a failed get_integer_scales wrote", dir);
    }

    /* Session A: an exact, aligned arena. Session B: an arena starting at an odd address, with
     * exactly the 3 bytes of slack that needs. */
    runnel_session a, b;
    unsigned char *arena_a = alloc16(c.state_bytes + 16);
    unsigned char *arena_b = alloc16(c.state_bytes + 16);
    memset(arena_a, 0xa5, c.state_bytes + 16);
    memset(arena_b, 0x5a, c.state_bytes + 16);
    EXPECT(runnel_session_init(&a, &model, arena_a, c.state_bytes - 1), RUNNEL_ERR_ARENA_TOO_SMALL);
    EXPECT(runnel_session_init(&a, &model, arena_a, c.state_bytes), RUNNEL_OK);
    EXPECT(runnel_session_init(&b, &model, arena_b + 1, c.state_bytes + 2), RUNNEL_ERR_ARENA_TOO_SMALL);
    EXPECT(runnel_session_init(&b, &model, arena_b + 1, c.state_bytes + 3), RUNNEL_OK);

    float *first = malloc(sizeof(float) * (size_t)c.steps * od); /* session A's outputs */
    float *out_b = malloc(sizeof(float) * (od + 1));
    float *poison = malloc(sizeof(float) * (od + 1));
    float *frame_bad = malloc(sizeof(float) * (c.input_dim + 1));
    double max_err = 0.0;
    int exact = 1;
    for (uint32_t t = 0; t < c.steps; t++) {
        float *out_a = first + (size_t)t * od;
        EXPECT(step(&a, &c, t, out_a, od), RUNNEL_OK);
        const float *want = c.expected + (size_t)t * od;
        for (uint32_t j = 0; j < od; j++) {
            double e = fabs((double)out_a[j] - (double)want[j]);
            if (!(e <= max_err)) max_err = e; /* NaN sticks */
            if (memcmp(&out_a[j], &want[j], sizeof(float)) != 0) exact = 0;
        }

        /* Failing calls on B between its steps: nothing may change, not even the output. */
        memset(poison, 0x7f, sizeof(float) * (od + 1));
        memcpy(out_b, poison, sizeof(float) * (od + 1));
        EXPECT(step(&b, &c, t, out_b, od - 1), RUNNEL_ERR_BUFFER_TOO_SMALL);
        if (c.kind == RUNNEL_INPUT_TOKENS) {
            EXPECT(runnel_session_step_token(&b, c.input_dim, out_b, od), RUNNEL_ERR_TOKEN_OUT_OF_RANGE);
            EXPECT(runnel_session_step_token(&b, UINT32_MAX, out_b, od), RUNNEL_ERR_TOKEN_OUT_OF_RANGE);
            EXPECT(runnel_session_step_frame(&b, frame_bad, c.input_dim, out_b, od),
                   RUNNEL_ERR_WRONG_INPUT_KIND);
        } else {
            memcpy(frame_bad, c.frames + (size_t)t * c.input_dim, sizeof(float) * c.input_dim);
            EXPECT(runnel_session_step_frame(&b, frame_bad, c.input_dim + 1, out_b, od),
                   RUNNEL_ERR_BAD_LENGTH);
            EXPECT(runnel_session_step_frame(&b, frame_bad, c.input_dim - 1, out_b, od),
                   RUNNEL_ERR_BAD_LENGTH);
            EXPECT(runnel_session_step_token(&b, 0, out_b, od), RUNNEL_ERR_WRONG_INPUT_KIND);
        }
        /* the integer entry points need an integer-only model */
        EXPECT(runnel_session_step_token_int(&b, 0, (int32_t *)(void *)out_b, od), RUNNEL_ERR_NOT_INTEGER);
        EXPECT(runnel_session_step_frame_int(&b, (const int8_t *)(const void *)frame_bad, c.input_dim,
                                             (int32_t *)(void *)out_b, od),
               RUNNEL_ERR_NOT_INTEGER);
        CHECK(memcmp(out_b, poison, sizeof(float) * (od + 1)) == 0,
              "%s: step %u: a failed call wrote the output", dir, (unsigned)t);

        /* B with a larger output buffer: exactly od floats written, same bits as A. */
        EXPECT(step(&b, &c, t, out_b, od + 1), RUNNEL_OK);
        CHECK(memcmp(out_b, out_a, sizeof(float) * od) == 0, "%s: step %u: sessions differ", dir,
              (unsigned)t);
        CHECK(memcmp(&out_b[od], &poison[od], sizeof(float)) == 0,
              "%s: step %u: wrote past output_dim", dir, (unsigned)t);
    }
    CHECK(c.tol == 0.0f ? exact : max_err <= (double)c.tol,
          "%s: max |out - expected| = %.3g, tolerance %.3g%s", dir, max_err, (double)c.tol,
          c.tol == 0.0f ? " (bit-identical required)" : "");

    /* Reset: the stream starts over, bit for bit. */
    EXPECT(runnel_session_reset(&a), RUNNEL_OK);
    uint32_t again = c.steps < 12 ? c.steps : 12;
    for (uint32_t t = 0; t < again; t++) {
        EXPECT(step(&a, &c, t, out_b, od), RUNNEL_OK);
        CHECK(memcmp(out_b, first + (size_t)t * od, sizeof(float) * od) == 0,
              "%s: step %u after reset differs", dir, (unsigned)t);
    }

    printf("%-4s %s: %s, %u steps, output_dim %u, state %u B, max |out - expected| %.3g (%s)\n",
           g_fail == fail0 ? "ok" : "FAIL", base_name(dir), c.kind == RUNNEL_INPUT_TOKENS ? "tokens" : "frames",
           (unsigned)c.steps, (unsigned)od, (unsigned)c.state_bytes, max_err,
           c.tol == 0.0f ? "bit-identical required" : "tolerance");
    free(first);
    free(out_b);
    free(poison);
    free(frame_bad);
    free(arena_a);
    free(arena_b);
    free_case(&c);
}


/* An integer-only model: session A steps through the integer entry points (expected: the
 * runtime's integers, bit for bit), session B (odd arena, larger output) through the float ones,
 * which return A's integers times logit_scale; failing integer calls on B between its steps
 * change nothing; A reset reproduces its stream. */
static void run_int_case(const char *dir, test_case *cp) {
    const test_case c = *cp;
    unsigned long fail0 = g_fail;
    const uint32_t od = c.output_dim;

    static runnel_model model;
    EXPECT(runnel_model_open(&model, c.blob.data, c.blob.len), RUNNEL_OK);
    runnel_model_info info;
    memset(&info, 0xff, sizeof info);
    EXPECT(runnel_model_get_info(&model, &info), RUNNEL_OK);
    CHECK(info.input_kind == c.kind && info.input_dim == c.input_dim && info.output_dim == od &&
              info.state_bytes == c.state_bytes && info.blob_bytes == c.blob.len,
          "%s: info", dir);
    runnel_integer_scales scales;
    memset(&scales, 0xff, sizeof scales);
    EXPECT(runnel_model_get_integer_scales(&model, &scales), RUNNEL_OK);
    CHECK(f32_bits(scales.frame_scale) == f32_bits(c.frame_scale) &&
              f32_bits(scales.logit_scale) == f32_bits(c.logit_scale),
          "%s: scales %g %g, expected %g %g", dir, (double)scales.frame_scale,
          (double)scales.logit_scale, (double)c.frame_scale, (double)c.logit_scale);
    CHECK(scales.logit_scale > 0.0f && (c.kind == RUNNEL_INPUT_FRAMES || scales.frame_scale == 1.0f),
          "%s: scales", dir);

    runnel_session a, b;
    unsigned char *arena_a = alloc16(c.state_bytes + 16);
    unsigned char *arena_b = alloc16(c.state_bytes + 16);
    EXPECT(runnel_session_init(&a, &model, arena_a, c.state_bytes), RUNNEL_OK);
    EXPECT(runnel_session_init(&b, &model, arena_b + 1, c.state_bytes + 3), RUNNEL_OK);

    int32_t *first = malloc(sizeof(int32_t) * (size_t)c.steps * od); /* session A's logits */
    int32_t *out_i = malloc(sizeof(int32_t) * (od + 1));
    int32_t *poison = malloc(sizeof(int32_t) * (od + 1));
    float *out_f = malloc(sizeof(float) * (od + 1));
    int8_t *frame_bad = malloc(c.input_dim + 1);
    int exact = 1, scaled = 1;
    for (uint32_t t = 0; t < c.steps; t++) {
        int32_t *out_a = first + (size_t)t * od;
        EXPECT(step_int(&a, &c, t, out_a, od), RUNNEL_OK);
        if (memcmp(out_a, c.expected_i + (size_t)t * od, sizeof(int32_t) * od) != 0) exact = 0;

        /* Failing integer calls on B: nothing may change. */
        memset(poison, 0x7f, sizeof(int32_t) * (od + 1));
        memcpy(out_i, poison, sizeof(int32_t) * (od + 1));
        EXPECT(step_int(&b, &c, t, out_i, od - 1), RUNNEL_ERR_BUFFER_TOO_SMALL);
        EXPECT(step_int(&b, &c, t, (int32_t *)(void *)((unsigned char *)out_i + 2), od),
               RUNNEL_ERR_MISALIGNED);
        EXPECT(step_int(&b, &c, t, NULL, od), RUNNEL_ERR_NULL);
        if (c.kind == RUNNEL_INPUT_TOKENS) {
            EXPECT(runnel_session_step_token_int(&b, c.input_dim, out_i, od), RUNNEL_ERR_TOKEN_OUT_OF_RANGE);
            EXPECT(runnel_session_step_token_int(&b, UINT32_MAX, out_i, od), RUNNEL_ERR_TOKEN_OUT_OF_RANGE);
            EXPECT(runnel_session_step_frame_int(&b, frame_bad, c.input_dim, out_i, od),
                   RUNNEL_ERR_WRONG_INPUT_KIND);
        } else {
            memcpy(frame_bad, c.frames_i8 + (size_t)t * c.input_dim, c.input_dim);
            EXPECT(runnel_session_step_frame_int(&b, frame_bad, c.input_dim + 1, out_i, od),
                   RUNNEL_ERR_BAD_LENGTH);
            EXPECT(runnel_session_step_frame_int(&b, frame_bad, c.input_dim - 1, out_i, od),
                   RUNNEL_ERR_BAD_LENGTH);
            EXPECT(runnel_session_step_frame_int(&b, NULL, c.input_dim, out_i, od), RUNNEL_ERR_NULL);
            EXPECT(runnel_session_step_token_int(&b, 0, out_i, od), RUNNEL_ERR_WRONG_INPUT_KIND);
        }
        CHECK(memcmp(out_i, poison, sizeof(int32_t) * (od + 1)) == 0,
              "%s: step %u: a failed call wrote the output", dir, (unsigned)t);

        /* B through the float entry point (larger buffer): A's integers times logit_scale. */
        memcpy(out_f, poison, sizeof(float) * (od + 1));
        EXPECT(step(&b, &c, t, out_f, od + 1), RUNNEL_OK);
        for (uint32_t j = 0; j < od; j++)
            if (f32_bits(out_f[j]) != f32_bits((float)out_a[j] * scales.logit_scale)) scaled = 0;
        CHECK(memcmp(&out_f[od], &poison[od], sizeof(float)) == 0,
              "%s: step %u: wrote past output_dim", dir, (unsigned)t);
    }
    CHECK(exact, "%s: the integer logits differ from the runtime's (bit-identical required)", dir);
    CHECK(scaled, "%s: the float step is not the integer logits times logit_scale", dir);

    /* Reset: the stream starts over, bit for bit; B's integer steps continue A's float ones. */
    EXPECT(runnel_session_reset(&a), RUNNEL_OK);
    uint32_t again = c.steps < 12 ? c.steps : 12;
    for (uint32_t t = 0; t < again; t++) {
        memcpy(out_i, poison, sizeof(int32_t) * (od + 1));
        EXPECT(step_int(&a, &c, t, out_i, od + 1), RUNNEL_OK);
        CHECK(memcmp(out_i, first + (size_t)t * od, sizeof(int32_t) * od) == 0 &&
                  out_i[od] == poison[od],
              "%s: step %u after reset differs", dir, (unsigned)t);
    }

    printf("%-4s %s: %s, %u steps, output_dim %u, state %u B, integer-only (bit-identical required)\n",
           g_fail == fail0 ? "ok" : "FAIL", base_name(dir),
           c.kind == RUNNEL_INPUT_TOKENS ? "tokens" : "frames", (unsigned)c.steps, (unsigned)od,
           (unsigned)c.state_bytes);
    free(first);
    free(out_i);
    free(poison);
    free(out_f);
    free(frame_bad);
    free(arena_a);
    free(arena_b);
    free_case(cp);
}

/* ------------------------------------------------------------------------------- misuse -- */

/* CRC-32 (IEEE, reflected), as the blob trailer uses, to make blobs that are corrupt but carry
 * a valid checksum. */
static uint32_t crc32(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* A copy of `blob` with byte `at` set to `v`, re-checksummed (total_len is at offset 8). */
static unsigned char *patched(const buffer *blob, size_t at, unsigned char v) {
    unsigned char *p = alloc16(blob->len + 16);
    memcpy(p, blob->data, blob->len);
    p[at] = v;
    uint32_t total = get_u32(p + 8);
    put_u32(p + total - 4, crc32(p, total - 4));
    return p;
}

/* Statics, as the documentation recommends: zero-initialised, correctly aligned. */
static runnel_model g_model, g_frame_model, g_zero_model, g_int_model, g_int_frame_model;
static runnel_session g_session, g_zero_session;
static _Alignas(16) unsigned char g_raw[RUNNEL_MODEL_SIZE + RUNNEL_SESSION_SIZE + 64];

static void misuse_int(const char *tok_dir, const char *frame_dir);

static void misuse(const char *tok_dir, const char *frame_dir) {
    unsigned long fail0 = g_fail;
    test_case tc = load_case(tok_dir);
    test_case fc = load_case(frame_dir);
    const buffer *blob = &tc.blob;
    runnel_model_info info;
    float out[256];

    /* runnel_status_message: every code has its own text; unknown codes are named as such. */
    const char *unknown = runnel_status_message(-1);
    CHECK(unknown && strcmp(unknown, "unknown runnel status code") == 0, "message(-1)");
    CHECK(strcmp(runnel_status_message(RUNNEL_ERR_NOT_INTEGER + 1), unknown) == 0, "message(22)");
    CHECK(strcmp(runnel_status_message(INT32_MAX), unknown) == 0, "message(INT32_MAX)");
    CHECK(strcmp(runnel_status_message(INT32_MIN), unknown) == 0, "message(INT32_MIN)");
    CHECK(strcmp(runnel_status_message(RUNNEL_OK), "ok") == 0, "message(OK)");
    for (int32_t code = RUNNEL_ERR_NULL; code <= RUNNEL_ERR_NOT_INTEGER; code++) {
        const char *m = runnel_status_message(code);
        CHECK(m && *m && strcmp(m, unknown) != 0 && strcmp(m, "ok") != 0, "message(%d)", (int)code);
        for (int32_t other = RUNNEL_OK; other < code; other++)
            CHECK(strcmp(m, runnel_status_message(other)) != 0, "message(%d) == message(%d)",
                  (int)code, (int)other);
    }

    /* runnel_model_open: NULLs, alignment, lengths. */
    EXPECT(runnel_model_open(NULL, blob->data, blob->len), RUNNEL_ERR_NULL);
    EXPECT(runnel_model_open(&g_model, NULL, blob->len), RUNNEL_ERR_NULL);
    EXPECT(runnel_model_open(&g_model, NULL, 0), RUNNEL_ERR_NULL);
    /* (a misaligned object pointer is only passed, never dereferenced by C) */
    EXPECT(runnel_model_open((runnel_model *)(void *)(g_raw + 1), blob->data, blob->len),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_model_open((runnel_model *)(void *)(g_raw + RUNNEL_MODEL_ALIGN / 2), blob->data,
                             blob->len),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_model_open(&g_model, blob->data, 0), RUNNEL_ERR_TRUNCATED);
    EXPECT(runnel_model_open(&g_model, blob->data, 63), RUNNEL_ERR_TRUNCATED);
    EXPECT(runnel_model_open(&g_model, blob->data, blob->len - 1), RUNNEL_ERR_TRUNCATED);
    EXPECT(runnel_model_open(&g_model, blob->data, SIZE_MAX), RUNNEL_ERR_BAD_LENGTH);
    EXPECT(runnel_model_open(&g_model, (const void *)&g_model, sizeof g_model), RUNNEL_ERR_OVERLAP);
    {
        unsigned char *copy = alloc16(blob->len + 32);
        for (size_t off = 1; off < 4; off++) {
            memcpy(copy + off, blob->data, blob->len);
            EXPECT(runnel_model_open(&g_model, copy + off, blob->len), RUNNEL_ERR_MISALIGNED);
        }
        memcpy(copy + 4, blob->data, blob->len); /* 4-byte alignment is enough */
        EXPECT(runnel_model_open(&g_model, copy + 4, blob->len), RUNNEL_OK);
        EXPECT(runnel_model_get_info(&g_model, &info), RUNNEL_OK);
        /* Trailing bytes (flash padding) are ignored. */
        memcpy(copy, blob->data, blob->len);
        EXPECT(runnel_model_open(&g_model, copy, blob->len + 7), RUNNEL_OK);
        free(copy);
    }

    /* Corrupted blobs. */
    {
        size_t mid = blob->len / 2;
        unsigned char *p = alloc16(blob->len + 16);
        memcpy(p, blob->data, blob->len);
        p[mid] ^= 0x10;
        EXPECT(runnel_model_open(&g_model, p, blob->len), RUNNEL_ERR_BAD_CHECKSUM);
        /* a failed open leaves the object not initialised */
        EXPECT(runnel_model_get_info(&g_model, &info), RUNNEL_ERR_NOT_INITIALIZED);
        memcpy(p, blob->data, blob->len);
        p[blob->len - 1] ^= 1; /* the CRC itself */
        EXPECT(runnel_model_open(&g_model, p, blob->len), RUNNEL_ERR_BAD_CHECKSUM);
        memcpy(p, blob->data, blob->len);
        p[0] = 'X';
        EXPECT(runnel_model_open(&g_model, p, blob->len), RUNNEL_ERR_BAD_MAGIC);
        free(p);
        p = patched(blob, 4, 3); /* version 3 */
        EXPECT(runnel_model_open(&g_model, p, blob->len), RUNNEL_ERR_UNSUPPORTED_VERSION);
        free(p);
        p = patched(blob, 19, 1); /* reserved header byte */
        EXPECT(runnel_model_open(&g_model, p, blob->len), RUNNEL_ERR_MALFORMED);
        free(p);
        p = patched(blob, 16, 7); /* input_kind */
        EXPECT(runnel_model_open(&g_model, p, blob->len), RUNNEL_ERR_MALFORMED);
        free(p);
        p = patched(blob, 36, 17); /* n_blocks 17 > 16 */
        EXPECT(runnel_model_open(&g_model, p, blob->len), RUNNEL_ERR_CAPACITY_EXCEEDED);
        free(p);
    }

    /* runnel_model_get_info. */
    EXPECT(runnel_model_get_info(&g_zero_model, &info), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_model_open(&g_model, blob->data, blob->len), RUNNEL_OK);
    EXPECT(runnel_model_get_info(NULL, &info), RUNNEL_ERR_NULL);
    EXPECT(runnel_model_get_info(&g_model, NULL), RUNNEL_ERR_NULL);
    EXPECT(runnel_model_get_info((const runnel_model *)(const void *)(g_raw + 2), &info),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_model_get_info(&g_model, (runnel_model_info *)(void *)(g_raw + 1)),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_model_get_info(&g_model, (runnel_model_info *)(void *)&g_model),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_model_get_info(&g_model, &info), RUNNEL_OK);
    CHECK(info.input_kind == RUNNEL_INPUT_TOKENS && info.input_dim == tc.input_dim &&
              info.output_dim == tc.output_dim && info.state_bytes == tc.state_bytes &&
              info.output_dim <= 256,
          "token model info");
    const uint32_t od = info.output_dim, vocab = info.input_dim, sb = info.state_bytes;

    /* runnel_session_init. */
    unsigned char *arena = alloc16(sb + 64);
    EXPECT(runnel_session_init(NULL, &g_model, arena, sb), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_init(&g_session, NULL, arena, sb), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_init(&g_session, &g_model, NULL, sb), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_init((runnel_session *)(void *)(g_raw + 1), &g_model, arena, sb),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_init((runnel_session *)(void *)(g_raw + RUNNEL_SESSION_ALIGN / 2), &g_model,
                               arena, sb),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_init(&g_session, (const runnel_model *)(const void *)(g_raw + 1), arena, sb),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_init(&g_session, &g_zero_model, arena, sb), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_session_init(&g_session, &g_model, arena, 0), RUNNEL_ERR_ARENA_TOO_SMALL);
    EXPECT(runnel_session_init(&g_session, &g_model, arena, sb - 1), RUNNEL_ERR_ARENA_TOO_SMALL);
    EXPECT(runnel_session_init(&g_session, &g_model, arena, SIZE_MAX), RUNNEL_ERR_BAD_LENGTH);
    /* arena over the blob, the model object, the session object itself */
    EXPECT(runnel_session_init(&g_session, &g_model, blob->data, blob->len), RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_init(&g_session, &g_model, (void *)&g_model, sizeof g_model),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_init((runnel_session *)(void *)g_raw, &g_model, g_raw + RUNNEL_SESSION_SIZE - 8,
                               sb),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_init(&g_session, &g_model, arena, sb), RUNNEL_OK);
    EXPECT(runnel_session_init(&g_session, &g_model, arena + 1, sb + 3), RUNNEL_OK);
    EXPECT(runnel_session_init(&g_session, &g_model, arena, sb), RUNNEL_OK);

    /* step_token: NULLs, alignment, sizes, ranges, overlaps, kinds. */
    EXPECT(runnel_session_step_token(&g_session, 0, out, od), RUNNEL_OK);
    EXPECT(runnel_session_step_token(NULL, 0, out, od), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_token(&g_session, 0, NULL, od), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_token(&g_zero_session, 0, out, od), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_session_step_token((runnel_session *)(void *)(g_raw + 1), 0, out, od),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_step_token(&g_session, 0, (float *)(void *)((unsigned char *)out + 2), od),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_step_token(&g_session, 0, out, 0), RUNNEL_ERR_BUFFER_TOO_SMALL);
    EXPECT(runnel_session_step_token(&g_session, 0, out, od - 1), RUNNEL_ERR_BUFFER_TOO_SMALL);
    EXPECT(runnel_session_step_token(&g_session, 0, out, SIZE_MAX), RUNNEL_OK);
    EXPECT(runnel_session_step_token(&g_session, vocab - 1, out, od), RUNNEL_OK);
    EXPECT(runnel_session_step_token(&g_session, vocab, out, od), RUNNEL_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT(runnel_session_step_token(&g_session, UINT32_MAX, out, od), RUNNEL_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT(runnel_session_step_token(&g_session, 0, (float *)(void *)(arena + sb - 8), od),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_token(&g_session, 0, (float *)(void *)blob->data, od), RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_token(&g_session, 0, (float *)(void *)&g_session, od), RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_token(&g_session, 0, (float *)(void *)&g_model, od), RUNNEL_ERR_OVERLAP);
    {
        float frame[4] = {0};
        EXPECT(runnel_session_step_frame(&g_session, frame, 4, out, od), RUNNEL_ERR_WRONG_INPUT_KIND);
    }
    EXPECT(runnel_session_reset(NULL), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_reset((runnel_session *)(void *)(g_raw + 1)), RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_reset(&g_zero_session), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_session_reset(&g_session), RUNNEL_OK);

    /* A failed init leaves the session not initialised. */
    EXPECT(runnel_session_init(&g_session, &g_model, arena, sb - 1), RUNNEL_ERR_ARENA_TOO_SMALL);
    EXPECT(runnel_session_step_token(&g_session, 0, out, od), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_session_init(&g_session, &g_model, arena, sb), RUNNEL_OK);
    /* Re-opening (or failing to re-open) the model invalidates its sessions. */
    EXPECT(runnel_model_open(&g_model, blob->data, blob->len), RUNNEL_OK);
    EXPECT(runnel_session_step_token(&g_session, 0, out, od), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_session_reset(&g_session), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_session_init(&g_session, &g_model, arena, sb), RUNNEL_OK);
    EXPECT(runnel_model_open(&g_model, blob->data, 10), RUNNEL_ERR_TRUNCATED);
    EXPECT(runnel_session_step_token(&g_session, 0, out, od), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_model_open(&g_model, blob->data, blob->len), RUNNEL_OK);

    /* Frame model: step_frame's own checks. */
    const buffer *fblob = &fc.blob;
    EXPECT(runnel_model_open(&g_frame_model, fblob->data, fblob->len), RUNNEL_OK);
    EXPECT(runnel_model_get_info(&g_frame_model, &info), RUNNEL_OK);
    CHECK(info.input_kind == RUNNEL_INPUT_FRAMES && info.input_dim == fc.input_dim &&
              info.output_dim <= 256 && info.input_dim <= 250,
          "frame model info");
    const uint32_t fdim = info.input_dim, fod = info.output_dim, fsb = info.state_bytes;
    unsigned char *farena = alloc16(fsb + 16);
    runnel_session fs;
    EXPECT(runnel_session_init(&fs, &g_frame_model, farena, fsb), RUNNEL_OK);
    float frame[256];
    memcpy(frame, fc.frames, sizeof(float) * fdim);
    EXPECT(runnel_session_step_frame(&fs, frame, fdim, out, fod), RUNNEL_OK);
    EXPECT(runnel_session_step_token(&fs, 0, out, fod), RUNNEL_ERR_WRONG_INPUT_KIND);
    EXPECT(runnel_session_step_frame(NULL, frame, fdim, out, fod), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_frame(&fs, NULL, fdim, out, fod), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_frame(&fs, frame, fdim, NULL, fod), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_frame(&fs, (const float *)(const void *)((unsigned char *)frame + 1),
                                     fdim, out, fod),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_step_frame(&fs, frame, fdim, (float *)(void *)((unsigned char *)out + 1), fod),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_step_frame(&fs, frame, 0, out, fod), RUNNEL_ERR_BAD_LENGTH);
    EXPECT(runnel_session_step_frame(&fs, frame, fdim - 1, out, fod), RUNNEL_ERR_BAD_LENGTH);
    EXPECT(runnel_session_step_frame(&fs, frame, fdim + 1, out, fod), RUNNEL_ERR_BAD_LENGTH);
    EXPECT(runnel_session_step_frame(&fs, frame, SIZE_MAX, out, fod), RUNNEL_ERR_BAD_LENGTH);
    EXPECT(runnel_session_step_frame(&fs, frame, fdim, out, fod - 1), RUNNEL_ERR_BUFFER_TOO_SMALL);
    EXPECT(runnel_session_step_frame(&fs, frame, fdim, frame + 1, fod), RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_frame(&fs, (const float *)(const void *)farena, fdim, out, fod),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_frame(&fs, (const float *)(const void *)&fs, fdim, out, fod),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_frame(&fs, frame, fdim, (float *)(void *)farena, fod), RUNNEL_ERR_OVERLAP);
    /* reading the frame from the blob is fine (both only read) */
    EXPECT(runnel_session_step_frame(&fs, (const float *)(const void *)(fblob->data + 64), fdim, out, fod),
           RUNNEL_OK);
    EXPECT(runnel_session_step_frame(&fs, frame, fdim, out, fod), RUNNEL_OK);
    /* the integer entry points on float models */
    {
        runnel_integer_scales scales;
        int32_t iout[256];
        int8_t iframe[256] = {0};
        EXPECT(runnel_model_get_integer_scales(&g_model, &scales), RUNNEL_ERR_NOT_INTEGER);
        EXPECT(runnel_model_get_integer_scales(&g_frame_model, &scales), RUNNEL_ERR_NOT_INTEGER);
        EXPECT(runnel_session_step_frame_int(&fs, iframe, fdim, iout, fod), RUNNEL_ERR_NOT_INTEGER);
        EXPECT(runnel_session_step_token_int(&fs, 0, iout, fod), RUNNEL_ERR_NOT_INTEGER);
        EXPECT(runnel_session_init(&g_session, &g_model, arena, sb), RUNNEL_OK);
        EXPECT(runnel_session_step_token_int(&g_session, 0, iout, od), RUNNEL_ERR_NOT_INTEGER);
    }

    printf("%-4s misuse checks (%s, %s)\n", g_fail == fail0 ? "ok" : "FAIL", base_name(tok_dir),
           base_name(frame_dir));
    free(arena);
    free(farena);
    free_case(&tc);
    free_case(&fc);
}


/* The integer entry points' own checks, on integer-only token and frame models. */
static void misuse_int(const char *tok_dir, const char *frame_dir) {
    unsigned long fail0 = g_fail;
    test_case tc = load_case(tok_dir);
    test_case fc = load_case(frame_dir);
    CHECK(tc.integer && fc.integer && tc.kind == RUNNEL_INPUT_TOKENS && fc.kind == RUNNEL_INPUT_FRAMES,
          "integer misuse cases");
    const buffer *blob = &tc.blob, *fblob = &fc.blob;
    runnel_integer_scales scales;
    runnel_model_info info;
    int32_t out[256];

    /* runnel_model_get_integer_scales */
    EXPECT(runnel_model_get_integer_scales(&g_zero_model, &scales), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_model_open(&g_int_model, blob->data, blob->len), RUNNEL_OK);
    EXPECT(runnel_model_get_integer_scales(NULL, &scales), RUNNEL_ERR_NULL);
    EXPECT(runnel_model_get_integer_scales(&g_int_model, NULL), RUNNEL_ERR_NULL);
    EXPECT(runnel_model_get_integer_scales((const runnel_model *)(const void *)(g_raw + 2), &scales),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_model_get_integer_scales(&g_int_model, (runnel_integer_scales *)(void *)(g_raw + 1)),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_model_get_integer_scales(&g_int_model, (runnel_integer_scales *)(void *)&g_int_model),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_model_get_integer_scales(&g_int_model, &scales), RUNNEL_OK);
    CHECK(scales.frame_scale == 1.0f && scales.logit_scale == tc.logit_scale, "token model scales");
    EXPECT(runnel_model_get_info(&g_int_model, &info), RUNNEL_OK);
    CHECK(info.output_dim <= 256, "token model info");
    const uint32_t od = info.output_dim, vocab = info.input_dim, sb = info.state_bytes;

    /* step_token_int */
    unsigned char *arena = alloc16(sb + 64);
    runnel_session s;
    EXPECT(runnel_session_init(&s, &g_int_model, arena, sb), RUNNEL_OK);
    EXPECT(runnel_session_step_token_int(&s, 0, out, od), RUNNEL_OK);
    EXPECT(runnel_session_step_token_int(NULL, 0, out, od), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_token_int(&s, 0, NULL, od), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_token_int(&g_zero_session, 0, out, od), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_session_step_token_int((runnel_session *)(void *)(g_raw + 1), 0, out, od),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_step_token_int(&s, 0, (int32_t *)(void *)((unsigned char *)out + 1), od),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_step_token_int(&s, 0, out, 0), RUNNEL_ERR_BUFFER_TOO_SMALL);
    EXPECT(runnel_session_step_token_int(&s, 0, out, od - 1), RUNNEL_ERR_BUFFER_TOO_SMALL);
    EXPECT(runnel_session_step_token_int(&s, 0, out, SIZE_MAX), RUNNEL_OK);
    EXPECT(runnel_session_step_token_int(&s, vocab - 1, out, od), RUNNEL_OK);
    EXPECT(runnel_session_step_token_int(&s, vocab, out, od), RUNNEL_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT(runnel_session_step_token_int(&s, UINT32_MAX, out, od), RUNNEL_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT(runnel_session_step_token_int(&s, 0, (int32_t *)(void *)(arena + sb - 8), od), RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_token_int(&s, 0, (int32_t *)(void *)blob->data, od), RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_token_int(&s, 0, (int32_t *)(void *)&s, od), RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_token_int(&s, 0, (int32_t *)(void *)&g_int_model, od), RUNNEL_ERR_OVERLAP);
    {
        int8_t frame[4] = {0};
        EXPECT(runnel_session_step_frame_int(&s, frame, 4, out, od), RUNNEL_ERR_WRONG_INPUT_KIND);
        EXPECT(runnel_session_step_frame_int(&s, NULL, 4, out, od), RUNNEL_ERR_NULL);
        EXPECT(runnel_session_step_frame_int(&s, frame, 4, NULL, od), RUNNEL_ERR_NULL);
    }
    /* re-opening the model invalidates the session for the integer steps too */
    EXPECT(runnel_model_open(&g_int_model, blob->data, blob->len), RUNNEL_OK);
    EXPECT(runnel_session_step_token_int(&s, 0, out, od), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_session_init(&s, &g_int_model, arena, sb), RUNNEL_OK);
    EXPECT(runnel_session_step_token_int(&s, 0, out, od), RUNNEL_OK);

    /* step_frame_int */
    EXPECT(runnel_model_open(&g_int_frame_model, fblob->data, fblob->len), RUNNEL_OK);
    EXPECT(runnel_model_get_integer_scales(&g_int_frame_model, &scales), RUNNEL_OK);
    CHECK(scales.frame_scale == fc.frame_scale && scales.frame_scale != 1.0f, "frame model scales");
    EXPECT(runnel_model_get_info(&g_int_frame_model, &info), RUNNEL_OK);
    CHECK(info.output_dim <= 256 && info.input_dim <= 250, "frame model info");
    const uint32_t fdim = info.input_dim, fod = info.output_dim, fsb = info.state_bytes;
    unsigned char *farena = alloc16(fsb + 16);
    runnel_session fs;
    EXPECT(runnel_session_init(&fs, &g_int_frame_model, farena, fsb), RUNNEL_OK);
    int8_t frame_buf[257];
    int8_t *frame = frame_buf + 1; /* int8 frames need no alignment */
    memcpy(frame, fc.frames_i8, fdim);
    EXPECT(runnel_session_step_frame_int(&fs, frame, fdim, out, fod), RUNNEL_OK);
    EXPECT(runnel_session_step_token_int(&fs, 0, out, fod), RUNNEL_ERR_WRONG_INPUT_KIND);
    EXPECT(runnel_session_step_frame_int(NULL, frame, fdim, out, fod), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_frame_int(&fs, NULL, fdim, out, fod), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_frame_int(&fs, frame, fdim, NULL, fod), RUNNEL_ERR_NULL);
    EXPECT(runnel_session_step_frame_int(&g_zero_session, frame, fdim, out, fod), RUNNEL_ERR_NOT_INITIALIZED);
    EXPECT(runnel_session_step_frame_int(&fs, frame, fdim, (int32_t *)(void *)((unsigned char *)out + 2),
                                         fod),
           RUNNEL_ERR_MISALIGNED);
    EXPECT(runnel_session_step_frame_int(&fs, frame, 0, out, fod), RUNNEL_ERR_BAD_LENGTH);
    EXPECT(runnel_session_step_frame_int(&fs, frame, fdim - 1, out, fod), RUNNEL_ERR_BAD_LENGTH);
    EXPECT(runnel_session_step_frame_int(&fs, frame, fdim + 1, out, fod), RUNNEL_ERR_BAD_LENGTH);
    EXPECT(runnel_session_step_frame_int(&fs, frame, SIZE_MAX, out, fod), RUNNEL_ERR_BAD_LENGTH);
    EXPECT(runnel_session_step_frame_int(&fs, frame, fdim, out, fod - 1), RUNNEL_ERR_BUFFER_TOO_SMALL);
    EXPECT(runnel_session_step_frame_int(&fs, (const int8_t *)(const void *)out, fdim, out, fod),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_frame_int(&fs, (const int8_t *)(const void *)(farena + 1), fdim, out, fod),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_frame_int(&fs, (const int8_t *)(const void *)&fs, fdim, out, fod),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_frame_int(&fs, frame, fdim, (int32_t *)(void *)farena, fod),
           RUNNEL_ERR_OVERLAP);
    EXPECT(runnel_session_step_frame_int(&fs, frame, fdim, (int32_t *)(void *)&g_int_frame_model, fod),
           RUNNEL_ERR_OVERLAP);
    /* reading the frame from the blob is fine (both only read) */
    EXPECT(runnel_session_step_frame_int(&fs, (const int8_t *)(const void *)(fblob->data + 64), fdim, out,
                                         fod),
           RUNNEL_OK);
    EXPECT(runnel_session_step_frame_int(&fs, frame, fdim, out, fod + 5), RUNNEL_OK);

    printf("%-4s integer misuse checks (%s, %s)\n", g_fail == fail0 ? "ok" : "FAIL", base_name(tok_dir),
           base_name(frame_dir));
    free(arena);
    free(farena);
    free_case(&tc);
    free_case(&fc);
}

int main(int argc, char **argv) {
    int i = 1;
    if (argc >= 6 && strcmp(argv[1], "--misuse") == 0) {
        misuse(argv[2], argv[3]);
        misuse_int(argv[4], argv[5]);
        i = 6;
    }
    for (; i < argc; i++) run_case(argv[i]);
    printf("test_capi: %lu passed, %lu failed\n", g_pass, g_fail);
    return g_fail == 0 ? 0 : 1;
}
