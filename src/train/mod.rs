//! Training a network: a plain loop over shuffled batches with Adam as
//! Keras defines it, a validation pass per epoch, progress events, a cancel
//! flag checked between batches, and a checkpoint after each epoch that holds
//! everything `--resume` needs to continue exactly. What differs between
//! networks (examples, loss, feedback) is each one's [`scheme`].

mod adam;
pub mod average;
mod native;
mod scheme;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device, Tensor};

use crate::atomic::write_atomically;
use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointHeader, network_from_weights, weights_of,
};
use crate::dataset::{Dataset, Preset};
use crate::eval::{FrameScores, free_running, teacher_forced};
use crate::generate::{GenerateError, GenerateOptions, RuleKind, RuleSettings, Runner};
use crate::limits::{self, OutOfRange};
use crate::model::{Architecture, Network, NetworkConfig};
use crate::record::{EpochRecord, MusicCheck, TrainSettings, TrainingRecord};

pub use adam::KerasAdam;
use average::{AveragedState, WeightAverage, averaged_state, params_of, with_params};
use native::NativeTrainer;
use scheme::{BatchData, BatchPosition, Examples, TrainingScheme, burn_roll_logits, scheme_for};
pub use scheme::{DEFAULT_FEEDBACK, DEFAULT_TRANSPOSE};

/// What a run of `architecture` starts from: its scheme's defaults.
pub fn default_settings(architecture: Architecture) -> TrainSettings {
    scheme_for(&architecture.default_config()).default_settings()
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
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
    #[error("the data has no full batch of {0} examples")]
    NoFullBatch(usize),
    #[error("the feedback share {0} is outside 0..1")]
    BadFeedback(f64),
    #[error("the {0} {1} is outside 0..1 (1 would silence all it drops from)")]
    BadDropout(&'static str, f64),
    #[error("cannot build the network: {0}")]
    BadNetwork(String),
    #[error(
        "the {0:?} preset (reversed time, two steps ahead) is for the article's network; \
         recurrent networks train forward"
    )]
    PresetNeedsArticleNetwork(Preset),
    #[error("{0} is for recurrent networks; the article's network trains on fixed windows")]
    OnlyForRecurrent(&'static str),
    #[error("{0} is not for the composer, whose loss scores each step by the chain rule")]
    NotForComposer(&'static str),
    #[error("{0} is for the roll LSTM only")]
    OnlyForRollLstm(&'static str),
    #[error("the {loss:?} loss does not suit this network; it takes {expected}")]
    WrongLoss {
        loss: crate::record::LossKind,
        expected: &'static str,
    },
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

/// What computes the gradients and steps the optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainingEngine {
    /// The plain-Rust CPU trainer (every network, on the default CPU
    /// device).
    PlainRust,
    /// burn's autodiff and optimizer: the reference and the GPU path.
    Burn,
}

impl TrainingEngine {
    /// For one line of output.
    pub fn label(self) -> &'static str {
        match self {
            Self::PlainRust => "plain-Rust CPU trainer",
            Self::Burn => "burn autodiff",
        }
    }
}

/// The network and its optimizer state, held by one engine.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Burn {
        model: Network,
        optimizer: ModuleOptimizer,
    },
    Native(Box<NativeTrainer>),
}

impl Engine {
    /// The plain-Rust trainer where it can take `model`, else burn.
    fn for_model(model: Network, config: &NetworkConfig, device: &Device) -> Self {
        if crate::device::is_default_cpu(device) && NativeTrainer::supports(config) {
            // A copy that fails (it cannot on the CPU) leaves the run on burn.
            if let Ok(Some(native)) = NativeTrainer::from_network(&model, config) {
                return Self::Native(Box::new(native));
            }
        }
        Self::Burn {
            model,
            optimizer: ModuleOptimizer::from(KerasAdam::default()),
        }
    }
}

/// A model being trained, with its optimizer and history.
pub struct Trainer {
    engine: Engine,
    config: NetworkConfig,
    scheme: Box<dyn TrainingScheme>,
    record: TrainingRecord,
    device: Device,
    batch: BatchData,
    /// Steps taken through [`step`](Trainer::step).
    manual_steps: usize,
    /// The average of the epoch-end weights, when the run averages
    /// (`average_epochs` above 1) and has finished an epoch since.
    average: Option<WeightAverage>,
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

/// A run's checked configuration: the network, its scheme and the settings.
struct Run {
    config: NetworkConfig,
    scheme: Box<dyn TrainingScheme>,
    settings: TrainSettings,
}

impl Run {
    /// Checks what every network shares, then what `config`'s own scheme
    /// needs.
    fn checked(config: NetworkConfig, settings: TrainSettings) -> Result<Self, TrainError> {
        limits::BATCH.check(settings.batch_size)?;
        limits::AVERAGE_EPOCHS.check(settings.average_epochs)?;
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
        check_dropout("input dropout", settings.input_dropout)?;
        check_dropout("recurrent dropout", settings.recurrent_dropout)?;
        let scheme = scheme_for(&config);
        scheme.check(&settings)?;
        Ok(Self {
            config,
            scheme,
            settings,
        })
    }
}

/// A dropout share (`what`) a run can take: 0 up to, not including, 1.
fn check_dropout(what: &'static str, share: f64) -> Result<(), TrainError> {
    if (0.0..1.0).contains(&share) {
        Ok(())
    } else {
        Err(TrainError::BadDropout(what, share))
    }
}

/// The device to train on: `device` with automatic differentiation.
pub fn training_device(device: &Device) -> Device {
    device.clone().autodiff()
}

impl Trainer {
    /// Starts a fresh run with Keras's initialisation, seeded by
    /// `settings.rng_seed`.
    pub fn new(
        config: impl Into<NetworkConfig>,
        settings: TrainSettings,
        data: &Dataset,
        data_name: &str,
        device: &Device,
    ) -> Result<Self, TrainError> {
        // Checked before building: burn panics on a bad dropout.
        let run = Run::checked(config.into(), settings)?;
        let device = training_device(device);
        device.seed(run.settings.rng_seed);
        let model = run.config.init(&device);
        Ok(Self::starting(model, run, data, data_name, &device))
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
        let run = Run::checked(config.into(), settings)?;
        Ok(Self::starting(model.into(), run, data, data_name, device))
    }

    /// A trainer at step one of a checked run.
    fn starting(
        model: Network,
        run: Run,
        data: &Dataset,
        data_name: &str,
        device: &Device,
    ) -> Self {
        let each = run.scheme.targets_each(&run.settings);
        let windows_train = run.scheme.example_count(data, &run.settings, false) * each;
        let windows_validation = run.scheme.example_count(data, &run.settings, true) * each;
        Self {
            engine: Engine::for_model(model, &run.config, device),
            config: run.config,
            scheme: run.scheme,
            record: TrainingRecord {
                settings: run.settings,
                data: data_name.to_owned(),
                windows_train,
                windows_validation,
                log: Vec::new(),
            },
            device: device.clone(),
            batch: BatchData::default(),
            manual_steps: 0,
            average: None,
        }
    }

    /// Continues the run a checkpoint was written by, exactly where it stopped.
    pub fn resume(checkpoint: &Checkpoint, device: &Device) -> Result<Self, TrainError> {
        let record = checkpoint
            .header
            .training
            .clone()
            .ok_or(TrainError::NoTrainingRecord)?;
        let section = checkpoint
            .optimizer_state()
            .ok_or(TrainError::NothingToResume)?;
        let run = Run::checked(checkpoint.header.network.clone(), record.settings.clone())?;
        // An averaging run saves the average as its weights and keeps the
        // optimizer's own beside its state.
        let (optimizer_bytes, own_weights, average) = match averaged_state(section) {
            Some(state) => {
                let state = state.map_err(TrainError::OptimizerState)?;
                let averaged = checkpoint.model(&crate::device::cpu())?;
                let average = WeightAverage {
                    params: params_of(&averaged),
                    epochs: state.epochs,
                };
                (state.optimizer, Some(state.weights), Some(average))
            }
            None => (section, None, None),
        };
        let model_on = |device: &Device| match own_weights {
            Some(weights) => network_from_weights(&checkpoint.header.network, weights, device),
            None => checkpoint.model(device),
        };
        // The engine that wrote the optimizer state goes on with it: the
        // plain-Rust trainer's runs on the CPU whatever `device` says.
        let engine = if NativeTrainer::wrote(optimizer_bytes) {
            let device = training_device(&crate::device::cpu());
            let model = model_on(&device)?;
            let mut native = NativeTrainer::from_network(&model, &run.config)
                .map_err(|e| TrainError::Backend(e.to_string()))?
                .ok_or_else(|| {
                    TrainError::OptimizerState(
                        "the CPU trainer's state is for another network".to_owned(),
                    )
                })?;
            native
                .restore_optimizer(optimizer_bytes)
                .map_err(TrainError::OptimizerState)?;
            Engine::Native(Box::new(native))
        } else {
            let device = training_device(device);
            let optimizer = ModuleOptimizer::from(KerasAdam::default())
                .from_bytes(Bytes::from_bytes_vec(optimizer_bytes.to_vec()))
                .map_err(|e| TrainError::OptimizerState(format!("{e:?}")))?;
            Engine::Burn {
                model: model_on(&device)?,
                optimizer,
            }
        };
        let device = match engine {
            Engine::Native(_) => training_device(&crate::device::cpu()),
            Engine::Burn { .. } => training_device(device),
        };
        Ok(Self {
            engine,
            config: run.config,
            scheme: run.scheme,
            record,
            device,
            batch: BatchData::default(),
            manual_steps: 0,
            average,
        })
    }

    /// The kind of network this run trains.
    pub fn architecture(&self) -> Architecture {
        self.config.architecture()
    }

    /// What trains this run.
    pub fn engine(&self) -> TrainingEngine {
        match self.engine {
            Engine::Native(_) => TrainingEngine::PlainRust,
            Engine::Burn { .. } => TrainingEngine::Burn,
        }
    }

    /// Moves a run that has not taken a step yet onto burn (the reference
    /// path), for comparisons; a run already on burn stays.
    pub fn on_burn(mut self) -> Result<Self, TrainError> {
        if let Engine::Native(native) = &self.engine {
            if native.steps_taken() > 0 {
                return Err(TrainError::OptimizerState(
                    "a run moves to burn only before its first step".to_owned(),
                ));
            }
            self.engine = Engine::Burn {
                model: native.to_network(&self.device),
                optimizer: ModuleOptimizer::from(KerasAdam::default()),
            };
        }
        Ok(self)
    }

    pub fn record(&self) -> &TrainingRecord {
        &self.record
    }

    /// Goes on at learning rate `lr` (recorded in the run's settings from
    /// then on).
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<(), TrainError> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(TrainError::BadLearningRate(lr));
        }
        self.record.settings.learning_rate = lr;
        Ok(())
    }

    /// Goes on replacing `feedback` of the input steps by the network's own
    /// predictions (recorded in the run's settings from then on).
    pub fn set_feedback(&mut self, feedback: f64) -> Result<(), TrainError> {
        if !(0.0..=1.0).contains(&feedback) {
            return Err(TrainError::BadFeedback(feedback));
        }
        self.go_on_with(TrainSettings {
            feedback,
            ..self.record.settings.clone()
        })
    }

    /// Goes on silencing `input_dropout` of the sounding input cells
    /// (recorded in the run's settings from then on).
    pub fn set_input_dropout(&mut self, input_dropout: f64) -> Result<(), TrainError> {
        check_dropout("input dropout", input_dropout)?;
        self.go_on_with(TrainSettings {
            input_dropout,
            ..self.record.settings.clone()
        })
    }

    /// Goes on silencing `recurrent_dropout` of the LSTM's hidden units
    /// where they feed its next step (recorded in the run's settings from
    /// then on).
    pub fn set_recurrent_dropout(&mut self, recurrent_dropout: f64) -> Result<(), TrainError> {
        check_dropout("recurrent dropout", recurrent_dropout)?;
        self.go_on_with(TrainSettings {
            recurrent_dropout,
            ..self.record.settings.clone()
        })
    }

    /// Takes `settings` from now on, if the network's scheme accepts them.
    fn go_on_with(&mut self, settings: TrainSettings) -> Result<(), TrainError> {
        self.scheme.check(&settings)?;
        self.record.settings = settings;
        Ok(())
    }

    /// Goes on averaging the weights over `epochs` epochs (0 or 1: not at
    /// all), recorded in the run's settings from then on. The average so
    /// far, if any, is kept.
    pub fn set_average_epochs(&mut self, epochs: usize) -> Result<(), TrainError> {
        limits::AVERAGE_EPOCHS.check(epochs)?;
        self.record.settings.average_epochs = epochs;
        if !self.averages() {
            self.average = None;
        }
        Ok(())
    }

    /// Whether the run averages its weights.
    fn averages(&self) -> bool {
        self.record.settings.average_epochs > 1
    }

    /// The model for inference (no autodiff, no dropout, batch norm on
    /// moving statistics): the average of the weights when the run keeps
    /// one, else [`optimizer_model`](Self::optimizer_model).
    pub fn model(&self) -> Network {
        let model = self.optimizer_model();
        match &self.average {
            Some(average) => with_params(model, &average.params),
            None => model,
        }
    }

    /// The weights as the optimizer left them, for inference.
    pub fn optimizer_model(&self) -> Network {
        match &self.engine {
            Engine::Burn { model, .. } => model.valid(),
            Engine::Native(native) => native.to_network(&self.device.clone().without_autodiff()),
        }
    }

    /// Takes the weights at the end of an epoch into the average.
    fn average_epoch(&mut self) {
        if !self.averages() {
            return;
        }
        let params = params_of(&self.optimizer_model());
        let span = self.record.settings.average_epochs;
        match &mut self.average {
            Some(average) => average.add(&params, span),
            None => self.average = Some(WeightAverage::new(params)),
        }
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
        let mut batch = BatchData::default();
        let started = Instant::now();
        for index in 0..batches {
            let start = index % full * batch_size;
            examples.fill(data, start..start + batch_size, &mut batch);
            let position = BatchPosition {
                epoch: 1,
                batch: index,
            };
            self.feed_back(&mut batch, position)?;
            self.step_on(&batch, position)?;
        }
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        Ok((batches * batch_size * self.targets_each()) as f64 / seconds)
    }

    /// Optimizer steps in one epoch on `data`.
    pub fn batches_per_epoch(&self, data: &Dataset) -> usize {
        self.scheme
            .example_count(data, &self.record.settings, false)
            .div_ceil(self.record.settings.batch_size)
    }

    /// Steps each example predicts.
    fn targets_each(&self) -> usize {
        self.scheme.targets_each(&self.record.settings)
    }

    /// The training examples of epoch `epoch` (0-based), in order.
    fn examples(&self, data: &Dataset, epoch: usize) -> Examples {
        self.scheme
            .training_examples(data, &self.record.settings, epoch)
    }

    /// One optimizer step on a batch of inputs and targets (windows: inputs
    /// `[n, 9, 106]`, targets `[n, 106]`; stretches: both `[n, length, 106]`;
    /// the composer's meter and gaps left out), with the run's settings
    /// applied as in an epoch (the roll LSTM's feedback, input and recurrent
    /// dropout); returns the loss before the step.
    pub fn step(&mut self, inputs: &[f32], targets: &[f32]) -> Result<f32, TrainError> {
        let mut batch = BatchData {
            inputs: inputs.to_vec(),
            targets: targets.to_vec(),
            ..BatchData::default()
        };
        // Each call draws its own dropout: numbered after the last one.
        let position = BatchPosition {
            epoch: self.record.epochs_done() + 1,
            batch: self.manual_steps,
        };
        self.manual_steps += 1;
        self.feed_back(&mut batch, position)?;
        self.step_on(&batch, position)
    }

    /// One optimizer step on a batch filled by the dataset.
    fn step_on(&mut self, batch: &BatchData, position: BatchPosition) -> Result<f32, TrainError> {
        let settings = &self.record.settings;
        let (model, optimizer) = match &mut self.engine {
            Engine::Native(native) => {
                return native
                    .step(batch, settings, position)
                    .map_err(|e| TrainError::Backend(e.to_string()));
            }
            Engine::Burn { model, optimizer } => (model, optimizer),
        };
        let loss = self.scheme.loss(model, settings, batch, &self.device)?;
        let value: f32 = scalar(loss.clone())?;
        if !value.is_finite() {
            return Ok(value);
        }
        let grads = GradientsParams::from_grads(loss.backward(), model);
        *model = optimizer.step(settings.learning_rate, model.clone(), grads);
        Ok(value)
    }

    fn feed_back(
        &mut self,
        batch: &mut BatchData,
        position: BatchPosition,
    ) -> Result<(), TrainError> {
        let settings = &self.record.settings;
        let length = settings.sequence_steps;
        match &mut self.engine {
            Engine::Burn { model, .. } => {
                let device = &self.device;
                let mut own = |inputs: &[f32]| burn_roll_logits(model, inputs, length, device);
                self.scheme.feed_back(&mut own, settings, batch, position)?;
            }
            Engine::Native(native) => {
                let mut own = |inputs: &[f32]| {
                    native.own_logits(inputs, length).ok_or_else(|| {
                        TrainError::BadNetwork("only the roll LSTM feeds back".to_owned())
                    })
                };
                self.scheme.feed_back(&mut own, settings, batch, position)?;
            }
        }
        if let NetworkConfig::RollLstm(config) = &self.config
            && settings.recurrent_dropout > 0.0
        {
            let sequences = batch.targets.len() / (length * config.pitches);
            batch.recurrent_mask =
                scheme::recurrent_mask(settings, position, sequences, config.units);
        }
        Ok(())
    }

    /// The mean loss over the dataset's validation part, in inference mode.
    pub fn validation_loss(&mut self, data: &Dataset) -> Result<Option<f64>, TrainError> {
        if data.songs(true).next().is_none() {
            return Ok(None);
        }
        let model = self.model();
        if let Some(loss) = self
            .scheme
            .own_validation_loss(&model, &self.record.settings, data)
        {
            return loss.map(Some);
        }
        let examples = self.scheme.validation_examples(data, &self.record.settings);
        if examples.len() == 0 {
            return Ok(None);
        }
        let device = self.device.clone().without_autodiff();
        // The plain-Rust trainer scores its own weights: an averaged model
        // gets a copy of its own.
        let mut averaged = match (&self.engine, &self.average) {
            (Engine::Native(_), Some(_)) => NativeTrainer::from_network(&model, &self.config)
                .map_err(|e| TrainError::Backend(e.to_string()))?,
            _ => None,
        };
        let mut batch = std::mem::take(&mut self.batch);
        let chunk = (4096 / self.targets_each()).max(1);
        let (mut total, mut counted) = (0.0f64, 0.0f64);
        let mut start = 0;
        let mut result = Ok(());
        while start < examples.len() {
            let end = (start + chunk).min(examples.len());
            examples.fill(data, start..end, &mut batch);
            let settings = &self.record.settings;
            let loss = match &mut self.engine {
                Engine::Native(native) => averaged
                    .as_mut()
                    .unwrap_or(native)
                    .loss(&batch, settings)
                    .map_err(|e| TrainError::Backend(e.to_string())),
                Engine::Burn { .. } => self
                    .scheme
                    .loss(&model, settings, &batch, &device)
                    .and_then(scalar),
            };
            match loss {
                Ok(loss) => {
                    // Each batch's mean is over its counted steps.
                    let steps = batch.counted_steps(end - start, self.targets_each());
                    total += f64::from(loss) * steps;
                    counted += steps;
                }
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
            start = end;
        }
        self.batch = batch;
        result?;
        Ok(Some(total / counted.max(1.0)))
    }

    /// What an epoch records beside its validation loss, on one CPU copy of
    /// the network: the teacher-forced frame scores at the threshold with the
    /// best F1, and how the network's own continuations sound beside the
    /// music that follows ([`MUSIC_CHECK_STEPS`] steps drawn with its own
    /// rule after up to [`MUSIC_CHECK_SEEDS`] windows spread over the
    /// validation songs; none without validation windows).
    pub fn validation_figures(
        &self,
        data: &Dataset,
    ) -> Result<(FrameScores, Option<MusicCheck>), TrainError> {
        let backend = |e: GenerateError| TrainError::Backend(e.to_string());
        let model = self.model();
        let runner = Runner::new(&model, &crate::device::cpu_selected(None)).map_err(backend)?;
        let mut predictor = runner.predictor();
        let scores = teacher_forced(predictor.as_mut(), data).map_err(backend)?;
        let windows = data.validation_windows().len();
        if windows == 0 {
            return Ok((scores.best, None));
        }
        let options = GenerateOptions {
            steps: MUSIC_CHECK_STEPS,
            rule: RuleSettings {
                kind: RuleKind::default_for(model.architecture()),
                ..RuleSettings::default()
            }
            .rule(),
            variations: 1,
        };
        let stride = windows.div_ceil(MUSIC_CHECK_SEEDS);
        let run = free_running(predictor.as_mut(), data, &options, stride).map_err(backend)?;
        let (ours, theirs) = (run.music, run.data_music);
        let music = MusicCheck {
            clash_share: ours.clash_share,
            data_clash_share: theirs.clash_share,
            in_key_share: ours.in_key_share,
            data_in_key_share: theirs.in_key_share,
            on_beat_share: ours.on_beat_share,
            data_on_beat_share: theirs.on_beat_share,
            density_ratio: run.density_ratio,
        };
        Ok((scores.best, Some(music)))
    }

    /// The model file for the current state, optimizer state included.
    pub fn checkpoint(&self, origin: &str) -> Result<Checkpoint, TrainError> {
        let mut header = CheckpointHeader::new(self.config.clone(), origin);
        header.training = Some(self.record.clone());
        let mut optimizer = match &self.engine {
            Engine::Burn { optimizer, .. } => optimizer
                .into_bytes()
                .map_err(|e| TrainError::OptimizerState(format!("{e:?}")))?
                .to_vec(),
            Engine::Native(native) => native.optimizer_bytes(),
        };
        if let Some(average) = &self.average {
            optimizer = AveragedState {
                epochs: average.epochs,
                weights: &weights_of(&self.optimizer_model())?,
                optimizer: &optimizer,
            }
            .to_bytes();
        }
        Ok(Checkpoint::new(header, &self.model())?.with_optimizer(optimizer))
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
        limits::EPOCHS.check(epochs)?;
        let batch_size = self.record.settings.batch_size;
        let origin = format!("trained by cadenza on {}", self.record.data);
        while self.record.epochs_done() < epochs {
            let epoch = self.record.epochs_done() + 1;
            // Dropout draws from burn's generator: seeding it per epoch makes
            // a resumed run draw what a straight one would.
            self.device.seed(
                self.record.settings.rng_seed ^ (epoch as u64).wrapping_mul(0xA24B_AED4_963E_E407),
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
                let mut batch = std::mem::take(&mut self.batch);
                examples.fill(data, range, &mut batch);
                let position = BatchPosition {
                    epoch,
                    batch: index,
                };
                let fed_back = self.feed_back(&mut batch, position);
                let loss = fed_back.and_then(|()| self.step_on(&batch, position));
                self.batch = batch;
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
            self.average_epoch();
            let validation_loss = self.validation_loss(data)?;
            let (scores, music) = match validation_loss {
                Some(_) => {
                    let (scores, music) = self.validation_figures(data)?;
                    (Some(scores), music)
                }
                None => (None, None),
            };
            let record = EpochRecord {
                epoch,
                train_loss: loss_sum / count.max(1) as f64,
                validation_loss,
                validation_f1: scores.map(|s| s.f1),
                best_threshold: scores.map(|s| s.threshold),
                windows_per_s: count as f64 * each / seconds.max(1e-9),
                seconds,
                music,
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
            if let (Some(patience), Some(lowest)) = (patience, self.record.lowest_loss_epoch())
                && epoch - lowest.epoch >= patience
            {
                return Ok(TrainEnd::EarlyStopped);
            }
        }
        Ok(TrainEnd::Finished)
    }
}

/// Steps each continuation of the epoch's music check runs for.
pub const MUSIC_CHECK_STEPS: usize = 32;
/// At most this many validation windows are continued per epoch.
pub const MUSIC_CHECK_SEEDS: usize = 48;

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

fn scalar(tensor: Tensor<1>) -> Result<f32, TrainError> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Backend(format!("{e:?}")))?
        .first()
        .copied()
        .ok_or_else(|| TrainError::Backend("an empty loss".to_owned()))
}
