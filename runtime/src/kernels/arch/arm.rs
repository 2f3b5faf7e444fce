//! ARMv7E-M kernels (Cortex-M4/M7): the DSP extension's dual 16-bit multiply-accumulate.

fixed_isa!("arm-dsp", dot_i8_dsp, dot_rows_i8_dsp);

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

/// One step of [`rows4_sums`]'s loop: four input bytes, loaded and sign-extended once
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

/// The dot products of `blocks` blocks of four rows with one input over the first `n4` columns,
/// written as i32 to `sums[0 .. 4 · blocks]` (row order): one assembly loop over the blocks
/// (so the compiler has nothing to spill between blocks). Row `r` starts at `q + r · stride`.
/// Within a block the input is loaded and sign-extended once for the four rows; the column loop
/// takes 32 columns per iteration (8 steps of [`block4_step`]: 187 instructions for 128
/// multiply-accumulates), then 4 at a time; a block costs about 25 more (zeroing, the four
/// stores, the next row pointer, the count). Twelve registers: four sums, two row pointers and
/// the stride, the input pointer, four temporaries; the loop ends, the output pointer, the
/// count and the row advance live in 24 bytes of stack.
///
/// # Safety
/// `blocks ≥ 1`, `n4 % 4 == 0`, `n4 ≤ stride`; for every row `r < 4 · blocks` the `n4` bytes from
/// `q + r · stride` are readable, the `n4` bytes from `x` are readable, and `sums` is valid for
/// `4 · blocks` aligned `i32` writes. (Word loads may be unaligned: ARMv7-M allows it for `LDR`.)
#[inline(always)]
unsafe fn rows4_sums(
    q: *const i8,
    stride: usize,
    x: *const i8,
    n4: usize,
    blocks: usize,
    sums: *mut i32,
) {
    let end32 = x.wrapping_add(n4 & !31);
    let end4 = x.wrapping_add(n4);
    // From a block's row 0 after its column loop (advanced by n4) to the next block's row 0.
    let advance = stride.wrapping_mul(4).wrapping_sub(n4);
    // SAFETY: the loads read `q + r · stride + [0, n4)` for the rows of each block and
    // `x + [0, n4)` only (each pointer advances by 4 per step; the steps stop at `x + n4`,
    // `n4 % 4 == 0`), readable by this function's contract; the stores write `sums[0 .. 4 ·
    // blocks]`, valid by the contract; the loop runs `blocks ≥ 1` times. The stack use (24 bytes
    // below SP, released at the end) is allowed since the block is not `nostack`. SXTB16/SMLAD
    // exist on every ARMv7E-M core (this module is compiled only for `thumbv7em-*`).
    unsafe {
        core::arch::asm!(
            "sub sp, sp, #24",
            "str {t}, [sp]",
            "str {w}, [sp, #4]",
            "str {xp}, [sp, #8]",
            "str {a0}, [sp, #12]",
            "str {a1}, [sp, #16]",
            "str {a2}, [sp, #20]",
            "6:",
            "add {p2}, {p0}, {s}, lsl #1",
            "mov {a0}, #0",
            "mov {a1}, #0",
            "mov {a2}, #0",
            "mov {a3}, #0",
            "ldr {xp}, [sp, #8]",
            "ldr {t}, [sp]",
            "cmp {xp}, {t}",
            "beq 3f",
            "2:",
            block4_step!(),
            block4_step!(),
            block4_step!(),
            block4_step!(),
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
            "ldr {t}, [sp, #12]",
            "str {a0}, [{t}], #4",
            "str {a1}, [{t}], #4",
            "str {a2}, [{t}], #4",
            "str {a3}, [{t}], #4",
            "str {t}, [sp, #12]",
            "ldr {t}, [sp, #20]",
            "add {p0}, {p0}, {t}",
            "ldr {t}, [sp, #16]",
            "subs {t}, {t}, #1",
            "str {t}, [sp, #16]",
            "bne 6b",
            "add sp, sp, #24",
            a0 = inout(reg) sums => _,
            a1 = inout(reg) blocks => _,
            a2 = inout(reg) advance => _,
            a3 = out(reg) _,
            p0 = inout(reg) q => _,
            p2 = out(reg) _,
            s = in(reg) stride,
            xp = inout(reg) x => _,
            t = inout(reg) end32 => _,
            w = inout(reg) end4 => _,
            xe = out(reg) _,
            xo = out(reg) _,
        );
    }
}

/// The exact row sums with the DSP extension: `rows4_sums` for the whole blocks of four rows
/// (each input word loaded and sign-extended once for four rows, about 1.47 instructions per
/// multiply-accumulate), then the `cols % 4` last columns' products added per row, and
/// [`dot_i8_dsp`] for the `rows % 4` last rows. Bit for bit
/// [`crate::kernels::reference::dot_rows_i8`]. Inlined (with its assembly loop) into the
/// caller, `matvec`'s int8 path, so that it adds no stack frame of its own.
#[inline(always)]
pub fn dot_rows_i8_dsp(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    let n4 = cols & !3;
    let (Some((x4, x_tail)), true) = (x.split_at_checked(n4), cols != 0) else {
        crate::kernels::dot_rows_i8_with(dot_i8_dsp, q, cols, xq, sums);
        return;
    };
    let n = sums.len().min(q.len() / cols);
    let full = n & !3;
    let (s4, s_rest) = sums.split_at_mut(full.min(sums.len()));
    // `full · cols ≤ q.len()`: no overflow.
    let q_rest = q.get(full * cols..).unwrap_or(&[]);
    if full >= 4 && s4.len() == full {
        // SAFETY: `full / 4 ≥ 1` blocks; the rows `r < full ≤ q.len() / cols` lie in `q`, each
        // with `cols ≥ n4` bytes; `x4` is `n4 = cols & !3 ≤ cols` bytes; `s4` holds `full` i32s.
        unsafe { rows4_sums(q.as_ptr(), cols, x4.as_ptr(), n4, full / 4, s4.as_mut_ptr()) };
        if !x_tail.is_empty() {
            for (a, row) in s4.iter_mut().zip(q.chunks_exact(cols)) {
                let t = crate::kernels::reference::dot_i8(row.get(n4..).unwrap_or(&[]), x_tail);
                *a = a.wrapping_add(t);
            }
        }
    }
    for (a, row) in s_rest.iter_mut().zip(q_rest.chunks_exact(cols)) {
        *a = dot_i8_dsp(row, x);
    }
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
