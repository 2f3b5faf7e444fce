//! Bytes as a safetensors model for `runnel_converter::convert` (int8 and f32 weights), and as the
//! JSON text of `runnel.config`: errors are fine, panics are not, and whatever the converter
//! writes the runtime must accept and run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runnel::layout::Layout;
use runnel::DType;
use runnel_converter::{convert, Config, ConvertOptions};

fuzz_target!(|data: &[u8]| {
    let f32_opts = ConvertOptions {
        weights: DType::F32,
        kv: DType::F32,
    };
    for opts in [ConvertOptions::default(), f32_opts] {
        if let Ok(c) = convert(data, &opts) {
            assert!(
                runnel_test_support::exercise(&c.blob),
                "the runtime rejects a blob the converter wrote"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cfg) = Config::from_json(text) {
            let _ = cfg.final_width();
            let _ = Layout::compute(
                &cfg.dims(),
                cfg.blocks.iter().copied(),
                DType::I8,
                DType::I8,
                true,
            );
        }
    }
});
