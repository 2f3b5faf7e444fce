//! Placeholder workload (until the runnel runtime is wired in): an int8
//! "embedding + recurrent matrix-vector" loop over static arrays.
//!
//! Per step `t`: `x = EMB[TOKENS[t]]`, `acc[i] = sum_j W[i][j]*x[j] + (h[i] >> 1)`,
//! `h = acc`, `out[i] = acc[i] as f32 / 128`. Everything before the final
//! conversion is integer math, so the result is bit-exact on every target and
//! on the host; [`EXPECTED_RUN_CHECKSUM`] is checked by a host unit test and
//! by the firmware itself.

use crate::demo::Workload;

pub const DIM_IN: usize = 64;
pub const DIM_OUT: usize = 16;
pub const VOCAB: usize = 32;
pub const STEPS: usize = 24;

/// `demo::run`'s `run_checksum` for this workload.
pub const EXPECTED_RUN_CHECKSUM: u32 = 0xc716_c812;

const fn lcg_i8_table<const R: usize, const C: usize>(seed: u32) -> [[i8; C]; R] {
    let mut t = [[0i8; C]; R];
    let mut s = seed;
    let mut r = 0;
    while r < R {
        let mut c = 0;
        while c < C {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            t[r][c] = (s >> 24) as u8 as i8;
            c += 1;
        }
        r += 1;
    }
    t
}

static W: [[i8; DIM_IN]; DIM_OUT] = lcg_i8_table(0x1234_5678);
static EMB: [[i8; DIM_IN]; VOCAB] = lcg_i8_table(0x9abc_def0);

/// Token stream of the demo.
pub fn token(t: usize) -> usize {
    (t * 7 + 3) % VOCAB
}

pub struct Placeholder {
    h: [i32; DIM_OUT],
}

impl Default for Placeholder {
    fn default() -> Self {
        Self::new()
    }
}

impl Placeholder {
    pub const fn new() -> Self {
        Self { h: [0; DIM_OUT] }
    }
}

#[derive(Debug, defmt::Format)]
pub enum Never {}

impl Workload for Placeholder {
    type Error = Never;
    type Out = f32;

    fn output_dim(&self) -> usize {
        DIM_OUT
    }

    fn steps(&self) -> usize {
        STEPS
    }

    fn step(&mut self, step: usize, out: &mut [f32]) -> Result<(), Never> {
        // black_box: keep the compiler from folding the static tables away.
        let x = core::hint::black_box(&EMB[token(step)]);
        let w = core::hint::black_box(&W);
        for i in 0..DIM_OUT {
            let mut acc: i32 = self.h[i] >> 1;
            for j in 0..DIM_IN {
                acc += w[i][j] as i32 * x[j] as i32;
            }
            self.h[i] = acc;
            out[i] = acc as f32 / 128.0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{fnv1a_f32, Fnv1a};

    #[test]
    fn run_checksum_matches_constant() {
        let mut p = Placeholder::new();
        let mut out = [0f32; DIM_OUT];
        let mut h = Fnv1a::new();
        for t in 0..STEPS {
            p.step(t, &mut out).unwrap();
            h.write_u32(fnv1a_f32(&out));
        }
        assert_eq!(
            h.finish(),
            EXPECTED_RUN_CHECKSUM,
            "got {:#010x}",
            h.finish()
        );
    }
}
