//! Link with the memory map of the QEMU board of each architecture (the same
//! `memory.x` files the demo firmware uses).
use std::{env, fs, path::PathBuf};

fn main() {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let memory = match arch.as_str() {
        "arm" => "../cortex-m/memory.x",
        "riscv32" => "../riscv/memory.x",
        _ => return, // a host `cargo check` of the workspace: nothing to link
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    fs::copy(memory, out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-arg-bins=-L{}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rerun-if-changed={memory}");
    println!("cargo:rerun-if-changed=build.rs");
}
