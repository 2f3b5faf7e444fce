//! Raw bytes as a `.rnl` blob: `Model::from_bytes` must return an error or a model, and a model
//! must step (tokens or frames, right and wrong input kinds) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    runnel_test_support::exercise(data);
});
