//! runnel demo firmware for the Raspberry Pi Pico 2 in RISC-V mode
//! (RP2350, Hazard3 RV32IMAC cores, running from XIP flash on the boot ROM's
//! default clocks). Counts are retired instructions (`minstret`).
#![no_std]
#![no_main]

#[cfg(all(feature = "rtt", feature = "semihosting"))]
compile_error!("enable exactly one of the features `rtt` and `semihosting`");
#[cfg(feature = "rtt")]
use defmt_rtt as _;
#[cfg(feature = "semihosting")]
use defmt_semihosting as _;

use runnel_fw_common::stack;
use runnel_fw_riscv::{exit, stack_region, MinstretCounter};

/// RP2350 IMAGE_DEF block (datasheet §5.9 "Metadata block details"): one
/// IMAGE_TYPE item = EXE | security S | CPU RISC-V | chip RP2350, then the
/// LAST item (size 1), a zero link (a loop of just this block) and the end
/// marker. Must be within the first 4 KB of flash (asserted in memory.x).
#[no_mangle]
#[used]
#[link_section = ".trap.runnel_image_def"]
pub static RUNNEL_IMAGE_DEF: [u32; 5] = [
    0xffff_ded3, // PICOBIN_BLOCK_MARKER_START
    // item 0x42 IMAGE_TYPE, size 1 word, flags:
    //   EXE 0x0001 | SECURITY_S 0x0020 | CPU_RISCV 0x0100 | CHIP_RP2350 0x1000
    0x1121_0142,
    0x0000_01ff, // PICOBIN_BLOCK_ITEM_2BS_LAST, block size 1 word
    0x0000_0000, // relative link to the next block: 0 = this block
    0xab12_3579, // PICOBIN_BLOCK_MARKER_END
];

#[riscv_rt::entry]
fn main() -> ! {
    let region = stack_region();
    // SAFETY: `region` is this core's only stack.
    unsafe { stack::paint(region) };
    let mut counter = MinstretCounter::start();
    defmt::info!("runnel-fw board=rp2350 cpu=hazard3-rv32imac");

    exit(runnel_fw_app::run(&mut counter, region))
}
