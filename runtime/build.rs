//! Compile-time kernel selection that `cfg(target_feature)` cannot express on stable Rust:
//! Arm's `dsp` feature is not visible to `cfg` on stable, but every ARMv7E-M core
//! (`thumbv7em-*`: Cortex-M4, M7) has the DSP extension (SXTB16, SMLAD).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(runnel_arm_dsp)");
    println!("cargo::rustc-check-cfg=cfg(runnel_arm_fp16)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") {
        println!("cargo::rustc-cfg=runnel_arm_dsp");
        // The hard-float ARMv7E-M targets have an FPv4/FPv5 FPU, whose VCVTB converts f16 → f32.
        if target.ends_with("eabihf") {
            println!("cargo::rustc-cfg=runnel_arm_fp16");
        }
    }
}
