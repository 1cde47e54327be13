//! The article's network trained in plain Rust: four kernel-1 convolutions
//! (dense layers per step) with ReLU and pair max-pooling, two LSTMs over a
//! sequence of one, batch norm on the batch's statistics, a sigmoid layer.
//! Everything up to the second LSTM, and back from it, runs per chunk on
//! every core; batch norm needs the whole batch, so it and the last layer run
//! once in between.

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use super::lstm::{
    self, BinaryRows, Lstm, LstmBackScratch, LstmInput, LstmShape, LstmTape, LstmWeights, resize,
};
use super::{CHUNK, ChunkLoss, Grads, read};
use crate::linalg::{self, MatRef, matmul};
use crate::model::native::NativeCopyError;
use crate::model::{ArticleNet, ArticleNetConfig};
use crate::record::LossKind;

/// Convolutions, each a weight and a bias in `params`.
const CONVOLUTIONS: usize = 4;
/// Where the LSTMs' tensors start (kernel, recurrent kernel, bias each).
const LSTM8: usize = 2 * CONVOLUTIONS;
const LSTM9: usize = LSTM8 + 3;
const GAMMA: usize = LSTM9 + 3;
const BETA: usize = GAMMA + 1;
const DENSE_WEIGHT: usize = BETA + 1;
const DENSE_BIAS: usize = DENSE_WEIGHT + 1;
const TENSORS: usize = DENSE_BIAS + 1;

/// The article's network's weights (trainable, in the order above) and
/// batch norm's moving statistics.
#[derive(Debug, Clone)]
pub(super) struct ArticleTrainer {
    pub config: ArticleNetConfig,
    pub params: Vec<Vec<f32>>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

/// A convolution's output and the pooling after it.
#[derive(Debug, Default)]
struct Stage {
    /// After ReLU, `[rows][filters]`.
    activated: Vec<f32>,
    /// After pooling pairs of steps.
    pooled: Vec<f32>,
    /// Per pooled value: whether the second of the pair was larger.
    second: Vec<bool>,
    /// Gradient at `activated`, then at the pre-activation.
    grads: Vec<f32>,
}

/// One chunk's work space, kept between steps.
#[derive(Debug, Default)]
pub(super) struct ArticleChunk {
    binary: BinaryRows,
    is_binary: bool,
    stages: [Stage; CONVOLUTIONS],
    tape8: LstmTape,
    tape9: LstmTape,
    back8: LstmBackScratch,
    back9: LstmBackScratch,
    /// Gradients at the second LSTM's output, the first's, and the last
    /// convolution's.
    hidden9_grads: Vec<f32>,
    hidden8_grads: Vec<f32>,
    windows: usize,
}

impl ArticleTrainer {
    pub fn from_model(
        model: &ArticleNet,
        config: &ArticleNetConfig,
    ) -> Result<Self, NativeCopyError> {
        let mut params = Vec::with_capacity(TENSORS);
        for conv in [&model.conv0, &model.conv2, &model.conv4, &model.conv6] {
            let [_, out] = conv.weight.dims();
            params.push(read(conv.weight.val())?);
            params.push(match &conv.bias {
                Some(bias) => read(bias.val())?,
                None => vec![0.0; out],
            });
        }
        for lstm in [&model.lstm8, &model.lstm9] {
            params.push(read(lstm.kernel.val())?);
            params.push(read(lstm.recurrent_kernel.val())?);
            params.push(read(lstm.bias.val())?);
        }
        params.push(read(model.norm10.gamma.val())?);
        params.push(read(model.norm10.beta.val())?);
        params.push(read(model.dense11.weight.val())?);
        params.push(match &model.dense11.bias {
            Some(bias) => read(bias.val())?,
            None => vec![0.0; config.pitches],
        });
        Ok(Self {
            config: config.clone(),
            params,
            running_mean: read(model.norm10.running_mean.value())?,
            running_var: read(model.norm10.running_var.value())?,
        })
    }

    /// The burn network holding these weights.
    pub fn to_model(&self, device: &Device) -> ArticleNet {
        let c = &self.config;
        let mut model = c.init(device);
        let p = &self.params;
        let matrix = |index: usize, rows: usize, cols: usize| {
            Param::from_data(TensorData::new(p[index].clone(), [rows, cols]), device)
        };
        let vector = |values: &[f32]| {
            Param::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
        };
        let convs = [
            &mut model.conv0,
            &mut model.conv2,
            &mut model.conv4,
            &mut model.conv6,
        ];
        for (k, conv) in convs.into_iter().enumerate() {
            let inputs = if k == 0 { c.pitches } else { c.filters };
            conv.weight = matrix(2 * k, inputs, c.filters);
            conv.bias = Some(vector(&p[2 * k + 1]));
        }
        for (at, lstm, inputs) in [
            (LSTM8, &mut model.lstm8, c.filters),
            (LSTM9, &mut model.lstm9, c.lstm_units),
        ] {
            let units = lstm.units;
            lstm.kernel = matrix(at, inputs, 4 * units);
            lstm.recurrent_kernel = matrix(at + 1, units, 4 * units);
            lstm.bias = vector(&p[at + 2]);
        }
        let norm = &mut model.norm10;
        norm.gamma = vector(&p[GAMMA]);
        norm.beta = vector(&p[BETA]);
        let running = |values: &[f32]| {
            RunningState::new(Tensor::from_data(
                TensorData::new(values.to_vec(), [values.len()]),
                device,
            ))
        };
        norm.running_mean = running(&self.running_mean);
        norm.running_var = running(&self.running_var);
        model.dense11.weight = matrix(DENSE_WEIGHT, c.lstm2_units, c.pitches);
        model.dense11.bias = Some(vector(&p[DENSE_BIAS]));
        model
    }

    /// The first (`LSTM8`) or second (`LSTM9`) LSTM.
    fn lstm(&self, at: usize) -> Lstm<'_> {
        let c = &self.config;
        let shape = if at == LSTM8 {
            LstmShape {
                inputs: c.filters,
                units: c.lstm_units,
            }
        } else {
            LstmShape {
                inputs: c.lstm_units,
                units: c.lstm2_units,
            }
        };
        Lstm {
            shape,
            weights: LstmWeights {
                kernel: &self.params[at],
                recurrent: &self.params[at + 1],
                bias: &self.params[at + 2],
            },
        }
    }

    /// Steps of each stage's input: the window, then halved three times.
    fn stage_steps(&self) -> [usize; CONVOLUTIONS] {
        let w = self.config.window;
        [w, w / 2, w / 4, w / 8]
    }

    /// Runs `windows` (`[n][window][pitches]`) to the second LSTM's output.
    fn forward_chunk(&self, windows: &[f32], work: &mut ArticleChunk) {
        let c = &self.config;
        let n = windows.len() / (c.window * c.pitches);
        work.windows = n;
        work.is_binary = BinaryRows::from_dense(windows, c.pitches, &mut work.binary);
        let steps = self.stage_steps();
        for k in 0..CONVOLUTIONS {
            let rows = n * steps[k];
            let (done, rest) = work.stages.split_at_mut(k);
            let stage = &mut rest[0];
            resize(&mut stage.activated, rows * c.filters);
            let (weight, bias) = (&self.params[2 * k], &self.params[2 * k + 1]);
            if k == 0 {
                if work.is_binary {
                    for (r, row) in stage.activated.chunks_exact_mut(c.filters).enumerate() {
                        row.copy_from_slice(bias);
                        for &one in work.binary.row(r) {
                            let one = one as usize;
                            linalg::add_assign(row, &weight[one * c.filters..][..c.filters]);
                        }
                    }
                } else {
                    dense(&mut stage.activated, windows, rows, c.pitches, weight, bias);
                }
            } else {
                let input = &done[k - 1].pooled;
                dense(&mut stage.activated, input, rows, c.filters, weight, bias);
            }
            for v in &mut stage.activated {
                *v = v.max(0.0);
            }
            if k + 1 < CONVOLUTIONS {
                pool_pairs(stage, n, steps[k], c.filters);
            }
        }
        let last = &work.stages[CONVOLUTIONS - 1].activated;
        lstm::forward(
            &self.lstm(LSTM8),
            LstmInput::Dense(last),
            n,
            1,
            &mut work.tape8,
        );
        let h8 = LstmInput::Dense(&work.tape8.hidden);
        lstm::forward(&self.lstm(LSTM9), h8, n, 1, &mut work.tape9);
    }

    /// Back from the gradient at the second LSTM's output
    /// (`work.hidden9_grads`), adding to `grads`.
    fn backward_chunk(&self, windows: &[f32], work: &mut ArticleChunk, grads: &mut Grads) {
        let c = &self.config;
        let n = work.windows;
        let g = grads.tensors.as_mut_slice();
        resize(&mut work.hidden8_grads, n * c.lstm_units);
        {
            let (lo, hi) = g.split_at_mut(LSTM9);
            let _ = lo;
            let [kernel, recurrent, bias, ..] = hi else {
                unreachable!("the article's network has its second LSTM")
            };
            lstm::backward(
                &self.lstm(LSTM9),
                LstmInput::Dense(&work.tape8.hidden),
                &work.tape9,
                &work.hidden9_grads,
                &mut LstmWeights {
                    kernel: kernel.as_mut_slice(),
                    recurrent: recurrent.as_mut_slice(),
                    bias: bias.as_mut_slice(),
                },
                Some(&mut work.hidden8_grads),
                &mut work.back9,
            );
        }
        let last = CONVOLUTIONS - 1;
        resize(&mut work.stages[last].grads, n * c.filters);
        {
            let [kernel, recurrent, bias, ..] = &mut g[LSTM8..] else {
                unreachable!("the article's network has its first LSTM")
            };
            lstm::backward(
                &self.lstm(LSTM8),
                LstmInput::Dense(&work.stages[last].activated),
                &work.tape8,
                &work.hidden8_grads,
                &mut LstmWeights {
                    kernel: kernel.as_mut_slice(),
                    recurrent: recurrent.as_mut_slice(),
                    bias: bias.as_mut_slice(),
                },
                Some(&mut work.stages[last].grads),
                &mut work.back8,
            );
        }
        for k in (0..CONVOLUTIONS).rev() {
            self.convolution_backward(k, windows, work, g);
        }
    }

    /// Back through convolution `k` from the gradient at its output
    /// (`work.stages[k].grads`): its weights' gradients into `g`, and the
    /// gradient at the stage below's output.
    fn convolution_backward(
        &self,
        k: usize,
        windows: &[f32],
        work: &mut ArticleChunk,
        g: &mut [Vec<f32>],
    ) {
        let c = &self.config;
        let n = work.windows;
        let steps = self.stage_steps();
        let rows = n * steps[k];
        let inputs = if k == 0 { c.pitches } else { c.filters };
        let (before, rest) = work.stages.split_at_mut(k);
        let stage = &mut rest[0];
        // ReLU: no gradient where the output was clipped to zero.
        for (d, &a) in stage.grads.iter_mut().zip(&stage.activated) {
            if a <= 0.0 {
                *d = 0.0;
            }
        }
        let (weight_grad, rest) = g[2 * k..].split_at_mut(1);
        linalg::add_column_sums(&stage.grads, &mut rest[0]);
        if k == 0 {
            if work.is_binary {
                for (r, d) in stage.grads.chunks_exact(c.filters).enumerate() {
                    for &one in work.binary.row(r) {
                        let one = one as usize;
                        linalg::add_assign(&mut weight_grad[0][one * c.filters..][..c.filters], d);
                    }
                }
            } else {
                matmul(
                    &mut weight_grad[0],
                    MatRef::new(windows, rows, inputs).t(),
                    MatRef::new(&stage.grads, rows, c.filters),
                    true,
                );
            }
        } else {
            let below = &mut before[k - 1];
            matmul(
                &mut weight_grad[0],
                MatRef::new(&below.pooled, rows, inputs).t(),
                MatRef::new(&stage.grads, rows, c.filters),
                true,
            );
            // The gradient at the pooled input, routed to the larger of
            // each pair (the first on a tie, as burn's max does).
            let mut pooled_grads = vec![0.0f32; rows * c.filters];
            matmul(
                &mut pooled_grads,
                MatRef::new(&stage.grads, rows, c.filters),
                MatRef::new(&self.params[2 * k], inputs, c.filters).t(),
                false,
            );
            let below_rows = n * steps[k - 1];
            below.grads.clear();
            below.grads.resize(below_rows * c.filters, 0.0);
            let half = steps[k];
            for window in 0..n {
                for s in 0..half {
                    let pooled_at = (window * half + s) * c.filters;
                    let first_row = window * steps[k - 1] + 2 * s;
                    for f in 0..c.filters {
                        let row = first_row + usize::from(below.second[pooled_at + f]);
                        below.grads[row * c.filters + f] = pooled_grads[pooled_at + f];
                    }
                }
            }
        }
    }

    /// Forward (and, when `train`, backward into `grads`) over a whole
    /// batch; returns the summed loss, the values it averages over, and
    /// how many chunks' gradients were filled.
    pub fn run_batch(
        &mut self,
        batch: &super::BatchData,
        loss: LossKind,
        train: bool,
        chunks: &mut Vec<ArticleChunk>,
        grads: &mut Vec<Grads>,
    ) -> (ChunkLoss, usize, usize) {
        let c = self.config.clone();
        let each = c.window * c.pitches;
        let n = batch.targets.len() / c.pitches;
        let count = n.div_ceil(CHUNK);
        chunks.resize_with(count.max(chunks.len()), ArticleChunk::default);
        grads.resize_with(count.max(grads.len()), Grads::default);
        let window_range = |chunk: usize| chunk * CHUNK * each..((chunk + 1) * CHUNK).min(n) * each;
        let this = &*self;
        chunks[..count]
            .par_iter_mut()
            .zip(&mut grads[..count])
            .enumerate()
            .for_each(|(chunk, (work, grads))| {
                if train {
                    grads.reset(&this.params);
                }
                this.forward_chunk(&batch.inputs[window_range(chunk)], work);
            });
        // Batch norm and the sigmoid layer over the whole batch.
        let width = c.lstm2_units;
        let mut hidden = Vec::with_capacity(n * width);
        for work in &chunks[..count] {
            hidden.extend_from_slice(&work.tape9.hidden);
        }
        let (sum, hidden_grads) = self.head(&hidden, n, &batch.targets, loss, train, &mut grads[0]);
        if !train {
            return (sum, n * c.pitches, count);
        }
        for (chunk, work) in chunks[..count].iter_mut().enumerate() {
            let rows = chunk * CHUNK..((chunk + 1) * CHUNK).min(n);
            work.hidden9_grads.clear();
            work.hidden9_grads
                .extend_from_slice(&hidden_grads[rows.start * width..rows.end * width]);
        }
        let this = &*self;
        chunks[..count]
            .par_iter_mut()
            .zip(&mut grads[..count])
            .enumerate()
            .for_each(|(chunk, (work, grads))| {
                this.backward_chunk(&batch.inputs[window_range(chunk)], work, grads);
            });
        (sum, n * c.pitches, count)
    }

    /// Batch norm, the sigmoid layer and the loss over all `n` rows of
    /// `hidden`; when training, updates the moving statistics, adds the
    /// head's gradients to `grads` and returns the gradient at `hidden`.
    fn head(
        &mut self,
        hidden: &[f32],
        n: usize,
        targets: &[f32],
        loss: LossKind,
        train: bool,
        grads: &mut Grads,
    ) -> (ChunkLoss, Vec<f32>) {
        let c = &self.config;
        let (width, pitches) = (c.lstm2_units, c.pitches);
        let epsilon = c.norm_epsilon as f32;
        let (mean, variance) = if train {
            let mut mean = vec![0.0f32; width];
            let mut variance = vec![0.0f32; width];
            linalg::add_column_sums(hidden, &mut mean);
            mean.iter_mut().for_each(|m| *m /= n as f32);
            for row in hidden.chunks_exact(width) {
                for ((v, &x), &m) in variance.iter_mut().zip(row).zip(&mean) {
                    *v += (x - m) * (x - m);
                }
            }
            variance.iter_mut().for_each(|v| *v /= n as f32);
            (mean, variance)
        } else {
            (self.running_mean.clone(), self.running_var.clone())
        };
        let inv_std: Vec<f32> = variance
            .iter()
            .map(|v| 1.0 / (v + epsilon).sqrt())
            .collect();
        let mut normed = vec![0.0f32; n * width];
        let mut scaled = vec![0.0f32; n * width];
        for ((row, out), scaled_row) in hidden
            .chunks_exact(width)
            .zip(normed.chunks_exact_mut(width))
            .zip(scaled.chunks_exact_mut(width))
        {
            for j in 0..width {
                out[j] = (row[j] - mean[j]) * inv_std[j];
                scaled_row[j] = out[j] * self.params[GAMMA][j] + self.params[BETA][j];
            }
        }
        let mut logits = vec![0.0f32; n * pitches];
        matmul(
            &mut logits,
            MatRef::new(&scaled, n, width),
            MatRef::new(&self.params[DENSE_WEIGHT], width, pitches),
            false,
        );
        for row in logits.chunks_exact_mut(pitches) {
            linalg::add_assign(row, &self.params[DENSE_BIAS]);
        }
        let sum = super::independent_loss(loss, &mut logits, targets, pitches, &[], n * pitches);
        if !train {
            return (sum, Vec::new());
        }
        // Moving statistics, as burn's batch norm keeps them.
        let momentum = 1.0 - c.norm_momentum;
        let (keep, take) = ((1.0 - momentum) as f32, momentum as f32);
        for (r, &m) in self.running_mean.iter_mut().zip(&mean) {
            *r = *r * keep + m * take;
        }
        for (r, &v) in self.running_var.iter_mut().zip(&variance) {
            *r = *r * keep + v * take;
        }
        let g = &mut grads.tensors;
        matmul(
            &mut g[DENSE_WEIGHT],
            MatRef::new(&scaled, n, width).t(),
            MatRef::new(&logits, n, pitches),
            true,
        );
        linalg::add_column_sums(&logits, &mut g[DENSE_BIAS]);
        let mut scaled_grads = vec![0.0f32; n * width];
        matmul(
            &mut scaled_grads,
            MatRef::new(&logits, n, pitches),
            MatRef::new(&self.params[DENSE_WEIGHT], width, pitches).t(),
            false,
        );
        let mut sum_grads = vec![0.0f32; width];
        let mut sum_grads_normed = vec![0.0f32; width];
        for (d, x) in scaled_grads
            .chunks_exact(width)
            .zip(normed.chunks_exact(width))
        {
            for j in 0..width {
                sum_grads[j] += d[j];
                sum_grads_normed[j] += d[j] * x[j];
            }
        }
        linalg::add_assign(&mut g[BETA], &sum_grads);
        linalg::add_assign(&mut g[GAMMA], &sum_grads_normed);
        let count = n as f32;
        let mut hidden_grads = vec![0.0f32; n * width];
        for ((out, d), x) in hidden_grads
            .chunks_exact_mut(width)
            .zip(scaled_grads.chunks_exact(width))
            .zip(normed.chunks_exact(width))
        {
            for j in 0..width {
                let gamma = self.params[GAMMA][j];
                // d(gamma x^)/dx for batch statistics.
                let dx = d[j] * gamma;
                let sum = sum_grads[j] * gamma;
                let sum_x = sum_grads_normed[j] * gamma;
                out[j] = inv_std[j] / count * (count * dx - sum - x[j] * sum_x);
            }
        }
        (sum, hidden_grads)
    }
}

/// `out = input · weight + bias`, `rows` rows.
fn dense(out: &mut [f32], input: &[f32], rows: usize, inputs: usize, weight: &[f32], bias: &[f32]) {
    let width = bias.len();
    matmul(
        out,
        MatRef::new(input, rows, inputs),
        MatRef::new(weight, inputs, width),
        false,
    );
    for row in out.chunks_exact_mut(width) {
        linalg::add_assign(row, bias);
    }
}

/// Max-pools pairs of steps of `stage.activated` (`n` windows of `steps`
/// steps) into `stage.pooled`, an odd last step dropped.
fn pool_pairs(stage: &mut Stage, n: usize, steps: usize, width: usize) {
    let half = steps / 2;
    resize(&mut stage.pooled, n * half * width);
    stage.second.clear();
    stage.second.resize(n * half * width, false);
    for window in 0..n {
        for s in 0..half {
            let a = (window * steps + 2 * s) * width;
            let out = (window * half + s) * width;
            for f in 0..width {
                let (x, y) = (stage.activated[a + f], stage.activated[a + width + f]);
                let second = y > x;
                stage.second[out + f] = second;
                stage.pooled[out + f] = if second { y } else { x };
            }
        }
    }
}
