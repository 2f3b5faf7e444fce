//! Targets without a specialised kernel (e.g. Cortex-M0+/M3, AArch64): the reference kernels.

fixed_isa!("portable", crate::kernels::reference::dot_i8);
