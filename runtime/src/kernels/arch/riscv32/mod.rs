//! RV32 kernels. RV32IMAC has no packed-SIMD instructions, so the gain here is only in the loop
//! structure: the single dot product does four products per iteration; the matrix kernel
//! ([`rows_i8_blocked`]) runs four rows × eight columns per iteration, so each input byte is
//! loaded once per four rows and the loop overhead is shared by 32 products (`LB`, `MUL`, `ADD`
//! per weight plus a quarter `LB` for the input).
//!
//! Plain Rust, so the shared harness also runs it on the host (and under Miri on i686).

fixed_isa!("riscv32-unrolled", dot_i8_unrolled, rows_i8_blocked);

/// `Σ a[i]·b[i]`, four products per iteration. Exact, hence equal to
/// [`crate::kernels::reference::dot_i8`].
pub fn dot_i8_unrolled(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = 0i32;
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        acc = acc.wrapping_add(
            (x[0] as i32 * y[0] as i32)
                .wrapping_add(x[1] as i32 * y[1] as i32)
                .wrapping_add(x[2] as i32 * y[2] as i32)
                .wrapping_add(x[3] as i32 * y[3] as i32),
        );
    }
    // The shorter operand's 0–3 remaining elements (and, when the lengths differ, the longer
    // operand's matching ones): `zip` pairs them from the same index as the reference does.
    let n = a.len().min(b.len());
    let done = n & !3;
    let ta = a.get(done..n).unwrap_or(&[]);
    let tb = b.get(done..n).unwrap_or(&[]);
    acc.wrapping_add(crate::kernels::reference::dot_i8(ta, tb))
}

/// Columns per iteration of [`rows_i8_blocked`].
const COLS: usize = 8;

/// The int8 rows, four at a time: for each block of four rows the inner loop takes eight
/// columns per iteration, loads each input byte once for the four rows and keeps four
/// accumulators in registers. The `cols % 8` last columns and the `rows % 4` last rows run
/// the plain loops. Bit for bit [`crate::kernels::reference::rows_i8`] (integer sums are exact;
/// the rescale is the same expression).
pub fn rows_i8_blocked(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    let Some(block) = cols.checked_mul(4) else {
        return;
    };
    if cols == 0 || block == 0 {
        crate::kernels::rows_i8_with(dot_i8_unrolled, q, scales, cols, xq, sx, bias, out);
        return;
    }
    let n = out
        .len()
        .min(scales.len())
        .min(bias.len())
        .min(q.len() / cols);
    let full = n & !3;
    let (out4, out_rest) = out.split_at_mut(full.min(out.len()));
    let (s4, s_rest) = scales.split_at(full.min(scales.len()));
    let (b4, b_rest) = bias.split_at(full.min(bias.len()));
    let (x8, x_tail) = x.split_at(cols & !(COLS - 1));
    // `full · cols ≤ q.len()`: no overflow.
    let q_rest = q.get(full * cols..).unwrap_or(&[]);
    for (((o, s), b), rows) in out4
        .chunks_exact_mut(4)
        .zip(s4.chunks_exact(4))
        .zip(b4.chunks_exact(4))
        .zip(q.chunks_exact(block))
    {
        let mut rs = rows.chunks_exact(cols);
        let (Some(r0), Some(r1), Some(r2), Some(r3)) = (rs.next(), rs.next(), rs.next(), rs.next())
        else {
            return;
        };
        let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
        for ((((c0, c1), c2), c3), cx) in r0
            .chunks_exact(COLS)
            .zip(r1.chunks_exact(COLS))
            .zip(r2.chunks_exact(COLS))
            .zip(r3.chunks_exact(COLS))
            .zip(x8.chunks_exact(COLS))
        {
            for j in 0..COLS {
                let xv = cx[j] as i32;
                a0 = a0.wrapping_add(c0[j] as i32 * xv);
                a1 = a1.wrapping_add(c1[j] as i32 * xv);
                a2 = a2.wrapping_add(c2[j] as i32 * xv);
                a3 = a3.wrapping_add(c3[j] as i32 * xv);
            }
        }
        let t = x8.len();
        let tail = |r: &[i8]| crate::kernels::reference::dot_i8(r.get(t..).unwrap_or(&[]), x_tail);
        let acc = [
            a0.wrapping_add(tail(r0)),
            a1.wrapping_add(tail(r1)),
            a2.wrapping_add(tail(r2)),
            a3.wrapping_add(tail(r3)),
        ];
        for (((o, &a), &s), &b) in o.iter_mut().zip(&acc).zip(s).zip(b) {
            *o = a as f32 * (s * sx) + b;
        }
    }
    crate::kernels::rows_i8_with(
        dot_i8_unrolled,
        q_rest,
        s_rest,
        cols,
        x,
        sx,
        b_rest,
        out_rest,
    );
}
