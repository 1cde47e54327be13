//! The activations of plain-Rust inference (LSTM cell updates, sigmoids),
//! eight values at a time.
//!
//! `f32::exp` is a libm call per value, which kept these loops scalar: with
//! eight variations stepped together, `expf` and the scalar divisions around
//! it were a third of the time. Here glibc's `expf` algorithm (x / ln 2 split
//! into k/32 + r, a 32-entry table of 2^(i/32) and a cubic in r, in double
//! precision) runs on vectors, with its multiply-adds fused exactly where
//! glibc's FMA build fuses them, so every value keeps the bits `f32::exp`
//! gives on a glibc system with FMA and the pinned songs stay. Processors
//! without AVX2 and FMA take the plain loops, which call `f32::exp`. (The
//! trainer's `linalg::exp` vectorises too, but is 2 ulps from libm: fine for
//! gradients, not for songs pinned bit for bit.)

// Elsewhere than on x86-64 only the plain loops are compiled in.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

/// `2^(i/32)` as bits, less `i << 47`: adding `k << 47` for `k = 32n + i`
/// then multiplies by `2^n` (glibc's `__exp2f_data.tab`).
const TABLE: [u64; 32] = [
    0x3ff0_0000_0000_0000,
    0x3fef_d9b0_d315_8574,
    0x3fef_b558_6cf9_890f,
    0x3fef_9301_d012_5b51,
    0x3fef_72b8_3c7d_517b,
    0x3fef_5487_3168_b9aa,
    0x3fef_387a_6e75_6238,
    0x3fef_1e9d_f51f_dee1,
    0x3fef_06fe_0a31_b715,
    0x3fee_f1a7_373a_a9cb,
    0x3fee_dea6_4c12_3422,
    0x3fee_ce08_6061_892d,
    0x3fee_bfda_d536_2a27,
    0x3fee_b42b_569d_4f82,
    0x3fee_ab07_dd48_5429,
    0x3fee_a47e_b03a_5585,
    0x3fee_a09e_667f_3bcd,
    0x3fee_9f75_e8ec_5f74,
    0x3fee_a114_73eb_0187,
    0x3fee_a589_994c_ce13,
    0x3fee_ace5_422a_a0db,
    0x3fee_b737_b0cd_c5e5,
    0x3fee_c491_82a3_f090,
    0x3fee_d503_b23e_255d,
    0x3fee_e89f_995a_d3ad,
    0x3fee_ff76_f2fb_5e47,
    0x3fef_199b_dd85_529c,
    0x3fef_3720_dcef_9069,
    0x3fef_5818_dcfb_a487,
    0x3fef_7c97_337b_9b5f,
    0x3fef_a4af_a2a4_90da,
    0x3fef_d076_5b6e_4540,
];
/// 32 / ln 2.
const INV_LN2_32: f64 = f64::from_bits(0x4047_1547_652b_82fe);
/// 1.5 * 2^52: adding it rounds to an integer held in the low bits.
const SHIFT: f64 = f64::from_bits(0x4338_0000_0000_0000);
/// The cubic's coefficients for r scaled by 32 (r^3, r^2, r).
const CUBIC: [f64; 3] = [
    f64::from_bits(0x3ebc_6af8_4b91_2394),
    f64::from_bits(0x3f2e_bfce_50fa_c4f3),
    f64::from_bits(0x3f96_2e42_ff0c_52d6),
];
/// glibc's `expf` takes another path from |x| >= 88 (and for NaN).
const FAST_BELOW: f32 = 88.0;

/// `e^x` for |x| < 88, as glibc's FMA build computes it.
#[inline(always)]
fn exp_near(x: f32) -> f32 {
    let x = f64::from(x);
    let rounded = INV_LN2_32.mul_add(x, SHIFT);
    let k = rounded.to_bits();
    let r = INV_LN2_32.mul_add(x, -(rounded - SHIFT));
    // The table's entry for k mod 32, times 2^(k / 32).
    let scale = f64::from_bits(TABLE[(k % 32) as usize].wrapping_add(k << 47));
    let cubic = CUBIC[0]
        .mul_add(r, CUBIC[1])
        .mul_add(r * r, r.mul_add(CUBIC[2], 1.0));
    (cubic * scale) as f32
}

/// Whether [`exp_near`] takes `x` (not NaN, |x| < 88).
#[inline(always)]
fn is_near(x: f32) -> bool {
    x.abs() < FAST_BELOW
}

/// Whether any of `values` is outside [`exp_near`]'s range (a fold, not an
/// early exit, so that it vectorises).
#[inline(always)]
fn any_far(values: &[f32]) -> bool {
    values.iter().fold(false, |far, &v| far | !is_near(v))
}

/// `values[i] = e^values[i]`.
#[inline(always)]
fn exp_all(values: &mut [f32]) {
    if any_far(values) {
        for v in values {
            *v = if is_near(*v) { exp_near(*v) } else { v.exp() };
        }
    } else {
        for v in values {
            *v = exp_near(*v);
        }
    }
}

/// [`exp_all`] eight values to a 512-bit register, written out: LLVM keeps
/// the loop to 256-bit registers (four doubles) on its own, and the table
/// lookup, a gather there, is two permutes here. The same operations in the
/// same order, fused where `exp_near` fuses: the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
fn exp_all_512(values: &mut [f32]) {
    use std::arch::x86_64::{
        _mm256_loadu_ps, _mm256_storeu_ps, _mm512_add_epi64, _mm512_and_si512, _mm512_castpd_si512,
        _mm512_castsi512_pd, _mm512_cvtpd_ps, _mm512_cvtps_pd, _mm512_fmadd_pd, _mm512_loadu_si512,
        _mm512_mask_blend_epi64, _mm512_mul_pd, _mm512_permutex2var_epi64, _mm512_set1_epi64,
        _mm512_set1_pd, _mm512_slli_epi64, _mm512_sub_pd, _mm512_test_epi64_mask, _mm512_xor_si512,
    };
    if any_far(values) {
        exp_all(values);
        return;
    }
    // SAFETY (each load): the pointer is to a whole quarter of TABLE.
    let table = [0, 8, 16, 24].map(|at| unsafe { _mm512_loadu_si512(TABLE[at..].as_ptr().cast()) });
    let inv_ln2_32 = _mm512_set1_pd(INV_LN2_32);
    let shift = _mm512_set1_pd(SHIFT);
    let sign = _mm512_set1_epi64(i64::MIN);
    let low_five = _mm512_set1_epi64(31);
    let fifth_bit = _mm512_set1_epi64(16);
    let [c0, c1, c2] = CUBIC.map(|c| _mm512_set1_pd(c));
    let one = _mm512_set1_pd(1.0);
    let (blocks, rest) = values.as_chunks_mut::<8>();
    for block in blocks {
        // SAFETY: the pointer is to a whole [f32; 8].
        let x = _mm512_cvtps_pd(unsafe { _mm256_loadu_ps(block.as_ptr()) });
        let rounded = _mm512_fmadd_pd(inv_ln2_32, x, shift);
        let k = _mm512_castpd_si512(rounded);
        let minus = _mm512_xor_si512(_mm512_castpd_si512(_mm512_sub_pd(rounded, shift)), sign);
        let r = _mm512_fmadd_pd(inv_ln2_32, x, _mm512_castsi512_pd(minus));
        let index = _mm512_and_si512(k, low_five);
        let low = _mm512_permutex2var_epi64(table[0], index, table[1]);
        let high = _mm512_permutex2var_epi64(table[2], index, table[3]);
        let entry = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(index, fifth_bit), low, high);
        let scale = _mm512_castsi512_pd(_mm512_add_epi64(entry, _mm512_slli_epi64::<47>(k)));
        let cubic = _mm512_fmadd_pd(
            _mm512_fmadd_pd(c0, r, c1),
            _mm512_mul_pd(r, r),
            _mm512_fmadd_pd(r, c2, one),
        );
        // SAFETY: the pointer is to a whole [f32; 8].
        unsafe {
            _mm256_storeu_ps(
                block.as_mut_ptr(),
                _mm512_cvtpd_ps(_mm512_mul_pd(cubic, scale)),
            );
        };
    }
    for v in rest {
        *v = exp_near(*v);
    }
}

/// Picks the vector copy of a function where the processor has AVX2 and FMA
/// (with AVX-512F, its exponentials eight at a time).
macro_rules! wide_or_plain {
    ($name:ident, $wide:ident, $plain:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                let wider = std::arch::is_x86_feature_detected!("avx512f");
                // SAFETY: the processor was just found to run AVX2 and FMA,
                // the features `$wide` is compiled for, and `wider` says
                // whether it runs AVX-512F, which `exp_all_512` is.
                #[allow(unsafe_code)]
                return unsafe { $wide($($arg),*, wider) };
            }
            $plain($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $wide($($arg: $ty),*, wider: bool) {
            if wider {
                // SAFETY: the caller found AVX-512F.
                #[allow(unsafe_code)]
                $body($($arg),*, |values: &mut [f32]| unsafe { exp_all_512(values) })
            } else {
                $body($($arg),*, exp_all)
            }
        }

        fn $plain($($arg: $ty),*) {
            $body($($arg),*, |values: &mut [f32]| values.iter_mut().for_each(|v| *v = v.exp()))
        }
    };
}

wide_or_plain!(sigmoids, sigmoids_wide, sigmoids_plain, sigmoids_body, (
    values: &mut [f32]
));
wide_or_plain!(lstm_cells, lstm_cells_wide, lstm_cells_plain, lstm_cells_body, (
    gates: &mut [f32],
    hidden: &mut [f32],
    cell: &mut [f32]
));

/// `values[i] = 1 / (1 + e^-values[i])`.
#[inline(always)]
fn sigmoids_body(values: &mut [f32], exp: impl Fn(&mut [f32])) {
    values.iter_mut().for_each(|v| *v = -*v);
    exp(values);
    values.iter_mut().for_each(|v| *v = 1.0 / (1.0 + *v));
}

/// One LSTM step's cell and hidden states of one sequence from its gates'
/// pre-activations (`[input, forget, candidate, output]`, each
/// `hidden.len()` wide); the gates are used as scratch. Sigmoids are
/// `1 / (1 + e^-x)` and tanh is `1 - 2 / (e^2x + 1)`, in the order of the
/// scalar code that pinned the songs.
#[inline(always)]
fn lstm_cells_body(
    gates: &mut [f32],
    hidden: &mut [f32],
    cell: &mut [f32],
    exp: impl Fn(&mut [f32]),
) {
    let units = hidden.len();
    let (sigmoid_gates, rest) = gates.split_at_mut(2 * units);
    let (candidate, output) = rest.split_at_mut(units);
    sigmoid_gates.iter_mut().for_each(|v| *v = -*v);
    candidate.iter_mut().for_each(|v| *v *= 2.0);
    output.iter_mut().for_each(|v| *v = -*v);
    exp(&mut gates[..4 * units]);
    let (input, rest) = gates.split_at_mut(units);
    let (forget, rest) = rest.split_at_mut(units);
    let (candidate, output) = rest.split_at_mut(units);
    for u in 0..units {
        let c = 1.0 / (1.0 + forget[u]) * cell[u]
            + 1.0 / (1.0 + input[u]) * (1.0 - 2.0 / (candidate[u] + 1.0));
        cell[u] = c;
        // The candidate's room now holds e^2c.
        candidate[u] = 2.0 * c;
    }
    exp(candidate);
    for u in 0..units {
        hidden[u] = 1.0 / (1.0 + output[u]) * (1.0 - 2.0 / (candidate[u] + 1.0));
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    /// Every 4099th float (all signs, sizes, infinities and NaNs among them).
    fn spread_of_floats() -> impl Iterator<Item = f32> {
        (0..=u32::MAX).step_by(4099).map(f32::from_bits)
    }

    #[test]
    fn the_vector_exp_is_within_an_ulp_of_the_exact_one() {
        let mut values: Vec<f32> = spread_of_floats().collect();
        let exact: Vec<f64> = values.iter().map(|&x| f64::from(x).exp()).collect();
        for chunk in values.chunks_mut(1000) {
            exp_all(chunk);
        }
        let x: Vec<f32> = spread_of_floats().collect();
        for ((&x, &got), &exact) in x.iter().zip(&values).zip(&exact) {
            if exact.is_nan() {
                assert!(got.is_nan(), "e^{x}");
                continue;
            }
            let rounded = exact as f32;
            let ulps = (got.to_bits() as i64 - rounded.to_bits() as i64).abs();
            assert!(ulps <= 1, "e^{x}: {got} against {rounded}");
        }
    }

    /// On glibc with FMA, `f32::exp` is the very function copied here: the
    /// bits must match everywhere (this keeps the pinned songs).
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_vector_exp_has_glibcs_bits() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        let x: Vec<f32> = spread_of_floats().collect();
        let mut values = x.clone();
        sigmoids(&mut values);
        for (&x, &got) in x.iter().zip(&values) {
            let libm = 1.0 / (1.0 + (-x).exp());
            assert!(
                got.to_bits() == libm.to_bits() || got.is_nan() && libm.is_nan(),
                "{x}"
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_512_bit_exp_has_the_vector_exps_bits() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        // Runs of 8 and a rest, and a far value sending a run to the other path.
        let x: Vec<f32> = spread_of_floats()
            .filter(|x| x.abs() < FAST_BELOW)
            .collect();
        let mut wide = x.clone();
        for chunk in wide.chunks_mut(1003) {
            // SAFETY: the processor runs AVX-512F.
            #[allow(unsafe_code)]
            unsafe {
                exp_all_512(chunk);
            };
        }
        let mut reference = x.clone();
        for chunk in reference.chunks_mut(1003) {
            exp_all(chunk);
        }
        for ((&x, &a), &b) in x.iter().zip(&wide).zip(&reference) {
            assert_eq!(a.to_bits(), b.to_bits(), "e^{x}");
        }
        let mut far = [1.0f32, 2.0, 100.0, -3.0, 0.5, 7.0, -8.0, 9.0, 10.0];
        let mut expected = far;
        exp_all(&mut expected);
        // SAFETY: as above.
        #[allow(unsafe_code)]
        unsafe {
            exp_all_512(&mut far);
        };
        assert_eq!(far.map(f32::to_bits), expected.map(f32::to_bits));
    }

    #[test]
    fn the_vector_and_plain_activations_agree() {
        let units = 37;
        let gates: Vec<f32> = (0..4 * units)
            .map(|i| ((i * 7919) % 401) as f32 / 20.0 - 10.0)
            .collect();
        let cell: Vec<f32> = (0..units).map(|i| (i as f32 - 18.0) / 3.0).collect();
        let run = |step: fn(&mut [f32], &mut [f32], &mut [f32])| {
            let (mut gates, mut hidden, mut cell) = (gates.clone(), vec![0.0; units], cell.clone());
            step(&mut gates, &mut hidden, &mut cell);
            (hidden, cell)
        };
        let (hidden, cell_after) = run(lstm_cells);
        let (plain_hidden, plain_cell) = run(lstm_cells_plain);
        for u in 0..units {
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-6;
            assert!(close(hidden[u], plain_hidden[u]), "hidden {u}");
            assert!(close(cell_after[u], plain_cell[u]), "cell {u}");
            // The scalar formulas, in their own order.
            let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
            let tanh = |x: f32| 1.0 - 2.0 / ((2.0 * x).exp() + 1.0);
            let c = sigmoid(gates[units + u]) * cell[u]
                + sigmoid(gates[u]) * tanh(gates[2 * units + u]);
            assert!(close(cell_after[u], c), "cell {u} formula");
            assert!(close(hidden[u], sigmoid(gates[3 * units + u]) * tanh(c)));
        }
        // A cell that forgets all and takes all is tanh of the candidate.
        for i in -4000..=4000 {
            let x = i as f32 / 200.0;
            let mut gates = [f32::INFINITY, f32::NEG_INFINITY, x, f32::INFINITY];
            let (mut hidden, mut cell) = ([0.0], [5.0]);
            lstm_cells(&mut gates, &mut hidden, &mut cell);
            assert!((cell[0] - x.tanh()).abs() <= 2e-7, "tanh {x}");
        }
        let mut values = gates.clone();
        sigmoids(&mut values);
        for (v, &x) in values.iter().zip(&gates) {
            assert!((v - 1.0 / (1.0 + (-x).exp())).abs() <= 1e-7);
        }
    }
}
