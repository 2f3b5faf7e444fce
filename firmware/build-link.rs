//! Shared by the board crates' build scripts (`#[path = "…/build-link.rs"] mod link;`): link a
//! binary with the calling package's `memory.x`.
//!
//! The search path is given with `rustc-link-arg-bins` (not `rustc-link-search`) so it does not
//! leak into the board crates that use a package as a library: they bring their own memory.x.
use std::{env, fs, path::PathBuf};

/// Copies `memory.x` into `OUT_DIR/<board>` and passes the cortex-m-rt / riscv-rt and defmt
/// linker scripts to the package's binaries (and examples, when it has any).
pub fn memory_x(board: &str) {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join(board);
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
