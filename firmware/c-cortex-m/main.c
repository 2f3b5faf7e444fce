/*
 * runnel from C on a Cortex-M4F (QEMU mps2-an386): streams the embedded input through every
 * embedded blob (the Rust firmware's blobs, see gen-blobs.sh) with the C API and prints, per
 * step, the same argmax and output checksum as the Rust firmware. The integer-only blob
 * (`runnel convert --integer`) runs through the integer entry points
 * (runnel_session_step_token_int / _frame_int, int8 frames from fw_inputs_i8), its output row
 * the int32 logits, with no floating point in the step or in this file's handling of it:
 *
 *   model weights=<w> kv=<kv> blob_bytes=<n> state_bytes=<n> input_dim=<n> output_dim=<n>
 *         load_peak_stack_bytes=<n>    (open + get_info + session init; main's frame included)
 *   step=<i> argmax=<i> checksum=0x<8 hex> instructions=<n>
 *   summary weights=<w> steps=<n> total_instructions=<n> run_checksum=0x<8 hex> peak_stack_bytes=<n>
 *         (peak_stack_bytes: during the steps, main's and run_blob's frames included)
 *   result weights=<w> ok|MISMATCH ...
 *
 * checksum: FNV-1a 32 over the little-endian bytes of each f32 of the output row (element 0
 * first), or of each int32 logit for the integer-only blob, as firmware/common/src/checksum.rs
 * defines it (fnv1a_f32, fnv1a_i32); argmax: the first largest element (argmax, argmax_i32
 * there); run_checksum: FNV-1a over the little-endian bytes of the step checksums.
 * `instructions` is exact under `-icount shift=0` (SysTick on the 25 MHz clock: 1 tick = 40
 * instructions).
 *
 * Exit status: 0 all runs match the host, 1 a run checksum differs, 2 an API call failed,
 * 102 HardFault.
 *
 * Built with -DFW_BASELINE, it does everything except call the library (the output rows stay
 * zero): the difference in size between the two builds is what the library adds.
 */
#include <stddef.h>
#include <stdint.h>

#include "blobs.h"
#include "runnel.h"
#include "semihost.h"

enum { EXIT_OK = 0, EXIT_MISMATCH = 1, EXIT_ERROR = 2 };

/* --------------------------------------------------------------------- embedded data -- */

typedef struct {
    const char *weights;
    const char *kv;
    const unsigned char *bytes;
    uint32_t len;
    uint32_t run_checksum; /* what the host runtime computed */
    uint32_t state_bytes;
    uint32_t integer; /* 1: integer-only, stepped through the integer entry points */
} fw_blob;

extern const fw_blob fw_blobs[FW_N_BLOBS];
extern const uint32_t fw_inputs[]; /* tokens, or the bits of the frames' floats */
extern const int8_t fw_inputs_i8[]; /* the frames on the integer-only blob's int8 grid */

/* ------------------------------------------------------------- the objects, in statics -- */

static runnel_model g_model;
static runnel_session g_session;
static _Alignas(4) unsigned char g_arena[FW_ARENA_BYTES];
/* One output row: floats, or the integer-only blob's int32 logits (same size and alignment). */
static union {
    float f[FW_OUTPUT_DIM];
    int32_t i[FW_OUTPUT_DIM];
} g_out;

/* ------------------------------------------------------------------------ text output -- */

static char g_line[192];
static size_t g_pos;

static void put_str(const char *s) {
    while (*s && g_pos < sizeof g_line - 2) g_line[g_pos++] = *s++;
}

static void put_u32(uint32_t v) {
    char d[10];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) {
        char s[2] = {d[--n], 0};
        put_str(s);
    }
}

static void put_u64(uint64_t v) {
    /* 64-bit values here are instruction counts: split to avoid a 64-bit division. */
    if (v >= 1000000000u) {
        uint32_t hi = (uint32_t)(v / 1000000000u), lo = (uint32_t)(v % 1000000000u);
        put_u32(hi);
        char d[10] = "000000000";
        for (int i = 8; i >= 0; i--, lo /= 10) d[i] = (char)('0' + lo % 10);
        put_str(d);
    } else {
        put_u32((uint32_t)v);
    }
}

static void put_hex(uint32_t v) {
    char s[11] = "0x";
    for (int i = 0; i < 8; i++) s[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xf];
    s[10] = 0;
    put_str(s);
}

static void end_line(void) {
    g_line[g_pos++] = '\n';
    g_line[g_pos] = 0;
    semihost_write0(g_line);
    g_pos = 0;
}

/* ------------------------------------------------------------------ checksum, argmax -- */

#define FNV_OFFSET 0x811c9dc5u
#define FNV_PRIME 0x01000193u

static uint32_t fnv1a_u32(uint32_t h, uint32_t word) {
    for (int i = 0; i < 4; i++) h = (h ^ ((word >> (8 * i)) & 0xffu)) * FNV_PRIME;
    return h;
}

static uint32_t fnv1a_f32(const float *row, size_t n) {
    uint32_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++) {
        union {
            float f;
            uint32_t u;
        } bits = {row[i]};
        h = fnv1a_u32(h, bits.u);
    }
    return h;
}

static uint32_t fnv1a_i32(const int32_t *row, size_t n) {
    uint32_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++) h = fnv1a_u32(h, (uint32_t)row[i]);
    return h;
}

/* Index of the largest element: the first on ties (as the Rust firmware's argmax_i32). */
static size_t argmax_i32(const int32_t *row, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

/* Index of the largest element: the first on ties, NaN never wins (as the Rust firmware). */
static size_t argmax(const float *row, size_t n) {
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        float x = row[i], b = row[best];
        if (x > b || (b != b && x == x)) best = i;
    }
    return best;
}

/* ---------------------------------------------------------------- instruction counter -- */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define INSTR_PER_TICK 40u

static void counter_start(void) {
    SYST_CSR = 0;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5; /* enable, processor clock, no interrupt */
}

static uint32_t counter_now(void) {
    __asm__ volatile("" ::: "memory");
    uint32_t v = SYST_CVR;
    __asm__ volatile("" ::: "memory");
    return v;
}

/* Instructions between two readings (a down-counter; steps are far below 2^24 ticks). */
static uint32_t counter_elapsed(uint32_t t0, uint32_t t1) {
    return ((t0 - t1) & 0x00FFFFFFu) * INSTR_PER_TICK;
}

/* ------------------------------------------------------------------------- stack use -- */

/* The stack grows down from _estack; the 64 KB below the current stack pointer are painted and
 * the deepest overwritten word gives the peak use (main's own frame included). */
extern uint32_t _ebss, _estack;
#define STACK_PAINT 0xA5A5A5A5u
#define STACK_WINDOW (64u * 1024u)

static uintptr_t stack_floor(void) {
    uintptr_t top = (uintptr_t)&_estack, bss_end = (uintptr_t)&_ebss;
    return top - bss_end > STACK_WINDOW ? top - STACK_WINDOW : bss_end;
}

static void stack_paint(void) {
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uintptr_t a = stack_floor(); a + 64 < sp; a += 4) *(volatile uint32_t *)a = STACK_PAINT;
}

static uint32_t stack_peak(void) {
    uintptr_t a = stack_floor(), top = (uintptr_t)&_estack;
    while (a < top && *(volatile const uint32_t *)a == STACK_PAINT) a += 4;
    return (uint32_t)(top - a);
}

/* ------------------------------------------------------------------------------ demo -- */

#ifdef FW_BASELINE
/* What the library calls would touch, so that the baseline keeps the same statics. */
static void zero(void *p, size_t n) {
    volatile unsigned char *b = p;
    while (n--) *b++ = 0;
}
#else
static int api_error(const char *weights, const char *what, runnel_status st) {
    put_str("model weights=");
    put_str(weights);
    put_str(": ");
    put_str(what);
    put_str(" failed: ");
    put_str(runnel_status_message(st));
    end_line();
    return EXIT_ERROR;
}
#endif

static int run_blob(const fw_blob *b) {
    stack_paint();
    uint32_t input_dim = FW_INPUT_FRAMES ? FW_FRAME_DIM : 0, output_dim = FW_OUTPUT_DIM;
#ifndef FW_BASELINE
    runnel_status st = runnel_model_open(&g_model, b->bytes, b->len);
    if (st != RUNNEL_OK) return api_error(b->weights, "runnel_model_open", st);
    runnel_model_info info;
    st = runnel_model_get_info(&g_model, &info);
    if (st != RUNNEL_OK) return api_error(b->weights, "runnel_model_get_info", st);
    if (info.output_dim != FW_OUTPUT_DIM ||
        info.input_kind != (FW_INPUT_FRAMES ? RUNNEL_INPUT_FRAMES : RUNNEL_INPUT_TOKENS) ||
        info.state_bytes > sizeof g_arena)
        return api_error(b->weights, "model info check", RUNNEL_ERR_INTERNAL);
    input_dim = info.input_dim;
    output_dim = info.output_dim;
    runnel_integer_scales scales;
    st = runnel_model_get_integer_scales(&g_model, &scales);
    if (st != (b->integer ? RUNNEL_OK : RUNNEL_ERR_NOT_INTEGER))
        return api_error(b->weights, "runnel_model_get_integer_scales", st);
    st = runnel_session_init(&g_session, &g_model, g_arena, sizeof g_arena);
    if (st != RUNNEL_OK) return api_error(b->weights, "runnel_session_init", st);
#else
    zero(&g_model, sizeof g_model);
    zero(&g_session, sizeof g_session);
    zero(g_arena, sizeof g_arena);
#endif
    uint32_t load_stack = stack_peak();
    stack_paint();
    put_str("model weights=");
    put_str(b->weights);
    put_str(" kv=");
    put_str(b->kv);
    put_str(" blob_bytes=");
    put_u32(b->len);
    put_str(" state_bytes=");
    put_u32(b->state_bytes);
    put_str(" input_dim=");
    put_u32(input_dim);
    put_str(" output_dim=");
    put_u32(output_dim);
    put_str(" load_peak_stack_bytes=");
    put_u32(load_stack);
    end_line();

    uint32_t run = FNV_OFFSET;
    uint64_t total = 0;
    for (uint32_t i = 0; i < FW_STEPS; i++) {
        uint32_t t0 = counter_now();
#ifndef FW_BASELINE
#if FW_INPUT_FRAMES
        if (b->integer)
            st = runnel_session_step_frame_int(&g_session, &fw_inputs_i8[i * FW_FRAME_DIM], FW_FRAME_DIM,
                                               g_out.i, FW_OUTPUT_DIM);
        else
            st = runnel_session_step_frame(&g_session,
                                           (const float *)(const void *)&fw_inputs[i * FW_FRAME_DIM],
                                           FW_FRAME_DIM, g_out.f, FW_OUTPUT_DIM);
#else
        if (b->integer)
            st = runnel_session_step_token_int(&g_session, fw_inputs[i], g_out.i, FW_OUTPUT_DIM);
        else
            st = runnel_session_step_token(&g_session, fw_inputs[i], g_out.f, FW_OUTPUT_DIM);
#endif
#else
        zero(&g_out, sizeof g_out);
#endif
        uint32_t n = counter_elapsed(t0, counter_now());
#ifndef FW_BASELINE
        if (st != RUNNEL_OK) return api_error(b->weights, "step", st);
#endif
        total += n;
        uint32_t sum = b->integer ? fnv1a_i32(g_out.i, FW_OUTPUT_DIM) : fnv1a_f32(g_out.f, FW_OUTPUT_DIM);
        size_t best = b->integer ? argmax_i32(g_out.i, FW_OUTPUT_DIM) : argmax(g_out.f, FW_OUTPUT_DIM);
        run = fnv1a_u32(run, sum);
        put_str("step=");
        put_u32(i);
        put_str(" argmax=");
        put_u32((uint32_t)best);
        put_str(" checksum=");
        put_hex(sum);
        put_str(" instructions=");
        put_u32(n);
        end_line();
    }
    put_str("summary weights=");
    put_str(b->weights);
    put_str(" steps=");
    put_u32(FW_STEPS);
    put_str(" total_instructions=");
    put_u64(total);
    put_str(" run_checksum=");
    put_hex(run);
    put_str(" peak_stack_bytes=");
    put_u32(stack_peak());
    end_line();

    put_str("result weights=");
    put_str(b->weights);
    if (run == b->run_checksum) {
        put_str(" ok: run_checksum=");
        put_hex(run);
        put_str(" matches the host runtime");
        end_line();
        return EXIT_OK;
    }
    put_str(" MISMATCH: run_checksum=");
    put_hex(run);
    put_str(", host runtime ");
    put_hex(b->run_checksum);
    end_line();
    return EXIT_MISMATCH;
}

#ifndef FW_BASELINE
/* A few error paths on the target itself: every one must return its documented code. */
static int self_check(void) {
    static _Alignas(16) unsigned char misaligned[80];
    static runnel_session zeroed;
    int bad = 0;
    bad |= runnel_model_open(NULL, fw_blobs[0].bytes, fw_blobs[0].len) != RUNNEL_ERR_NULL;
    bad |= runnel_model_open(&g_model, misaligned + 1, 64) != RUNNEL_ERR_MISALIGNED;
    bad |= runnel_model_open(&g_model, fw_blobs[0].bytes, 63) != RUNNEL_ERR_TRUNCATED;
    bad |= runnel_model_open(&g_model, fw_blobs[0].bytes, fw_blobs[0].len) != RUNNEL_OK;
    bad |= runnel_session_init(&g_session, &g_model, g_arena, fw_blobs[0].state_bytes - 1) !=
           RUNNEL_ERR_ARENA_TOO_SMALL;
    bad |= runnel_session_step_token(&zeroed, 0, g_out.f, FW_OUTPUT_DIM) != RUNNEL_ERR_NOT_INITIALIZED;
    bad |= runnel_session_step_token_int(&zeroed, 0, g_out.i, FW_OUTPUT_DIM) != RUNNEL_ERR_NOT_INITIALIZED;
    bad |= runnel_session_init(&g_session, &g_model, g_arena, sizeof g_arena) != RUNNEL_OK;
    bad |= runnel_session_step_token(&g_session, 0, g_out.f, FW_OUTPUT_DIM - 1) !=
           RUNNEL_ERR_BUFFER_TOO_SMALL;
#if FW_INPUT_FRAMES
    bad |= runnel_session_step_token(&g_session, 0, g_out.f, FW_OUTPUT_DIM) != RUNNEL_ERR_WRONG_INPUT_KIND;
#else
    bad |= runnel_session_step_token(&g_session, UINT32_MAX, g_out.f, FW_OUTPUT_DIM) !=
           RUNNEL_ERR_TOKEN_OUT_OF_RANGE;
#endif
    /* the integer entry points: refused on a float blob, checked like the others on the
     * integer-only one */
    for (int i = 0; i < FW_N_BLOBS; i++) {
        const fw_blob *b = &fw_blobs[i];
        runnel_integer_scales scales;
        bad |= runnel_model_open(&g_model, b->bytes, b->len) != RUNNEL_OK;
        bad |= runnel_session_init(&g_session, &g_model, g_arena, sizeof g_arena) != RUNNEL_OK;
        runnel_status want = b->integer ? RUNNEL_OK : RUNNEL_ERR_NOT_INTEGER;
        bad |= runnel_model_get_integer_scales(&g_model, &scales) != want;
        bad |= runnel_model_get_integer_scales(&g_model, NULL) != RUNNEL_ERR_NULL;
        bad |= runnel_session_step_token_int(&g_session, 0, g_out.i, FW_OUTPUT_DIM - 1) !=
               RUNNEL_ERR_BUFFER_TOO_SMALL;
        if (!b->integer) {
            bad |= runnel_session_step_token_int(&g_session, 0, g_out.i, FW_OUTPUT_DIM) !=
                   RUNNEL_ERR_NOT_INTEGER;
            bad |= runnel_session_step_frame_int(&g_session, fw_inputs_i8, FW_FRAME_DIM, g_out.i,
                                                 FW_OUTPUT_DIM) != RUNNEL_ERR_NOT_INTEGER;
            continue;
        }
#if FW_INPUT_FRAMES
        bad |= runnel_session_step_token_int(&g_session, 0, g_out.i, FW_OUTPUT_DIM) !=
               RUNNEL_ERR_WRONG_INPUT_KIND;
        bad |= runnel_session_step_frame_int(&g_session, fw_inputs_i8, FW_FRAME_DIM - 1, g_out.i,
                                             FW_OUTPUT_DIM) != RUNNEL_ERR_BAD_LENGTH;
#else
        bad |= runnel_session_step_token_int(&g_session, UINT32_MAX, g_out.i, FW_OUTPUT_DIM) !=
               RUNNEL_ERR_TOKEN_OUT_OF_RANGE;
        bad |= runnel_session_step_frame_int(&g_session, fw_inputs_i8, 1, g_out.i, FW_OUTPUT_DIM) !=
               RUNNEL_ERR_WRONG_INPUT_KIND;
#endif
    }
    bad |= runnel_session_reset(NULL) != RUNNEL_ERR_NULL;
    put_str(bad ? "self-check FAILED: an error path returned the wrong code"
                : "self-check ok: error paths return their documented codes");
    end_line();
    return bad ? EXIT_ERROR : EXIT_OK;
}
#endif

int main(void) {
    counter_start();
    put_str("runnel-c-fw board=qemu-mps2-an386 cpu=cortex-m4f api=c source=" FW_SOURCE " blobs=");
    put_u32(FW_N_BLOBS);
    put_str(" steps=");
    put_u32(FW_STEPS);
    put_str(" sizeof_model=");
    put_u32(sizeof g_model);
    put_str(" sizeof_session=");
    put_u32(sizeof g_session);
    put_str(" arena_bytes=");
    put_u32(sizeof g_arena);
    end_line();
    int status = EXIT_OK;
#ifndef FW_BASELINE
    status = self_check();
#endif
    for (int i = 0; i < FW_N_BLOBS; i++) {
        int s = run_blob(&fw_blobs[i]);
        if (s == EXIT_ERROR || (s == EXIT_MISMATCH && status == EXIT_OK)) status = s;
    }
    put_str("exit status=");
    put_u32((uint32_t)status);
    end_line();
    return status;
}
