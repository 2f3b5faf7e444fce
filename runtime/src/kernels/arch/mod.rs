//! Architecture-specific kernels, one module per instruction set, chosen at compile time by
//! `cfg(target_feature = …)` / target (see `kernels::isa`); run-time CPU detection only with the
//! `std` feature. Every module exports the same items — `VARIANT`, `variant()`, `dot_i8`,
//! `dot_rows_i8` and `rows_i8` (a matrix-level kernel, or the generic row loop over the dot
//! product), `dot_rows_bias_i8` (its own, or the row sums then the bias) — and each returns
//! exactly what [`super::reference`] returns (checked by the shared harness in `kernels::tests`
//! on the host, and on the target by the firmware bench for the Arm assembly).

/// The items every instruction-set module with a fixed (build-time) choice exports: its variant
/// name, its int8 dot product as `dot_i8`, and `rows_i8` over it. (x86_64 writes its own: it may
/// choose at run time.)
#[allow(unused_macros)]
macro_rules! fixed_isa {
    ($name:literal, $dot:path) => {
        fixed_isa!(@common $name, $dot);
        fixed_isa!(@bias_via dot_rows_i8);

        /// The exact row sums, one [`dot_i8`] per row.
        pub fn dot_rows_i8(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
            crate::kernels::dot_rows_i8_with(dot_i8, q, cols, xq, sums)
        }

        /// [`crate::kernels::rows_i8_with`] over [`dot_i8`], inlined into the caller's matvec.
        #[inline(always)]
        pub fn rows_i8(
            q: &[i8],
            scales: &[f32],
            cols: usize,
            xq: &[i8],
            sx: f32,
            bias: &[f32],
            out: &mut [f32],
        ) {
            crate::kernels::rows_i8_with(dot_i8, q, scales, cols, xq, sx, bias, out)
        }
    };
    ($name:literal, $dot:path, $dot_rows:path) => {
        fixed_isa!($name, $dot, $dot_rows, @bias_via);
    };
    ($name:literal, $dot:path, $dot_rows:path, @bias_via) => {
        fixed_isa!(@rows $name, $dot, $dot_rows);
        fixed_isa!(@bias_via dot_rows_i8);
    };
    ($name:literal, $dot:path, $dot_rows:path, $dot_rows_bias:path) => {
        fixed_isa!(@rows $name, $dot, $dot_rows);

        /// The matrix-level kernel's row sums plus a bias, starting from the bias.
        pub use $dot_rows_bias as dot_rows_bias_i8;
    };
    (@bias_via $dot_rows:ident) => {
        /// [`crate::kernels::dot_rows_bias_i8_via`] over [`dot_rows_i8`].
        #[inline(always)]
        pub fn dot_rows_bias_i8(q: &[i8], cols: usize, xq: &[i8], bias: &[i32], sums: &mut [i32]) {
            crate::kernels::dot_rows_bias_i8_via($dot_rows, q, cols, xq, bias, sums)
        }
    };
    (@rows $name:literal, $dot:path, $dot_rows:path) => {
        fixed_isa!(@common $name, $dot);

        /// The matrix-level int8 kernel of this instruction set: the exact row sums.
        pub use $dot_rows as dot_rows_i8;

        /// [`crate::kernels::rows_i8_via_sums`] over [`dot_rows_i8`].
        #[inline(always)]
        pub fn rows_i8(
            q: &[i8],
            scales: &[f32],
            cols: usize,
            xq: &[i8],
            sx: f32,
            bias: &[f32],
            out: &mut [f32],
        ) {
            crate::kernels::rows_i8_via_sums(dot_rows_i8, q, scales, cols, xq, sx, bias, out)
        }
    };
    (@common $name:literal, $dot:path) => {
        /// This module's variant name.
        pub const VARIANT: &str = $name;

        /// [`VARIANT`].
        pub fn variant() -> &'static str {
            VARIANT
        }

        /// The int8 dot product of this instruction set.
        pub use $dot as dot_i8;
    };
}

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(runnel_arm_dsp)]
pub mod arm;

// Plain Rust (its assembly inner loop only on RV32), so the kernel harness also runs it on the
// host, and the portable module reuses its blocking.
#[cfg(any(
    target_arch = "riscv32",
    test,
    not(any(runnel_arm_dsp, target_arch = "x86_64"))
))]
pub mod riscv32;

#[cfg(not(any(runnel_arm_dsp, target_arch = "riscv32", target_arch = "x86_64")))]
pub mod portable;
