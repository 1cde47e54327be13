//! The composer trained in plain Rust: the past LSTM over (previous step,
//! meter), the future LSTM backwards over (step, meter) read at each
//! target's gap end, the context, and the NADE output by the chain rule.
//!
//! The NADE's hidden pre-activation of pitch `i` sums `W_j` over the
//! sounding pitches `j < i`, so it only changes after a sounding pitch: the
//! pitches between two sounding ones share one hidden layer. Forward and
//! backward work per such segment (a few per step) instead of per pitch,
//! which is exact and about twenty times less work than burn's cumulative
//! sum over every pitch.

use burn::module::Param;
use burn::tensor::{Device, TensorData};
use rand::Rng as _;

use super::lstm::{
    self, BinaryRows, Lstm, LstmBackScratch, LstmInput, LstmShape, LstmTape, LstmWeights, resize,
};
use super::{ChunkLoss, Grads, read};
use crate::linalg::{self, MatRef, matmul};
use crate::meter::METER_FEATURES;
use crate::model::composer::{
    GAP_FEATURES, gap_features, gap_nearness, pitch_profiles, profile_width,
};
use crate::model::native::NativeCopyError;
use crate::model::{Composer, ComposerConfig};
use crate::rng::SeededRng;

/// Where each tensor sits in [`ComposerTrainer::params`].
const PAST: usize = 0;
const FUTURE: usize = 3;
const VISIBLE_WEIGHT: usize = 6;
const VISIBLE_BIAS: usize = 7;
const HIDDEN_WEIGHT: usize = 8;
const HIDDEN_BIAS: usize = 9;
const NADE_IN: usize = 10;
const NADE_OUT: usize = 11;

/// The composer's weights and shape.
#[derive(Debug, Clone)]
pub(super) struct ComposerTrainer {
    pub config: ComposerConfig,
    pub params: Vec<Vec<f32>>,
}

/// A chunk of stretches, batch-major as batches are filled.
#[derive(Clone, Copy, Debug)]
pub(super) struct ComposerBatch<'a> {
    /// The step before each target, `[b][T][pitches]`.
    pub previous: &'a [f32],
    pub targets: &'a [f32],
    /// `[b][T][METER_FEATURES]`.
    pub meter: &'a [f32],
    /// Distance from each target to its gap's end (0: none), `[b][T]`;
    /// empty: no gaps.
    pub gaps: &'a [u32],
    /// How much each target counts, `[b][T]`; empty: all fully.
    pub weights: &'a [f32],
    pub length: usize,
}

/// One chunk's work space, kept between steps. Rows are time-major:
/// row `t * b + r` is sequence r's step t.
#[derive(Debug, Default)]
pub(super) struct ComposerChunk {
    past_in: Vec<f32>,
    past_binary: BinaryRows,
    past_is_binary: bool,
    /// The future LSTM's input in its own (reversed) time order.
    future_in: Vec<f32>,
    future_binary: BinaryRows,
    future_is_binary: bool,
    past_tape: LstmTape,
    future_tape: LstmTape,
    targets: Vec<f32>,
    /// Per row: the time of its gap's end (within the stretch), and the
    /// distance to it (0: no gap).
    gap_end: Vec<usize>,
    gap_distance: Vec<usize>,
    /// Per row: how much its target counts.
    weights: Vec<f32>,
    past_mask: Vec<f32>,
    future_mask: Vec<f32>,
    /// Each sequence's pitch-class profiles and key weights, `[b][T][width]`.
    profiles: Vec<f32>,
    context: Vec<f32>,
    /// The NADE's visible biases, then the logits, then their gradients.
    visible: Vec<f32>,
    hidden_bias: Vec<f32>,
    hidden_grads: Vec<f32>,
    context_grads: Vec<f32>,
    past_grads: Vec<f32>,
    future_grads: Vec<f32>,
    back_past: LstmBackScratch,
    back_future: LstmBackScratch,
    /// One row's hidden pre-activation, its sigmoid, and per segment the
    /// gradient at the pre-activation.
    pre: Vec<f32>,
    hidden: Vec<f32>,
    segment_grads: Vec<f32>,
}

impl ComposerTrainer {
    pub fn from_model(model: &Composer, config: &ComposerConfig) -> Result<Self, NativeCopyError> {
        let bias = |layer: &burn::nn::Linear, width: usize| match &layer.bias {
            Some(bias) => read(bias.val()),
            None => Ok(vec![0.0; width]),
        };
        Ok(Self {
            config: config.clone(),
            params: vec![
                read(model.past.kernel.val())?,
                read(model.past.recurrent_kernel.val())?,
                read(model.past.bias.val())?,
                read(model.future.kernel.val())?,
                read(model.future.recurrent_kernel.val())?,
                read(model.future.bias.val())?,
                read(model.visible_bias.weight.val())?,
                bias(&model.visible_bias, config.pitches)?,
                read(model.hidden_bias.weight.val())?,
                bias(&model.hidden_bias, config.nade_units)?,
                read(model.nade_in.val())?,
                read(model.nade_out.val())?,
            ],
        })
    }

    /// The burn network holding these weights.
    pub fn to_model(&self, device: &Device) -> Composer {
        let c = &self.config;
        let mut model = c.init(device);
        let p = &self.params;
        let matrix = |index: usize, rows: usize, cols: usize| {
            Param::from_data(TensorData::new(p[index].clone(), [rows, cols]), device)
        };
        let vector = |index: usize| {
            Param::from_data(TensorData::new(p[index].clone(), [p[index].len()]), device)
        };
        let inputs = c.step_inputs();
        for (at, lstm) in [(PAST, &mut model.past), (FUTURE, &mut model.future)] {
            let units = lstm.units;
            lstm.kernel = matrix(at, inputs, 4 * units);
            lstm.recurrent_kernel = matrix(at + 1, units, 4 * units);
            lstm.bias = vector(at + 2);
        }
        let context = c.context_size();
        model.visible_bias.weight = matrix(VISIBLE_WEIGHT, context, c.pitches);
        model.visible_bias.bias = Some(vector(VISIBLE_BIAS));
        model.hidden_bias.weight = matrix(HIDDEN_WEIGHT, context, c.nade_units);
        model.hidden_bias.bias = Some(vector(HIDDEN_BIAS));
        model.nade_in = matrix(NADE_IN, c.pitches, c.nade_units);
        model.nade_out = matrix(NADE_OUT, c.pitches, c.nade_units);
        model
    }

    fn lstm(&self, at: usize) -> Lstm<'_> {
        let c = &self.config;
        Lstm {
            shape: LstmShape {
                inputs: c.step_inputs(),
                units: if at == PAST { c.units } else { c.future_units },
            },
            weights: LstmWeights {
                kernel: &self.params[at],
                recurrent: &self.params[at + 1],
                bias: &self.params[at + 2],
            },
        }
    }

    /// Runs a chunk forward and, with `grads`, backward: adds the gradient
    /// of the mean step NLL over `steps` counted steps and returns the
    /// chunk's summed NLL (each step by its weight).
    pub fn run_chunk(
        &self,
        batch: ComposerBatch<'_>,
        dropout: Option<&mut SeededRng>,
        steps: usize,
        work: &mut ComposerChunk,
        grads: Option<&mut Grads>,
    ) -> ChunkLoss {
        let c = &self.config;
        let (pitches, length) = (c.pitches, batch.length);
        let b = batch.targets.len() / (length * pitches);
        let rows = b * length;
        self.read_inputs(batch, b, work);
        let past_input = binary_or_dense(work.past_is_binary, &work.past_binary, &work.past_in);
        lstm::forward(&self.lstm(PAST), past_input, b, length, &mut work.past_tape);
        let future_input =
            binary_or_dense(work.future_is_binary, &work.future_binary, &work.future_in);
        lstm::forward(
            &self.lstm(FUTURE),
            future_input,
            b,
            length,
            &mut work.future_tape,
        );
        self.build_context(batch, b, dropout, work);
        let context_size = c.context_size();
        resize(&mut work.visible, rows * pitches);
        resize(&mut work.hidden_bias, rows * c.nade_units);
        let p = &self.params;
        for (out, weight, bias, width) in [
            (&mut work.visible, VISIBLE_WEIGHT, VISIBLE_BIAS, pitches),
            (
                &mut work.hidden_bias,
                HIDDEN_WEIGHT,
                HIDDEN_BIAS,
                c.nade_units,
            ),
        ] {
            matmul(
                out,
                MatRef::new(&work.context, rows, context_size),
                MatRef::new(&p[weight], context_size, width),
                false,
            );
            for row in out.chunks_exact_mut(width) {
                linalg::add_assign(row, &p[bias]);
            }
        }
        let train = grads.is_some();
        let mut loss = 0.0;
        resize(&mut work.hidden_grads, rows * c.nade_units);
        for row in 0..rows {
            loss += self.nade_row(row, steps, train, work);
        }
        if let Some(grads) = grads {
            self.backward(b, length, work, grads);
        }
        loss
    }

    /// Lays the chunk's inputs out time-major: the past LSTM's, the future
    /// LSTM's (time reversed), the targets, and each row's gap.
    fn read_inputs(&self, batch: ComposerBatch<'_>, b: usize, work: &mut ComposerChunk) {
        let (pitches, length) = (self.config.pitches, batch.length);
        let width = pitches + METER_FEATURES;
        let rows = b * length;
        resize(&mut work.past_in, rows * width);
        resize(&mut work.future_in, rows * width);
        resize(&mut work.targets, rows * pitches);
        work.gap_end.clear();
        work.gap_distance.clear();
        work.weights.clear();
        for t in 0..length {
            for r in 0..b {
                let at = r * length + t;
                let step = &batch.targets[at * pitches..(at + 1) * pitches];
                let previous = &batch.previous[at * pitches..(at + 1) * pitches];
                let meter = &batch.meter[at * METER_FEATURES..(at + 1) * METER_FEATURES];
                let row = t * b + r;
                let past = &mut work.past_in[row * width..(row + 1) * width];
                past[..pitches].copy_from_slice(previous);
                past[pitches..].copy_from_slice(meter);
                let reversed = (length - 1 - t) * b + r;
                let future = &mut work.future_in[reversed * width..(reversed + 1) * width];
                future[..pitches].copy_from_slice(step);
                future[pitches..].copy_from_slice(meter);
                work.targets[row * pitches..(row + 1) * pitches].copy_from_slice(step);
                let distance = batch.gaps.get(at).copied().unwrap_or(0) as usize;
                work.gap_end.push((t + distance).min(length - 1));
                work.gap_distance.push(distance);
                work.weights
                    .push(batch.weights.get(at).copied().unwrap_or(1.0));
            }
        }
        if self.config.has_pitch_profile() {
            let width = profile_width(true, self.config.has_key_input());
            resize(&mut work.profiles, b * length * width);
            let each = length * pitches;
            for (previous, profiles) in batch
                .previous
                .chunks_exact(each)
                .zip(work.profiles.chunks_exact_mut(length * width))
            {
                pitch_profiles(previous, pitches, self.config.has_key_input(), profiles);
            }
        }
        work.past_is_binary = BinaryRows::from_dense(&work.past_in, width, &mut work.past_binary);
        work.future_is_binary =
            BinaryRows::from_dense(&work.future_in, width, &mut work.future_binary);
    }

    /// Each row's context: past state (dropped out), future state at the
    /// gap's end (dropped out), first step after the gap, gap features,
    /// meter, the first step after by nearness, the pitch-class profile and the
    /// key weights.
    fn build_context(
        &self,
        batch: ComposerBatch<'_>,
        b: usize,
        dropout: Option<&mut SeededRng>,
        work: &mut ComposerChunk,
    ) {
        let c = &self.config;
        let (pitches, length) = (c.pitches, batch.length);
        let (units, future_units) = (c.units, c.future_units);
        let rows = b * length;
        let context_size = c.context_size();
        resize(&mut work.context, rows * context_size);
        work.past_mask.clear();
        work.future_mask.clear();
        if let Some(rng) = dropout.filter(|_| c.dropout > 0.0) {
            let keep = 1.0 - c.dropout as f32;
            let threshold = (f64::from(keep) * 4_294_967_296.0) as u64;
            let mut draw = |len: usize, out: &mut Vec<f32>| {
                out.extend((0..len).map(|_| {
                    if u64::from(rng.random::<u32>()) < threshold {
                        1.0 / keep
                    } else {
                        0.0
                    }
                }));
            };
            draw(rows * units, &mut work.past_mask);
            draw(rows * future_units, &mut work.future_mask);
        }
        let mut gap = [0.0f32; GAP_FEATURES];
        for row in 0..rows {
            let (t, r) = (row / b, row % b);
            let context = &mut work.context[row * context_size..(row + 1) * context_size];
            let (past, rest) = context.split_at_mut(units);
            let (future, rest) = rest.split_at_mut(future_units);
            let (first_after, rest) = rest.split_at_mut(pitches);
            let (gap_part, rest) = rest.split_at_mut(GAP_FEATURES);
            let (meter, rest) = rest.split_at_mut(METER_FEATURES);
            let (near, profile) = rest.split_at_mut(if c.has_near_after() { pitches } else { 0 });
            past.copy_from_slice(&work.past_tape.hidden[row * units..(row + 1) * units]);
            if !work.past_mask.is_empty() {
                for (v, m) in past.iter_mut().zip(&work.past_mask[row * units..]) {
                    *v *= m;
                }
            }
            let end = work.gap_end[row];
            let distance = work.gap_distance[row];
            if distance > 0 {
                let reversed = (length - 1 - end) * b + r;
                let state = &work.future_tape.hidden[reversed * future_units..][..future_units];
                future.copy_from_slice(state);
                if !work.future_mask.is_empty() {
                    for (v, m) in future
                        .iter_mut()
                        .zip(&work.future_mask[row * future_units..])
                    {
                        *v *= m;
                    }
                }
                first_after.copy_from_slice(&work.targets[(end * b + r) * pitches..][..pitches]);
                gap_features(Some(distance), &mut gap);
            } else {
                future.fill(0.0);
                first_after.fill(0.0);
                gap_features(None, &mut gap);
            }
            gap_part.copy_from_slice(&gap);
            let at = r * length + t;
            meter.copy_from_slice(&batch.meter[at * METER_FEATURES..(at + 1) * METER_FEATURES]);
            if !near.is_empty() {
                let nearness = gap_nearness(&gap);
                for (n, &f) in near.iter_mut().zip(first_after.iter()) {
                    *n = f * nearness;
                }
            }
            if !profile.is_empty() {
                let width = profile.len();
                profile.copy_from_slice(&work.profiles[at * width..][..width]);
            }
        }
    }

    /// The NADE over one row: turns its visible biases into the logits,
    /// and when training those into the loss's gradient (mean over `steps`
    /// counted steps, this one counted by its weight) and fills the row's
    /// hidden-bias gradient; returns the row's weighted NLL.
    fn nade_row(&self, row: usize, steps: usize, train: bool, work: &mut ComposerChunk) -> f64 {
        let c = &self.config;
        let (pitches, h) = (c.pitches, c.nade_units);
        let p = &self.params;
        let (w, v_out) = (&p[NADE_IN], &p[NADE_OUT]);
        let targets = &work.targets[row * pitches..(row + 1) * pitches];
        let logits = &mut work.visible[row * pitches..(row + 1) * pitches];
        resize(&mut work.pre, h);
        resize(&mut work.hidden, h);
        work.pre
            .copy_from_slice(&work.hidden_bias[row * h..(row + 1) * h]);
        // Segments: pitches start..=i read the hidden layer of the sounding
        // pitches below start.
        let mut start = 0;
        let sounding = |i: usize| targets[i] != 0.0 || i + 1 == pitches;
        for i in 0..pitches {
            if !sounding(i) {
                continue;
            }
            for (out, &a) in work.hidden.iter_mut().zip(&work.pre) {
                *out = linalg::sigmoid(a);
            }
            for j in start..=i {
                logits[j] += dot(&work.hidden, &v_out[j * h..(j + 1) * h]);
            }
            if targets[i] != 0.0 {
                for (a, &wi) in work.pre.iter_mut().zip(&w[i * h..(i + 1) * h]) {
                    *a += targets[i] * wi;
                }
            }
            start = i + 1;
        }
        let mut loss = 0.0f64;
        let weight = work.weights[row];
        let scale = weight / steps.max(1) as f32;
        for (z, &y) in logits.iter_mut().zip(targets) {
            let e = linalg::exp(-z.abs());
            loss += f64::from(z.max(0.0) - y * *z + e.ln_1p());
            if train {
                *z = (linalg::sigmoid(*z) - y) * scale;
            }
        }
        f64::from(weight) * loss
    }

    /// Back through the NADE (per row), the context layers and both LSTMs.
    fn backward(&self, b: usize, length: usize, work: &mut ComposerChunk, grads: &mut Grads) {
        let c = &self.config;
        let rows = b * length;
        for row in 0..rows {
            self.nade_row_backward(row, work, grads);
        }
        let g = &mut grads.tensors;
        let context_size = c.context_size();
        resize(&mut work.context_grads, rows * context_size);
        let mut first = true;
        for (out_grads, weight, bias, width) in [
            (&work.visible, VISIBLE_WEIGHT, VISIBLE_BIAS, c.pitches),
            (&work.hidden_grads, HIDDEN_WEIGHT, HIDDEN_BIAS, c.nade_units),
        ] {
            matmul(
                &mut g[weight],
                MatRef::new(&work.context, rows, context_size).t(),
                MatRef::new(out_grads, rows, width),
                true,
            );
            linalg::add_column_sums(out_grads, &mut g[bias]);
            matmul(
                &mut work.context_grads,
                MatRef::new(out_grads, rows, width),
                MatRef::new(&self.params[weight], context_size, width).t(),
                !first,
            );
            first = false;
        }
        let (units, future_units) = (c.units, c.future_units);
        resize(&mut work.past_grads, rows * units);
        work.future_grads.clear();
        work.future_grads.resize(rows * future_units, 0.0);
        for row in 0..rows {
            let context = &work.context_grads[row * context_size..(row + 1) * context_size];
            let past = &mut work.past_grads[row * units..(row + 1) * units];
            past.copy_from_slice(&context[..units]);
            if !work.past_mask.is_empty() {
                for (d, m) in past.iter_mut().zip(&work.past_mask[row * units..]) {
                    *d *= m;
                }
            }
            if work.gap_distance[row] > 0 {
                let r = row % b;
                let reversed = (length - 1 - work.gap_end[row]) * b + r;
                let into = &mut work.future_grads[reversed * future_units..][..future_units];
                let from = &context[units..units + future_units];
                if work.future_mask.is_empty() {
                    linalg::add_assign(into, from);
                } else {
                    let mask = &work.future_mask[row * future_units..][..future_units];
                    for ((d, &x), &m) in into.iter_mut().zip(from).zip(mask) {
                        *d += x * m;
                    }
                }
            }
        }
        for (at, tape, hidden_grads, back, is_binary, binary, dense) in [
            (
                PAST,
                &work.past_tape,
                &work.past_grads,
                &mut work.back_past,
                work.past_is_binary,
                &work.past_binary,
                &work.past_in,
            ),
            (
                FUTURE,
                &work.future_tape,
                &work.future_grads,
                &mut work.back_future,
                work.future_is_binary,
                &work.future_binary,
                &work.future_in,
            ),
        ] {
            let [kernel, recurrent, bias, ..] = &mut g[at..] else {
                unreachable!("the composer has both LSTMs")
            };
            lstm::backward(
                &self.lstm(at),
                binary_or_dense(is_binary, binary, dense),
                tape,
                hidden_grads,
                &mut LstmWeights {
                    kernel: kernel.as_mut_slice(),
                    recurrent: recurrent.as_mut_slice(),
                    bias: bias.as_mut_slice(),
                },
                None,
                back,
            );
        }
    }

    /// One row's NADE backward, segment by segment: `work.visible` holds
    /// the logits' gradients; adds to `W`'s and `V`'s gradients and writes
    /// the row's hidden-bias gradient.
    fn nade_row_backward(&self, row: usize, work: &mut ComposerChunk, grads: &mut Grads) {
        let c = &self.config;
        let (pitches, h) = (c.pitches, c.nade_units);
        let p = &self.params;
        let (w, v_out) = (&p[NADE_IN], &p[NADE_OUT]);
        let targets = &work.targets[row * pitches..(row + 1) * pitches];
        let logit_grads = &work.visible[row * pitches..(row + 1) * pitches];
        work.pre
            .copy_from_slice(&work.hidden_bias[row * h..(row + 1) * h]);
        work.segment_grads.clear();
        let [.., w_grads, v_grads] = grads.tensors.as_mut_slice() else {
            unreachable!("the composer ends with its NADE weights")
        };
        let mut start = 0;
        let mut sounding_pitches = Vec::new();
        for i in 0..pitches {
            let sounds = targets[i] != 0.0;
            if !sounds && i + 1 != pitches {
                continue;
            }
            for (out, &a) in work.hidden.iter_mut().zip(&work.pre) {
                *out = linalg::sigmoid(a);
            }
            // D = (sum over the segment of dl_j V_j) * h (1 - h); dV_j += dl_j h.
            let at = work.segment_grads.len();
            work.segment_grads.resize(at + h, 0.0);
            let segment = &mut work.segment_grads[at..];
            for j in start..=i {
                let dl = logit_grads[j];
                for ((s, &vj), (dv, &hk)) in segment
                    .iter_mut()
                    .zip(&v_out[j * h..(j + 1) * h])
                    .zip(v_grads[j * h..(j + 1) * h].iter_mut().zip(&work.hidden))
                {
                    *s += dl * vj;
                    *dv += dl * hk;
                }
            }
            for (s, &hk) in segment.iter_mut().zip(&work.hidden) {
                *s *= hk * (1.0 - hk);
            }
            if sounds {
                for (a, &wi) in work.pre.iter_mut().zip(&w[i * h..(i + 1) * h]) {
                    *a += targets[i] * wi;
                }
                sounding_pitches.push(i);
            }
            start = i + 1;
        }
        // A sounding pitch's W feeds every segment above it.
        let hidden_grads = &mut work.hidden_grads[row * h..(row + 1) * h];
        hidden_grads.fill(0.0);
        let segments = work.segment_grads.len() / h;
        for s in (0..segments).rev() {
            linalg::add_assign(hidden_grads, &work.segment_grads[s * h..(s + 1) * h]);
            if s > 0 {
                let pitch = sounding_pitches[s - 1];
                let scale = targets[pitch];
                for (dw, &d) in w_grads[pitch * h..(pitch + 1) * h]
                    .iter_mut()
                    .zip(hidden_grads.iter())
                {
                    *dw += scale * d;
                }
            }
        }
    }
}

fn binary_or_dense<'a>(is_binary: bool, binary: &'a BinaryRows, dense: &'a [f32]) -> LstmInput<'a> {
    if is_binary {
        LstmInput::Binary(binary)
    } else {
        LstmInput::Dense(dense)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight running sums, so the loop vectorises.
    let mut sums = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for k in 0..8 {
            sums[k] += x[k] * y[k];
        }
    }
    sums.iter().sum::<f32>() + tail
}
