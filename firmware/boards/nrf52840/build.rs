//! Link the nRF52840 binary with this package's memory.x.
//!
//! The search path is given with `rustc-link-arg-bins` (not
//! `rustc-link-search`) so it does not leak into the board crates that use
//! this package as a library: they bring their own memory.x.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("nrf52840");
    fs::create_dir_all(&out).unwrap();
    fs::copy("memory.x", out.join("memory.x")).unwrap();
    let kinds: &[&str] = if std::path::Path::new("examples").is_dir() {
        &["bins", "examples"]
    } else {
        &["bins"] // cargo rejects rustc-link-arg-examples without examples
    };
    for kind in kinds {
        println!("cargo:rustc-link-arg-{kind}=-L{}", out.display());
        println!("cargo:rustc-link-arg-{kind}=--nmagic");
        println!("cargo:rustc-link-arg-{kind}=-Tlink.x");
        println!("cargo:rustc-link-arg-{kind}=-Tdefmt.x");
    }
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
