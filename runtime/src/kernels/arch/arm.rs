//! ARMv7E-M kernels (Cortex-M4/M7): the DSP extension's dual 16-bit multiply-accumulate.

fixed_isa!("arm-dsp", dot_i8_dsp);

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

fn word(c: &[i8]) -> u32 {
    u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8])
}

/// `Σ a[i]·b[i]` with the DSP extension, eight bytes per iteration (two 32-bit loads per
/// operand, four `SMLAD`s), then four, then the plain tail. Exact, hence equal to
/// [`crate::kernels::reference::dot_i8`].
pub fn dot_i8_dsp(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a8, a_rest) = a[..n].split_at(n & !7);
    let (b8, b_rest) = b[..n].split_at(n & !7);
    let mut acc: i32 = 0;
    for (ca, cb) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        acc = mac4(acc, word(&ca[..4]), word(&cb[..4]));
        acc = mac4(acc, word(&ca[4..]), word(&cb[4..]));
    }
    let (a4, at) = a_rest.split_at(a_rest.len() & !3);
    let (b4, bt) = b_rest.split_at(b_rest.len() & !3);
    if !a4.is_empty() {
        acc = mac4(acc, word(a4), word(b4));
    }
    acc.wrapping_add(crate::kernels::reference::dot_i8(at, bt))
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
