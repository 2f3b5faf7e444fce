//! Architecture-specific kernels, one module per instruction set, chosen at compile time by
//! `cfg(target_feature = …)` / target (see `kernels::isa`); run-time CPU detection only with the
//! `std` feature. Every module exports the same items — `VARIANT`, `variant()`, `dot_i8`,
//! `rows_i8` — and each returns exactly what [`super::reference`] returns (checked by the shared
//! harness in `kernels::tests`).

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(runnel_arm_dsp)]
pub mod arm;

// Plain Rust, so the kernel harness also runs it on the host.
#[cfg(any(target_arch = "riscv32", test))]
pub mod riscv32;

#[cfg(not(any(runnel_arm_dsp, target_arch = "riscv32", target_arch = "x86_64")))]
pub mod portable;
