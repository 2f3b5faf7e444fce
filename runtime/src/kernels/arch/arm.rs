//! ARMv7E-M kernels (Cortex-M4/M7): the DSP extension's dual 16-bit multiply-accumulate.

fixed_isa!("arm-dsp", dot_i8_dsp, rows_i8_dsp);

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

/// One step of [`block4`]'s loop: four input bytes, loaded and sign-extended once
/// (`xe` = bytes 0, 2, `xo` = bytes 1, 3 as i16 pairs), against the next four bytes of each of
/// the four rows (row 0 at `p0`, 1 at `p0 + s`, 2 at `p2`, 3 at `p2 + s`): one load, two
/// `SXTB16`, two `SMLAD` per row. 23 instructions for 16 multiply-accumulates.
macro_rules! block4_step {
    () => {
        concat!(
            "ldr {xo}, [{xp}], #4\n",
            "sxtb16 {xe}, {xo}\n",
            "sxtb16 {xo}, {xo}, ror #8\n",
            "ldr {w}, [{p0}, {s}]\n",
            "sxtb16 {t}, {w}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a1}, {t}, {xe}, {a1}\n",
            "smlad {a1}, {w}, {xo}, {a1}\n",
            "ldr {w}, [{p2}, {s}]\n",
            "sxtb16 {t}, {w}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a3}, {t}, {xe}, {a3}\n",
            "smlad {a3}, {w}, {xo}, {a3}\n",
            "ldr {w}, [{p2}], #4\n",
            "sxtb16 {t}, {w}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a2}, {t}, {xe}, {a2}\n",
            "smlad {a2}, {w}, {xo}, {a2}\n",
            "ldr {w}, [{p0}], #4\n",
            "sxtb16 {t}, {w}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a0}, {t}, {xe}, {a0}\n",
            "smlad {a0}, {w}, {xo}, {a0}\n",
        )
    };
}

/// The dot products of four rows with one input over the first `n4` columns: row `k` starts at
/// `p0 + k · stride`. The input is loaded and sign-extended once for the four rows; the loop
/// takes 16 columns per iteration (4 steps of [`block4_step`], 95 instructions for 64
/// multiply-accumulates), then 4 at a time. Twelve registers: four sums, three row pointers /
/// strides, the input pointer, four temporaries; the two loop ends live on the stack.
///
/// # Safety
/// `n4 % 4 == 0`; for `k` in `0..4` the `n4` bytes from `p0 + k · stride` and the `n4` bytes from
/// `x` are readable. (Word loads may be unaligned: ARMv7-M allows it for `LDR`.)
#[inline(always)]
unsafe fn block4(p0: *const i8, stride: usize, x: *const i8, n4: usize) -> [i32; 4] {
    let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
    let end16 = x.wrapping_add(n4 & !15);
    let end4 = x.wrapping_add(n4);
    let p2 = p0.wrapping_add(stride.wrapping_mul(2));
    // SAFETY: the loads read `p0 + k · stride + [0, n4)` and `x + [0, n4)` only (each pointer
    // advances by 4 per step and the steps stop at `end4 = x + n4`, `n4 % 4 == 0`), readable by
    // this function's contract. The stack use (8 bytes below SP, released at the end) is
    // allowed since the block is not `nostack`; it writes no other memory. SXTB16/SMLAD exist
    // on every ARMv7E-M core (this module is compiled only for `thumbv7em-*`).
    unsafe {
        core::arch::asm!(
            "sub sp, sp, #8",
            "str {t}, [sp]",
            "str {w}, [sp, #4]",
            "cmp {xp}, {t}",
            "beq 3f",
            "2:",
            block4_step!(),
            block4_step!(),
            block4_step!(),
            block4_step!(),
            "ldr {t}, [sp]",
            "cmp {xp}, {t}",
            "bne 2b",
            "3:",
            "ldr {t}, [sp, #4]",
            "cmp {xp}, {t}",
            "beq 5f",
            "4:",
            block4_step!(),
            "ldr {t}, [sp, #4]",
            "cmp {xp}, {t}",
            "bne 4b",
            "5:",
            "add sp, sp, #8",
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            p0 = inout(reg) p0 => _,
            p2 = inout(reg) p2 => _,
            s = in(reg) stride,
            xp = inout(reg) x => _,
            t = inout(reg) end16 => _,
            w = inout(reg) end4 => _,
            xe = out(reg) _,
            xo = out(reg) _,
            options(readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// The int8 rows with the DSP extension, four rows per pass ([`block4`]: each input word is
/// loaded and sign-extended once for four rows, 1.48 instructions per multiply-accumulate in
/// the loop), the `cols % 4` last columns and the `rows % 4` last rows by the plain loops, then
/// the rescale `dot as f32 · (scale · sx) + bias`. Bit for bit
/// [`crate::kernels::reference::rows_i8`].
pub fn rows_i8_dsp(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    let Some(block) = cols.checked_mul(4) else {
        return;
    };
    let n4 = cols & !3;
    let (Some((x4, x_tail)), true) = (x.split_at_checked(n4), block != 0) else {
        // cols == 0: the plain loop writes the bias rows.
        crate::kernels::rows_i8_with(dot_i8_dsp, q, scales, cols, xq, sx, bias, out);
        return;
    };
    let n = out
        .len()
        .min(scales.len())
        .min(bias.len())
        .min(q.len() / cols);
    let full = n & !3;
    let (out4, out_rest) = out.split_at_mut(full.min(out.len()));
    let (s4, s_rest) = scales.split_at(full.min(scales.len()));
    let (b4, b_rest) = bias.split_at(full.min(bias.len()));
    // `full · cols ≤ q.len()`: no overflow.
    let q_rest = q.get(full * cols..).unwrap_or(&[]);
    for (((o, s), b), rows) in out4
        .chunks_exact_mut(4)
        .zip(s4.chunks_exact(4))
        .zip(b4.chunks_exact(4))
        .zip(q.chunks_exact(block))
    {
        // SAFETY: `rows` is `4 · cols` bytes, four rows of `cols ≥ n4` bytes at stride `cols`,
        // so `rows + k · cols + [0, n4)` is inside it for k < 4; `x4` is `n4` bytes and
        // `n4 = cols & !3` is a multiple of 4.
        let mut acc = unsafe { block4(rows.as_ptr(), cols, x4.as_ptr(), n4) };
        if !x_tail.is_empty() {
            for (a, r) in acc.iter_mut().zip(rows.chunks_exact(cols)) {
                let t = r.get(n4..).unwrap_or(&[]);
                *a = a.wrapping_add(crate::kernels::reference::dot_i8(t, x_tail));
            }
        }
        for (((o, &a), &s), &b) in o.iter_mut().zip(&acc).zip(s).zip(b) {
            *o = a as f32 * (s * sx) + b;
        }
    }
    crate::kernels::rows_i8_with(dot_i8_dsp, q_rest, s_rest, cols, x, sx, b_rest, out_rest);
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
