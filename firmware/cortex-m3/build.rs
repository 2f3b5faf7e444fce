//! Link the QEMU binary with this package's memory.x.
#[path = "../build-link.rs"]
mod link;

fn main() {
    link::memory_x("mps2-an385");
    println!("cargo:rerun-if-changed=../build-link.rs");
}
