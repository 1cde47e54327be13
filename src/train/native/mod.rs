//! The plain-Rust CPU trainer: the forward and backward passes of the roll
//! LSTM, the article's network and the composer written out by hand (fused LSTM gates,
//! back-propagation through time, matrix products through `gemm`) and Keras's
//! Adam, on both cores. burn's autodiff stays the reference (the tests hold
//! these gradients to it) and the GPU path; on the CPU this is several times
//! faster, because burn records and replays every small operation of every
//! time step.
//!
//! Results never depend on the number of cores: a batch is cut into chunks
//! of a fixed size whatever the machine, each chunk's gradient is computed on
//! its own, and the chunks' gradients are summed in order.

mod article;
mod composer;
mod lstm;
mod roll;

use std::ops::Range;

use rayon::prelude::*;

use self::article::{ArticleChunk, ArticleTrainer};
use self::composer::{ComposerBatch, ComposerChunk, ComposerTrainer};
use self::roll::{RollBatch, RollChunk, RollTrainer};
use super::scheme::{BatchData, BatchPosition};
use crate::model::native::NativeCopyError;
use crate::model::{Network, NetworkConfig};
use crate::record::{LossKind, TrainSettings};
use crate::rng::{SeededRng, seeded_for};

pub(super) use crate::model::native::read_tensor as read;

/// Sequences (or windows) per chunk: the unit of work a core takes.
const CHUNK: usize = 16;
/// Steps per chunk of stretches at most (16 of the default 64 steps): longer
/// stretches make smaller chunks, so a batch of them still spreads over the
/// cores.
const CHUNK_STEPS: usize = CHUNK * 64;

/// Sequences per chunk for stretches of `length` steps.
fn chunk_sequences(length: usize) -> usize {
    CHUNK_STEPS.div_ceil(length.max(1)).clamp(1, CHUNK)
}
/// Elements per piece of the optimizer's update on a core.
const ADAM_PIECE: usize = 16_384;

/// A batch whose sizes do not fit the network.
#[derive(Debug, thiserror::Error)]
#[error(
    "a batch of {inputs} input, {targets} target and {meter} meter values does not fit the \
     network (whole examples, inputs matching targets, meter features of every step)"
)]
pub(super) struct BatchShapeError {
    inputs: usize,
    targets: usize,
    meter: usize,
}

/// The loss summed over a chunk's values.
pub(super) type ChunkLoss = f64;

/// Gradients of every trainable tensor, laid out like the weights.
#[derive(Debug, Default, Clone)]
pub(super) struct Grads {
    pub tensors: Vec<Vec<f32>>,
}

impl Grads {
    /// Zeroes these gradients, shaped like `params`.
    fn reset(&mut self, params: &[Vec<f32>]) {
        self.tensors.resize_with(params.len(), Vec::new);
        for (g, p) in self.tensors.iter_mut().zip(params) {
            g.clear();
            g.resize(p.len(), 0.0);
        }
    }
}

/// The weights of `sequences`' target steps (`[n][length]`), or none when
/// every step counts.
fn step_weights<'a>(weights: &'a [f32], sequences: &Range<usize>, length: usize) -> &'a [f32] {
    if weights.is_empty() {
        &[]
    } else {
        &weights[sequences.start * length..sequences.end * length]
    }
}

/// Turns `logits` (rows of `width`) into the gradient of the mean loss over
/// `cells` counted values (in place) and returns the loss summed over them.
/// Each row counts `row_weights[row]` times (empty: once). BCE is taken from
/// the logits; MSE compares their sigmoid with the targets.
pub(super) fn independent_loss(
    kind: LossKind,
    logits: &mut [f32],
    targets: &[f32],
    width: usize,
    row_weights: &[f32],
    cells: usize,
) -> ChunkLoss {
    let scale = 1.0 / cells.max(1) as f32;
    let mut sum = 0.0f64;
    for (row, (logits, targets)) in logits
        .chunks_exact_mut(width)
        .zip(targets.chunks_exact(width))
        .enumerate()
    {
        let weight = row_weights.get(row).copied().unwrap_or(1.0);
        let (mut row_sum, row_scale) = (0.0f64, weight * scale);
        match kind {
            LossKind::Mse => {
                for (z, &y) in logits.iter_mut().zip(targets) {
                    let p = crate::linalg::sigmoid(*z);
                    let d = p - y;
                    row_sum += f64::from(d * d);
                    *z = 2.0 * d * p * (1.0 - p) * row_scale;
                }
            }
            LossKind::Bce | LossKind::Nll => {
                for (z, &y) in logits.iter_mut().zip(targets) {
                    // -(y log s(z) + (1 - y) log s(-z)) = max(z, 0) - y z + ln(1 + e^-|z|)
                    let e = crate::linalg::exp(-z.abs());
                    row_sum += f64::from(z.max(0.0) - y * *z + e.ln_1p());
                    *z = (crate::linalg::sigmoid(*z) - y) * row_scale;
                }
            }
        }
        sum += f64::from(weight) * row_sum;
    }
    sum
}

/// A chunk's run: its sequences, its dropout draws (none: inference), its
/// work space and, when training, the gradients it adds to.
type ChunkRun<'a, W> = dyn Fn(Range<usize>, Option<&mut SeededRng>, &mut W, Option<&mut Grads>) -> ChunkLoss
    + Sync
    + 'a;

/// Runs `run` on each chunk of `per_chunk` of a batch's `n` sequences, the
/// chunks shared among the cores, each with its own work space, gradients
/// (when training, `params` given: zeroed first, shaped like them) and
/// dropout draws (`seed_of` its index); returns the chunks' losses summed in
/// order and how many chunks there were.
fn run_chunks<W: Default + Send>(
    n: usize,
    per_chunk: usize,
    work: &mut Vec<W>,
    grads: &mut Vec<Grads>,
    params: Option<&[Vec<f32>]>,
    seed_of: &(dyn Fn(usize) -> Option<SeededRng> + Sync),
    run: &ChunkRun<'_, W>,
) -> (ChunkLoss, usize) {
    let count = n.div_ceil(per_chunk);
    work.resize_with(count.max(work.len()), W::default);
    grads.resize_with(count.max(grads.len()), Grads::default);
    let losses: Vec<ChunkLoss> = work[..count]
        .par_iter_mut()
        .zip(&mut grads[..count])
        .enumerate()
        .map(|(c, (work, grads))| {
            let mut rng = seed_of(c);
            if let Some(params) = params {
                grads.reset(params);
            }
            let sequences = c * per_chunk..((c + 1) * per_chunk).min(n);
            run(sequences, rng.as_mut(), work, params.map(|_| grads))
        })
        .collect();
    (losses.into_iter().sum(), count)
}

/// A network the plain-Rust trainer knows, with its chunks' work space.
#[derive(Debug)]
enum NativeNet {
    Roll(RollTrainer, Vec<RollChunk>),
    Article(ArticleTrainer, Vec<ArticleChunk>),
    Composer(ComposerTrainer, Vec<ComposerChunk>),
}

/// Keras's Adam on plain vectors (the formulas of `KerasAdam`).
#[derive(Debug, Clone, Default)]
struct AdamMoments {
    time: u64,
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
}

/// The first bytes of an optimizer state this trainer wrote.
const STATE_MAGIC: &[u8] = b"cadenza-native-adam-1\n";

/// A network and its optimizer state, trained in plain Rust.
#[derive(Debug)]
pub(super) struct NativeTrainer {
    net: NativeNet,
    adam: AdamMoments,
    grads: Vec<Grads>,
    /// How many chunks' gradients the last training pass filled.
    chunks_used: usize,
}

impl NativeTrainer {
    /// Whether networks of `config`'s architecture train here.
    pub fn supports(config: &NetworkConfig) -> bool {
        matches!(
            config,
            NetworkConfig::RollLstm(_) | NetworkConfig::Article(_) | NetworkConfig::Composer(_)
        )
    }

    /// Copies `model`'s weights out, with a fresh optimizer state.
    pub fn from_network(
        model: &Network,
        config: &NetworkConfig,
    ) -> Result<Option<Self>, NativeCopyError> {
        let net = match (model, config) {
            (Network::RollLstm(model), NetworkConfig::RollLstm(config)) => {
                NativeNet::Roll(RollTrainer::from_model(model, config)?, Vec::new())
            }
            (Network::Article(model), NetworkConfig::Article(config)) => {
                NativeNet::Article(ArticleTrainer::from_model(model, config)?, Vec::new())
            }
            (Network::Composer(model), NetworkConfig::Composer(config)) => {
                NativeNet::Composer(ComposerTrainer::from_model(model, config)?, Vec::new())
            }
            _ => return Ok(None),
        };
        let mut trainer = Self {
            net,
            adam: AdamMoments::default(),
            grads: Vec::new(),
            chunks_used: 0,
        };
        trainer.adam.first = trainer
            .params()
            .iter()
            .map(|p| vec![0.0; p.len()])
            .collect();
        trainer.adam.second = trainer.adam.first.clone();
        Ok(Some(trainer))
    }

    /// Optimizer steps taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.adam.time
    }

    fn params(&self) -> &[Vec<f32>] {
        match &self.net {
            NativeNet::Roll(net, _) => &net.params,
            NativeNet::Article(net, _) => &net.params,
            NativeNet::Composer(net, _) => &net.params,
        }
    }

    /// The burn network holding the current weights (inference or
    /// training device alike).
    pub fn to_network(&self, device: &burn::tensor::Device) -> Network {
        match &self.net {
            NativeNet::Roll(net, _) => Network::RollLstm(net.to_model(device)),
            NativeNet::Article(net, _) => Network::Article(net.to_model(device)),
            NativeNet::Composer(net, _) => Network::Composer(net.to_model(device)),
        }
    }

    /// One optimizer step on `batch`; returns the loss before it (the
    /// weights are left alone when it is not finite).
    pub fn step(
        &mut self,
        batch: &BatchData,
        settings: &TrainSettings,
        position: BatchPosition,
    ) -> Result<f32, BatchShapeError> {
        self.check(batch, settings)?;
        let loss = self.gradients(batch, settings, Some(position));
        if loss.is_finite() {
            self.apply(settings.learning_rate);
        }
        Ok(loss)
    }

    /// The mean loss of `batch` in inference mode (no dropout; batch norm
    /// on its moving statistics).
    pub fn loss(
        &mut self,
        batch: &BatchData,
        settings: &TrainSettings,
    ) -> Result<f32, BatchShapeError> {
        self.check(batch, settings)?;
        Ok(self.gradients(batch, settings, None))
    }

    /// Why `batch` does not fit this network, if it does not: whole
    /// examples, inputs matching targets, and the composer's meter and gaps
    /// for every step.
    fn check(&self, batch: &BatchData, settings: &TrainSettings) -> Result<(), BatchShapeError> {
        let length = settings.sequence_steps;
        let (pitches, inputs_each, targets_each, meter_each) = match &self.net {
            NativeNet::Roll(net, _) => {
                let p = net.config.pitches;
                (p, length * p, length * p, 0)
            }
            NativeNet::Article(net, _) => {
                let p = net.config.pitches;
                (p, net.config.window * p, p, 0)
            }
            NativeNet::Composer(net, _) => {
                let p = net.config.pitches;
                (
                    p,
                    length * p,
                    length * p,
                    length * crate::meter::METER_FEATURES,
                )
            }
        };
        let n = batch.targets.len() / targets_each.max(1);
        let fits = n > 0
            && pitches > 0
            && batch.targets.len() == n * targets_each
            && batch.inputs.len() == n * inputs_each
            && batch.meter.len() == n * meter_each
            && (batch.gaps.is_empty() || (meter_each > 0 && batch.gaps.len() == n * length))
            && (batch.weights.is_empty() || batch.weights.len() == n * length);
        if fits {
            Ok(())
        } else {
            Err(BatchShapeError {
                inputs: batch.inputs.len(),
                targets: batch.targets.len(),
                meter: batch.meter.len(),
            })
        }
    }

    /// The roll LSTM's logits of the step after each input step
    /// (`[n][length][pitches]`), for feedback; none for other networks.
    pub fn own_logits(&mut self, inputs: &[f32], length: usize) -> Option<Vec<f32>> {
        match &mut self.net {
            NativeNet::Roll(net, chunks) => {
                if chunks.is_empty() {
                    chunks.push(RollChunk::default());
                }
                Some(net.logits(inputs, length, &mut chunks[0]))
            }
            NativeNet::Article(..) | NativeNet::Composer(..) => None,
        }
    }

    /// Runs `batch` forward; with `position` (training) also backward into
    /// `self.grads`, chunk by chunk on every core. Returns the mean loss.
    fn gradients(
        &mut self,
        batch: &BatchData,
        settings: &TrainSettings,
        position: Option<BatchPosition>,
    ) -> f32 {
        let train = position.is_some();
        let seed_of = |chunk: usize| {
            position.map(|p| {
                seeded_for(
                    settings.rng_seed,
                    &[p.epoch as u64, p.batch as u64, chunk as u64, 0xD80],
                )
            })
        };
        let (sum, cells) = match &mut self.net {
            NativeNet::Roll(net, chunks) => {
                let length = settings.sequence_steps;
                let each = length * net.config.pitches;
                let n = batch.targets.len() / each;
                let cells = batch.counted_steps(n, length) as usize * net.config.pitches;
                let units = net.config.units;
                let net = &*net;
                let run = |sequences: Range<usize>,
                           rng: Option<&mut SeededRng>,
                           work: &mut RollChunk,
                           grads: Option<&mut Grads>| {
                    let values = sequences.start * each..sequences.end * each;
                    let chunk = RollBatch {
                        inputs: &batch.inputs[values.clone()],
                        targets: &batch.targets[values],
                        weights: step_weights(&batch.weights, &sequences, length),
                        recurrent_mask: batch
                            .recurrent_mask
                            .get(sequences.start * units..sequences.end * units)
                            .unwrap_or(&[]),
                        length,
                    };
                    net.run_chunk(chunk, settings.loss, rng, cells, work, grads)
                };
                let (sum, count) = run_chunks(
                    n,
                    chunk_sequences(length),
                    chunks,
                    &mut self.grads,
                    train.then_some(&net.params[..]),
                    &seed_of,
                    &run,
                );
                self.chunks_used = count;
                (sum, cells)
            }
            NativeNet::Composer(net, chunks) => {
                let length = settings.sequence_steps;
                let each = length * net.config.pitches;
                let n = batch.targets.len() / each;
                let steps = batch.counted_steps(n, length) as usize;
                let meter = crate::meter::METER_FEATURES;
                let net = &*net;
                let run = |sequences: Range<usize>,
                           rng: Option<&mut SeededRng>,
                           work: &mut ComposerChunk,
                           grads: Option<&mut Grads>| {
                    let cells = sequences.start * each..sequences.end * each;
                    let steps_of = |width: usize| {
                        sequences.start * length * width..sequences.end * length * width
                    };
                    let chunk = ComposerBatch {
                        previous: &batch.inputs[cells.clone()],
                        targets: &batch.targets[cells],
                        meter: &batch.meter[steps_of(meter)],
                        gaps: if batch.gaps.is_empty() {
                            &[]
                        } else {
                            &batch.gaps[steps_of(1)]
                        },
                        weights: step_weights(&batch.weights, &sequences, length),
                        length,
                    };
                    net.run_chunk(chunk, rng, steps, work, grads)
                };
                let (sum, count) = run_chunks(
                    n,
                    chunk_sequences(length),
                    chunks,
                    &mut self.grads,
                    train.then_some(&net.params[..]),
                    &seed_of,
                    &run,
                );
                self.chunks_used = count;
                (sum, steps)
            }
            NativeNet::Article(net, chunks) => {
                let (sum, cells, count) =
                    net.run_batch(batch, settings.loss, train, chunks, &mut self.grads);
                self.chunks_used = count;
                (sum, cells)
            }
        };
        (sum / cells.max(1) as f64) as f32
    }

    /// Sums the chunks' gradients in order and takes an Adam step.
    fn apply(&mut self, learning_rate: f64) {
        let chunks = self.chunks_used;
        let Self {
            net, adam, grads, ..
        } = self;
        let params = match net {
            NativeNet::Roll(net, _) => &mut net.params,
            NativeNet::Article(net, _) => &mut net.params,
            NativeNet::Composer(net, _) => &mut net.params,
        };
        adam.time += 1;
        let (beta_1, beta_2, epsilon) = (0.9f32, 0.999f32, 1e-7f32);
        let step = adam.time as i32;
        let alpha =
            learning_rate as f32 * (1.0 - beta_2.powi(step)).sqrt() / (1.0 - beta_1.powi(step));
        let Some((first_grads, other_grads)) = grads[..chunks].split_first_mut() else {
            return;
        };
        // Every tensor cut into pieces, all pieces in one parallel pass (the
        // biases are too small to be worth a pass of their own).
        let mut pieces = Vec::new();
        for (index, (((param, m), v), grad)) in params
            .iter_mut()
            .zip(&mut adam.first)
            .zip(&mut adam.second)
            .zip(&mut first_grads.tensors)
            .enumerate()
        {
            let parts = param
                .chunks_mut(ADAM_PIECE)
                .zip(m.chunks_mut(ADAM_PIECE))
                .zip(v.chunks_mut(ADAM_PIECE))
                .zip(grad.chunks_mut(ADAM_PIECE))
                .enumerate();
            for (piece, (((p, m), v), g)) in parts {
                pieces.push((index, piece * ADAM_PIECE, p, m, v, g));
            }
        }
        pieces.into_par_iter().for_each(|(index, at, p, m, v, g)| {
            for other in other_grads.iter() {
                crate::linalg::add_assign(g, &other.tensors[index][at..at + g.len()]);
            }
            for (((p, m), v), &g) in p
                .iter_mut()
                .zip(m.iter_mut())
                .zip(v.iter_mut())
                .zip(g.iter())
            {
                *m += (g - *m) * (1.0 - beta_1);
                *v += (g * g - *v) * (1.0 - beta_2);
                *p -= (*m * alpha) / (v.sqrt() + epsilon);
            }
        });
    }

    /// The optimizer state as bytes (`STATE_MAGIC`, the step count, then
    /// each tensor's first and second moments, little-endian).
    pub fn optimizer_bytes(&self) -> Vec<u8> {
        let mut out = STATE_MAGIC.to_vec();
        out.extend_from_slice(&self.adam.time.to_le_bytes());
        out.extend_from_slice(&(self.adam.first.len() as u64).to_le_bytes());
        for (m, v) in self.adam.first.iter().zip(&self.adam.second) {
            out.extend_from_slice(&(m.len() as u64).to_le_bytes());
            for value in m.iter().chain(v) {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out
    }

    /// Whether `bytes` is an optimizer state this trainer wrote.
    pub fn wrote(bytes: &[u8]) -> bool {
        bytes.starts_with(STATE_MAGIC)
    }

    /// Takes the optimizer state in `bytes` (see [`optimizer_bytes`](Self::optimizer_bytes)).
    pub fn restore_optimizer(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut rest = bytes
            .strip_prefix(STATE_MAGIC)
            .ok_or("not a state of Cadenza's CPU trainer")?;
        let take_u64 = |rest: &mut &[u8]| -> Result<u64, String> {
            let (head, tail) = rest
                .split_first_chunk::<8>()
                .ok_or("the optimizer state is cut short")?;
            *rest = tail;
            Ok(u64::from_le_bytes(*head))
        };
        let time = take_u64(&mut rest)?;
        let tensors = take_u64(&mut rest)?;
        let sizes: Vec<usize> = self.params().iter().map(Vec::len).collect();
        if tensors != sizes.len() as u64 {
            return Err(format!(
                "the optimizer state holds {tensors} tensors; the network has {}",
                sizes.len()
            ));
        }
        let mut first = Vec::with_capacity(sizes.len());
        let mut second = Vec::with_capacity(sizes.len());
        for &size in &sizes {
            let len = take_u64(&mut rest)?;
            if len != size as u64 {
                return Err(format!(
                    "an optimizer tensor holds {len} values where the network's holds {size}"
                ));
            }
            let bytes = size * 4;
            if rest.len() < 2 * bytes {
                return Err("the optimizer state is cut short".to_owned());
            }
            let floats = |b: &[u8]| -> Vec<f32> {
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            first.push(floats(&rest[..bytes]));
            second.push(floats(&rest[bytes..2 * bytes]));
            rest = &rest[2 * bytes..];
        }
        if !rest.is_empty() {
            return Err("the optimizer state has bytes after its end".to_owned());
        }
        self.adam = AdamMoments {
            time,
            first,
            second,
        };
        Ok(())
    }

    /// The last training pass's gradient (the chunks' summed in order), per
    /// tensor: for tests against burn.
    #[cfg(test)]
    fn summed_gradients(&self) -> Vec<Vec<f32>> {
        let mut total = self.grads[0].tensors.clone();
        for other in &self.grads[1..self.chunks_used] {
            for (t, o) in total.iter_mut().zip(&other.tensors) {
                crate::linalg::add_assign(t, o);
            }
        }
        total
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
