//! Valid blobs converted from fixture models, changed where the structure lives (header fields,
//! block and tensor entries, single bytes, truncation) with the checksum recomputed, so that the
//! changes reach the checks behind the CRC; then parsed and stepped like `blob`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runnel_fuzz::Plan;

fuzz_target!(|plan: Plan| {
    runnel_test_support::exercise(&plan.apply());
});
