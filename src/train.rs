//! Training a network: a plain loop over shuffled batches with Adam as
//! Keras defines it, a validation pass per epoch, progress events, a cancel
//! flag checked between batches, and a checkpoint after each epoch that holds
//! everything `--resume` needs to continue exactly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{
    AdamState, AdaptiveMomentumState, GradientsParams, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomically;
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointHeader};
use crate::dataset::{Dataset, Preset, Stretch, Window};
use crate::eval::{FrameScores, teacher_forced};
use crate::generate::Runner;
use crate::model::{Architecture, Network, NetworkConfig, WINDOW_STEPS};
use crate::roll::PITCH_COUNT;

/// The training loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Mean squared error, as the article trains.
    #[default]
    Mse,
    /// Binary cross-entropy, the usual loss for independent on/off outputs.
    Bce,
}

/// How a run trains; stored in the checkpoint so `--resume` needs none of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub preset: Preset,
    pub loss: LossKind,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub validation_fraction: f64,
    /// Seeds the weights, the file split and every epoch's shuffle.
    pub seed: u64,
    /// Steps per training stretch of a recurrent network.
    #[serde(default = "default_sequence_steps")]
    pub sequence_steps: usize,
    /// Largest random transposition of a training stretch, in semitones
    /// (recurrent networks; 0: none).
    #[serde(default)]
    pub max_transpose: u8,
    /// Recurrent networks: the share of input steps replaced by the
    /// network's own thresholded prediction of that step (scheduled sampling,
    /// in its parallel form), so it learns to go on from its own output as
    /// generation makes it. 0: the real steps only (teacher forcing).
    #[serde(default)]
    pub feedback: f64,
}

/// Largest transposition of roll-lstm training stretches, chosen by
/// measurement (README, "Measuring the music").
pub const DEFAULT_TRANSPOSE: u8 = 5;

/// Share of roll-lstm input steps fed back while training, chosen by
/// measurement (README, "Measuring the music").
pub const DEFAULT_FEEDBACK: f64 = 0.25;

fn default_sequence_steps() -> usize {
    64
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            preset: Preset::Forward,
            loss: LossKind::Mse,
            batch_size: 32,
            learning_rate: 1e-3,
            validation_fraction: 0.1,
            seed: 0,
            sequence_steps: default_sequence_steps(),
            max_transpose: 0,
            feedback: 0.0,
        }
    }
}

impl TrainSettings {
    /// The defaults, with the augmentation chosen for `architecture`
    /// (windows of the seed network are neither transposed nor fed back).
    pub fn for_architecture(architecture: Architecture) -> Self {
        match architecture {
            Architecture::Seed => Self::default(),
            Architecture::RollLstm => Self {
                loss: LossKind::Bce,
                max_transpose: DEFAULT_TRANSPOSE,
                feedback: DEFAULT_FEEDBACK,
                ..Self::default()
            },
        }
    }
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (training-mode batch norm).
    pub train_loss: f64,
    /// Loss on the validation files, inference mode; none without validation.
    pub validation_loss: Option<f64>,
    /// Frame-level F1 of the next-step prediction on the validation files at
    /// the threshold that maximises it (teacher forced, as `cadenza eval`).
    #[serde(default)]
    pub validation_f1: Option<f64>,
    /// That threshold: the one the threshold rule uses with this model.
    #[serde(default)]
    pub best_threshold: Option<f64>,
    pub windows_per_s: f64,
    pub seconds: f64,
}

/// Settings and history of a training run, kept in its checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub settings: TrainSettings,
    /// The folder trained on, as given.
    pub data: String,
    pub windows_train: usize,
    pub windows_validation: usize,
    pub log: Vec<EpochRecord>,
}

impl TrainingRecord {
    pub fn epochs_done(&self) -> usize {
        self.log.len()
    }

    /// The epoch with the lowest validation loss (training loss without
    /// validation).
    pub fn best_epoch(&self) -> Option<&EpochRecord> {
        self.log.iter().min_by(|a, b| {
            let key = |r: &EpochRecord| r.validation_loss.unwrap_or(r.train_loss);
            key(a).total_cmp(&key(b))
        })
    }

    /// The threshold with the best validation F1 at the best epoch: what the
    /// threshold rule uses with this model unless told otherwise.
    pub fn tuned_threshold(&self) -> Option<f32> {
        self.best_epoch()?.best_threshold.map(|t| t as f32)
    }

    /// The loss history as CSV.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from(
            "epoch,train_loss,validation_loss,validation_f1,best_threshold,windows_per_s,seconds\n",
        );
        let optional = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.8}"));
        for r in &self.log {
            csv.push_str(&format!(
                "{},{:.8},{},{},{},{:.1},{:.3}\n",
                r.epoch,
                r.train_loss,
                optional(r.validation_loss),
                optional(r.validation_f1),
                optional(r.best_threshold),
                r.windows_per_s,
                r.seconds
            ));
        }
        csv
    }
}

/// Why training stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    #[error(
        "the loss became {loss} at epoch {epoch}, batch {batch}; stopped, and the last good \
         checkpoint was kept"
    )]
    NonFiniteLoss {
        epoch: usize,
        batch: usize,
        loss: f32,
    },
    #[error("the batch size must be at least 1")]
    ZeroBatch,
    #[error("the data has no full batch of {0} examples")]
    NoFullBatch(usize),
    #[error("the stretch length must be at least 1 step")]
    ZeroSequence,
    #[error("the feedback share {0} is outside 0..1")]
    BadFeedback(f64),
    #[error("cannot build the network: {0}")]
    BadNetwork(String),
    #[error(
        "the {0:?} preset (reversed time, two steps ahead) is for the seed network; \
         recurrent networks train forward"
    )]
    PresetNeedsSeedNetwork(Preset),
    #[error("the learning rate {0} must be a finite number above 0")]
    BadLearningRate(f64),
    #[error("the checkpoint has no optimizer state to resume from (a shipped or imported model)")]
    NothingToResume,
    #[error("the checkpoint has no training record to resume")]
    NoTrainingRecord,
    #[error("cannot restore the optimizer state: {0}")]
    OptimizerState(String),
    #[error("the compute backend returned unreadable output: {0}")]
    Backend(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Adam exactly as Keras 3 computes it: epsilon is added to `sqrt(v)` before
/// the bias correction is applied through the step size. (burn's Adam scales
/// epsilon by the correction, which moves near-zero-gradient weights by up to
/// ~30x more on the first steps.) The state is burn's `AdamState`, so it saves
/// and loads like burn's own.
#[derive(Clone, Debug)]
pub struct KerasAdam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl Default for KerasAdam {
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl Optimizer for KerasAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (m, v, time) = match state {
            Some(state) => (
                state.momentum.moment_1,
                state.momentum.moment_2,
                state.momentum.time,
            ),
            None => (grad.zeros_like(), grad.zeros_like(), 0),
        };
        let time = time + 1;
        // Keras: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2), in f32.
        let m = m.clone() + (grad.clone() - m).mul_scalar(1.0 - self.beta_1);
        let v = v.clone() + (grad.square() - v).mul_scalar(1.0 - self.beta_2);
        let step = time as i32;
        let alpha =
            lr as f32 * (1.0 - self.beta_2.powi(step)).sqrt() / (1.0 - self.beta_1.powi(step));
        let update = m
            .clone()
            .mul_scalar(alpha)
            .div(v.clone().sqrt().add_scalar(self.epsilon));
        let state = AdamState::new(AdaptiveMomentumState::new(time, m, v));
        (tensor - update, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

/// What the loop reports while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainEvent {
    /// After each batch.
    Batch {
        epoch: usize,
        /// 1-based within the epoch.
        batch: usize,
        batches: usize,
        loss: f32,
        windows_per_s: f64,
        /// Seconds left in the whole run, from this epoch's pace.
        eta_seconds: f64,
    },
    /// After each epoch, once its checkpoint is written.
    Epoch(EpochRecord),
}

/// How a run ended without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainEnd {
    /// All epochs done.
    Finished,
    /// The validation loss stopped improving for `patience` epochs.
    EarlyStopped,
    /// The cancel flag was raised; the last complete epoch is saved.
    Cancelled,
}

/// A model being trained, with its optimizer and history.
pub struct Trainer {
    model: Network,
    config: NetworkConfig,
    optimizer: ModuleOptimizer,
    record: TrainingRecord,
    device: Device,
    inputs: Vec<f32>,
    targets: Vec<f32>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("record", &self.record)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

fn check_settings(settings: &TrainSettings, config: &NetworkConfig) -> Result<(), TrainError> {
    if settings.batch_size == 0 {
        return Err(TrainError::ZeroBatch);
    }
    let lr = settings.learning_rate;
    if !(lr.is_finite() && lr > 0.0) {
        return Err(TrainError::BadLearningRate(lr));
    }
    if let Some(problem) = config.problem() {
        return Err(TrainError::BadNetwork(problem));
    }
    if !(0.0..=1.0).contains(&settings.feedback) {
        return Err(TrainError::BadFeedback(settings.feedback));
    }
    if let NetworkConfig::RollLstm(_) = config {
        if settings.sequence_steps == 0 {
            return Err(TrainError::ZeroSequence);
        }
        if settings.preset != Preset::Forward {
            return Err(TrainError::PresetNeedsSeedNetwork(settings.preset));
        }
    }
    Ok(())
}

/// The device to train on: `device` with automatic differentiation.
pub fn training_device(device: &Device) -> Device {
    device.clone().autodiff()
}

/// One epoch's examples: windows for the seed network, stretches for a
/// recurrent one.
enum Examples {
    Windows(Vec<Window>),
    Stretches {
        stretches: Vec<Stretch>,
        length: usize,
    },
}

impl Examples {
    fn len(&self) -> usize {
        match self {
            Self::Windows(windows) => windows.len(),
            Self::Stretches { stretches, .. } => stretches.len(),
        }
    }

    /// Fills a batch with examples `range`.
    fn fill(
        &self,
        data: &Dataset,
        range: std::ops::Range<usize>,
        inputs: &mut Vec<f32>,
        targets: &mut Vec<f32>,
    ) {
        match self {
            Self::Windows(windows) => data.fill_batch(&windows[range], inputs, targets),
            Self::Stretches { stretches, length } => {
                data.fill_stretches(&stretches[range], *length, inputs, targets);
            }
        }
    }
}

impl Trainer {
    /// Starts a fresh run with Keras's initialisation, seeded by `settings.seed`.
    pub fn new(
        config: impl Into<NetworkConfig>,
        settings: TrainSettings,
        data: &Dataset,
        data_name: &str,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let config = config.into();
        // Checked before building: burn panics on a bad dropout.
        check_settings(&settings, &config)?;
        let device = training_device(device);
        device.seed(settings.seed);
        let model = config.init(&device);
        Ok(Self::checked(
            model, config, settings, data, data_name, &device,
        ))
    }

    /// Trains an existing model (already on a training device) from step one.
    pub fn with_model(
        model: impl Into<Network>,
        config: impl Into<NetworkConfig>,
        settings: TrainSettings,
        data: &Dataset,
        data_name: &str,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let config = config.into();
        check_settings(&settings, &config)?;
        Ok(Self::checked(
            model.into(),
            config,
            settings,
            data,
            data_name,
            device,
        ))
    }

    /// A trainer from settings already checked.
    fn checked(
        model: Network,
        config: NetworkConfig,
        settings: TrainSettings,
        data: &Dataset,
        data_name: &str,
        device: &Device,
    ) -> Self {
        let mut trainer = Self {
            model,
            config,
            optimizer: ModuleOptimizer::from(KerasAdam::default()),
            record: TrainingRecord {
                settings,
                data: data_name.to_owned(),
                windows_train: 0,
                windows_validation: 0,
                log: Vec::new(),
            },
            device: device.clone(),
            inputs: Vec::new(),
            targets: Vec::new(),
        };
        trainer.record.windows_train = trainer.example_count(data, false) * trainer.targets_each();
        trainer.record.windows_validation =
            trainer.example_count(data, true) * trainer.targets_each();
        trainer
    }

    /// Continues the run a checkpoint was written by, exactly where it stopped.
    pub fn resume(checkpoint: &Checkpoint, device: &Device) -> Result<Self, TrainError> {
        let record = checkpoint
            .header
            .training
            .clone()
            .ok_or(TrainError::NoTrainingRecord)?;
        let optimizer_bytes = checkpoint
            .optimizer_state()
            .ok_or(TrainError::NothingToResume)?;
        let device = training_device(device);
        let model = checkpoint.model(&device)?;
        let optimizer = ModuleOptimizer::from(KerasAdam::default())
            .from_bytes(Bytes::from_bytes_vec(optimizer_bytes.to_vec()))
            .map_err(|e| TrainError::OptimizerState(format!("{e:?}")))?;
        Ok(Self {
            model,
            config: checkpoint.header.network.clone(),
            optimizer,
            record,
            device,
            inputs: Vec::new(),
            targets: Vec::new(),
        })
    }

    pub fn record(&self) -> &TrainingRecord {
        &self.record
    }

    /// The model for inference (no autodiff, no dropout, batch norm on
    /// moving statistics).
    pub fn model(&self) -> Network {
        self.model.valid()
    }

    /// Runs `batches` optimizer steps on full batches of `data`'s first epoch
    /// (cycling) and returns predicted steps per second: a throughput probe
    /// for `cadenza bench model`.
    pub fn targets_per_second(
        &mut self,
        data: &Dataset,
        batches: usize,
    ) -> Result<f64, TrainError> {
        let examples = self.examples(data, 0);
        let batch_size = self.record.settings.batch_size;
        let full = examples.len() / batch_size;
        if full == 0 {
            return Err(TrainError::NoFullBatch(batch_size));
        }
        let (mut inputs, mut targets) = (Vec::new(), Vec::new());
        let started = Instant::now();
        for index in 0..batches {
            let start = index % full * batch_size;
            examples.fill(data, start..start + batch_size, &mut inputs, &mut targets);
            self.feed_back(&mut inputs, 1, index)?;
            self.step(&inputs, &targets)?;
        }
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        Ok((batches * batch_size * self.targets_each()) as f64 / seconds)
    }

    /// Optimizer steps in one epoch on `data`.
    pub fn batches_per_epoch(&self, data: &Dataset) -> usize {
        self.example_count(data, false)
            .div_ceil(self.record.settings.batch_size)
    }

    /// Windows or stretches in the training (or validation) part.
    fn example_count(&self, data: &Dataset, validation: bool) -> usize {
        match self.config {
            NetworkConfig::Seed(_) if validation => data.report().windows_validation,
            NetworkConfig::Seed(_) => data.report().windows_train,
            NetworkConfig::RollLstm(_) => data
                .stretches(validation, self.record.settings.sequence_steps)
                .len(),
        }
    }

    /// Steps each example predicts.
    fn targets_each(&self) -> usize {
        match self.config {
            NetworkConfig::Seed(_) => 1,
            NetworkConfig::RollLstm(_) => self.record.settings.sequence_steps,
        }
    }

    /// The training examples of epoch `epoch` (0-based), in order.
    fn examples(&self, data: &Dataset, epoch: usize) -> Examples {
        let settings = &self.record.settings;
        match self.config {
            NetworkConfig::Seed(_) => Examples::Windows(data.train_order(settings.seed, epoch)),
            NetworkConfig::RollLstm(_) => Examples::Stretches {
                stretches: data.stretch_order(
                    settings.seed,
                    epoch,
                    settings.sequence_steps,
                    settings.max_transpose,
                ),
                length: settings.sequence_steps,
            },
        }
    }

    fn validation_examples(&self, data: &Dataset) -> Examples {
        match self.config {
            NetworkConfig::Seed(_) => Examples::Windows(data.validation_windows().to_vec()),
            NetworkConfig::RollLstm(_) => {
                let length = self.record.settings.sequence_steps;
                Examples::Stretches {
                    stretches: data.stretches(true, length),
                    length,
                }
            }
        }
    }

    /// One optimizer step on a batch filled by the dataset (windows: inputs
    /// `[n, 9, 106]`, targets `[n, 106]`; stretches: both `[n, length, 106]`);
    /// returns the loss before the step.
    pub fn step(&mut self, inputs: &[f32], targets: &[f32]) -> Result<f32, TrainError> {
        let loss = self.loss_on(&self.model, inputs, targets, &self.device);
        let value: f32 = scalar(loss.clone())?;
        if !value.is_finite() {
            return Ok(value);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optimizer.step(
            self.record.settings.learning_rate,
            self.model.clone(),
            grads,
        );
        Ok(value)
    }

    /// Replaces a random share (`settings.feedback`) of a stretch batch's
    /// input steps with what the network, fed the real steps, predicts for
    /// them (thresholded at 0.5). Seeded by the run's seed, the epoch and the
    /// batch, so a resumed run replaces the same steps.
    fn feed_back(&self, inputs: &mut [f32], epoch: usize, batch: usize) -> Result<(), TrainError> {
        let share = self.record.settings.feedback;
        let Network::RollLstm(_) = &self.model else {
            return Ok(());
        };
        if share <= 0.0 {
            return Ok(());
        }
        let length = self.record.settings.sequence_steps;
        let n = inputs.len() / (PITCH_COUNT * length);
        let device = self.device.clone().without_autodiff();
        let Network::RollLstm(model) = self.model.valid() else {
            return Ok(());
        };
        let x = Tensor::<3>::from_data(
            TensorData::new(inputs.to_vec(), [n, length, PITCH_COUNT]),
            &device,
        );
        // Position t predicts step t + 1.
        let logits: Vec<f32> = model
            .logits_from(x, None)
            .0
            .into_data()
            .try_into_vec()
            .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
        let mixed = self.record.settings.seed
            ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (batch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut rng = StdRng::seed_from_u64(mixed);
        for (sequence, predicted) in inputs
            .chunks_exact_mut(length * PITCH_COUNT)
            .zip(logits.chunks_exact(length * PITCH_COUNT))
        {
            for t in 1..length {
                if rng.random::<f64>() < share {
                    let own = &predicted[(t - 1) * PITCH_COUNT..t * PITCH_COUNT];
                    let step = &mut sequence[t * PITCH_COUNT..(t + 1) * PITCH_COUNT];
                    for (x, &z) in step.iter_mut().zip(own) {
                        // p >= 0.5 exactly when the logit is >= 0.
                        *x = if z >= 0.0 { 1.0 } else { 0.0 };
                    }
                }
            }
        }
        Ok(())
    }

    /// The loss of `model` on a batch the dataset filled.
    fn loss_on(
        &self,
        model: &Network,
        inputs: &[f32],
        targets: &[f32],
        device: &Device,
    ) -> Tensor<1> {
        let kind = self.record.settings.loss;
        match model {
            Network::Seed(seed) => {
                let n = targets.len() / PITCH_COUNT;
                let x = Tensor::<3>::from_data(
                    TensorData::new(inputs.to_vec(), [n, WINDOW_STEPS, PITCH_COUNT]),
                    device,
                );
                let y = Tensor::<2>::from_data(
                    TensorData::new(targets.to_vec(), [n, PITCH_COUNT]),
                    device,
                );
                loss_of(kind, seed.forward(x), y)
            }
            Network::RollLstm(roll) => {
                let length = self.record.settings.sequence_steps;
                let n = targets.len() / (PITCH_COUNT * length);
                let x = Tensor::<3>::from_data(
                    TensorData::new(inputs.to_vec(), [n, length, PITCH_COUNT]),
                    device,
                );
                let y = Tensor::<2>::from_data(
                    TensorData::new(targets.to_vec(), [n * length, PITCH_COUNT]),
                    device,
                );
                let logits = roll.logits_from(x, None).0;
                loss_of_logits(kind, logits.reshape([n * length, PITCH_COUNT]), y)
            }
        }
    }

    /// The mean loss over the dataset's validation part, in inference mode.
    pub fn validation_loss(&mut self, data: &Dataset) -> Result<Option<f64>, TrainError> {
        let examples = self.validation_examples(data);
        if examples.len() == 0 {
            return Ok(None);
        }
        let model = self.model.valid();
        let device = self.device.clone().without_autodiff();
        let (mut inputs, mut targets) = (
            std::mem::take(&mut self.inputs),
            std::mem::take(&mut self.targets),
        );
        let chunk = (4096 / self.targets_each()).max(1);
        let mut total = 0.0f64;
        let mut start = 0;
        let mut result = Ok(());
        while start < examples.len() {
            let end = (start + chunk).min(examples.len());
            examples.fill(data, start..end, &mut inputs, &mut targets);
            let loss = self.loss_on(&model, &inputs, &targets, &device);
            match scalar(loss) {
                Ok(loss) => total += f64::from(loss) * (end - start) as f64,
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
            start = end;
        }
        self.inputs = inputs;
        self.targets = targets;
        result?;
        Ok(Some(total / examples.len() as f64))
    }

    /// Teacher-forced frame scores on the validation files at the threshold
    /// with the best F1, computed on the CPU copy of the network.
    pub fn validation_scores(&self, data: &Dataset) -> Result<FrameScores, TrainError> {
        let model = self.model.valid();
        let runner = Runner::new(&model, &crate::device::cpu_selected(None))
            .map_err(|e| TrainError::Backend(e.to_string()))?;
        let scores = teacher_forced(runner.predictor().as_mut(), data)
            .map_err(|e| TrainError::Backend(e.to_string()))?;
        Ok(scores.best)
    }

    /// The model file for the current state, optimizer state included.
    pub fn checkpoint(&self, origin: &str) -> Result<Checkpoint, TrainError> {
        let mut header = CheckpointHeader::new(self.config.clone(), origin);
        header.training = Some(self.record.clone());
        let optimizer = self
            .optimizer
            .into_bytes()
            .map_err(|e| TrainError::OptimizerState(format!("{e:?}")))?;
        Ok(Checkpoint::new(header, &self.model.valid())?.with_optimizer(optimizer.to_vec()))
    }

    /// Trains until `epochs` epochs are done in total (counting those of a
    /// resumed run), writing `out` (and the loss CSV beside it) after each
    /// epoch. With `patience`, stops once the validation loss has not improved
    /// for that many epochs. The model at the best epoch is written to
    /// [`best_path`]`(out)`.
    pub fn fit(
        &mut self,
        data: &Dataset,
        epochs: usize,
        patience: Option<usize>,
        out: &Path,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<TrainEnd, TrainError> {
        let batch_size = self.record.settings.batch_size;
        let origin = format!("trained by cadenza on {}", self.record.data);
        while self.record.epochs_done() < epochs {
            let epoch = self.record.epochs_done() + 1;
            // Dropout draws from burn's generator: seeding it per epoch makes
            // a resumed run draw what a straight one would.
            self.device.seed(
                self.record.settings.seed ^ (epoch as u64).wrapping_mul(0xA24B_AED4_963E_E407),
            );
            let examples = self.examples(data, epoch - 1);
            let count = examples.len();
            let each = self.targets_each() as f64;
            let batches = count.div_ceil(batch_size);
            let started = Instant::now();
            let mut loss_sum = 0.0f64;
            for index in 0..batches {
                if cancel.load(Ordering::Relaxed) {
                    return Ok(TrainEnd::Cancelled);
                }
                let range = index * batch_size..((index + 1) * batch_size).min(count);
                let size = range.len();
                let mut inputs = std::mem::take(&mut self.inputs);
                let mut targets = std::mem::take(&mut self.targets);
                examples.fill(data, range, &mut inputs, &mut targets);
                let fed_back = self.feed_back(&mut inputs, epoch, index);
                let loss = fed_back.and_then(|()| self.step(&inputs, &targets));
                self.inputs = inputs;
                self.targets = targets;
                let loss = loss?;
                if !loss.is_finite() {
                    return Err(TrainError::NonFiniteLoss {
                        epoch,
                        batch: index + 1,
                        loss,
                    });
                }
                loss_sum += f64::from(loss) * size as f64;
                let seen = (index * batch_size + size) as f64 * each;
                let elapsed = started.elapsed().as_secs_f64().max(1e-9);
                let windows_per_s = seen / elapsed;
                let total = count as f64 * each;
                let left = (total - seen) + (epochs - epoch) as f64 * total;
                on_event(&TrainEvent::Batch {
                    epoch,
                    batch: index + 1,
                    batches,
                    loss,
                    windows_per_s,
                    eta_seconds: left / windows_per_s,
                });
            }
            let seconds = started.elapsed().as_secs_f64();
            let validation_loss = self.validation_loss(data)?;
            let scores = match validation_loss {
                Some(_) => Some(self.validation_scores(data)?),
                None => None,
            };
            let record = EpochRecord {
                epoch,
                train_loss: loss_sum / count.max(1) as f64,
                validation_loss,
                validation_f1: scores.map(|s| s.f1),
                best_threshold: scores.map(|s| s.threshold),
                windows_per_s: count as f64 * each / seconds.max(1e-9),
                seconds,
            };
            self.record.log.push(record.clone());
            let checkpoint = self.checkpoint(&origin)?;
            checkpoint.save(out)?;
            let csv_path = csv_path(out);
            write_atomically(&csv_path, self.record.to_csv().as_bytes()).map_err(|source| {
                TrainError::Write {
                    path: csv_path,
                    source,
                }
            })?;
            if self.record.best_epoch().map(|r| r.epoch) == Some(epoch) {
                checkpoint.without_optimizer().save(&best_path(out))?;
            }
            on_event(&TrainEvent::Epoch(record));
            if let (Some(patience), Some(best)) = (patience, self.record.best_epoch())
                && epoch - best.epoch >= patience
            {
                return Ok(TrainEnd::EarlyStopped);
            }
        }
        Ok(TrainEnd::Finished)
    }
}

/// `model.cadenza` -> `model.loss.csv`.
pub fn csv_path(out: &Path) -> PathBuf {
    out.with_extension("loss.csv")
}

/// `model.cadenza` -> `model.best.cadenza`.
pub fn best_path(out: &Path) -> PathBuf {
    let extension = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("cadenza");
    out.with_extension(format!("best.{extension}"))
}

fn loss_of(kind: LossKind, predicted: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    match kind {
        LossKind::Mse => (predicted - target).square().mean(),
        LossKind::Bce => {
            // Keras clips to [eps, 1 - eps] with eps = 1e-7.
            let p = predicted.clamp(1e-7, 1.0 - 1e-7);
            let not_target = target.clone().neg().add_scalar(1.0);
            let not_p = p.clone().neg().add_scalar(1.0);
            (target * p.log() + not_target * not_p.log()).neg().mean()
        }
    }
}

/// [`loss_of`] from the logits of the probabilities, so binary cross-entropy
/// stays finite however sure the network is.
fn loss_of_logits(kind: LossKind, logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    match kind {
        LossKind::Mse => loss_of(kind, sigmoid(logits), target),
        LossKind::Bce => {
            // -(y log s(z) + (1 - y) log s(-z))
            let not_target = target.clone().neg().add_scalar(1.0);
            (target * log_sigmoid(logits.clone()) + not_target * log_sigmoid(logits.neg()))
                .neg()
                .mean()
        }
    }
}

fn scalar(tensor: Tensor<1>) -> Result<f32, TrainError> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Backend(format!("{e:?}")))?
        .first()
        .copied()
        .ok_or_else(|| TrainError::Backend("an empty loss".to_owned()))
}
