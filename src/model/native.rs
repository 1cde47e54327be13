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
//! per generated step, its input projection a sum of kernel rows.

use burn::tensor::Tensor;

use super::{ArticleNet, RollLstm, WINDOW_STEPS};
use crate::roll::mask_bits;

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

/// The roll LSTM's weights as plain vectors, stepped one step at a time.
#[derive(Clone, Debug)]
pub struct NativeRollNet {
    pitches: usize,
    units: usize,
    /// Input kernel `[pitches, 4u]`.
    kernel: Vec<f32>,
    /// Recurrent kernel `[u, 4u]` with the LSTM's bias.
    recurrent: Dense,
    output: Dense,
}

/// Hidden and cell states of several sequences, `[sequences, units]` each.
#[derive(Clone, Debug, Default)]
pub struct RollState {
    hidden: Vec<f32>,
    cell: Vec<f32>,
    gates: Vec<f32>,
}

impl RollState {
    /// How many sequences this state holds.
    pub fn sequences(&self, net: &NativeRollNet) -> usize {
        self.hidden.len() / net.units.max(1)
    }
}

impl NativeRollNet {
    /// Copies the weights out of `model` (on any device).
    pub fn from_model(model: &RollLstm) -> Result<Self, NativeCopyError> {
        let lstm = &model.lstm;
        let [pitches, gates] = lstm.kernel.dims();
        Ok(Self {
            pitches,
            units: lstm.units,
            kernel: read(lstm.kernel.val())?,
            recurrent: Dense {
                d_input: lstm.units,
                d_output: gates,
                weight: read(lstm.recurrent_kernel.val())?,
                bias: read(lstm.bias.val())?,
            },
            output: dense(&model.output)?,
        })
    }

    /// Pitches per step in and out.
    pub fn pitches(&self) -> usize {
        self.pitches
    }

    /// Sets `state` to `sequences` zero states.
    pub fn reset(&self, state: &mut RollState, sequences: usize) {
        state.hidden.clear();
        state.hidden.resize(sequences * self.units, 0.0);
        state.cell.clear();
        state.cell.resize(sequences * self.units, 0.0);
    }

    /// Feeds one step (a pitch bitmask) to each sequence of `state`.
    pub fn advance(&self, state: &mut RollState, steps: &[u128]) {
        let units = self.units;
        let width = 4 * units;
        state.gates.resize(steps.len() * width, 0.0);
        // bias + h U, then + the kernel rows of the sounding pitches.
        self.recurrent.apply_many(&state.hidden, &mut state.gates);
        for (&mask, gates) in steps.iter().zip(state.gates.chunks_exact_mut(width)) {
            for pitch in mask_bits(mask) {
                if pitch < self.pitches {
                    let row = &self.kernel[pitch * width..(pitch + 1) * width];
                    for (g, &w) in gates.iter_mut().zip(row) {
                        *g += w;
                    }
                }
            }
        }
        for ((gates, hidden), cell) in state
            .gates
            .chunks_exact(width)
            .zip(state.hidden.chunks_exact_mut(units))
            .zip(state.cell.chunks_exact_mut(units))
        {
            for u in 0..units {
                let c = sigmoid(gates[units + u]) * cell[u]
                    + sigmoid(gates[u]) * gates[2 * units + u].tanh();
                cell[u] = c;
                hidden[u] = sigmoid(gates[3 * units + u]) * c.tanh();
            }
        }
    }

    /// The next step's probabilities of each sequence of `state`
    /// (`sequences * pitches`).
    pub fn predict(&self, state: &RollState, out: &mut [f32]) {
        self.output.apply_many(&state.hidden, out);
        out.iter_mut().for_each(|v| *v = sigmoid(*v));
    }
}
