//! Link the nRF52840 binary with this package's memory.x.
#[path = "../../build-link.rs"]
mod link;

fn main() {
    link::memory_x("nrf52840");
    println!("cargo:rerun-if-changed=../../build-link.rs");
}
