//! What training does differently for each kind of network, behind one
//! trait: how examples are cut from the data, how many steps each predicts,
//! the loss of a batch, and whether the network's own predictions are fed
//! back. [`scheme_for`] is the one place that picks an implementation.

use burn::module::Module as _;
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng as _;

use super::TrainError;
use crate::dataset::{Dataset, Preset, Stretch, Window};
use crate::limits;
use crate::model::{ArticleNet, Network, NetworkConfig, RollLstm, WINDOW_STEPS};
use crate::record::{LossKind, TrainSettings};
use crate::rng::seeded_for;
use crate::roll::PITCH_COUNT;

/// Training behaviour of one kind of network.
pub(super) trait TrainingScheme: std::fmt::Debug + Send {
    /// The settings a run of this network starts from.
    fn default_settings(&self) -> TrainSettings;

    /// Why `settings` do not suit this network, if they do not (the
    /// settings every network shares are checked before).
    fn check(&self, settings: &TrainSettings) -> Result<(), TrainError>;

    /// Steps each example predicts.
    fn targets_each(&self, settings: &TrainSettings) -> usize;

    /// Examples in the training (or validation) part, without cutting them.
    fn example_count(&self, data: &Dataset, settings: &TrainSettings, validation: bool) -> usize;

    /// The training examples of epoch `epoch` (0-based), in order.
    fn training_examples(&self, data: &Dataset, settings: &TrainSettings, epoch: usize)
    -> Examples;

    fn validation_examples(&self, data: &Dataset, settings: &TrainSettings) -> Examples;

    /// The loss of `model` on a batch the examples filled.
    fn loss(
        &self,
        model: &Network,
        settings: &TrainSettings,
        batch: &Batch<'_>,
        device: &Device,
    ) -> Result<Tensor<1>, TrainError>;

    /// Replaces some of a batch's input steps with the network's own
    /// predictions (scheduled sampling); most networks leave them.
    fn feed_back(
        &self,
        _model: &Network,
        _settings: &TrainSettings,
        _inputs: &mut [f32],
        _position: BatchPosition,
        _device: &Device,
    ) -> Result<(), TrainError> {
        Ok(())
    }
}

/// Largest transposition of roll-lstm training stretches, chosen by
/// measurement (README, "Measuring the music").
pub const DEFAULT_TRANSPOSE: u8 = 5;

/// Share of roll-lstm input steps fed back while training, chosen by
/// measurement (README, "Measuring the music").
pub const DEFAULT_FEEDBACK: f64 = 0.25;

/// The scheme for networks of `config`'s architecture.
pub(super) fn scheme_for(config: &NetworkConfig) -> Box<dyn TrainingScheme> {
    match config {
        NetworkConfig::Article(_) => Box::new(WindowScheme),
        NetworkConfig::RollLstm(_) => Box::new(StretchScheme),
    }
}

/// A filled batch: inputs and targets as 0/1 floats, row-major.
#[derive(Debug)]
pub(super) struct Batch<'a> {
    pub inputs: &'a [f32],
    pub targets: &'a [f32],
}

/// Where a batch lies in the run, to seed what is drawn for it.
#[derive(Clone, Copy, Debug)]
pub(super) struct BatchPosition {
    /// 1-based.
    pub epoch: usize,
    /// 0-based within the epoch.
    pub batch: usize,
}

/// One epoch's examples: windows, or stretches of `length` steps.
#[derive(Debug)]
pub(super) enum Examples {
    Windows(Vec<Window>),
    Stretches {
        stretches: Vec<Stretch>,
        length: usize,
    },
}

impl Examples {
    pub fn len(&self) -> usize {
        match self {
            Self::Windows(windows) => windows.len(),
            Self::Stretches { stretches, .. } => stretches.len(),
        }
    }

    /// Fills a batch with examples `range`.
    pub fn fill(
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

fn wrong_network(expected: &str) -> TrainError {
    TrainError::BadNetwork(format!("this training scheme needs {expected}"))
}

/// The article's network: 9-step windows, each predicting one step.
#[derive(Debug)]
struct WindowScheme;

impl WindowScheme {
    fn network(model: &Network) -> Result<&ArticleNet, TrainError> {
        match model {
            Network::Article(net) => Ok(net),
            Network::RollLstm(_) => Err(wrong_network("the article's network")),
        }
    }
}

impl TrainingScheme for WindowScheme {
    /// The article's: MSE on windows, neither transposed nor fed back.
    fn default_settings(&self) -> TrainSettings {
        TrainSettings::default()
    }

    fn check(&self, settings: &TrainSettings) -> Result<(), TrainError> {
        if settings.max_transpose > 0 {
            return Err(TrainError::OnlyForRecurrent("transposition"));
        }
        if settings.feedback > 0.0 {
            return Err(TrainError::OnlyForRecurrent("feedback"));
        }
        Ok(())
    }

    fn targets_each(&self, _settings: &TrainSettings) -> usize {
        1
    }

    fn example_count(&self, data: &Dataset, _: &TrainSettings, validation: bool) -> usize {
        if validation {
            data.report().windows_validation
        } else {
            data.report().windows_train
        }
    }

    fn training_examples(
        &self,
        data: &Dataset,
        settings: &TrainSettings,
        epoch: usize,
    ) -> Examples {
        Examples::Windows(data.train_order(settings.rng_seed, epoch))
    }

    fn validation_examples(&self, data: &Dataset, _: &TrainSettings) -> Examples {
        Examples::Windows(data.validation_windows().to_vec())
    }

    fn loss(
        &self,
        model: &Network,
        settings: &TrainSettings,
        batch: &Batch<'_>,
        device: &Device,
    ) -> Result<Tensor<1>, TrainError> {
        let net = Self::network(model)?;
        let n = batch.targets.len() / PITCH_COUNT;
        let x = Tensor::<3>::from_data(
            TensorData::new(batch.inputs.to_vec(), [n, WINDOW_STEPS, PITCH_COUNT]),
            device,
        );
        let y = Tensor::<2>::from_data(
            TensorData::new(batch.targets.to_vec(), [n, PITCH_COUNT]),
            device,
        );
        Ok(loss_of(settings.loss, net.forward(x), y))
    }
}

/// A recurrent network: stretches of `sequence_steps` steps, each step
/// predicting the next, optionally transposed and fed back.
#[derive(Debug)]
struct StretchScheme;

impl StretchScheme {
    fn network(model: &Network) -> Result<&RollLstm, TrainError> {
        match model {
            Network::RollLstm(net) => Ok(net),
            Network::Article(_) => Err(wrong_network("a recurrent network")),
        }
    }
}

impl TrainingScheme for StretchScheme {
    /// Binary cross-entropy, with the augmentation chosen by measurement.
    fn default_settings(&self) -> TrainSettings {
        TrainSettings {
            loss: LossKind::Bce,
            max_transpose: DEFAULT_TRANSPOSE,
            feedback: DEFAULT_FEEDBACK,
            ..TrainSettings::default()
        }
    }

    fn check(&self, settings: &TrainSettings) -> Result<(), TrainError> {
        limits::SEQUENCE_STEPS.check(settings.sequence_steps)?;
        limits::STEPS_PER_BATCH
            .check(settings.batch_size.saturating_mul(settings.sequence_steps))?;
        if settings.preset != Preset::Forward {
            return Err(TrainError::PresetNeedsArticleNetwork(settings.preset));
        }
        Ok(())
    }

    fn targets_each(&self, settings: &TrainSettings) -> usize {
        settings.sequence_steps
    }

    fn example_count(&self, data: &Dataset, settings: &TrainSettings, validation: bool) -> usize {
        data.stretches(validation, settings.sequence_steps).len()
    }

    fn training_examples(
        &self,
        data: &Dataset,
        settings: &TrainSettings,
        epoch: usize,
    ) -> Examples {
        Examples::Stretches {
            stretches: data.stretch_order(
                settings.rng_seed,
                epoch,
                settings.sequence_steps,
                settings.max_transpose,
            ),
            length: settings.sequence_steps,
        }
    }

    fn validation_examples(&self, data: &Dataset, settings: &TrainSettings) -> Examples {
        let length = settings.sequence_steps;
        Examples::Stretches {
            stretches: data.stretches(true, length),
            length,
        }
    }

    fn loss(
        &self,
        model: &Network,
        settings: &TrainSettings,
        batch: &Batch<'_>,
        device: &Device,
    ) -> Result<Tensor<1>, TrainError> {
        let net = Self::network(model)?;
        let length = settings.sequence_steps;
        let n = batch.targets.len() / (PITCH_COUNT * length);
        let x = Tensor::<3>::from_data(
            TensorData::new(batch.inputs.to_vec(), [n, length, PITCH_COUNT]),
            device,
        );
        let y = Tensor::<2>::from_data(
            TensorData::new(batch.targets.to_vec(), [n * length, PITCH_COUNT]),
            device,
        );
        let logits = net.logits_from(x, None).0; // [n, length, 106]
        Ok(loss_of_logits(
            settings.loss,
            logits.reshape([n * length, PITCH_COUNT]),
            y,
        ))
    }

    /// Replaces a random share (`settings.feedback`) of a stretch batch's
    /// input steps with what the network, fed the real steps, predicts for
    /// them (thresholded at 0.5). Seeded by the run's seed, the epoch and the
    /// batch, so a resumed run replaces the same steps.
    fn feed_back(
        &self,
        model: &Network,
        settings: &TrainSettings,
        inputs: &mut [f32],
        position: BatchPosition,
        device: &Device,
    ) -> Result<(), TrainError> {
        let share = settings.feedback;
        if share <= 0.0 {
            return Ok(());
        }
        let inference = model.valid();
        let net = Self::network(&inference)?;
        let device = device.clone().without_autodiff();
        let length = settings.sequence_steps;
        let n = inputs.len() / (PITCH_COUNT * length);
        let x = Tensor::<3>::from_data(
            TensorData::new(inputs.to_vec(), [n, length, PITCH_COUNT]),
            &device,
        );
        // Position t predicts step t + 1.
        let logits: Vec<f32> = net
            .logits_from(x, None)
            .0
            .into_data()
            .try_into_vec()
            .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
        let mut rng = seeded_for(
            settings.rng_seed,
            &[position.epoch as u64, position.batch as u64],
        );
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
}

/// The loss of probabilities against 0/1 targets.
pub(super) fn loss_of(kind: LossKind, predicted: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
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
