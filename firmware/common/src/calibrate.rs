//! Checks a board's instruction counter under QEMU (`-icount shift=0`): times loops with a known
//! instruction count and logs measured vs. expected. Shared by the boards' calibration examples.

use crate::InstrCounter;

/// Times `spin(n)` — which must execute `2·n` instructions plus a constant call overhead — for
/// n = 10³ … 10⁷ and logs each measurement. Returns whether every one is within `tolerance`
/// instructions of `2·n`.
pub fn calibrate<C: InstrCounter>(c: &mut C, spin: fn(u32), tolerance: u64) -> bool {
    // overhead of two back-to-back reads
    let a = c.now();
    let b = c.now();
    defmt::info!("empty interval: {=u64} instructions", b - a);
    let mut ok = true;
    for &n in &[1_000u32, 10_000, 100_000, 1_000_000, 10_000_000] {
        let t0 = c.now();
        spin(n);
        let t1 = c.now();
        let measured = t1 - t0;
        let expected = 2 * n as u64;
        let err = measured as i64 - expected as i64;
        defmt::info!(
            "loop n={=u32}: measured={=u64} expected~{=u64} diff={=i64}",
            n,
            measured,
            expected,
            err
        );
        if err.unsigned_abs() > tolerance {
            ok = false;
        }
    }
    ok
}
