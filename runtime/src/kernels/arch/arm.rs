//! ARMv7E-M kernels (Cortex-M4/M7): the DSP extension's dual 16-bit multiply-accumulate.

fixed_isa!("arm-dsp", dot_i8_dsp, dot_rows_i8_dsp, dot_rows_bias_i8_dsp);

use crate::kernels::reference::matrix_rows;

/// `acc + Σ` of the four byte products of `wa` and `wb`: `SXTB16` (twice per operand) splits the
/// four bytes into two pairs of i16, `SMLAD` (twice) multiply-accumulates both pairs.
#[inline(always)]
fn mac4(acc: i32, wa: u32, wb: u32) -> i32 {
    let mut acc = acc;
    // SAFETY: SXTB16 and SMLAD are register-only instructions present on every ARMv7E-M core
    // (this module is compiled only for `thumbv7em-*`, see build.rs); they touch no memory
    // and no flags other than Q (saturation sticky bit), which nothing here reads.
    unsafe {
        core::arch::asm!(
            "sxtb16 {ae}, {wa}",
            "sxtb16 {ao}, {wa}, ror #8",
            "sxtb16 {be}, {wb}",
            "sxtb16 {bo}, {wb}, ror #8",
            "smlad {acc}, {ae}, {be}, {acc}",
            "smlad {acc}, {ao}, {bo}, {acc}",
            wa = in(reg) wa,
            wb = in(reg) wb,
            ae = out(reg) _,
            ao = out(reg) _,
            be = out(reg) _,
            bo = out(reg) _,
            acc = inout(reg) acc,
            options(pure, nomem, nostack),
        );
    }
    acc
}

/// The first four bytes of `c` as a little-endian word (0 if `c` is shorter: never, at the
/// call sites, which pass chunks of 4 or 8).
#[inline(always)]
fn word(c: &[i8]) -> u32 {
    match c {
        [a, b, c, d, ..] => u32::from_le_bytes([*a as u8, *b as u8, *c as u8, *d as u8]),
        _ => 0,
    }
}

/// `Σ a[i]·b[i]` with the DSP extension, eight bytes per iteration (two 32-bit loads per
/// operand, four `SMLAD`s), then four, then the plain tail. Exact, hence equal to
/// [`crate::kernels::reference::dot_i8`].
pub fn dot_i8_dsp(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (Some(a), Some(b)) = (a.get(..n), b.get(..n)) else {
        return 0;
    };
    let mut acc: i32 = 0;
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        acc = mac4(acc, word(x), word(y));
        acc = mac4(
            acc,
            word(x.get(4..).unwrap_or(&[])),
            word(y.get(4..).unwrap_or(&[])),
        );
    }
    // Both remainders have the same length, n % 8.
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let (ta, tb) = if ra.len() >= 4 {
        acc = mac4(acc, word(ra), word(rb));
        (ra.get(4..).unwrap_or(&[]), rb.get(4..).unwrap_or(&[]))
    } else {
        (ra, rb)
    };
    acc.wrapping_add(crate::kernels::reference::dot_i8(ta, tb))
}

/// Columns of the input expanded per pass of [`dot_rows_i8_dsp`] (two bytes each, on the stack).
const CHUNK: usize = 256;

/// The four bytes of `w` as two pairs of i16 with `SXTB16`: `(even, odd)` = bytes (0, 2) and
/// bytes (1, 3), low half first: the operands `SMLAD` pairs with a weight word's `SXTB16`s.
#[inline(always)]
fn split_word(w: u32) -> (u32, u32) {
    let (e, o): (u32, u32);
    // SAFETY: SXTB16 is a register-only instruction present on every ARMv7E-M core (this
    // module is compiled only for `thumbv7em-*`, see build.rs); it touches no memory or flags.
    unsafe {
        core::arch::asm!(
            "sxtb16 {e}, {w}",
            "sxtb16 {o}, {w}, ror #8",
            w = in(reg) w,
            e = out(reg) e,
            o = lateout(reg) o,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    (e, o)
}

/// Eight columns of two rows in [`pairs_sums`]'s loop: the input's eight columns, already
/// sign-extended (`r2`…`r5` = even and odd pairs of columns 0–3, then of 4–7), in one `LDM`;
/// per row one `LDRD` of eight weight bytes, four `SXTB16` and four `SMLAD`. 19 instructions for
/// 16 multiply-accumulates.
macro_rules! pair8_step {
    () => {
        concat!(
            "ldm {xp}!, {{r2, r3, r4, r5}}\n",
            "ldrd {wa}, {wb}, [{p0}], #8\n",
            "sxtb16 {t}, {wa}\n",
            "smlad {a0}, {t}, r2, {a0}\n",
            "sxtb16 {wa}, {wa}, ror #8\n",
            "smlad {a0}, {wa}, r3, {a0}\n",
            "sxtb16 {t}, {wb}\n",
            "smlad {a0}, {t}, r4, {a0}\n",
            "sxtb16 {wb}, {wb}, ror #8\n",
            "smlad {a0}, {wb}, r5, {a0}\n",
            "ldrd {wa}, {wb}, [{p1}], #8\n",
            "sxtb16 {t}, {wa}\n",
            "smlad {a1}, {t}, r2, {a1}\n",
            "sxtb16 {wa}, {wa}, ror #8\n",
            "smlad {a1}, {wa}, r3, {a1}\n",
            "sxtb16 {t}, {wb}\n",
            "smlad {a1}, {t}, r4, {a1}\n",
            "sxtb16 {wb}, {wb}, ror #8\n",
            "smlad {a1}, {wb}, r5, {a1}\n",
        )
    };
}

/// `sums[i] = init[i] + Σ_c w_i[c] · x[c]` (wrapping) for `2 · pairs` rows (row `i` at `q + i ·
/// stride`) over the first `n4` columns, with the input already expanded by [`split_word`] into
/// `xs` (`n4 / 2` words: even, odd pair of columns 0–3, then of 4–7, …); `init` may be `sums`
/// itself. One assembly loop over the pairs of rows, so the compiler has nothing to spill
/// between them. The column loop takes 32 columns per iteration (four [`pair8_step`]s: 76
/// instructions for 64 multiply-accumulates, 1.19 per multiply-accumulate), then 8, then 4; a
/// pair costs about 20 more (its start values loaded and its sums stored, the row pointers, the
/// counts). Twelve registers: the input's four words in `r2`–`r5` (`LDM` fills a register list
/// in register order), two sums, two row pointers, two weight words, one temporary and the
/// input pointer; the loop ends, the row advance (both row pointers move by it), the start and
/// sums pointers and the count live in 32 bytes of stack.
///
/// # Safety
/// `pairs ≥ 1`, `n4 % 4 == 0`, `n4 ≤ stride`, `q` and `stride` multiples of 4 (`LDRD` needs
/// word alignment); for every row `i < 2 · pairs` the `n4` bytes from `q + i · stride` are
/// readable, the `n4 / 2` words from `xs` are readable, `init` is valid for `2 · pairs` aligned
/// `i32` reads and `sums` for as many aligned writes (each pair's start values are read before
/// its sums are written, so `init == sums` is allowed).
#[inline(always)]
unsafe fn pairs_sums(
    q: *const i8,
    stride: usize,
    xs: *const u32,
    n4: usize,
    pairs: usize,
    init: *const i32,
    sums: *mut i32,
) {
    let end32 = xs.wrapping_add((n4 & !31) / 2);
    let end8 = xs.wrapping_add((n4 & !7) / 2);
    let end4 = xs.wrapping_add(n4 / 2);
    // From a pair's row 0 after its column loop (advanced by n4) to the next pair's row 0.
    let advance = stride.wrapping_mul(2).wrapping_sub(n4);
    // SAFETY: the loads read `q + i · stride + [0, n4)` for the two rows of each pair (each row
    // pointer advances by 8 or 4 per step, as the input pointer does by 16 or 8 bytes, and the
    // steps stop at `xs + n4 / 2` words) and `xs[0 .. n4 / 2]`, readable by this function's
    // contract, with `LDRD`/`LDM` at word-aligned addresses (`q`, `stride`, `n4` multiples of 4,
    // `xs` a `u32` pointer); the start values are read (`LDRD`) from `init[0 .. 2 · pairs]` and
    // the sums written (`STRD`) to `sums[0 .. 2 · pairs]`, a pair's reads before its writes,
    // valid by the contract; the loop runs `pairs ≥ 1` times. The stack use (32 bytes below SP,
    // released at the end) is allowed since the block is not `nostack`. SXTB16/SMLAD exist on
    // every ARMv7E-M core (this module is compiled only for `thumbv7em-*`). r2–r5 are declared
    // clobbered.
    unsafe {
        core::arch::asm!(
            "sub sp, sp, #32",
            "str {a0}, [sp]",
            "str {a1}, [sp, #4]",
            "str r2, [sp, #8]",
            "str {p1}, [sp, #12]",
            "str {wb}, [sp, #16]",
            "str {xp}, [sp, #20]",
            "str {t}, [sp, #24]",
            "str r3, [sp, #28]",
            "add {p1}, {p0}, {wa}",
            "6:",
            "ldr {t}, [sp, #28]",
            "ldrd {a0}, {a1}, [{t}], #8",
            "str {t}, [sp, #28]",
            "ldr {xp}, [sp, #20]",
            "ldr {t}, [sp, #8]",
            "cmp {xp}, {t}",
            "beq 3f",
            "2:",
            pair8_step!(),
            pair8_step!(),
            pair8_step!(),
            pair8_step!(),
            "ldr {t}, [sp, #8]",
            "cmp {xp}, {t}",
            "bne 2b",
            "3:",
            "ldr {t}, [sp, #12]",
            "cmp {xp}, {t}",
            "beq 5f",
            "4:",
            pair8_step!(),
            "ldr {t}, [sp, #12]",
            "cmp {xp}, {t}",
            "bne 4b",
            "5:",
            "ldr {t}, [sp, #16]",
            "cmp {xp}, {t}",
            "beq 7f",
            "ldrd r2, r3, [{xp}], #8",
            "ldr {wa}, [{p0}], #4",
            "sxtb16 {t}, {wa}",
            "smlad {a0}, {t}, r2, {a0}",
            "sxtb16 {wa}, {wa}, ror #8",
            "smlad {a0}, {wa}, r3, {a0}",
            "ldr {wa}, [{p1}], #4",
            "sxtb16 {t}, {wa}",
            "smlad {a1}, {t}, r2, {a1}",
            "sxtb16 {wa}, {wa}, ror #8",
            "smlad {a1}, {wa}, r3, {a1}",
            "7:",
            "ldr {t}, [sp]",
            "strd {a0}, {a1}, [{t}], #8",
            "str {t}, [sp]",
            "ldr {t}, [sp, #24]",
            "add {p0}, {p0}, {t}",
            "add {p1}, {p1}, {t}",
            "ldr {t}, [sp, #4]",
            "subs {t}, {t}, #1",
            "str {t}, [sp, #4]",
            "bne 6b",
            "add sp, sp, #32",
            a0 = inout(reg) sums => _,
            a1 = inout(reg) pairs => _,
            t = inout(reg) advance => _,
            wa = inout(reg) stride => _,
            wb = inout(reg) end4 => _,
            xp = inout(reg) xs => _,
            p0 = inout(reg) q => _,
            p1 = inout(reg) end8 => _,
            inout("r2") end32 => _,
            inout("r3") init => _,
            out("r4") _,
            out("r5") _,
        );
    }
}

/// The exact row sums with the DSP extension ([`rows_dsp`] from zero). Bit for bit
/// [`crate::kernels::reference::dot_rows_i8`].
#[inline(always)]
pub fn dot_rows_i8_dsp(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    let sums = crate::slices::head_mut(sums, matrix_rows(q.len(), cols, sums.len()));
    rows_dsp(q, cols, Input::I8(x), None, sums);
}

/// The exact row sums plus a bias with the DSP extension ([`rows_dsp`] from the bias: no pass
/// of its own). Bit for bit [`crate::kernels::reference::dot_rows_bias_i8`].
#[inline(always)]
pub fn dot_rows_bias_i8_dsp(q: &[i8], cols: usize, xq: &[i8], bias: &[i32], sums: &mut [i32]) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    let n = matrix_rows(q.len(), cols, sums.len().min(bias.len()));
    rows_dsp(
        q,
        cols,
        Input::I8(x),
        Some(bias),
        crate::slices::head_mut(sums, n),
    );
}

/// The row sums of a strided int8 matrix with an int8 or i16 vector, with the DSP extension
/// ([`rows_dsp`] from zero): the attention scores over the cached keys and the weighted sum
/// over the cached values. Bit for bit [`crate::kernels::reference::dot_rows_strided`]. Out of
/// line: one copy for both vector types, and its input buffer on the stack only during the call.
#[inline(never)]
pub fn dot_rows_strided_dsp(q: &[i8], stride: usize, x: Input<'_>, sums: &mut [i32]) {
    let n = crate::kernels::reference::strided_rows(q.len(), stride, x.len(), sums.len());
    rows_dsp(q, stride, x, None, crate::slices::head_mut(sums, n));
}

/// The vector of a row-sum kernel: int8 (matrix products, attention scores) or i32 values taken
/// as i16, saturated (attention probabilities in Q0.15).
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// int8 values.
    I8(&'a [i8]),
    /// i32 values saturated to the i16 range.
    Q15(&'a [i32]),
}

impl Input<'_> {
    /// Its length (the columns of the product).
    #[inline(always)]
    pub fn len(&self) -> usize {
        match self {
            Input::I8(x) => x.len(),
            Input::Q15(x) => x.len(),
        }
    }

    /// Whether it is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Columns `at .. at + len` (`len % 4 == 0`) as [`pairs_sums`] reads them: per four columns
    /// the even pair (0, 2) and the odd pair (1, 3) of i16, low half first, into `xs[..len / 2]`.
    #[inline(always)]
    fn expand(&self, at: usize, len: usize, xs: &mut [core::mem::MaybeUninit<u32>]) {
        match self {
            Input::I8(x) => {
                let part = x.get(at..at + len).unwrap_or(&[]);
                for (c, pair) in part.chunks_exact(4).zip(xs.chunks_exact_mut(2)) {
                    let (e, o) = split_word(word(c));
                    if let [pe, po] = pair {
                        pe.write(e);
                        po.write(o);
                    }
                }
            }
            Input::Q15(x) => {
                let part = x.get(at..at + len).unwrap_or(&[]);
                for (c, pair) in part.chunks_exact(4).zip(xs.chunks_exact_mut(2)) {
                    let h = |v: &i32| crate::kernels::integer::sat_i16(*v) as u16 as u32;
                    if let ([a, b, c, d], [pe, po]) = (c, pair) {
                        pe.write(h(a) | h(c) << 16);
                        po.write(h(b) | h(d) << 16);
                    }
                }
            }
        }
    }

    /// `Σ row[i] · x[i]` (wrapping), for the rows the assembly loop does not take.
    #[inline(always)]
    fn dot(&self, row: &[i8]) -> i32 {
        match self {
            Input::I8(x) => dot_i8_dsp(row, x),
            Input::Q15(x) => crate::kernels::reference::dot_i8_q15(row, x),
        }
    }
}

/// `sums[r] = bias[r] + Σ_c q[r · stride + c] · x[c]` (wrapping; 0 for a missing `bias`) for
/// the rows `r < sums.len()`, each of which must lie in `q` (`x`: `[cols]`; `bias`, if any, at
/// least as long as `sums`). The input is sign-extended (int8) or packed (i16) into pairs of i16
/// on the stack ([`Input::expand`], [`CHUNK`] columns at a time), so the inner loop
/// ([`pairs_sums`]: two rows, eight columns per step) only loads it; the first chunk starts from
/// the bias, the next from the sums so far. An odd last row runs [`Input::dot`], and so do all
/// rows when they are not word-aligned or the columns not a multiple of 4 (never, for the demo
/// model). Inlined (with its assembly loop) into the caller, so that it adds no stack frame of
/// its own.
#[inline(always)]
fn rows_dsp(q: &[i8], stride: usize, x: Input<'_>, bias: Option<&[i32]>, sums: &mut [i32]) {
    let cols = x.len();
    let start = |r: usize| bias.and_then(|b| b.get(r)).copied().unwrap_or(0);
    let n = sums.len();
    let aligned = (q.as_ptr() as usize) % 4 == 0 && cols % 4 == 0 && stride % 4 == 0;
    let pairs = if aligned && stride >= cols && cols > 0 {
        n / 2
    } else {
        0
    };
    if pairs > 0 {
        let Some(s2) = sums.get_mut(..2 * pairs) else {
            return;
        };
        let mut init: *const i32 = match bias {
            Some(b) if b.len() >= 2 * pairs => b.as_ptr(),
            _ => {
                s2.fill(0);
                s2.as_ptr()
            }
        };
        let mut xs = [const { core::mem::MaybeUninit::<u32>::uninit() }; CHUNK / 2];
        let mut at = 0;
        while at < cols {
            let len = (cols - at).min(CHUNK);
            x.expand(at, len, &mut xs);
            // SAFETY: `pairs ≥ 1`; `len % 4 == 0` (`cols`, `at`, CHUNK multiples of 4) and
            // `at + len ≤ cols ≤ stride`; `q + at` and `stride` are multiples of 4 (`aligned`);
            // the rows `i < 2 · pairs ≤ n` lie in `q` (this function's contract), so their
            // bytes `at .. at + len` are readable; the `len / 2 ≤ CHUNK / 2` words of `xs` it
            // reads were all written by `expand` (`x` has `cols ≥ at + len` values); `init` is
            // the bias (at least `2 · pairs` long) or `s2`, and `s2` holds `2 · pairs` i32s.
            unsafe {
                pairs_sums(
                    q.as_ptr().wrapping_add(at),
                    stride,
                    xs.as_ptr().cast::<u32>(),
                    len,
                    pairs,
                    init,
                    s2.as_mut_ptr(),
                )
            };
            init = s2.as_ptr();
            at += len;
        }
    }
    for r in 2 * pairs..n {
        let row = q
            .get(r * stride..)
            .and_then(|t| t.get(..cols))
            .unwrap_or(&[]);
        if let Some(a) = sums.get_mut(r) {
            *a = start(r).wrapping_add(x.dot(row));
        }
    }
}

/// `(a · b + 2^31) >> 32` with one `SMMULR` (signed most-significant-word multiply, rounded):
/// equal to [`crate::kernels::reference::mul_hi_round`] for every input.
#[inline(always)]
pub fn mul_hi_round(a: i32, b: i32) -> i32 {
    let r: i32;
    // SAFETY: SMMULR is a register-only instruction present on every ARMv7E-M core (this
    // module is compiled only for `thumbv7em-*`, see build.rs); it touches no memory or flags.
    unsafe {
        core::arch::asm!(
            "smmulr {r}, {a}, {b}",
            a = in(reg) a,
            b = in(reg) b,
            r = lateout(reg) r,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    r
}

/// Converts `src` to f32 into `dst` (same length) with the FPU's `VCVTB.F32.F16`: exact, like
/// every f16 → f32 conversion, so the result equals `half`'s software conversion bit for bit.
#[cfg(runnel_arm_fp16)]
pub fn f16_to_f32_slice(src: &[half::f16], dst: &mut [f32]) {
    for (d, h) in dst.iter_mut().zip(src) {
        let bits = h.to_bits() as u32;
        let out: u32;
        // SAFETY: VMOV and VCVTB are register-only FPU instructions present on every hard-float
        // ARMv7E-M core (this function is compiled only for `thumbv7em-*-eabihf`, see build.rs);
        // they touch no memory and no flags.
        unsafe {
            core::arch::asm!(
                "vmov s0, {x}",
                "vcvtb.f32.f16 s0, s0",
                "vmov {y}, s0",
                x = in(reg) bits,
                y = lateout(reg) out,
                out("s0") _,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        *d = f32::from_bits(out);
    }
}
