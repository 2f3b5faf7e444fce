//! Link the Pico 2 binary with this package's memory.x.
#[path = "../../build-link.rs"]
mod link;

fn main() {
    link::memory_x("rp2350-riscv");
    println!("cargo:rerun-if-changed=../../build-link.rs");
}
