//! What both proofs (`runnel-nopanic`, `runnel-nofloat`) share: the buffers their entry points
//! run on, and the end of the run.

use core::hint::black_box;

/// Bytes of the blob slot, the arena, the frame and the snapshot buffer.
/// The sizes are irrelevant to the proofs: every length reaches the runtime
/// through `black_box`, as unknown to the optimiser as a real flash region.
pub const BLOB: usize = 1024;
pub const ARENA: usize = 4096;

/// The blob slot, two arenas, a snapshot buffer, a frame of `F` and an output row of `O`.
#[repr(C, align(16))]
pub struct Buffers<F, O> {
    pub blob: [u8; BLOB],
    pub arena: [u8; ARENA],
    pub arena2: [u8; ARENA],
    pub snap: [u8; ARENA],
    pub frame: [F; 64],
    pub out: [O; 64],
}

impl<F: Copy, O: Copy> Buffers<F, O> {
    /// Zeroed buffers, the frame and output filled with `f` and `o`.
    pub const fn new(f: F, o: O) -> Self {
        Buffers {
            blob: [0; BLOB],
            arena: [0; ARENA],
            arena2: [0; ARENA],
            snap: [0; ARENA],
            frame: [f; 64],
            out: [o; 64],
        }
    }
}

/// Keeps `status` observable and never returns.
pub fn finish(status: u32) -> ! {
    black_box(status);
    loop {
        core::hint::spin_loop();
    }
}

/// The reset entry point of either architecture, calling `$entry`.
macro_rules! main_calls {
    ($entry:ident) => {
        #[cfg(target_arch = "arm")]
        #[cortex_m_rt::entry]
        fn main() -> ! {
            $entry()
        }

        #[cfg(target_arch = "riscv32")]
        #[riscv_rt::entry]
        fn main() -> ! {
            $entry()
        }
    };
}
pub(crate) use main_calls;
