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

use burn::tensor::Tensor;

use super::composer::{GAP_FEATURES, gap_features};
use super::{ArticleNet, Composer, RollLstm, WINDOW_STEPS};
use crate::meter::{METER_FEATURES, Meter};
use crate::roll::{mask_bits, mask_to_floats};

/// A dense layer `[d_input, d_output]`, row-major, with its bias.
#[derive(Clone, Debug)]
struct Dense {
    d_input: usize,
    d_output: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    /// `out[v] = bias + x[v] W` for every vector `v` of `xs` (`n x d_input`,
    /// row-major). The weight row stays outermost so it is read once for the
    /// whole batch, and the inner loop is a contiguous multiply-add the
    /// compiler vectorises; zero inputs (relu outputs) are skipped.
    fn apply_many(&self, xs: &[f32], out: &mut [f32]) {
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

/// Why a model could not be copied out of burn.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the model's weights: {0}")]
pub struct NativeCopyError(String);

fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, NativeCopyError> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| NativeCopyError(format!("{e:?}")))
}

fn dense(layer: &burn::nn::Linear) -> Result<Dense, NativeCopyError> {
    let [d_input, d_output] = layer.weight.dims();
    let bias = match &layer.bias {
        Some(bias) => read(bias.val())?,
        None => vec![0.0; d_output],
    };
    Ok(Dense {
        d_input,
        d_output,
        weight: read(layer.weight.val())?,
        bias,
    })
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

/// Working memory for one forward pass, reused across steps.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    rows: Vec<f32>,
    next: Vec<f32>,
    pooled: Vec<f32>,
    gates: Vec<f32>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl NativeArticleNet {
    /// Copies the weights out of `model` (on any device).
    pub fn from_model(model: &ArticleNet) -> Result<Self, NativeCopyError> {
        let lstm = |lstm: &super::KerasLstm| -> Result<Dense, NativeCopyError> {
            let [d_input, d_output] = lstm.kernel.dims();
            Ok(Dense {
                d_input,
                d_output,
                weight: read(lstm.kernel.val())?,
                bias: read(lstm.bias.val())?,
            })
        };
        let norm = &model.norm10;
        let gamma = read(norm.gamma.val())?;
        let beta = read(norm.beta.val())?;
        let mean = read(norm.running_mean.value())?;
        let var = read(norm.running_var.value())?;
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
        // Conv1D 0 on the 8 rows the first pooling keeps: bias + the kernel
        // rows of the sounding pitches, then relu.
        let kept = WINDOW_STEPS / 2 * 2;
        scratch.rows.resize(batch * kept * filters, 0.0);
        let conv0 = &self.conv[0];
        let masks = windows.iter().flat_map(|window| &window[..kept]);
        for (mask, row) in masks.zip(scratch.rows.chunks_exact_mut(filters)) {
            row.copy_from_slice(&conv0.bias);
            for pitch in mask_bits(*mask) {
                if pitch < conv0.d_input {
                    let weights = &conv0.weight[pitch * filters..(pitch + 1) * filters];
                    for (o, &w) in row.iter_mut().zip(weights) {
                        *o += w;
                    }
                }
            }
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        }
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
        // Two LSTM steps from the zero state: c = s(i) tanh(z_c), h = s(o) tanh(c).
        for lstm in &self.lstm {
            let units = lstm.d_output / 4;
            scratch.gates.resize(batch * lstm.d_output, 0.0);
            lstm.apply_many(&scratch.rows, &mut scratch.gates);
            scratch.rows.resize(batch * units, 0.0);
            for (gates, hidden) in scratch
                .gates
                .chunks_exact(lstm.d_output)
                .zip(scratch.rows.chunks_exact_mut(units))
            {
                for (u, h) in hidden.iter_mut().enumerate() {
                    let cell = sigmoid(gates[u]) * gates[2 * units + u].tanh();
                    *h = sigmoid(gates[3 * units + u]) * cell.tanh();
                }
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
        out.iter_mut().for_each(|v| *v = sigmoid(*v));
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
    /// Recurrent kernel `[u, 4u]` with the LSTM's bias.
    recurrent: Dense,
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
}

impl NativeLstm {
    fn from_keras(lstm: &super::KerasLstm, sparse_rows: usize) -> Result<Self, NativeCopyError> {
        let [_, gates] = lstm.kernel.dims();
        Ok(Self {
            units: lstm.units,
            sparse_rows,
            kernel: read(lstm.kernel.val())?,
            recurrent: Dense {
                d_input: lstm.units,
                d_output: gates,
                weight: read(lstm.recurrent_kernel.val())?,
                bias: read(lstm.bias.val())?,
            },
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
        let units = self.units;
        let width = 4 * units;
        let dense_rows = self.kernel.len() / width - self.sparse_rows;
        states.gates.resize(masks.len() * width, 0.0);
        // bias + h U, then + the kernel rows of the inputs.
        self.recurrent.apply_many(&states.hidden, &mut states.gates);
        for (s, (&mask, gates)) in masks
            .iter()
            .zip(states.gates.chunks_exact_mut(width))
            .enumerate()
        {
            for pitch in mask_bits(mask) {
                if pitch < self.sparse_rows {
                    let row = &self.kernel[pitch * width..(pitch + 1) * width];
                    gates.iter_mut().zip(row).for_each(|(g, &w)| *g += w);
                }
            }
            let values = dense
                .get(s * dense_rows..(s + 1) * dense_rows)
                .unwrap_or(&[]);
            for (j, &x) in values.iter().enumerate() {
                if x != 0.0 {
                    let at = (self.sparse_rows + j) * width;
                    let row = &self.kernel[at..at + width];
                    gates.iter_mut().zip(row).for_each(|(g, &w)| *g += x * w);
                }
            }
        }
        for ((gates, hidden), cell) in states
            .gates
            .chunks_exact(width)
            .zip(states.hidden.chunks_exact_mut(units))
            .zip(states.cell.chunks_exact_mut(units))
        {
            for u in 0..units {
                let c = sigmoid(gates[units + u]) * cell[u]
                    + sigmoid(gates[u]) * gates[2 * units + u].tanh();
                cell[u] = c;
                hidden[u] = sigmoid(gates[3 * units + u]) * c.tanh();
            }
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

    /// Feeds one step (a pitch bitmask) to each sequence of `state`.
    pub fn advance(&self, state: &mut RollState, steps: &[u128]) {
        self.lstm.advance(state, steps, &[]);
    }

    /// The next step's probabilities of each sequence of `state`
    /// (`sequences * pitches`).
    pub fn predict(&self, state: &RollState, out: &mut [f32]) {
        self.output.apply_many(&state.hidden, out);
        out.iter_mut().for_each(|v| *v = sigmoid(*v));
    }
}

/// The composer's weights as plain vectors: generation draws each step pitch
/// by pitch here (see `model::composer`), which on a GPU would be 106 tiny
/// dispatches per step.
#[derive(Clone, Debug)]
pub struct NativeComposer {
    pitches: usize,
    nade_units: usize,
    past: NativeLstm,
    future: NativeLstm,
    visible_bias: Dense,
    hidden_bias: Dense,
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
    after: Option<AfterGap>,
    context: Vec<f32>,
    visible: Vec<f32>,
    hidden: Vec<f32>,
    activation: Vec<f32>,
    squashed: Vec<f32>,
    dense: Vec<f32>,
}

impl NativeComposer {
    /// Copies the weights out of `model` (on any device).
    pub fn from_model(model: &Composer) -> Result<Self, NativeCopyError> {
        let pitches = model.pitches();
        let [_, nade_units] = model.nade_in.dims();
        Ok(Self {
            pitches,
            nade_units,
            past: NativeLstm::from_keras(&model.past, pitches)?,
            future: NativeLstm::from_keras(&model.future, pitches)?,
            visible_bias: dense(&model.visible_bias)?,
            hidden_bias: dense(&model.hidden_bias)?,
            nade_in: read(model.nade_in.val())?,
            nade_out: read(model.nade_out.val())?,
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
    }

    /// Decides step `step` of every sequence pitch by pitch, low to high:
    /// `choose(sequence, row, p)` gets each row's probability given the rows
    /// chosen below it and says whether it sounds. Writes the chosen masks
    /// and the probabilities (`sequences * pitches`).
    pub fn chain(
        &self,
        state: &mut ComposerState,
        step: usize,
        meter: Meter,
        choose: &mut dyn FnMut(usize, usize, f32) -> bool,
        chosen: &mut [u128],
        probabilities: &mut [f32],
    ) {
        let (units, after_units, pitches) = (self.past.units, self.future.units, self.pitches);
        let width = units + after_units + pitches + GAP_FEATURES + METER_FEATURES;
        let sequences = self.sequences(state);
        state.context.clear();
        state.context.resize(sequences * width, 0.0);
        for (s, context) in state.context.chunks_exact_mut(width).enumerate() {
            let (past, rest) = context.split_at_mut(units);
            past.copy_from_slice(&state.past.hidden[s * units..(s + 1) * units]);
            let (after, rest) = rest.split_at_mut(after_units);
            let (first_after, rest) = rest.split_at_mut(pitches);
            let (gap, meter_features) = rest.split_at_mut(GAP_FEATURES);
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
        }
        let nade = self.nade_units;
        state.visible.resize(sequences * pitches, 0.0);
        state.hidden.resize(sequences * nade, 0.0);
        self.visible_bias
            .apply_many(&state.context, &mut state.visible);
        self.hidden_bias
            .apply_many(&state.context, &mut state.hidden);
        for s in 0..sequences {
            state.activation.clear();
            state
                .activation
                .extend_from_slice(&state.hidden[s * nade..(s + 1) * nade]);
            state.squashed.clear();
            state
                .squashed
                .extend(state.activation.iter().map(|&a| sigmoid(a)));
            let mut mask = 0u128;
            for row in 0..pitches {
                let read_out = &self.nade_out[row * nade..(row + 1) * nade];
                let dot: f32 = read_out
                    .iter()
                    .zip(&state.squashed)
                    .map(|(v, h)| v * h)
                    .sum();
                let p = sigmoid(state.visible[s * pitches + row] + dot);
                probabilities[s * pitches + row] = p;
                if choose(s, row, p) {
                    mask |= 1u128 << row;
                    let added = &self.nade_in[row * nade..(row + 1) * nade];
                    for ((a, h), &w) in state
                        .activation
                        .iter_mut()
                        .zip(state.squashed.iter_mut())
                        .zip(added)
                    {
                        *a += w;
                        *h = sigmoid(*a);
                    }
                }
            }
            chosen[s] = mask;
        }
    }
}
