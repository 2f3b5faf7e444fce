//! ARMv7E-M kernels (Cortex-M4/M7): the DSP extension's dual 16-bit multiply-accumulate.

/// `Σ a[i]·b[i]` four lanes at a time: one 32-bit load per operand, `SXTB16` (twice) to split the
/// four bytes into two pairs of i16, `SMLAD` (twice) to multiply-accumulate both pairs.
/// Exact, hence equal to [`crate::kernels::reference::dot_i8`].
pub fn dot_i8_dsp(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a4, at) = a[..n].split_at(n & !3);
    let (b4, bt) = b[..n].split_at(n & !3);
    let mut acc: i32 = 0;
    for (ca, cb) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
        let wa = u32::from_le_bytes([ca[0] as u8, ca[1] as u8, ca[2] as u8, ca[3] as u8]);
        let wb = u32::from_le_bytes([cb[0] as u8, cb[1] as u8, cb[2] as u8, cb[3] as u8]);
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
