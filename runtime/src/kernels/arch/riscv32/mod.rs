//! RV32 kernels. RV32IMAC has no packed-SIMD instructions, so the gain here is only in the loop
//! structure: the single dot product does four products per iteration; the matrix kernel
//! ([`dot_rows_i8_blocked`]) runs four rows × eight columns per iteration, so each input byte is
//! loaded once per four rows and the loop overhead is shared by 32 products (`LB`, `MUL`, `ADD`
//! per weight plus a quarter `LB` for the input).
//!
//! Plain Rust, so the shared harness also runs it on the host (and under Miri on i686).

fixed_isa!("riscv32-unrolled", dot_i8_unrolled, dot_rows_i8_blocked);

/// `Σ a[i]·b[i]`, four products per iteration. Exact, hence equal to
/// [`crate::kernels::reference::dot_i8`].
pub fn dot_i8_unrolled(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (Some(a), Some(b)) = (a.get(..n), b.get(..n)) else {
        return 0;
    };
    let (Some((a4, at)), Some((b4, bt))) = (a.split_at_checked(n & !3), b.split_at_checked(n & !3))
    else {
        return 0;
    };
    let mut acc = 0i32;
    for (x, y) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
        acc = acc.wrapping_add(
            (x[0] as i32 * y[0] as i32)
                .wrapping_add(x[1] as i32 * y[1] as i32)
                .wrapping_add(x[2] as i32 * y[2] as i32)
                .wrapping_add(x[3] as i32 * y[3] as i32),
        );
    }
    acc.wrapping_add(crate::kernels::reference::dot_i8(at, bt))
}

/// Columns per iteration of [`dot_rows_i8_blocked`].
const COLS: usize = 8;

/// The exact row sums, four rows at a time: for each block of four rows the inner loop
/// (`block4`) takes eight columns per iteration, loads each input byte once for the four rows
/// and keeps four accumulators in registers. The `cols % 8` last columns and the `rows % 4` last
/// rows run the plain loops. Bit for bit [`crate::kernels::reference::dot_rows_i8`]. Inlined
/// into the caller (`matvec`'s int8 path), so that it adds no stack frame of its own.
#[inline(always)]
pub fn dot_rows_i8_blocked(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    if cols == 0 {
        // (validated models have no empty rows; this keeps the chunking below total)
        sums.fill(0);
        return;
    }
    let Some(block) = cols.checked_mul(4) else {
        return;
    };
    let (Some((x8, x_tail)), true) = (x.split_at_checked(cols & !(COLS - 1)), block != 0) else {
        crate::kernels::dot_rows_i8_with(dot_i8_unrolled, q, cols, xq, sums);
        return;
    };
    let n = sums.len().min(q.len().checked_div(cols).unwrap_or(0));
    let full = n & !3;
    let (s4, s_rest) = sums.split_at_mut(full.min(sums.len()));
    // `full · cols ≤ q.len()`: no overflow.
    let q_rest = q.get(full * cols..).unwrap_or(&[]);
    let t = x8.len();
    for (a, rows) in s4.chunks_exact_mut(4).zip(q.chunks_exact(block)) {
        let mut rs = rows.chunks_exact(cols);
        let (Some(r0), Some(r1), Some(r2), Some(r3)) = (rs.next(), rs.next(), rs.next(), rs.next())
        else {
            return;
        };
        let acc = block4([r0, r1, r2, r3], x8);
        for ((a, &v), r) in a.iter_mut().zip(&acc).zip([r0, r1, r2, r3]) {
            let tail = crate::kernels::reference::dot_i8(r.get(t..).unwrap_or(&[]), x_tail);
            *a = v.wrapping_add(tail);
        }
    }
    for (a, row) in s_rest.iter_mut().zip(q_rest.chunks_exact(cols)) {
        *a = dot_i8_unrolled(row, x);
    }
}

/// The dot products of four rows with `x8` (a multiple of [`COLS`] long; each row at least as
/// long), four accumulators, eight columns per iteration: in plain Rust.
#[cfg_attr(target_arch = "riscv32", allow(dead_code))]
#[inline(always)]
fn block4_portable(r: [&[i8]; 4], x8: &[i8]) -> [i32; 4] {
    let [r0, r1, r2, r3] = r;
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
    [a0, a1, a2, a3]
}

/// [`block4_portable`] on the host (where the harness runs it).
#[cfg(not(target_arch = "riscv32"))]
#[inline(always)]
fn block4(r: [&[i8]; 4], x8: &[i8]) -> [i32; 4] {
    block4_portable(r, x8)
}

/// One column × four rows: the input byte loaded once, then `lb`, `mul`, `add` per row (two
/// temporaries alternate, so each load is issued a little before its multiply).
#[cfg(target_arch = "riscv32")]
macro_rules! rv_col {
    ($o:literal) => {
        concat!(
            "lb {x}, ",
            $o,
            "({xp})\n",
            "lb {w}, ",
            $o,
            "({p0})\n",
            "lb {v}, ",
            $o,
            "({p1})\n",
            "mul {w}, {w}, {x}\n",
            "mul {v}, {v}, {x}\n",
            "add {a0}, {a0}, {w}\n",
            "add {a1}, {a1}, {v}\n",
            "lb {w}, ",
            $o,
            "({p2})\n",
            "lb {v}, ",
            $o,
            "({p3})\n",
            "mul {w}, {w}, {x}\n",
            "mul {v}, {v}, {x}\n",
            "add {a2}, {a2}, {w}\n",
            "add {a3}, {a3}, {v}\n",
        )
    };
}

/// The dot products of four rows with `x8` on RV32: one assembly loop, eight columns × four
/// rows per iteration (8 input loads, 32 × `lb`/`mul`/`add`, 5 pointer increments and the
/// branch: 110 instructions for 32 multiply-accumulates), in 13 registers, all of them
/// caller-saved (`t*`, `a*`), so the kernel saves none on the stack. The compiler's version of
/// [`block4_portable`] spills (it hoists all 40 loads). Falls back to the portable loop if a
/// row is shorter than `x8` (never, at the call site).
#[cfg(target_arch = "riscv32")]
#[inline(always)]
fn block4(r: [&[i8]; 4], x8: &[i8]) -> [i32; 4] {
    let n8 = x8.len() & !(COLS - 1);
    if r.iter().any(|row| row.len() < n8) {
        return block4_portable(r, x8);
    }
    let [r0, r1, r2, r3] = r;
    let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
    let end = x8.as_ptr().wrapping_add(n8);
    // SAFETY: every load reads `rk + [0, n8)` or `x8 + [0, n8)`: the pointers advance by 8 per
    // iteration and stop at `x8 + n8` (`n8 % 8 == 0`), and each row is at least `n8` long
    // (checked above). `lb`, `mul`, `add`, `addi`, branches: RV32IM, no other memory, no stack.
    unsafe {
        core::arch::asm!(
            "beq {xp}, {end}, 3f",
            "2:",
            rv_col!("0"),
            rv_col!("1"),
            rv_col!("2"),
            rv_col!("3"),
            rv_col!("4"),
            rv_col!("5"),
            rv_col!("6"),
            rv_col!("7"),
            "addi {p0}, {p0}, 8",
            "addi {p1}, {p1}, 8",
            "addi {p2}, {p2}, 8",
            "addi {p3}, {p3}, 8",
            "addi {xp}, {xp}, 8",
            "bne {xp}, {end}, 2b",
            "3:",
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            p0 = inout(reg) r0.as_ptr() => _,
            p1 = inout(reg) r1.as_ptr() => _,
            p2 = inout(reg) r2.as_ptr() => _,
            p3 = inout(reg) r3.as_ptr() => _,
            xp = inout(reg) x8.as_ptr() => _,
            end = in(reg) end,
            x = out(reg) _,
            w = out(reg) _,
            v = out(reg) _,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    [a0, a1, a2, a3]
}
