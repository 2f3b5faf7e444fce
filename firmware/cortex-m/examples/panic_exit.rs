//! Self-test of the failure path: logs, panics, and must make QEMU exit with
//! status 101 (runnel_fw_cortex_m::EXIT_PANIC) after logging "panic at ...".
#![no_std]
#![no_main]

use defmt_semihosting as _;

#[cortex_m_rt::entry]
fn main() -> ! {
    defmt::info!("about to panic");
    let v = core::hint::black_box(3u32);
    if v == 3 {
        panic!("deliberate");
    }
    runnel_fw_cortex_m::exit(0)
}
