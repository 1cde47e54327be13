//! The article's network's inference as plain f32 loops, for generation on the CPU.
//!
//! Generation runs the network once per step on a handful of windows, where
//! burn's per-operation dispatch (about 40 tensor operations per step) costs
//! more than the arithmetic (~0.22 million multiply-adds per window once the
//! 0/1 input is exploited). This copy of the weights does the same arithmetic
//! directly: the first Conv1D sums the kernel rows of the sounding pitches
//! instead of multiplying by zeros, the window's 9th row is skipped because
//! the first pooling drops it, the LSTMs start from the zero state so their
//! recurrent kernels multiply zeros, and batch norm is folded into a scale and
//! shift. Outputs match the burn model within 1e-5 (a test checks both against
//! the Keras reference).
//!
//! The roll LSTM gets the same treatment in [`NativeRollNet`]: one LSTM step
//! per generated step, its input projection a sum of kernel rows; and the
//! composer in [`NativeComposer`], whose steps are drawn pitch by pitch.

use std::sync::Arc;

use burn::tensor::Tensor;

use super::activations;
use super::composer::{
    GAP_FEATURES, PROFILE_FEATURES, add_to_profile, gap_features, gap_nearness, key_weights,
    normalise_profile, profile_width,
};
use super::split::{self, worth_splitting};
use super::{ArticleNet, Composer, RollLstm, WINDOW_STEPS};
use crate::meter::{METER_FEATURES, Meter};
use crate::roll::{mask_bits, mask_to_floats};

/// Output columns per panel of [`Dense::panels`]: one sequence's sums of a
/// panel fill four SSE registers.
const PANEL: usize = 16;

/// The share of zero inputs from which a sequence alone goes through
/// [`Dense`]'s plain loop rather than the panel kernels.
const SPARSE_FROM_ALONE: f64 = 0.4;

/// One input row of two sequences, each value repeated over an SSE
/// register's four lanes so that the pair kernel multiplies without shuffling.
type PairRow = [[f32; 4]; 2];

/// One input row of four sequences, laid out as [`PairRow`].
type QuadRow = [[f32; 4]; 4];

/// A dense layer `[d_input, d_output]`, row-major, with its bias.
#[derive(Clone, Debug)]
pub(super) struct Dense {
    d_input: usize,
    d_output: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// The weights again, in panels of [`PANEL`] columns: panel `k` holds
    /// columns `k * PANEL ..` of input row 0, then of row 1, and so on, so a
    /// kernel reads its panel front to back. The columns are padded with
    /// zeros to a whole number of panel pairs.
    panels: Vec<f32>,
    /// The bias padded like the panels.
    panel_bias: Vec<f32>,
    /// Whether a zero input's term `0 * w` leaves every sum as it was, so the
    /// blocked kernels may multiply zeros instead of skipping them and still
    /// give the skipping loop's bits: every weight is finite (`0 * w` is
    /// then +-0) and no bias is -0.0 (a sum is -0.0 only when both addends
    /// are, so sums from such a bias are never -0.0, and adding +-0 to
    /// anything else gives it back).
    zero_terms_vanish: bool,
}

impl Dense {
    fn new(d_input: usize, d_output: usize, weight: Vec<f32>, bias: Vec<f32>) -> Self {
        let padded = d_output.div_ceil(2 * PANEL) * 2 * PANEL;
        let mut panels = Vec::with_capacity(d_input * padded);
        for first in (0..padded).step_by(PANEL) {
            for row in weight.chunks_exact(d_output.max(1)) {
                let kept = &row[first.min(d_output)..(first + PANEL).min(d_output)];
                panels.extend_from_slice(kept);
                panels.extend(std::iter::repeat_n(0.0, PANEL - kept.len()));
            }
        }
        let mut panel_bias = bias.clone();
        panel_bias.resize(padded, 0.0);
        let zero_terms_vanish = weight.iter().all(|w| w.is_finite())
            && bias.iter().all(|b| b.to_bits() != (-0.0f32).to_bits());
        Self {
            d_input,
            d_output,
            weight,
            bias,
            panels,
            panel_bias,
            zero_terms_vanish,
        }
    }

    /// `out[v] = bias + x[v] W` for every vector `v` of `xs` (`n x d_input`,
    /// row-major). Every output starts from its bias and adds `x_i * w` for
    /// `i = 0, 1, 2, ...` in turn (zero inputs, relu outputs, add nothing),
    /// as [`apply_each_row`](Self::apply_each_row) does, bit for bit.
    ///
    /// Sequences go two at a time through [`pair_sums`], panel by panel:
    /// their 32 running sums of a panel stay in registers while the panel's
    /// rows stream past, each row read once for both, and the panel (16 KiB
    /// for 256 inputs) stays in the L1 cache while every pair reads it (a
    /// zero input of one sequence of a pair is multiplied, see
    /// [`zero_terms_vanish`](Self::zero_terms_vanish)). A last odd sequence
    /// goes alone through [`one_sums`], two panels at a time. Input rows that
    /// are zero in every sequence of a block are left out when there are
    /// enough of them to pay for the indexing; inputs mostly zero go through
    /// the plain loop.
    pub(super) fn apply_many(&self, xs: &[f32], out: &mut [f32]) {
        let (d_input, d_output) = (self.d_input, self.d_output);
        if !self.zero_terms_vanish || d_input == 0 || d_output == 0 {
            self.apply_each_row(xs, out);
            return;
        }
        let sequences = (out.len() / d_output).min(xs.len() / d_input);
        let xs = &xs[..sequences * d_input];
        // Mostly zeros (relu outputs): the plain loop reads the few weight
        // rows it needs whole, where the kernels would read a cache line of
        // every panel for each, and is as fast (a sequence alone from 40%
        // zeros on, pairs from half).
        let zeros = xs.iter().filter(|&&x| x == 0.0).count();
        let sparse_from = if sequences == 1 {
            SPARSE_FROM_ALONE
        } else {
            0.5
        };
        if zeros as f64 >= sparse_from * xs.len() as f64 {
            self.apply_each_row(xs, out);
            return;
        }
        // Like the plain loop: outputs without inputs get the bias.
        for row in out.chunks_exact_mut(d_output).skip(sequences) {
            row.copy_from_slice(&self.bias);
        }
        // Where the processor runs AVX, four sequences at a time (twice the
        // independent sums per input row: the pair kernel waits on its adds),
        // unless leaving out zero rows pays, which only the pairs do.
        let mut quads = Vec::new();
        let mut pairs = Vec::new();
        let mut next = 0;
        if wide_kernels() {
            for group in xs.chunks_exact(4 * d_input) {
                match QuadInputs::new(group, d_input) {
                    Some(quad) => quads.push((next, quad)),
                    None => {
                        let (a, b) = group.split_at(2 * d_input);
                        pairs.push((next, PairInputs::new(a.split_at(d_input))));
                        pairs.push((next + 2, PairInputs::new(b.split_at(d_input))));
                    }
                }
                next += 4;
            }
        }
        let rest = &xs[next * d_input..];
        let (pair_xs, last) = rest.split_at(rest.len() / (2 * d_input) * 2 * d_input);
        for pair in pair_xs.chunks_exact(2 * d_input) {
            pairs.push((next, PairInputs::new(pair.split_at(d_input))));
            next += 2;
        }
        let last = (!last.is_empty()).then(|| OneInputs::new(last));
        let mut put = |sequence: usize, first: usize, sums: &[f32; PANEL]| {
            let at = sequence * d_output + first;
            if first + PANEL <= d_output {
                // A whole panel: a copy of known length, inlined (a call to
                // memcpy per panel and sequence was 2% of 8 variations).
                out[at..at + PANEL].copy_from_slice(sums);
            } else if first < d_output {
                let width = d_output - first;
                out[at..at + width].copy_from_slice(&sums[..width]);
            }
        };
        let biases = self.panel_bias.as_chunks::<PANEL>().0.as_chunks::<2>().0;
        let panel_pairs = self.panels.chunks_exact(2 * PANEL * d_input);
        for ((panels, bias), first) in panel_pairs
            .zip(biases)
            .zip((0..d_output).step_by(2 * PANEL))
        {
            let (a, b) = panels.split_at(PANEL * d_input);
            let panels = [a.as_chunks::<PANEL>().0, b.as_chunks::<PANEL>().0];
            for (half, (panel, bias)) in panels.iter().zip(bias).enumerate() {
                let first = first + half * PANEL;
                if first < d_output {
                    for (sequence, inputs) in &quads {
                        let sums = quad_sums(bias, &inputs.values, panel);
                        for (k, sums) in sums.iter().enumerate() {
                            put(sequence + k, first, sums);
                        }
                    }
                    for (sequence, inputs) in &pairs {
                        let [x, y] = inputs.sums(panel, bias);
                        put(*sequence, first, &x);
                        put(sequence + 1, first, &y);
                    }
                }
            }
            if let Some(inputs) = &last {
                let [x, y] = inputs.sums(panels, bias);
                put(sequences - 1, first, &x);
                put(sequences - 1, first + PANEL, &y);
            }
        }
    }

    pub(super) fn d_output(&self) -> usize {
        self.d_output
    }

    /// Bytes of the panels a product reads.
    pub(super) fn panel_bytes(&self) -> usize {
        std::mem::size_of_val(self.panels.as_slice())
    }

    /// Pairs of panels ([`one_sums`] computes one pair at a time).
    pub(super) fn panel_pairs(&self) -> usize {
        self.panel_bias.len() / (2 * PANEL)
    }

    /// The output columns of panel pairs `pairs` (the padding left out).
    pub(super) fn pair_columns(&self, pairs: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let column = |pair: usize| (pair * 2 * PANEL).min(self.d_output);
        column(pairs.start)..column(pairs.end)
    }

    /// Whether [`apply_many`](Self::apply_many) takes one sequence `x`
    /// through the panel kernels (else the plain loop, as fast for it).
    pub(super) fn panels_fit(&self, x: &[f32]) -> bool {
        let zeros = x.iter().filter(|&&v| v == 0.0).count();
        self.zero_terms_vanish
            && self.d_output > 0
            && !x.is_empty()
            && (zeros as f64) < SPARSE_FROM_ALONE * x.len() as f64
    }

    /// The columns of panel pairs `pairs` of `bias + x W` for one sequence
    /// `x` into `out` (a whole output row), bit for bit as
    /// [`apply_many`](Self::apply_many) gives them: the same kernel, the
    /// same order. Other columns are left as they are.
    pub(super) fn apply_one_pairs(
        &self,
        x: &[f32],
        pairs: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        let inputs = OneInputs::new(x);
        let biases = self.panel_bias.as_chunks::<PANEL>().0.as_chunks::<2>().0;
        let pair_len = 2 * PANEL * self.d_input;
        for pair in pairs {
            let panels = &self.panels[pair * pair_len..(pair + 1) * pair_len];
            let (a, b) = panels.split_at(PANEL * self.d_input);
            let sums = inputs.sums(
                [a.as_chunks::<PANEL>().0, b.as_chunks::<PANEL>().0],
                &biases[pair],
            );
            for (half, sums) in sums.iter().enumerate() {
                let first = (2 * pair + half) * PANEL;
                if first < self.d_output {
                    let width = PANEL.min(self.d_output - first);
                    out[first..first + width].copy_from_slice(&sums[..width]);
                }
            }
        }
    }

    /// The plain loop: the weight row outermost so it is read once for the
    /// whole batch, the inner loop a contiguous multiply-add over the
    /// outputs, zero inputs skipped. The reference for
    /// [`apply_many`](Self::apply_many), which uses it when zero terms would
    /// not vanish.
    fn apply_each_row(&self, xs: &[f32], out: &mut [f32]) {
        for row in out.chunks_exact_mut(self.d_output) {
            row.copy_from_slice(&self.bias);
        }
        for (i, weights) in self.weight.chunks_exact(self.d_output).enumerate() {
            for (x, row) in xs
                .chunks_exact(self.d_input)
                .zip(out.chunks_exact_mut(self.d_output))
            {
                let xi = x[i];
                if xi != 0.0 {
                    for (o, &w) in row.iter_mut().zip(weights) {
                        *o += xi * w;
                    }
                }
            }
        }
    }
}

/// Whether leaving out `zero_rows` of `rows` input rows saves more than
/// reading the kept rows' indices costs.
fn worth_picking(zero_rows: usize, rows: usize) -> bool {
    zero_rows * 8 >= rows
}

/// The inputs of two sequences as [`pair_sums`] reads them: every input row
/// in order, or only the rows where either input is nonzero, with their
/// indices.
struct PairInputs {
    values: Vec<PairRow>,
    rows: Option<Vec<usize>>,
}

impl PairInputs {
    fn new((a, b): (&[f32], &[f32])) -> Self {
        let zero_rows = a
            .iter()
            .zip(b)
            .filter(|&(&a, &b)| a == 0.0 && b == 0.0)
            .count();
        let both = a.iter().zip(b).map(|(&a, &b)| [[a; 4], [b; 4]]);
        if worth_picking(zero_rows, a.len()) {
            let (values, rows) = both
                .enumerate()
                .filter(|(_, [a, b])| a[0] != 0.0 || b[0] != 0.0)
                .map(|(i, values)| (values, i))
                .unzip();
            Self {
                values,
                rows: Some(rows),
            }
        } else {
            Self {
                values: both.collect(),
                rows: None,
            }
        }
    }

    /// Both sequences' outputs of one panel (its rows, and the bias).
    fn sums(&self, panel: &[[f32; PANEL]], bias: &[f32; PANEL]) -> [[f32; PANEL]; 2] {
        match &self.rows {
            None => pair_sums(bias, &self.values, panel),
            Some(rows) => pair_sums_picked(bias, &self.values, rows, panel),
        }
    }
}

/// The inputs of four sequences as [`quad_sums`] reads them: every input row
/// in order.
struct QuadInputs {
    values: Vec<QuadRow>,
}

impl QuadInputs {
    /// Four sequences' inputs (`group` holds them one after another), or
    /// none when leaving out the rows that are zero in all of them pays.
    fn new(group: &[f32], d_input: usize) -> Option<Self> {
        let [a, b, c, d] = [0, 1, 2, 3].map(|k| &group[k * d_input..(k + 1) * d_input]);
        let rows = (0..d_input).map(|i| [a[i], b[i], c[i], d[i]]);
        let zero_rows = rows
            .clone()
            .filter(|row| row.iter().all(|&v| v == 0.0))
            .count();
        (!worth_picking(zero_rows, d_input)).then(|| Self {
            values: rows.map(|row| row.map(|v| [v; 4])).collect(),
        })
    }
}

/// Whether this processor gets the AVX copies of the kernels.
fn wide_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The inputs of one sequence as [`one_sums`] reads them: every input, or
/// only the nonzero ones with their indices.
enum OneInputs<'a> {
    Every(&'a [f32]),
    Picked(Vec<(f32, usize)>),
}

impl<'a> OneInputs<'a> {
    fn new(x: &'a [f32]) -> Self {
        let zero_rows = x.iter().filter(|&&v| v == 0.0).count();
        if worth_picking(zero_rows, x.len()) {
            Self::Picked(
                x.iter()
                    .enumerate()
                    .filter(|&(_, &v)| v != 0.0)
                    .map(|(i, &v)| (v, i))
                    .collect(),
            )
        } else {
            Self::Every(x)
        }
    }

    /// The sequence's outputs of two panels (their rows, and their biases).
    fn sums(&self, panels: [&[[f32; PANEL]]; 2], bias: &[[f32; PANEL]; 2]) -> [[f32; PANEL]; 2] {
        match self {
            Self::Every(x) => one_sums(bias, x, panels),
            Self::Picked(picked) => one_sums_picked(bias, picked, panels),
        }
    }
}

// The kernels: `bias + Σ x * w` over the input rows in order, on sums held in
// fixed-size arrays whose loops unroll into SSE multiplies and adds on
// registers. Each is a function of its own, not inlined, so that its sums
// stay in registers for the whole loop; where the processor runs AVX, a copy
// compiled for it does the same multiplies and adds in the same order eight
// lanes at a time (Rust never fuses a multiply and an add, so the sums are
// the SSE build's bit for bit, which the determinism pin holds).

/// Defines `$name`, running `$body` (an `#[inline(always)]` kernel) as
/// `$wide`, compiled for AVX, when the processor has it.
macro_rules! wide_kernel {
    ($name:ident, $wide:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        wide_kernel!($name, $wide, $body, ($($arg: $ty),*) -> [[f32; PANEL]; 2]);
    };
    ($name:ident, $wide:ident, $body:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        #[inline(never)]
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx") {
                // SAFETY: the processor was just found to run AVX, the only
                // feature `$wide` is compiled for.
                #[allow(unsafe_code)]
                return unsafe { $wide($($arg),*) };
            }
            $body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx")]
        fn $wide($($arg: $ty),*) -> $ret {
            $body($($arg),*)
        }
    };
}

/// Four sequences' sums of one panel ([`quad_sums_body`]), in the widest
/// copy the processor runs.
#[inline(never)]
fn quad_sums(bias: &[f32; PANEL], x: &[QuadRow], panel: &[[f32; PANEL]]) -> [[f32; PANEL]; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor was just found to run AVX-512F, the only
            // feature the copy is compiled for.
            #[allow(unsafe_code)]
            return unsafe { quad_sums_avx512(bias, x, panel) };
        }
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: as above, for AVX.
            #[allow(unsafe_code)]
            return unsafe { quad_sums_avx(bias, x, panel) };
        }
    }
    quad_sums_body(bias, x, panel)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn quad_sums_avx(bias: &[f32; PANEL], x: &[QuadRow], panel: &[[f32; PANEL]]) -> [[f32; PANEL]; 4] {
    quad_sums_body(bias, x, panel)
}

/// [`quad_sums_body`] with a panel's 16 columns in one 512-bit register:
/// the same multiplies and adds in the same order (so the same bits) in half
/// the instructions of the AVX copy, which keep two cores busy without
/// waiting on the instruction decoders (10-25% faster while the variations'
/// lanes fill both cores; LLVM does not pick 512-bit registers on its own).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
fn quad_sums_avx512(
    bias: &[f32; PANEL],
    x: &[QuadRow],
    panel: &[[f32; PANEL]],
) -> [[f32; PANEL]; 4] {
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_loadu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_storeu_ps,
    };
    const { assert!(PANEL == 16, "a panel is one 512-bit register") };
    // SAFETY (each load and store): the pointer is to a whole [f32; 16].
    let bias = unsafe { _mm512_loadu_ps(bias.as_ptr()) };
    let mut sums: [__m512; 4] = [bias; 4];
    for (x, w) in x.iter().zip(panel) {
        let w = unsafe { _mm512_loadu_ps(w.as_ptr()) };
        for (sum, x) in sums.iter_mut().zip(x) {
            *sum = _mm512_add_ps(*sum, _mm512_mul_ps(_mm512_set1_ps(x[0]), w));
        }
    }
    let mut out = [[0.0; PANEL]; 4];
    for (out, sum) in out.iter_mut().zip(sums) {
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), sum) };
    }
    out
}

wide_kernel!(pair_sums, pair_sums_avx, pair_sums_body, (
    bias: &[f32; PANEL],
    x: &[PairRow],
    panel: &[[f32; PANEL]]
));
wide_kernel!(pair_sums_picked, pair_sums_picked_avx, pair_sums_picked_body, (
    bias: &[f32; PANEL],
    x: &[PairRow],
    rows: &[usize],
    panel: &[[f32; PANEL]]
));
wide_kernel!(one_sums, one_sums_avx, one_sums_body, (
    bias: &[[f32; PANEL]; 2],
    x: &[f32],
    panels: [&[[f32; PANEL]]; 2]
));
wide_kernel!(one_sums_picked, one_sums_picked_avx, one_sums_picked_body, (
    bias: &[[f32; PANEL]; 2],
    picked: &[(f32, usize)],
    panels: [&[[f32; PANEL]]; 2]
));

/// Adds one input row of a pair: `x[s] * w` to the sums of sequence `s`.
#[inline(always)]
fn pair_add(sums: &mut [[f32; PANEL]; 2], x: &PairRow, w: &[f32; PANEL]) {
    for (sums, x) in sums.iter_mut().zip(x) {
        for c in 0..PANEL {
            sums[c] += x[c % 4] * w[c];
        }
    }
}

/// Adds one input row of four sequences: `x[s] * w` to the sums of sequence `s`.
#[inline(always)]
fn quad_add(sums: &mut [[f32; PANEL]; 4], x: &QuadRow, w: &[f32; PANEL]) {
    for (sums, x) in sums.iter_mut().zip(x) {
        for c in 0..PANEL {
            sums[c] += x[c % 4] * w[c];
        }
    }
}

/// Four sequences' sums of one panel over every input row.
#[inline(always)]
fn quad_sums_body(bias: &[f32; PANEL], x: &[QuadRow], panel: &[[f32; PANEL]]) -> [[f32; PANEL]; 4] {
    let mut sums = [*bias; 4];
    for (x, w) in x.iter().zip(panel) {
        quad_add(&mut sums, x, w);
    }
    sums
}

/// A pair's sums of one panel over every input row.
#[inline(always)]
fn pair_sums_body(bias: &[f32; PANEL], x: &[PairRow], panel: &[[f32; PANEL]]) -> [[f32; PANEL]; 2] {
    let mut sums = [*bias; 2];
    for (x, w) in x.iter().zip(panel) {
        pair_add(&mut sums, x, w);
    }
    sums
}

/// A pair's sums of one panel over the input rows `rows` (`x[k]` is row `rows[k]`).
#[inline(always)]
fn pair_sums_picked_body(
    bias: &[f32; PANEL],
    x: &[PairRow],
    rows: &[usize],
    panel: &[[f32; PANEL]],
) -> [[f32; PANEL]; 2] {
    let mut sums = [*bias; 2];
    for (x, &i) in x.iter().zip(rows) {
        pair_add(&mut sums, x, &panel[i]);
    }
    sums
}

/// Adds one input of a sequence alone: `x * w` to the sums of both panels.
#[inline(always)]
fn one_add(sums: &mut [[f32; PANEL]; 2], x: f32, w: [&[f32; PANEL]; 2]) {
    for (sums, w) in sums.iter_mut().zip(w) {
        for c in 0..PANEL {
            sums[c] += x * w[c];
        }
    }
}

/// A sequence's sums of two panels over every input row.
#[inline(always)]
fn one_sums_body(
    bias: &[[f32; PANEL]; 2],
    x: &[f32],
    [a, b]: [&[[f32; PANEL]]; 2],
) -> [[f32; PANEL]; 2] {
    let mut sums = *bias;
    for ((&x, a), b) in x.iter().zip(a).zip(b) {
        one_add(&mut sums, x, [a, b]);
    }
    sums
}

/// A sequence's sums of two panels over the picked inputs `(x, row)`.
#[inline(always)]
fn one_sums_picked_body(
    bias: &[[f32; PANEL]; 2],
    picked: &[(f32, usize)],
    [a, b]: [&[[f32; PANEL]]; 2],
) -> [[f32; PANEL]; 2] {
    let rows = a.len().min(b.len());
    let (a, b) = (&a[..rows], &b[..rows]);
    let mut sums = *bias;
    for &(x, i) in picked {
        one_add(&mut sums, x, [&a[i], &b[i]]);
    }
    sums
}

/// Why a model could not be copied out of burn.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the model's weights: {0}")]
pub struct NativeCopyError(String);

/// A tensor's values, row-major.
pub(crate) fn read_tensor<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, NativeCopyError> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| NativeCopyError(format!("{e:?}")))
}

fn dense(layer: &burn::nn::Linear) -> Result<Dense, NativeCopyError> {
    let [d_input, d_output] = layer.weight.dims();
    let bias = match &layer.bias {
        Some(bias) => read_tensor(bias.val())?,
        None => vec![0.0; d_output],
    };
    Ok(Dense::new(
        d_input,
        d_output,
        read_tensor(layer.weight.val())?,
        bias,
    ))
}

/// The article's network's weights as plain vectors, for [`forward`](Self::forward).
#[derive(Clone, Debug)]
pub struct NativeArticleNet {
    pitches: usize,
    conv: [Dense; 4],
    /// The LSTMs' input kernels and biases (one step from the zero state).
    lstm: [Dense; 2],
    norm_scale: Vec<f32>,
    norm_shift: Vec<f32>,
    output: Dense,
}

/// Working memory for one network's forward passes, reused across steps. It
/// keeps each window's rows after the first convolution, so that the next
/// step's window, the same steps moved on by one, computes only its newest
/// row: a scratch serves one network.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    /// The windows of the last pass and their rows after the first
    /// convolution and relu (`[window][kept row][filter]`).
    convolved_windows: Vec<[u128; WINDOW_STEPS]>,
    convolved: Vec<f32>,
    rows: Vec<f32>,
    next: Vec<f32>,
    pooled: Vec<f32>,
    gates: Vec<f32>,
    cells: Vec<f32>,
}

impl NativeArticleNet {
    /// Copies the weights out of `model` (on any device).
    pub fn from_model(model: &ArticleNet) -> Result<Self, NativeCopyError> {
        let lstm = |lstm: &super::KerasLstm| -> Result<Dense, NativeCopyError> {
            let [d_input, d_output] = lstm.kernel.dims();
            Ok(Dense::new(
                d_input,
                d_output,
                read_tensor(lstm.kernel.val())?,
                read_tensor(lstm.bias.val())?,
            ))
        };
        let norm = &model.norm10;
        let gamma = read_tensor(norm.gamma.val())?;
        let beta = read_tensor(norm.beta.val())?;
        let mean = read_tensor(norm.running_mean.value())?;
        let var = read_tensor(norm.running_var.value())?;
        let epsilon = norm.epsilon as f32;
        let norm_scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + epsilon).sqrt())
            .collect();
        let norm_shift = beta
            .iter()
            .zip(&mean)
            .zip(&norm_scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Ok(Self {
            pitches: model.pitches(),
            conv: [
                dense(&model.conv0)?,
                dense(&model.conv2)?,
                dense(&model.conv4)?,
                dense(&model.conv6)?,
            ],
            lstm: [lstm(&model.lstm8)?, lstm(&model.lstm9)?],
            norm_scale,
            norm_shift,
            output: dense(&model.dense11)?,
        })
    }

    /// Pitches per step in and out.
    pub fn pitches(&self) -> usize {
        self.pitches
    }

    /// The next step's probabilities for each window of 0/1 rows given as
    /// bitmasks (bit `r` = pitch row `r`), written to `out`
    /// (`windows.len() * pitches`, window by window).
    pub fn forward(
        &self,
        windows: &[[u128; WINDOW_STEPS]],
        scratch: &mut Scratch,
        out: &mut [f32],
    ) {
        let filters = self.conv[0].d_output;
        let batch = windows.len();
        // Conv1D 0 (kernel 1) on the 8 rows the first pooling keeps: bias +
        // the kernel rows of the sounding pitches, then relu. A window that
        // moved on by one step from the last pass's window in its place
        // takes 7 rows from it (half the pass's time went here).
        let kept = WINDOW_STEPS / 2 * 2;
        let conv0 = &self.conv[0];
        let convolve = |mask: u128, row: &mut [f32]| {
            row.copy_from_slice(&conv0.bias);
            for pitch in mask_bits(mask) {
                if pitch < conv0.d_input {
                    let weights = &conv0.weight[pitch * filters..(pitch + 1) * filters];
                    for (o, &w) in row.iter_mut().zip(weights) {
                        *o += w;
                    }
                }
            }
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        };
        let window_len = kept * filters;
        if scratch.convolved.len() != scratch.convolved_windows.len() * window_len {
            scratch.convolved_windows.clear();
        }
        scratch.convolved.resize(batch * window_len, 0.0);
        for (b, (window, rows)) in windows
            .iter()
            .zip(scratch.convolved.chunks_exact_mut(window_len))
            .enumerate()
        {
            let moved_on = scratch
                .convolved_windows
                .get(b)
                .is_some_and(|last| last[1..kept] == window[..kept - 1]);
            let first_new = if moved_on {
                rows.copy_within(filters.., 0);
                kept - 1
            } else {
                0
            };
            for (mask, row) in window[first_new..kept]
                .iter()
                .zip(rows[first_new * filters..].chunks_exact_mut(filters))
            {
                convolve(*mask, row);
            }
        }
        scratch.convolved_windows.clear();
        scratch.convolved_windows.extend_from_slice(windows);
        scratch.rows.clear();
        scratch.rows.extend_from_slice(&scratch.convolved);
        // Pool pairs, then Conv1D + relu, three times: 8 -> 4 -> 2 -> 1 rows.
        // Rows of all windows lie one after another, and pairs never straddle
        // two windows because every window holds an even number of rows.
        let mut rows = batch * kept;
        for conv in &self.conv[1..] {
            rows /= 2;
            scratch.pooled.resize(rows * filters, 0.0);
            for (pair, pooled) in scratch
                .rows
                .chunks_exact(2 * filters)
                .zip(scratch.pooled.chunks_exact_mut(filters))
            {
                let (a, b) = pair.split_at(filters);
                for ((p, &x), &y) in pooled.iter_mut().zip(a).zip(b) {
                    *p = x.max(y);
                }
            }
            scratch.next.resize(rows * filters, 0.0);
            conv.apply_many(&scratch.pooled, &mut scratch.next);
            scratch.next.iter_mut().for_each(|v| *v = v.max(0.0));
            std::mem::swap(&mut scratch.rows, &mut scratch.next);
        }
        // Two LSTM steps from the zero state (c = s(i) tanh(z_c), h = s(o)
        // tanh(c)), eight units at a time: libm's scalar tanh was a quarter
        // of the time.
        for lstm in &self.lstm {
            let units = lstm.d_output / 4;
            scratch.gates.resize(batch * lstm.d_output, 0.0);
            lstm.apply_many(&scratch.rows, &mut scratch.gates);
            scratch.rows.resize(batch * units, 0.0);
            scratch.cells.resize(units, 0.0);
            for (gates, hidden) in scratch
                .gates
                .chunks_exact_mut(lstm.d_output)
                .zip(scratch.rows.chunks_exact_mut(units))
            {
                scratch.cells.fill(0.0);
                activations::lstm_cells(gates, hidden, &mut scratch.cells);
            }
        }
        let units = self.norm_scale.len();
        for hidden in scratch.rows.chunks_exact_mut(units) {
            for ((h, scale), shift) in hidden
                .iter_mut()
                .zip(&self.norm_scale)
                .zip(&self.norm_shift)
            {
                *h = *h * scale + shift;
            }
        }
        self.output.apply_many(&scratch.rows, out);
        activations::sigmoids(out);
    }
}

/// An LSTM's weights as plain vectors, stepped one step at a time for
/// several sequences. The first `sparse_rows` inputs are 0/1 pitches given as
/// a bitmask (their kernel rows are summed, not multiplied by zeros), the
/// rest dense values.
#[derive(Clone, Debug)]
struct NativeLstm {
    units: usize,
    sparse_rows: usize,
    /// Input kernel `[d_input, 4u]`.
    kernel: Vec<f32>,
    /// Recurrent kernel `[u, 4u]` with the LSTM's bias (shared with the
    /// thread that computes half of a large product, see [`super::split`]).
    recurrent: Arc<Dense>,
    /// Whether one sequence's recurrent product goes to two cores.
    split: bool,
}

/// Hidden and cell states of several sequences, `[sequences, units]` each.
#[derive(Clone, Debug, Default)]
pub struct LstmStates {
    hidden: Vec<f32>,
    cell: Vec<f32>,
    gates: Vec<f32>,
}

impl LstmStates {
    /// How many sequences of `units` units these states hold.
    fn sequences(&self, units: usize) -> usize {
        self.hidden.len() / units.max(1)
    }

    /// Makes these states `sequences` copies of the first sequence's.
    fn replicate(&mut self, units: usize, sequences: usize) {
        for values in [&mut self.hidden, &mut self.cell] {
            values.truncate(units);
            let first = values.clone();
            for _ in 1..sequences {
                values.extend_from_slice(&first);
            }
        }
    }
}

impl NativeLstm {
    fn from_keras(lstm: &super::KerasLstm, sparse_rows: usize) -> Result<Self, NativeCopyError> {
        let [_, gates] = lstm.kernel.dims();
        let recurrent = Dense::new(
            lstm.units,
            gates,
            read_tensor(lstm.recurrent_kernel.val())?,
            read_tensor(lstm.bias.val())?,
        );
        Ok(Self {
            units: lstm.units,
            sparse_rows,
            kernel: read_tensor(lstm.kernel.val())?,
            split: worth_splitting(&recurrent),
            recurrent: Arc::new(recurrent),
        })
    }

    fn reset(&self, states: &mut LstmStates, sequences: usize) {
        for values in [&mut states.hidden, &mut states.cell] {
            values.clear();
            values.resize(sequences * self.units, 0.0);
        }
    }

    /// Feeds one step to each sequence: `masks[s]` for the sparse inputs and
    /// `dense[s * d .. (s + 1) * d]` for the rest (`dense` may be empty when
    /// there are none).
    fn advance(&self, states: &mut LstmStates, masks: &[u128], dense: &[f32]) {
        let LstmStates {
            hidden,
            cell,
            gates,
        } = states;
        gates.resize(masks.len() * 4 * self.units, 0.0);
        let units = self.units;
        let width = 4 * units;
        let dense_rows = self.kernel.len() / width - self.sparse_rows;
        // bias + h U, then + the kernel rows of the inputs.
        if self.split && masks.len() == 1 && hidden.len() == units {
            split::apply_one(&self.recurrent, hidden, gates);
        } else {
            self.recurrent.apply_many(hidden, gates);
        }
        for (s, (&mask, gates)) in masks.iter().zip(gates.chunks_exact_mut(width)).enumerate() {
            let values = dense
                .get(s * dense_rows..(s + 1) * dense_rows)
                .unwrap_or(&[]);
            add_input_rows(gates, &self.kernel, self.sparse_rows, mask, values);
        }
        for ((gates, hidden), cell) in gates
            .chunks_exact_mut(width)
            .zip(hidden.chunks_exact_mut(units))
            .zip(cell.chunks_exact_mut(units))
        {
            activations::lstm_cells(gates, hidden, cell);
        }
    }
}

wide_kernel!(add_input_rows, add_input_rows_avx, add_input_rows_body, (
    gates: &mut [f32],
    kernel: &[f32],
    sparse_rows: usize,
    mask: u128,
    dense: &[f32]
) -> ());

/// Adds one step's input to one sequence's `gates`: the `kernel` rows of the
/// pitches in `mask` (the first `sparse_rows` rows), then each nonzero
/// `dense` value times its row.
#[inline(always)]
fn add_input_rows_body(
    gates: &mut [f32],
    kernel: &[f32],
    sparse_rows: usize,
    mask: u128,
    dense: &[f32],
) {
    let width = gates.len();
    for pitch in mask_bits(mask) {
        if pitch < sparse_rows {
            let row = &kernel[pitch * width..(pitch + 1) * width];
            gates.iter_mut().zip(row).for_each(|(g, &w)| *g += w);
        }
    }
    for (j, &x) in dense.iter().enumerate() {
        if x != 0.0 {
            let at = (sparse_rows + j) * width;
            let row = &kernel[at..at + width];
            gates.iter_mut().zip(row).for_each(|(g, &w)| *g += x * w);
        }
    }
}

/// The roll LSTM's weights as plain vectors, stepped one step at a time.
#[derive(Clone, Debug)]
pub struct NativeRollNet {
    pitches: usize,
    lstm: NativeLstm,
    output: Dense,
}

/// The roll LSTM's states of several sequences.
pub type RollState = LstmStates;

impl NativeRollNet {
    /// Copies the weights out of `model` (on any device).
    pub fn from_model(model: &RollLstm) -> Result<Self, NativeCopyError> {
        let pitches = model.pitches();
        Ok(Self {
            pitches,
            lstm: NativeLstm::from_keras(&model.lstm, pitches)?,
            output: dense(&model.output)?,
        })
    }

    /// Pitches per step in and out.
    pub fn pitches(&self) -> usize {
        self.pitches
    }

    /// How many sequences `state` holds.
    pub fn sequences(&self, state: &RollState) -> usize {
        state.sequences(self.lstm.units)
    }

    /// Sets `state` to `sequences` zero states.
    pub fn reset(&self, state: &mut RollState, sequences: usize) {
        self.lstm.reset(state, sequences);
    }

    /// Makes `state` `sequences` copies of its first sequence (seeds that
    /// are all the same are fed once).
    pub fn replicate(&self, state: &mut RollState, sequences: usize) {
        state.replicate(self.lstm.units, sequences);
    }

    /// Feeds one step (a pitch bitmask) to each sequence of `state`.
    pub fn advance(&self, state: &mut RollState, steps: &[u128]) {
        self.lstm.advance(state, steps, &[]);
    }

    /// The next step's probabilities of each sequence of `state`
    /// (`sequences * pitches`).
    pub fn predict(&self, state: &RollState, out: &mut [f32]) {
        self.output.apply_many(&state.hidden, out);
        activations::sigmoids(out);
    }
}

/// The composer's weights as plain vectors: generation draws each step pitch
/// by pitch here (see `model::composer`), which on a GPU would be 106 tiny
/// dispatches per step.
#[derive(Clone, Debug)]
pub struct NativeComposer {
    pitches: usize,
    nade_units: usize,
    /// Whether the context holds the first step after the gap scaled by
    /// nearness (`ComposerConfig::near_after`).
    near_after: bool,
    /// Whether it ends with the pitch-class profile of the steps fed
    /// (`ComposerConfig::pitch_profile`).
    pitch_profile: bool,
    /// Whether it also holds the profile's key weights
    /// (`ComposerConfig::key_input`).
    key_input: bool,
    past: NativeLstm,
    future: NativeLstm,
    /// The NADE's visible and hidden biases (`[pitches + nade_units]`) from
    /// the past LSTM's output and the pitch-class profile, without bias: the
    /// part of the context that differs between sequences.
    from_past: Dense,
    /// The same from the rest of the context (the music after the gap, the
    /// gap, the meter), with the layers' biases: the part every sequence
    /// shares, computed once per step.
    from_shared: Dense,
    /// `W`, `[pitches, nade_units]`.
    nade_in: Vec<f32>,
    /// `V`, `[pitches, nade_units]`.
    nade_out: Vec<f32>,
}

/// The music after a gap as the composer hears it: the future LSTM's
/// summary, the first step after the gap, and its index.
#[derive(Clone, Debug)]
struct AfterGap {
    summary: Vec<f32>,
    first: u128,
    at: usize,
}

/// What the composer holds while it generates: the past LSTM's states of
/// every sequence, and what it heard after the gap (shared by all
/// sequences).
#[derive(Clone, Debug, Default)]
pub struct ComposerState {
    past: LstmStates,
    /// Each sequence's decayed pitch-class counts of the steps fed
    /// (`[sequences][PROFILE_FEATURES]`), for the pitch-class profile.
    profile_counts: Vec<f32>,
    /// Each sequence's past LSTM output and profile, the input of `from_past`.
    own: Vec<f32>,
    after: Option<AfterGap>,
    /// The shared part of the context, and what it adds to the biases.
    shared: Vec<f32>,
    shared_biases: Vec<f32>,
    /// Each sequence's visible then hidden biases.
    biases: Vec<f32>,
    activation: Vec<f32>,
    squashed: Vec<f32>,
    dense: Vec<f32>,
}

impl NativeComposer {
    /// Copies the weights out of `model` (on any device).
    pub fn from_model(model: &Composer) -> Result<Self, NativeCopyError> {
        let pitches = model.pitches();
        let [_, nade_units] = model.nade_in.dims();
        let units = model.past.units;
        let (visible, hidden) = (dense(&model.visible_bias)?, dense(&model.hidden_bias)?);
        let outputs = pitches + nade_units;
        let width = visible.d_input;
        let near = if model.near_after { pitches } else { 0 };
        let profile = profile_width(model.pitch_profile, model.key_input);
        let expected =
            units + model.future.units + pitches + GAP_FEATURES + METER_FEATURES + near + profile;
        if hidden.d_input != width || width != expected {
            return Err(NativeCopyError(format!(
                "the NADE's biases read {width} and {} inputs, not the composer's context \
                 ({expected})",
                hidden.d_input,
            )));
        }
        // Both layers side by side: input row i = visible's row i, hidden's row i.
        let rows = |first: usize, last: usize| -> Vec<f32> {
            let mut rows = Vec::with_capacity((last - first) * outputs);
            for i in first..last {
                rows.extend_from_slice(&visible.weight[i * pitches..(i + 1) * pitches]);
                rows.extend_from_slice(&hidden.weight[i * nade_units..(i + 1) * nade_units]);
            }
            rows
        };
        // The context's last rows (the profile) differ between sequences too.
        let shared_end = width - profile;
        let from_past = Dense::new(
            units + profile,
            outputs,
            [rows(0, units), rows(shared_end, width)].concat(),
            vec![0.0; outputs],
        );
        let from_shared = Dense::new(
            shared_end - units,
            outputs,
            rows(units, shared_end),
            visible.bias.iter().chain(&hidden.bias).copied().collect(),
        );
        Ok(Self {
            pitches,
            nade_units,
            near_after: model.near_after,
            pitch_profile: model.pitch_profile,
            key_input: model.key_input,
            past: NativeLstm::from_keras(&model.past, pitches)?,
            future: NativeLstm::from_keras(&model.future, pitches)?,
            from_past,
            from_shared,
            nade_in: read_tensor(model.nade_in.val())?,
            nade_out: read_tensor(model.nade_out.val())?,
        })
    }

    pub fn pitches(&self) -> usize {
        self.pitches
    }

    /// How many sequences `state` holds.
    pub fn sequences(&self, state: &ComposerState) -> usize {
        state.past.sequences(self.past.units)
    }

    /// Sets `state` to `sequences` zero states (what it heard after the
    /// gap stays).
    pub fn reset(&self, state: &mut ComposerState, sequences: usize) {
        self.past.reset(&mut state.past, sequences);
        state.profile_counts.clear();
        state
            .profile_counts
            .resize(sequences * PROFILE_FEATURES, 0.0);
    }

    /// Makes `state` `sequences` copies of its first sequence (seeds that
    /// are all the same are fed once).
    pub fn replicate(&self, state: &mut ComposerState, sequences: usize) {
        state.past.replicate(self.past.units, sequences);
        state.profile_counts.resize(PROFILE_FEATURES, 0.0);
        state.profile_counts = state.profile_counts.repeat(sequences);
    }

    /// Forgets the music after the gap: continuing.
    pub fn forget_after(&self, state: &mut ComposerState) {
        state.after = None;
    }

    /// Reads `after` (the music from the gap's end, step `gap_end` of
    /// `meter`) backwards with the future LSTM, so every later step knows
    /// what follows the gap.
    pub fn hear_after(
        &self,
        state: &mut ComposerState,
        after: &[u128],
        gap_end: usize,
        meter: Meter,
    ) {
        let mut future = LstmStates::default();
        self.future.reset(&mut future, 1);
        let mut features = [0.0f32; METER_FEATURES];
        for (k, &step) in after.iter().enumerate().rev() {
            meter.features(gap_end + k, &mut features);
            self.future.advance(&mut future, &[step], &features);
        }
        state.after = Some(AfterGap {
            summary: future.hidden,
            first: after.first().copied().unwrap_or(0),
            at: gap_end,
        });
    }

    /// Feeds each sequence its step `steps[s]`, the step before `next` (the
    /// step to predict next), with `next`'s meter features.
    pub fn advance(&self, state: &mut ComposerState, steps: &[u128], next: usize, meter: Meter) {
        state.dense.resize(steps.len() * METER_FEATURES, 0.0);
        for row in state.dense.chunks_exact_mut(METER_FEATURES) {
            meter.features(next, row);
        }
        let dense = std::mem::take(&mut state.dense);
        self.past.advance(&mut state.past, steps, &dense);
        state.dense = dense;
        if self.pitch_profile {
            // Sized here too, for a state that was never reset.
            state
                .profile_counts
                .resize(steps.len() * PROFILE_FEATURES, 0.0);
            for (counts, &step) in state
                .profile_counts
                .chunks_exact_mut(PROFILE_FEATURES)
                .zip(steps)
            {
                add_to_profile(counts, mask_bits(step));
            }
        }
    }

    /// Writes each sequence's past LSTM output and then, with a profile,
    /// its pitch-class profile to `state.own`.
    fn own_context(&self, state: &mut ComposerState, sequences: usize) {
        let units = self.past.units;
        let profile = profile_width(self.pitch_profile, self.key_input);
        let width = units + profile;
        state.own.resize(sequences * width, 0.0);
        for (s, own) in state.own.chunks_exact_mut(width).enumerate() {
            let (hidden, features) = own.split_at_mut(units);
            hidden.copy_from_slice(&state.past.hidden[s * units..(s + 1) * units]);
            if profile == 0 {
                continue;
            }
            let (classes, key) = features.split_at_mut(PROFILE_FEATURES);
            match state
                .profile_counts
                .get(s * PROFILE_FEATURES..(s + 1) * PROFILE_FEATURES)
            {
                Some(counts) => classes.copy_from_slice(counts),
                None => classes.fill(0.0),
            }
            normalise_profile(classes);
            if self.key_input {
                key_weights(classes, key);
            }
        }
    }

    /// Decides step `step` of every sequence pitch by pitch, low to high:
    /// `decide(&mut deciders[sequence], row, p)` gets each row's probability
    /// given the rows chosen below it and says whether it sounds. Writes the
    /// chosen masks and the probabilities (`sequences * pitches`).
    #[allow(clippy::too_many_arguments)]
    pub fn chain<D>(
        &self,
        state: &mut ComposerState,
        step: usize,
        meter: Meter,
        deciders: &mut [D],
        decide: &impl Fn(&mut D, usize, f32) -> bool,
        chosen: &mut [u128],
        probabilities: &mut [f32],
    ) {
        let (after_units, pitches) = (self.future.units, self.pitches);
        let nade = self.nade_units;
        let outputs = pitches + nade;
        let sequences = self.sequences(state);
        // The context is [past LSTM output | after | first after | gap | meter
        // | first after by nearness]; all but the first part are the same for
        // every sequence.
        let near = if self.near_after { pitches } else { 0 };
        state.shared.clear();
        state.shared.resize(
            after_units + pitches + GAP_FEATURES + METER_FEATURES + near,
            0.0,
        );
        let (after, rest) = state.shared.split_at_mut(after_units);
        let (first_after, rest) = rest.split_at_mut(pitches);
        let (gap, rest) = rest.split_at_mut(GAP_FEATURES);
        let (meter_features, near_after) = rest.split_at_mut(METER_FEATURES);
        let distance = match &state.after {
            Some(heard) if heard.at > step => {
                after.copy_from_slice(&heard.summary);
                mask_to_floats(heard.first, first_after);
                Some(heard.at - step)
            }
            _ => None,
        };
        gap_features(distance, gap);
        meter.features(step, meter_features);
        let nearness = gap_nearness(gap);
        for (near, &first) in near_after.iter_mut().zip(first_after.iter()) {
            *near = first * nearness;
        }
        state.shared_biases.resize(outputs, 0.0);
        self.from_shared
            .apply_many(&state.shared, &mut state.shared_biases);
        state.biases.resize(sequences * outputs, 0.0);
        self.own_context(state, sequences);
        self.from_past.apply_many(&state.own, &mut state.biases);
        for biases in state.biases.chunks_exact_mut(outputs) {
            biases
                .iter_mut()
                .zip(&state.shared_biases)
                .for_each(|(b, &shared)| *b += shared);
        }
        // Up to four sequences walk the pitches together: their dot products
        // share each read-out row's loads, and their additions overlap where
        // one sequence's would each wait for the one before. Sequences
        // without a decider, a mask or probabilities get nothing.
        let decided = deciders
            .len()
            .min(chosen.len())
            .min(probabilities.len() / pitches)
            .min(sequences);
        let mut first = 0;
        while first < decided {
            let group = (decided - first).min(NADE_GROUP);
            let members = first..first + group;
            let pass = NadePass {
                biases: &state.biases[first * outputs..(first + group) * outputs],
                activation: &mut state.activation,
                squashed: &mut state.squashed,
                deciders: &mut deciders[members.clone()],
                chosen: &mut chosen[members],
                probabilities: &mut probabilities[first * pitches..(first + group) * pitches],
            };
            match group {
                1 => self.nade_pass::<1, D>(pass, decide),
                2 => self.nade_pass::<2, D>(pass, decide),
                3 => self.nade_pass::<3, D>(pass, decide),
                _ => self.nade_pass::<NADE_GROUP, D>(pass, decide),
            }
            first += group;
        }
    }

    /// The NADE's pitch-by-pitch pass of `N` sequences (see [`Self::chain`]).
    fn nade_pass<const N: usize, D>(
        &self,
        pass: NadePass<'_, D>,
        decide: &impl Fn(&mut D, usize, f32) -> bool,
    ) {
        let (pitches, nade) = (self.pitches, self.nade_units);
        let outputs = pitches + nade;
        let NadePass {
            biases,
            activation,
            squashed,
            deciders,
            chosen,
            probabilities,
        } = pass;
        activation.clear();
        for biases in biases.chunks_exact(outputs) {
            activation.extend_from_slice(&biases[pitches..]);
        }
        squashed.clear();
        squashed.extend_from_slice(activation);
        activations::sigmoids(squashed);
        chosen.fill(0);
        for row in 0..pitches {
            let read_out = &self.nade_out[row * nade..(row + 1) * nade];
            let sums = dots::<N>(
                read_out,
                std::array::from_fn(|g| &squashed[g * nade..(g + 1) * nade]),
            );
            // All the group's sigmoids at once: one vector exp, not N calls.
            let mut group =
                std::array::from_fn::<f32, N, _>(|g| biases[g * outputs + row] + sums[g]);
            activations::sigmoids(&mut group);
            for (g, p) in group.into_iter().enumerate() {
                probabilities[g * pitches + row] = p;
                if decide(&mut deciders[g], row, p) {
                    chosen[g] |= 1u128 << row;
                    let own = g * nade..(g + 1) * nade;
                    let added = &self.nade_in[row * nade..(row + 1) * nade];
                    for (a, &w) in activation[own.clone()].iter_mut().zip(added) {
                        *a += w;
                    }
                    squashed[own.clone()].copy_from_slice(&activation[own.clone()]);
                    activations::sigmoids(&mut squashed[own]);
                }
            }
        }
    }
}

/// Sequences whose NADE passes run side by side: four of the 256-bit
/// registers' running sums, well within the sixteen.
const NADE_GROUP: usize = 4;

/// One group's share of [`NativeComposer::chain`]'s buffers.
struct NadePass<'a, D> {
    /// Each sequence's visible then hidden biases.
    biases: &'a [f32],
    activation: &'a mut Vec<f32>,
    squashed: &'a mut Vec<f32>,
    deciders: &'a mut [D],
    chosen: &'a mut [u128],
    probabilities: &'a mut [f32],
}

/// `a . b[j]` for each `j`, each in eight running sums so that the loop
/// vectorises (a single sum must add in order, one addition's latency per
/// term); the sums of every `j` are the same bits whatever `N` is, and the
/// AVX copy's are the plain one's.
fn dots<const N: usize>(a: &[f32], b: [&[f32]; N]) -> [f32; N] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the processor was just found to run AVX, the only feature
        // `dots_avx` is compiled for.
        #[allow(unsafe_code)]
        return unsafe { dots_avx(a, b) };
    }
    dots_plain(a, b)
}

/// [`dots`] on 256-bit registers, written out: the compiler's vectoriser
/// leaves the running sums of several `b` on the stack, one lane at a time.
/// A multiply then an add per lane (no fused multiply-add), as the plain one.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn dots_avx<const N: usize>(a: &[f32], b: [&[f32]; N]) -> [f32; N] {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let (a_blocks, a_rest) = a.as_chunks::<8>();
    let blocks = a_blocks.len();
    let b_blocks = b.map(|b| &b.as_chunks::<8>().0[..blocks]);
    let mut sums = [_mm256_setzero_ps(); N];
    for (i, x) in a_blocks.iter().enumerate() {
        // SAFETY: each load reads the eight floats of one `[f32; 8]`.
        #[allow(unsafe_code)]
        let x = unsafe { _mm256_loadu_ps(x.as_ptr()) };
        for (sum, b_blocks) in sums.iter_mut().zip(&b_blocks) {
            #[allow(unsafe_code)]
            let y = unsafe { _mm256_loadu_ps(b_blocks[i].as_ptr()) };
            *sum = _mm256_add_ps(*sum, _mm256_mul_ps(x, y));
        }
    }
    std::array::from_fn(|j| {
        let mut lanes = [0.0f32; 8];
        // SAFETY: the store writes the eight floats of `lanes`.
        #[allow(unsafe_code)]
        unsafe {
            _mm256_storeu_ps(lanes.as_mut_ptr(), sums[j]);
        }
        dot_total(lanes, a_rest, &b[j][blocks * 8..])
    })
}

fn dots_plain<const N: usize>(a: &[f32], b: [&[f32]; N]) -> [f32; N] {
    let (a_blocks, a_rest) = a.as_chunks::<8>();
    let blocks = a_blocks.len();
    std::array::from_fn(|j| {
        let mut lanes = [0.0f32; 8];
        for (x, y) in a_blocks.iter().zip(b[j].as_chunks::<8>().0) {
            for lane in 0..8 {
                lanes[lane] += x[lane] * y[lane];
            }
        }
        dot_total(lanes, a_rest, &b[j][blocks * 8..])
    })
}

/// The running sums added in lane order, and the terms past the last whole
/// eight.
fn dot_total(lanes: [f32; 8], a_rest: &[f32], b_rest: &[f32]) -> f32 {
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod unit_tests {

    use rand::Rng as _;

    use super::*;
    use crate::rng::seeded;

    /// A layer of random weights and biases in [-1, 1).
    fn random_dense(rng: &mut crate::rng::SeededRng, d_input: usize, d_output: usize) -> Dense {
        let mut values = |n: usize| (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let weight = values(d_input * d_output);
        let bias = values(d_output);
        Dense::new(d_input, d_output, weight, bias)
    }

    /// `n` random input vectors: values, +0.0 and -0.0, with zeros that the
    /// vectors share (rows zero in every vector: features of the step) and
    /// zeros of their own (relu outputs), in proportions that send the
    /// vectors down each of `apply_many`'s paths.
    fn random_inputs(rng: &mut crate::rng::SeededRng, n: usize, d_input: usize) -> Vec<f32> {
        let shared_rate = [0.0, 0.2, 0.4, 0.9][rng.random_range(0..4)];
        let own_rate = [0.0, 0.05, 0.3, 0.6][rng.random_range(0..4)];
        let shared_zero_rows: Vec<bool> =
            (0..d_input).map(|_| rng.random_bool(shared_rate)).collect();
        (0..n * d_input)
            .map(|k| match rng.random_range(0..40) {
                _ if shared_zero_rows[k % d_input] => 0.0,
                0 => 0.0,
                1 => -0.0,
                _ if rng.random_bool(own_rate) => 0.0,
                _ => rng.random_range(-2.0f32..2.0),
            })
            .collect()
    }

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// What `apply_many` promises, written as plainly as possible: each
    /// output from its bias, plus `x_i * w` for every nonzero input in order.
    fn reference(dense: &Dense, xs: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![0.0; n * dense.d_output];
        for (x, out) in xs
            .chunks_exact(dense.d_input)
            .zip(out.chunks_exact_mut(dense.d_output))
        {
            for (o, value) in out.iter_mut().enumerate() {
                let mut sum = dense.bias[o];
                for (i, &xi) in x.iter().enumerate() {
                    if xi != 0.0 {
                        sum += xi * dense.weight[i * dense.d_output + o];
                    }
                }
                *value = sum;
            }
        }
        out
    }

    #[test]
    fn blocked_kernels_match_the_plain_sums_bit_for_bit() {
        let mut rng = seeded(7);
        for case in 0..1000 {
            let d_input = rng.random_range(1..80);
            let d_output = rng.random_range(1..100);
            let n = rng.random_range(0..10);
            let dense = random_dense(&mut rng, d_input, d_output);
            assert!(dense.zero_terms_vanish);
            let xs = random_inputs(&mut rng, n, d_input);
            let mut out = vec![f32::NAN; n * d_output];
            dense.apply_many(&xs, &mut out);
            let mut plain = vec![f32::NAN; n * d_output];
            dense.apply_each_row(&xs, &mut plain);
            let expected = bits(&reference(&dense, &xs, n));
            assert_eq!(
                bits(&out),
                expected,
                "case {case}: {n} x {d_input} -> {d_output}"
            );
            assert_eq!(bits(&plain), expected, "case {case}: plain loop");
        }
    }

    #[test]
    fn the_model_sizes_match_the_plain_sums_bit_for_bit() {
        let mut rng = seeded(8);
        for (d_input, d_output) in [(256, 1024), (256, 88), (411, 234), (411, 88)] {
            let dense = random_dense(&mut rng, d_input, d_output);
            for n in [1, 2, 3, 8] {
                let xs = random_inputs(&mut rng, n, d_input);
                let mut out = vec![f32::NAN; n * d_output];
                dense.apply_many(&xs, &mut out);
                assert_eq!(bits(&out), bits(&reference(&dense, &xs, n)));
            }
        }
    }

    #[test]
    fn any_split_of_the_panel_pairs_gives_the_whole_products_bits() {
        let mut rng = seeded(12);
        for (d_input, d_output) in [(256, 1024), (411, 234), (7, 33)] {
            let dense = random_dense(&mut rng, d_input, d_output);
            let pairs = dense.panel_pairs();
            for _ in 0..4 {
                let x = random_inputs(&mut rng, 1, d_input);
                let mut whole = vec![f32::NAN; d_output];
                dense.apply_many(&x, &mut whole);
                let cut = rng.random_range(0..=pairs);
                let mut halves = vec![f32::NAN; d_output];
                dense.apply_one_pairs(&x, 0..cut, &mut halves);
                dense.apply_one_pairs(&x, cut..pairs, &mut halves);
                assert_eq!(
                    bits(&halves),
                    bits(&whole),
                    "{d_input} -> {d_output}, cut {cut}"
                );
                let columns = dense.pair_columns(0..cut);
                assert_eq!(columns.start, 0);
                assert!(columns.end <= d_output);
            }
        }
    }

    /// The helper thread's half and the caller's give the whole product's
    /// bits, also when three generations ask at once (those that find the
    /// helper busy compute whole, or wait for it in the forced case).
    #[test]
    fn split_products_match_the_whole_ones_bit_for_bit() {
        let mut rng = seeded(13);
        let dense = Arc::new(random_dense(&mut rng, 256, 1024));
        let inputs: Vec<Vec<f32>> = (0..40)
            .map(|_| (0..256).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect();
        let expected: Vec<Vec<u32>> = inputs
            .iter()
            .map(|x| {
                let mut out = vec![0.0; 1024];
                dense.apply_many(x, &mut out);
                bits(&out)
            })
            .collect();
        std::thread::scope(|scope| {
            for forced in [true, true, false] {
                let (dense, inputs, expected) = (&dense, &inputs, &expected);
                scope.spawn(move || {
                    let mut out = vec![f32::NAN; 1024];
                    for (x, want) in inputs.iter().zip(expected) {
                        if forced {
                            assert!(split::apply_on_the_helper(dense, x, &mut out));
                        } else {
                            split::apply_one(dense, x, &mut out);
                        }
                        assert_eq!(&bits(&out), want);
                    }
                });
            }
        });
        // Kept whole where asked, the same bits.
        let mut out = vec![f32::NAN; 1024];
        split::without_splitting(|| split::apply_one(&dense, &inputs[0], &mut out));
        assert_eq!(bits(&out), expected[0]);
    }

    /// An LSTM that splits its recurrent product steps to the same states,
    /// bit for bit, as one that does not.
    #[test]
    fn a_split_lstm_step_keeps_the_bits() {
        let mut rng = seeded(14);
        let (units, pitches) = (256, 106);
        let kernel = (0..pitches * 4 * units)
            .map(|_| rng.random_range(-0.3f32..0.3))
            .collect();
        let recurrent = random_dense(&mut rng, units, 4 * units);
        let split = NativeLstm {
            units,
            sparse_rows: pitches,
            kernel,
            recurrent: Arc::new(recurrent),
            split: true,
        };
        let whole = NativeLstm {
            split: false,
            ..split.clone()
        };
        let (mut a, mut b) = (LstmStates::default(), LstmStates::default());
        split.reset(&mut a, 1);
        whole.reset(&mut b, 1);
        for _ in 0..30 {
            let mask = (0..4).fold(0u128, |m, _| m | 1u128 << rng.random_range(20..90));
            split.advance(&mut a, &[mask], &[]);
            whole.advance(&mut b, &[mask], &[]);
            assert_eq!(bits(&a.hidden), bits(&b.hidden));
            assert_eq!(bits(&a.cell), bits(&b.cell));
        }
    }

    /// A -0.0 bias or a non-finite weight would make `0 * w` change a sum;
    /// such layers keep to the skipping loop.
    #[test]
    fn zero_terms_that_would_not_vanish_are_still_skipped() {
        let mut rng = seeded(9);
        for spoil in 0..2 {
            let (d_input, d_output) = (20, 40);
            let Dense {
                mut weight,
                mut bias,
                ..
            } = random_dense(&mut rng, d_input, d_output);
            if spoil == 0 {
                bias[3] = -0.0;
            } else {
                weight[5 * d_output + 7] = f32::INFINITY;
            }
            let dense = Dense::new(d_input, d_output, weight, bias);
            assert!(!dense.zero_terms_vanish);
            let n = 5;
            let mut xs = random_inputs(&mut rng, n, d_input);
            // Sequence 0 is all zeros: its outputs are the bias, -0.0 and all,
            // and its row 5 never meets the infinite weight.
            xs[..d_input].fill(0.0);
            let mut out = vec![f32::NAN; n * d_output];
            dense.apply_many(&xs, &mut out);
            assert_eq!(bits(&out), bits(&reference(&dense, &xs, n)));
            if spoil == 0 {
                assert_eq!(out[3].to_bits(), (-0.0f32).to_bits());
            } else {
                assert!(out[7].is_finite());
            }
        }
    }

    #[test]
    fn the_fast_dots_stay_close_to_the_plain_ones_and_keep_their_bits_side_by_side() {
        let mut rng = seeded(5);
        for length in [0, 1, 7, 8, 9, 128, 131] {
            let mut values =
                || -> Vec<f32> { (0..length).map(|_| rng.random_range(-1.0..1.0)).collect() };
            let (a, b, c, d, e) = (values(), values(), values(), values(), values());
            let [alone] = dots(&a, [&b]);
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!((f64::from(alone) - plain).abs() <= 1e-5, "length {length}");
            // The plain kernel and the dispatched one (AVX where the processor
            // has it), one at a time and four side by side: the same bits.
            let four = dots(&a, [&b, &c, &d, &e]);
            assert_eq!(alone.to_bits(), four[0].to_bits(), "length {length}");
            assert_eq!(dots_plain(&a, [&b])[0].to_bits(), alone.to_bits());
            for (others, got) in [&c, &d, &e].into_iter().zip(&four[1..]) {
                assert_eq!(dots(&a, [others])[0].to_bits(), got.to_bits());
            }
        }
    }
}
