//! Architecture-specific kernels, chosen at compile time by `cfg(target_feature = …)`; runtime CPU
//! detection only with the `std` feature. Each returns exactly what [`super::reference`] returns.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(runnel_arm_dsp)]
pub mod arm;

// Plain Rust, so the kernel harness also runs it on the host.
#[cfg(any(target_arch = "riscv32", test))]
pub mod riscv32;
