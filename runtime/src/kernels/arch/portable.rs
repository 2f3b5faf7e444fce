//! Targets without a specialised kernel (e.g. Cortex-M0+/M3, AArch64): the plain-Rust blocking of
//! [`super::riscv32`] — four rows × eight columns per iteration, each input byte loaded once per
//! four rows — which any compiler turns into loads and multiply-accumulates.

fixed_isa!(
    "portable-blocked",
    super::riscv32::dot_i8_unrolled,
    super::riscv32::dot_rows_i8_blocked
);
