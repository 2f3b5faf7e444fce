//! Malformed inputs give errors, never panics: truncated and bit-flipped blobs (with and without
//! a recomputed checksum, so the structural checks behind the CRC are exercised too), and
//! malformed safetensors models.

use proptest::prelude::*;
use runnel::{DType, Model};
use runnel_converter::{AlignedBytes, ConvertOptions};
use runnel_tests::*;

fn blobs() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for f in fixtures() {
        for (w, kv) in [
            (DType::F32, DType::F32),
            (DType::F16, DType::F16),
            (DType::I8, DType::I8),
        ] {
            let c =
                runnel_converter::convert(&f.model, &ConvertOptions { weights: w, kv }).unwrap();
            v.push((format!("{} {}/{}", f.name, w.name(), kv.name()), c.blob));
        }
    }
    v
}

#[test]
fn every_truncation_is_an_error() {
    for (name, b) in blobs() {
        // Every cut inside the header and tables, then every 7th byte and the last 64.
        let n = b.len();
        let cuts = (0..n.min(4096))
            .chain((4096..n).step_by(7))
            .chain(n.saturating_sub(64)..n);
        for cut in cuts {
            let a = AlignedBytes::new(&b[..cut]);
            assert!(
                Model::from_bytes(a.as_bytes()).is_err(),
                "{name}: truncated to {cut} bytes was accepted"
            );
        }
        assert!(exercise(&b), "{name}: intact blob rejected");
    }
}

#[test]
fn misaligned_blob_is_an_error() {
    let (_, b) = &blobs()[0];
    let mut buf = vec![0u8; b.len() + 1];
    let a = AlignedBytes::new(&{
        buf[1..].copy_from_slice(b);
        buf
    });
    assert_eq!(
        Model::from_bytes(&a.as_bytes()[1..]).err(),
        Some(runnel::Error::Misaligned { required: 4 })
    );
}

#[test]
fn bad_magic_version_checksum_are_named() {
    let (_, b) = &blobs()[0];
    let mut x = b.clone();
    x[0] = b'X';
    assert_eq!(
        Model::from_bytes(AlignedBytes::new(&x).as_bytes()).err(),
        Some(runnel::Error::BadMagic)
    );
    let mut x = b.clone();
    x[4] = 99;
    fix_crc(&mut x);
    assert!(matches!(
        Model::from_bytes(AlignedBytes::new(&x).as_bytes()),
        Err(runnel::Error::UnsupportedVersion {
            found: 99,
            supported: runnel::format::VERSION
        })
    ));
    // A blob of the format before the contract's §6 additions (version 1) is refused with a
    // message that says to re-run `runnel convert`.
    let mut x = b.clone();
    x[4] = 1;
    fix_crc(&mut x);
    let e = Model::from_bytes(AlignedBytes::new(&x).as_bytes()).unwrap_err();
    assert_eq!(
        e,
        runnel::Error::UnsupportedVersion {
            found: 1,
            supported: 2
        }
    );
    assert!(e.to_string().contains("re-run `runnel convert`"), "{e}");
    let mut x = b.clone();
    let last = x.len() - 10;
    x[last] ^= 1;
    assert!(matches!(
        Model::from_bytes(AlignedBytes::new(&x).as_bytes()),
        Err(runnel::Error::BadChecksum { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

    /// Random byte flips: the checksum catches them.
    #[test]
    fn byte_flips_are_errors(which in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let all = BLOBS.with(|b| b.clone());
        let (name, b) = &all[which.index(all.len())];
        let mut x = b.clone();
        for (i, v) in &flips {
            let at = i.index(x.len());
            x[at] ^= v;
        }
        prop_assert!(Model::from_bytes(AlignedBytes::new(&x).as_bytes()).is_err(), "{} accepted a flipped blob", name);
    }

    /// Random byte changes with the checksum recomputed, aimed at the header and tables: the
    /// structural checks reject or the model runs without panicking.
    #[test]
    fn structural_mutations_never_panic(which in any::<prop::sample::Index>(), muts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..6)) {
        let all = BLOBS.with(|b| b.clone());
        let (_, b) = &all[which.index(all.len())];
        let mut x = b.clone();
        let data_off = u32::from_le_bytes([x[52], x[53], x[54], x[55]]) as usize;
        for (i, v, in_tables) in &muts {
            let span = if *in_tables { data_off.min(x.len() - 4) } else { x.len() - 4 };
            let at = i.index(span);
            x[at] = *v;
        }
        fix_crc(&mut x);
        exercise(&x);
    }

    /// Truncated and mutated safetensors models give converter errors, never panics.
    #[test]
    fn malformed_safetensors_never_panic(which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>(), muts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
        let all = MODELS.with(|m| m.clone());
        let m = &all[which.index(all.len())];
        let mut x = m[..cut.index(m.len() + 1)].to_vec();
        if !x.is_empty() {
            for (i, v) in &muts {
                let at = i.index(x.len().min(2048));
                x[at] = *v;
            }
        }
        if let Ok(c) = runnel_converter::convert(&x, &ConvertOptions::default()) {
            prop_assert!(exercise(&c.blob));
        }
    }
}

thread_local! {
    static BLOBS: Vec<(String, Vec<u8>)> = blobs();
    static MODELS: Vec<Vec<u8>> = fixtures().into_iter().map(|f| f.model).collect();
}

#[test]
fn malformed_models_give_named_errors() {
    let dir = malformed_dir();
    let expected = malformed_cases();
    assert!(expected.len() >= 9);
    for (file, needle) in &expected {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        match runnel_converter::convert(&bytes, &ConvertOptions::default()) {
            Ok(_) => panic!("{file}: accepted"),
            Err(e) => assert!(
                e.to_string().contains(needle),
                "{file}: error `{e}` does not name `{needle}`"
            ),
        }
    }
}

/// The RoPE table is computed by the converter, not read from the model file; a blob whose
/// table holds something no cosine or sine can be is refused, naming the table.
#[test]
fn a_rope_table_out_of_range_is_refused() {
    let f = fixture("gqa_rope");
    let b = blob(&f.model, runnel::DType::F32, runnel::DType::F32);
    let m = Model::from_bytes(b.as_bytes()).unwrap();
    let Some(runnel::BlockSpec::Attention(a)) = m.blocks().nth(1) else {
        panic!("block 1 is attention")
    };
    // Row 1 (distance 1), frequency 1: cos(θ^(−2/D)), a value found once in the blob.
    let needle = a.rope_value(a.head_dim() + 1).to_le_bytes();
    let mut x = b.as_bytes().to_vec();
    let at = x.windows(4).position(|w| w == needle).unwrap();
    x[at..at + 4].copy_from_slice(&2.0f32.to_le_bytes());
    fix_crc(&mut x);
    let e = Model::from_bytes(AlignedBytes::new(&x).as_bytes()).unwrap_err();
    assert!(e.to_string().contains("blocks.1.attn.rope_cos_sin"), "{e}");
}
