//! `include/runnel.h` is generated from `src/` by cbindgen and committed. This test fails
//! when the committed header is out of date; `RUNNEL_BLESS=1 cargo test -p runnel-capi --test
//! header` rewrites it.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    // The crate's sources, parsed directly from `src/lib.rs` (cbindgen follows its `mod`
    // declarations into the module files): no `cargo metadata` (which could wait on the cargo
    // lock this test runs under).
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen failed");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = dir.join("include/runnel.h");
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    if std::env::var_os("RUNNEL_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write include/runnel.h");
        eprintln!("rewrote {}", path.display());
        return;
    }
    panic!(
        "{} is out of date with src/; regenerate it with\n\n    \
         RUNNEL_BLESS=1 cargo test -p runnel-capi --test header\n\nand commit it",
        path.display()
    );
}
