//! The roll LSTM trained in plain Rust: LSTM over the stretch, dropout on
//! its output, a dense layer to each step's logits, binary cross-entropy
//! (or MSE) on every step.

use burn::module::Param;
use burn::tensor::{Device, TensorData};
use rand::Rng as _;

use super::lstm::{
    self, BinaryRows, Lstm, LstmBackScratch, LstmInput, LstmShape, LstmTape, LstmWeights,
};
use super::{ChunkLoss, Grads, read};
use crate::linalg::{self, MatRef, matmul};
use crate::model::native::NativeCopyError;
use crate::model::{RollLstm, RollLstmConfig};
use crate::record::LossKind;
use crate::rng::SeededRng;

/// Where each tensor sits in [`RollTrainer::params`]: the LSTM's kernel,
/// recurrent kernel and bias, then the output layer's weight and bias.
const KERNEL: usize = 0;
const RECURRENT: usize = 1;
const BIAS: usize = 2;
const OUTPUT_WEIGHT: usize = 3;
const OUTPUT_BIAS: usize = 4;

/// The roll LSTM's weights and shape.
#[derive(Debug, Clone)]
pub(super) struct RollTrainer {
    pub config: RollLstmConfig,
    pub params: Vec<Vec<f32>>,
}

/// A chunk of stretches, batch-major as batches are filled.
#[derive(Clone, Copy, Debug)]
pub(super) struct RollBatch<'a> {
    /// `[b][T][pitches]`: each stretch's input steps.
    pub inputs: &'a [f32],
    /// The steps one later.
    pub targets: &'a [f32],
    /// How much each target step counts, `[b][T]`; empty: all fully.
    pub weights: &'a [f32],
    /// Each stretch's recurrent dropout factors, `[b][units]`; empty: none.
    pub recurrent_mask: &'a [f32],
    pub length: usize,
}

/// One chunk's work space, kept between steps.
#[derive(Debug, Default)]
pub(super) struct RollChunk {
    inputs: Vec<f32>,
    targets: Vec<f32>,
    binary: BinaryRows,
    /// Whether the inputs were all 0/1 (read through `binary`).
    is_binary: bool,
    /// The batch's step weights, time-major (empty: all count).
    weights: Vec<f32>,
    tape: LstmTape,
    /// Dropout's factor per hidden value (0 or 1 / keep).
    mask: Vec<f32>,
    dropped: Vec<f32>,
    logits: Vec<f32>,
    hidden_grads: Vec<f32>,
    back: LstmBackScratch,
}

impl RollTrainer {
    pub fn from_model(model: &RollLstm, config: &RollLstmConfig) -> Result<Self, NativeCopyError> {
        let bias = match &model.output.bias {
            Some(bias) => read(bias.val())?,
            None => vec![0.0; config.pitches],
        };
        Ok(Self {
            config: config.clone(),
            params: vec![
                read(model.lstm.kernel.val())?,
                read(model.lstm.recurrent_kernel.val())?,
                read(model.lstm.bias.val())?,
                read(model.output.weight.val())?,
                bias,
            ],
        })
    }

    /// The burn network holding these weights.
    pub fn to_model(&self, device: &Device) -> RollLstm {
        let mut model = self.config.init(device);
        let [kernel, recurrent, bias, weight, output_bias] = self.sizes_2d();
        let p = &self.params;
        model.lstm.kernel = Param::from_data(TensorData::new(p[KERNEL].clone(), kernel), device);
        model.lstm.recurrent_kernel =
            Param::from_data(TensorData::new(p[RECURRENT].clone(), recurrent), device);
        model.lstm.bias = Param::from_data(TensorData::new(p[BIAS].clone(), [bias[0]]), device);
        model.output.weight =
            Param::from_data(TensorData::new(p[OUTPUT_WEIGHT].clone(), weight), device);
        model.output.bias = Some(Param::from_data(
            TensorData::new(p[OUTPUT_BIAS].clone(), [output_bias[0]]),
            device,
        ));
        model
    }

    fn sizes_2d(&self) -> [[usize; 2]; 5] {
        let (pitches, units) = (self.config.pitches, self.config.units);
        [
            [pitches, 4 * units],
            [units, 4 * units],
            [4 * units, 1],
            [units, pitches],
            [pitches, 1],
        ]
    }

    fn shape(&self) -> LstmShape {
        LstmShape {
            inputs: self.config.pitches,
            units: self.config.units,
        }
    }

    /// Runs `inputs` (`[n][length][pitches]`, batch-major as batches are
    /// filled) forward to the logits of each next step, time-major in
    /// `work.logits`. `dropout` draws the output's mask (none: inference);
    /// `recurrent_mask` is the recurrent dropout's (empty: none).
    fn forward(
        &self,
        inputs: &[f32],
        length: usize,
        dropout: Option<&mut SeededRng>,
        recurrent_mask: &[f32],
        work: &mut RollChunk,
    ) {
        let (pitches, units) = (self.config.pitches, self.config.units);
        let batch = inputs.len() / (length * pitches);
        let rows = batch * length;
        to_time_major(inputs, batch, length, pitches, &mut work.inputs);
        work.is_binary = BinaryRows::from_dense(&work.inputs, pitches, &mut work.binary);
        let input = if work.is_binary {
            LstmInput::Binary(&work.binary)
        } else {
            LstmInput::Dense(&work.inputs)
        };
        work.tape.set_recurrent_mask(recurrent_mask);
        lstm::forward(&self.lstm(), input, batch, length, &mut work.tape);
        let hidden = &work.tape.hidden;
        work.mask.clear();
        if let Some(rng) = dropout.filter(|_| self.config.dropout > 0.0) {
            let keep = 1.0 - self.config.dropout as f32;
            lstm::resize(&mut work.mask, rows * units);
            lstm::resize(&mut work.dropped, rows * units);
            // Keep a value with probability `keep`, as burn's dropout does.
            let threshold = (f64::from(keep) * 4_294_967_296.0) as u64;
            for ((m, d), &h) in work.mask.iter_mut().zip(&mut work.dropped).zip(hidden) {
                let kept = u64::from(rng.random::<u32>()) < threshold;
                *m = if kept { 1.0 / keep } else { 0.0 };
                *d = h * *m;
            }
        }
        let dropped = if work.mask.is_empty() {
            &work.tape.hidden
        } else {
            &work.dropped
        };
        let p = &self.params;
        lstm::resize(&mut work.logits, rows * pitches);
        matmul(
            &mut work.logits,
            MatRef::new(dropped, rows, units),
            MatRef::new(&p[OUTPUT_WEIGHT], units, pitches),
            false,
        );
        for row in work.logits.chunks_exact_mut(pitches) {
            linalg::add_assign(row, &p[OUTPUT_BIAS]);
        }
    }

    fn lstm(&self) -> Lstm<'_> {
        Lstm {
            shape: self.shape(),
            weights: LstmWeights {
                kernel: &self.params[KERNEL],
                recurrent: &self.params[RECURRENT],
                bias: &self.params[BIAS],
            },
        }
    }

    /// Runs a chunk of stretches forward and, with `grads`, backward: adds
    /// the gradient of the loss averaged over `cells` counted values, and
    /// returns the summed loss of its own cells.
    pub fn run_chunk(
        &self,
        chunk: RollBatch<'_>,
        loss: LossKind,
        dropout: Option<&mut SeededRng>,
        cells: usize,
        work: &mut RollChunk,
        grads: Option<&mut Grads>,
    ) -> ChunkLoss {
        let (pitches, units) = (self.config.pitches, self.config.units);
        let length = chunk.length;
        let batch = chunk.inputs.len() / (length * pitches);
        let rows = batch * length;
        self.forward(chunk.inputs, length, dropout, chunk.recurrent_mask, work);
        to_time_major(chunk.targets, batch, length, pitches, &mut work.targets);
        work.weights.clear();
        if !chunk.weights.is_empty() {
            to_time_major(chunk.weights, batch, length, 1, &mut work.weights);
        }
        let chunk_loss = super::independent_loss(
            loss,
            &mut work.logits,
            &work.targets,
            pitches,
            &work.weights,
            cells,
        );
        let Some(grads) = grads else {
            return chunk_loss;
        };
        // work.logits now holds the loss's gradient at each logit.
        let p = &self.params;
        let dropped = if work.mask.is_empty() {
            &work.tape.hidden
        } else {
            &work.dropped
        };
        let g = &mut grads.tensors;
        matmul(
            &mut g[OUTPUT_WEIGHT],
            MatRef::new(dropped, rows, units).t(),
            MatRef::new(&work.logits, rows, pitches),
            true,
        );
        linalg::add_column_sums(&work.logits, &mut g[OUTPUT_BIAS]);
        lstm::resize(&mut work.hidden_grads, rows * units);
        matmul(
            &mut work.hidden_grads,
            MatRef::new(&work.logits, rows, pitches),
            MatRef::new(&p[OUTPUT_WEIGHT], units, pitches).t(),
            false,
        );
        for (d, m) in work.hidden_grads.iter_mut().zip(&work.mask) {
            *d *= m;
        }
        let [kernel, recurrent, bias, ..] = g.as_mut_slice() else {
            unreachable!("the roll LSTM has five tensors")
        };
        let input = if work.is_binary {
            LstmInput::Binary(&work.binary)
        } else {
            LstmInput::Dense(&work.inputs)
        };
        lstm::backward(
            &self.lstm(),
            input,
            &work.tape,
            &work.hidden_grads,
            &mut LstmWeights {
                kernel: kernel.as_mut_slice(),
                recurrent: recurrent.as_mut_slice(),
                bias: bias.as_mut_slice(),
            },
            None,
            &mut work.back,
        );
        chunk_loss
    }

    /// Logits of the step after each input step with no dropout,
    /// batch-major like the inputs (`[n][length][pitches]`): what feedback
    /// thresholds.
    pub fn logits(&self, inputs: &[f32], length: usize, work: &mut RollChunk) -> Vec<f32> {
        let pitches = self.config.pitches;
        let batch = inputs.len() / (length * pitches);
        self.forward(inputs, length, None, &[], work);
        let mut out = vec![0.0; inputs.len()];
        for t in 0..length {
            for b in 0..batch {
                let from = (t * batch + b) * pitches;
                let to = (b * length + t) * pitches;
                out[to..to + pitches].copy_from_slice(&work.logits[from..from + pitches]);
            }
        }
        out
    }
}

/// `[batch][time][width]` -> `[time][batch][width]`.
pub(super) fn to_time_major(
    values: &[f32],
    batch: usize,
    time: usize,
    width: usize,
    out: &mut Vec<f32>,
) {
    lstm::resize(out, values.len());
    for b in 0..batch {
        for t in 0..time {
            let from = (b * time + t) * width;
            let to = (t * batch + b) * width;
            out[to..to + width].copy_from_slice(&values[from..from + width]);
        }
    }
}
