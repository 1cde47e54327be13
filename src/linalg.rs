//! The arithmetic of the plain-Rust CPU trainer: matrix products on
//! row-major `f32` slices through the `gemm` crate (cache-blocked kernels it
//! picks at run time for the processor: AVX2 + FMA, AVX-512 or baseline
//! SSE2), and the gate activations as loops the compiler vectorises.

/// A row-major matrix held in a slice, read as it is or transposed.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    /// Rows and columns as stored.
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a> MatRef<'a> {
    /// `data` holds `rows x cols` values (more are ignored).
    ///
    /// # Panics
    /// When `data` is shorter: a shape mistake in the caller, not bad input.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "a {rows}x{cols} matrix needs {} values, got {}",
            rows * cols,
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The same values read as the transpose.
    pub fn t(self) -> Self {
        Self {
            transposed: !self.transposed,
            ..self
        }
    }

    /// Rows and columns as read.
    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// Strides (between columns, between rows) as read.
    fn strides(&self) -> (isize, isize) {
        let cols = self.cols as isize;
        if self.transposed {
            (cols, 1)
        } else {
            (1, cols)
        }
    }
}

/// `out = a · b`, or `out += a · b` when `accumulate`; `out` is row-major,
/// `a`'s rows by `b`'s columns. Large products are shared among the cores
/// (gemm decides from their size); each output value is summed in the same
/// order however many cores take part (a test holds the bits equal), so
/// results never depend on the number of cores.
///
/// # Panics
/// When the shapes do not fit together (a caller's mistake).
pub fn matmul(out: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    matmul_on(out, a, b, accumulate, gemm::Parallelism::Rayon(0));
}

fn matmul_on(
    out: &mut [f32],
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k) = a.shape();
    let (k_b, n) = b.shape();
    assert_eq!(k, k_b, "inner dimensions differ");
    assert!(out.len() >= m * n, "the output holds {} values", out.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out[..m * n].fill(0.0);
        }
        return;
    }
    let (a_cs, a_rs) = a.strides();
    let (b_cs, b_rs) = b.strides();
    // SAFETY: `MatRef::new` checked that each input slice holds its stored
    // rows x cols values, and the strides above address exactly those
    // (the largest offset is (rows - 1) * cols + cols - 1 either way);
    // `out` holds m x n values, written with row stride n. `out` is a
    // unique borrow, so it overlaps neither input. The scalars are f32,
    // which gemm supports.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `e^x` to within about 2 units in the last place, `x` clamped to
/// `-87..=88` (where the result stays a normal number), written branch-free so loops over slices vectorise: range
/// reduction by ln 2 in two parts, then a degree-6 polynomial (the
/// Cephes `expf` coefficients).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let p = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// The logistic function through [`exp`].
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh` through [`exp`]: `1 - 2 / (e^2x + 1)`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// Applies [`sigmoid`] to every value.
pub fn sigmoid_in_place(values: &mut [f32]) {
    for v in values {
        *v = sigmoid(*v);
    }
}

/// Applies [`tanh`] to every value.
pub fn tanh_in_place(values: &mut [f32]) {
    for v in values {
        *v = tanh(*v);
    }
}

/// Adds each row's sum into `sums` (`values` is rows x `sums.len()`).
pub fn add_column_sums(values: &[f32], sums: &mut [f32]) {
    for row in values.chunks_exact(sums.len()) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
}

/// `out[i] += x[i]`.
pub fn add_assign(out: &mut [f32], x: &[f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += v;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exp_sigmoid_and_tanh_are_close_to_libm() {
        let mut worst = (0.0f32, 0.0f32, 0.0f32);
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.004;
            let e = (exp(x) - x.exp()).abs() / x.exp();
            let s = (sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs();
            let t = (tanh(x) - x.tanh()).abs();
            worst = (worst.0.max(e), worst.1.max(s), worst.2.max(t));
        }
        assert!(worst.0 < 4e-7, "exp relative error {}", worst.0);
        assert!(worst.1 < 2e-7, "sigmoid error {}", worst.1);
        assert!(worst.2 < 4e-7, "tanh error {}", worst.2);
        assert!(exp(200.0).is_finite() && sigmoid(-200.0) >= 0.0 && tanh(200.0) == 1.0);
    }

    #[test]
    fn products_shared_among_cores_are_bit_for_bit_those_of_one() {
        let values = |len: usize, seed: u32| -> Vec<f32> {
            (0..len as u32)
                .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        // The trainer's shapes: the recurrent product of a chunk, its
        // transpose, and a weight gradient over every step of a chunk.
        for (m, k, n, a_t, b_t) in [
            (16, 256, 1024, false, false),
            (16, 1024, 256, false, true),
            (256, 1008, 1024, true, false),
            (1024, 256, 106, false, false),
        ] {
            let a = values(m * k, 7);
            let b = values(k * n, 11);
            let a_ref = if a_t {
                MatRef::new(&a, k, m).t()
            } else {
                MatRef::new(&a, m, k)
            };
            let b_ref = if b_t {
                MatRef::new(&b, n, k).t()
            } else {
                MatRef::new(&b, k, n)
            };
            for accumulate in [false, true] {
                let mut one = values(m * n, 3);
                let mut many = one.clone();
                matmul_on(&mut one, a_ref, b_ref, accumulate, gemm::Parallelism::None);
                pool.install(|| matmul(&mut many, a_ref, b_ref, accumulate));
                assert!(
                    one.iter()
                        .zip(&many)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}x{k}x{n}, accumulate {accumulate}"
                );
            }
        }
    }

    #[test]
    fn products_of_every_orientation_match_a_plain_loop() {
        let a: Vec<f32> = (0..6).map(|i| i as f32 - 2.0).collect(); // 2x3
        let b: Vec<f32> = (0..12).map(|i| (i as f32) * 0.5).collect(); // 3x4
        let plain = |a: &dyn Fn(usize, usize) -> f32,
                     b: &dyn Fn(usize, usize) -> f32,
                     m: usize,
                     k: usize,
                     n: usize| {
            let mut out = vec![0.0f32; m * n];
            for i in 0..m {
                for j in 0..n {
                    out[i * n + j] = (0..k).map(|l| a(i, l) * b(l, j)).sum();
                }
            }
            out
        };
        let mut out = vec![0.0f32; 8];
        matmul(
            &mut out,
            MatRef::new(&a, 2, 3),
            MatRef::new(&b, 3, 4),
            false,
        );
        assert_eq!(
            out,
            plain(&|i, l| a[i * 3 + l], &|l, j| b[l * 4 + j], 2, 3, 4)
        );
        // a^T (3x2) . a (2x3), then accumulated once more.
        let mut out = vec![0.0f32; 9];
        matmul(
            &mut out,
            MatRef::new(&a, 2, 3).t(),
            MatRef::new(&a, 2, 3),
            false,
        );
        let expected = plain(&|i, l| a[l * 3 + i], &|l, j| a[l * 3 + j], 3, 2, 3);
        assert_eq!(out, expected);
        matmul(
            &mut out,
            MatRef::new(&a, 2, 3).t(),
            MatRef::new(&a, 2, 3),
            true,
        );
        let doubled: Vec<f32> = expected.iter().map(|v| v * 2.0).collect();
        assert_eq!(out, doubled);
        // b (3x4) . b^T (4x3)
        let mut out = vec![0.0f32; 9];
        matmul(
            &mut out,
            MatRef::new(&b, 3, 4),
            MatRef::new(&b, 3, 4).t(),
            false,
        );
        assert_eq!(
            out,
            plain(&|i, l| b[i * 4 + l], &|l, j| b[j * 4 + l], 3, 4, 3)
        );
    }
}
