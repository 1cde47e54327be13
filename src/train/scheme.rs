//! What training does differently for each kind of network, behind one
//! trait: how examples are cut from the data, how many steps each predicts,
//! the loss of a batch, and whether the network's own predictions are fed
//! back. [`scheme_for`] is the one place that picks an implementation.

use burn::module::Module as _;
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng as _;

use super::TrainError;
use crate::dataset::{Dataset, Preset, Stretch, Window};
use crate::limits;
use crate::meter::METER_FEATURES;
use crate::model::composer::{ComposerInput, GAP_FEATURES, gap_features};
use crate::model::{ArticleNet, Composer, Network, NetworkConfig, RollLstm, WINDOW_STEPS};
use crate::record::{LossKind, TrainSettings};
use crate::rng::{SeededRng, seeded_for};
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
        batch: &BatchData,
        device: &Device,
    ) -> Result<Tensor<1>, TrainError>;

    /// Changes a training batch before its step: replaces some input steps
    /// with the network's own predictions (scheduled sampling; `own_logits`
    /// gives them for a batch's inputs, from whichever engine trains), draws
    /// gaps; most networks leave it.
    fn feed_back(
        &self,
        _own_logits: &mut OwnLogits<'_>,
        _settings: &TrainSettings,
        _batch: &mut BatchData,
        _position: BatchPosition,
    ) -> Result<(), TrainError> {
        Ok(())
    }

    /// The validation loss computed another way than by [`loss`](Self::loss)
    /// over the validation examples, if this network has one.
    fn own_validation_loss(
        &self,
        _model: &Network,
        _settings: &TrainSettings,
        _data: &Dataset,
    ) -> Option<Result<f64, TrainError>> {
        None
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
        NetworkConfig::Composer(_) => Box::new(ComposerScheme),
    }
}

/// A filled batch: inputs and targets as 0/1 floats, row-major; for the
/// composer also each target's meter features and gap (distance to the gap's
/// end, 0 for none; empty: no gaps).
#[derive(Clone, Debug, Default)]
pub(super) struct BatchData {
    pub inputs: Vec<f32>,
    pub targets: Vec<f32>,
    pub meter: Vec<f32>,
    pub gaps: Vec<u32>,
    /// Stretches only: how much each target step counts in the loss,
    /// `[n][length]`, 0 for the silence after a song's end; empty: every
    /// step counts fully.
    pub weights: Vec<f32>,
    /// Roll LSTM while training: each stretch's factor per hidden unit where
    /// it feeds the next step (0, or 1 / keep), `[n][units]`; empty: none.
    pub recurrent_mask: Vec<f32>,
}

impl BatchData {
    /// How many target steps count when each example has `length`: the
    /// weights' sum, or every step.
    pub fn counted_steps(&self, examples: usize, length: usize) -> f64 {
        if self.weights.is_empty() {
            (examples * length) as f64
        } else {
            self.weights.iter().map(|&w| f64::from(w)).sum()
        }
    }
}

/// Where a batch lies in the run, to seed what is drawn for it.
#[derive(Clone, Copy, Debug)]
pub(super) struct BatchPosition {
    /// 1-based.
    pub epoch: usize,
    /// 0-based within the epoch.
    pub batch: usize,
}

/// One epoch's examples: windows, or stretches of `length` steps (with
/// their meter features when `meter`).
#[derive(Debug)]
pub(super) enum Examples {
    Windows(Vec<Window>),
    Stretches {
        stretches: Vec<Stretch>,
        length: usize,
        meter: bool,
    },
}

impl Examples {
    pub fn len(&self) -> usize {
        match self {
            Self::Windows(windows) => windows.len(),
            Self::Stretches { stretches, .. } => stretches.len(),
        }
    }

    /// Fills a batch with examples `range` (no gaps).
    pub fn fill(&self, data: &Dataset, range: std::ops::Range<usize>, batch: &mut BatchData) {
        batch.gaps.clear();
        batch.meter.clear();
        batch.weights.clear();
        batch.recurrent_mask.clear();
        match self {
            Self::Windows(windows) => {
                data.fill_batch(&windows[range], &mut batch.inputs, &mut batch.targets);
            }
            Self::Stretches {
                stretches,
                length,
                meter,
            } => {
                let stretches = &stretches[range];
                data.fill_stretches(stretches, *length, &mut batch.inputs, &mut batch.targets);
                data.fill_target_weights(stretches, *length, &mut batch.weights);
                if *meter {
                    data.fill_meter(stretches, *length, &mut batch.meter);
                }
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
            _ => Err(wrong_network("the article's network")),
        }
    }
}

impl TrainingScheme for WindowScheme {
    /// The article's: MSE on windows, neither transposed nor fed back.
    fn default_settings(&self) -> TrainSettings {
        TrainSettings::default()
    }

    fn check(&self, settings: &TrainSettings) -> Result<(), TrainError> {
        independent_loss(settings.loss)?;
        if settings.max_transpose > 0 {
            return Err(TrainError::OnlyForRecurrent("transposition"));
        }
        if settings.feedback > 0.0 {
            return Err(TrainError::OnlyForRecurrent("feedback"));
        }
        refuse_roll_lstm_dropouts(settings)?;
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
        batch: &BatchData,
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
/// predicting the next (each song's first from a silent lead-in), optionally
/// transposed and fed back.
#[derive(Debug)]
struct StretchScheme;

impl StretchScheme {
    fn network(model: &Network) -> Result<&RollLstm, TrainError> {
        match model {
            Network::RollLstm(net) => Ok(net),
            _ => Err(wrong_network("the roll LSTM")),
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
        independent_loss(settings.loss)?;
        check_stretches(settings)
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
            meter: false,
        }
    }

    fn validation_examples(&self, data: &Dataset, settings: &TrainSettings) -> Examples {
        let length = settings.sequence_steps;
        Examples::Stretches {
            stretches: data.stretches(true, length),
            length,
            meter: false,
        }
    }

    fn loss(
        &self,
        model: &Network,
        settings: &TrainSettings,
        batch: &BatchData,
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
        let mask = (!batch.recurrent_mask.is_empty()).then(|| {
            let units = batch.recurrent_mask.len() / n.max(1);
            Tensor::<2>::from_data(
                TensorData::new(batch.recurrent_mask.clone(), [n, units]),
                device,
            )
        });
        let logits = net.logits_masked(x, None, mask.as_ref()).0; // [n, length, 106]
        let cells =
            cell_losses_of_logits(settings.loss, logits.reshape([n * length, PITCH_COUNT]), y);
        Ok(weighted_mean(cells, &batch.weights, device))
    }

    /// With binary cross-entropy (a likelihood), each validation song
    /// scored whole from its start as the benchmark scores it, in the
    /// training loss's unit (nats per cell): the stretches start from a
    /// blank state mid-song and see at most `sequence_steps` of the past.
    fn own_validation_loss(
        &self,
        model: &Network,
        settings: &TrainSettings,
        data: &Dataset,
    ) -> Option<Result<f64, TrainError>> {
        (settings.loss == LossKind::Bce)
            .then(|| whole_song_nll(model, data).map(|nats| nats / PITCH_COUNT as f64))
    }

    /// Feeds back the network's own predictions ([`replace_with_own`]),
    /// then silences some input notes ([`drop_inputs`]).
    fn feed_back(
        &self,
        own_logits: &mut OwnLogits<'_>,
        settings: &TrainSettings,
        batch: &mut BatchData,
        position: BatchPosition,
    ) -> Result<(), TrainError> {
        if settings.feedback > 0.0 {
            let logits = own_logits(&batch.inputs)?;
            replace_with_own(&mut batch.inputs, &logits, settings, position);
        }
        if settings.input_dropout > 0.0 {
            drop_inputs(&mut batch.inputs, settings, position);
        }
        Ok(())
    }
}

/// What a network predicts after each input step of a stretch batch
/// (`[n][length][pitches]` in, logits of the same shape out).
pub(super) type OwnLogits<'a> = dyn FnMut(&[f32]) -> Result<Vec<f32>, TrainError> + 'a;

/// The roll LSTM's logits through burn, for [`OwnLogits`]: position t
/// predicts step t + 1.
pub(super) fn burn_roll_logits(
    model: &Network,
    inputs: &[f32],
    length: usize,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let inference = model.valid();
    let net = StretchScheme::network(&inference)?;
    let device = device.clone().without_autodiff();
    let n = inputs.len() / (PITCH_COUNT * length);
    let x = Tensor::<3>::from_data(
        TensorData::new(inputs.to_vec(), [n, length, PITCH_COUNT]),
        &device,
    );
    net.logits_from(x, None)
        .0
        .into_data()
        .try_into_vec()
        .map_err(|e| TrainError::Backend(format!("{e:?}")))
}

/// Replaces a random share (`settings.feedback`) of a stretch batch's input
/// steps (`[n][length][pitches]`) with the network's prediction for them
/// (its logits at the step before, thresholded at 0.5). Seeded by the run's
/// seed, the epoch and the batch, so a resumed run replaces the same steps.
pub(super) fn replace_with_own(
    inputs: &mut [f32],
    logits: &[f32],
    settings: &TrainSettings,
    position: BatchPosition,
) {
    let length = settings.sequence_steps;
    let mut rng = seeded_for(
        settings.rng_seed,
        &[position.epoch as u64, position.batch as u64],
    );
    for (sequence, predicted) in inputs
        .chunks_exact_mut(length * PITCH_COUNT)
        .zip(logits.chunks_exact(length * PITCH_COUNT))
    {
        for t in 1..length {
            if rng.random::<f64>() < settings.feedback {
                let own = &predicted[(t - 1) * PITCH_COUNT..t * PITCH_COUNT];
                let step = &mut sequence[t * PITCH_COUNT..(t + 1) * PITCH_COUNT];
                for (x, &z) in step.iter_mut().zip(own) {
                    // p >= 0.5 exactly when the logit is >= 0.
                    *x = if z >= 0.0 { 1.0 } else { 0.0 };
                }
            }
        }
    }
}

/// The draws of one dropout `stream` (kept apart from the feedback's) for the
/// batch at `position`: seeded by the run's seed, the epoch and the batch, so
/// a resumed run draws the same.
fn dropout_draws(settings: &TrainSettings, position: BatchPosition, stream: u64) -> SeededRng {
    seeded_for(
        settings.rng_seed,
        &[position.epoch as u64, position.batch as u64, stream],
    )
}

/// What a kept value is scaled by where a `share` of them is silenced, so
/// the expected value is the one the network meets when it generates.
fn kept_scale(share: f64) -> f32 {
    (1.0 / (1.0 - share)) as f32
}

/// Silences each sounding input cell with probability
/// `settings.input_dropout` and scales the others by 1 / (1 - share), so an
/// input's expected value is what the network meets when it generates.
/// Its own stream of draws, so a resumed run silences the same cells.
pub(super) fn drop_inputs(inputs: &mut [f32], settings: &TrainSettings, position: BatchPosition) {
    const INPUT_DROPOUT_STREAM: u64 = 1;
    let share = settings.input_dropout;
    let kept_scale = kept_scale(share);
    let mut rng = dropout_draws(settings, position, INPUT_DROPOUT_STREAM);
    // Silent cells stay silent whatever is drawn: only sounding ones draw.
    for cell in inputs.iter_mut().filter(|cell| **cell != 0.0) {
        *cell = if rng.random::<f64>() < share {
            0.0
        } else {
            *cell * kept_scale
        };
    }
}

/// [`recurrent_mask`]'s stream of draws, apart from the feedback's and the
/// input dropout's.
const RECURRENT_DROPOUT_STREAM: u64 = 2;

/// Each of `sequences` stretches' factor per hidden unit (`units` each) for
/// the roll LSTM's recurrent input: 0 with probability
/// `settings.recurrent_dropout`, else 1 / (1 - share). One draw per stretch,
/// kept at every step (variational dropout: a unit silenced at one step but
/// not the next would leak what the mask hides). Its own stream of draws,
/// so a resumed run draws the same masks and both engines use the same.
pub(super) fn recurrent_mask(
    settings: &TrainSettings,
    position: BatchPosition,
    sequences: usize,
    units: usize,
) -> Vec<f32> {
    let share = settings.recurrent_dropout;
    let kept_scale = kept_scale(share);
    let mut rng = dropout_draws(settings, position, RECURRENT_DROPOUT_STREAM);
    (0..sequences * units)
        .map(|_| {
            if rng.random::<f64>() < share {
                0.0
            } else {
                kept_scale
            }
        })
        .collect()
}

/// Refuses the roll LSTM's own dropouts for the networks without them.
fn refuse_roll_lstm_dropouts(settings: &TrainSettings) -> Result<(), TrainError> {
    if settings.input_dropout > 0.0 {
        return Err(TrainError::OnlyForRollLstm("input dropout"));
    }
    if settings.recurrent_dropout > 0.0 {
        return Err(TrainError::OnlyForRollLstm("recurrent dropout"));
    }
    Ok(())
}

/// The composer: stretches (each song's first step is a target too) with
/// their meter, every target scored by the chain rule, and random gaps: each
/// target sees the music after a gap ending `d` steps later (or none), so the
/// same network continues and fills.
#[derive(Debug)]
struct ComposerScheme;

/// Share of training targets that see the music after a gap.
const GAP_SHARE: f64 = 0.5;

impl ComposerScheme {
    fn network(model: &Network) -> Result<&Composer, TrainError> {
        match model {
            Network::Composer(net) => Ok(net),
            _ => Err(wrong_network("the composer")),
        }
    }
}

impl TrainingScheme for ComposerScheme {
    /// Its own loss; no feedback (the chain rule is teacher-forced by
    /// nature); no transposition (chosen per data set: a benchmark in one
    /// key loses by it).
    fn default_settings(&self) -> TrainSettings {
        TrainSettings {
            loss: LossKind::Nll,
            max_transpose: 0,
            feedback: 0.0,
            ..TrainSettings::default()
        }
    }

    fn check(&self, settings: &TrainSettings) -> Result<(), TrainError> {
        if settings.loss != LossKind::Nll {
            return Err(TrainError::WrongLoss {
                loss: settings.loss,
                expected: "nll (it scores whole steps)",
            });
        }
        if settings.feedback > 0.0 {
            return Err(TrainError::NotForComposer("feedback"));
        }
        refuse_roll_lstm_dropouts(settings)?;
        check_stretches(settings)
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
            meter: true,
        }
    }

    fn validation_examples(&self, data: &Dataset, settings: &TrainSettings) -> Examples {
        let length = settings.sequence_steps;
        Examples::Stretches {
            stretches: data.stretches(true, length),
            length,
            meter: true,
        }
    }

    /// Mean negative log-likelihood per step, in nats.
    fn loss(
        &self,
        model: &Network,
        settings: &TrainSettings,
        batch: &BatchData,
        device: &Device,
    ) -> Result<Tensor<1>, TrainError> {
        let net = Self::network(model)?;
        let length = settings.sequence_steps;
        let n = batch.targets.len() / (PITCH_COUNT * length);
        if batch.meter.len() != n * length * METER_FEATURES
            || batch.inputs.len() != batch.targets.len()
        {
            return Err(TrainError::Backend(
                "a composer batch needs inputs, targets and meter features of every step"
                    .to_owned(),
            ));
        }
        let floats = |values: &[f32], width: usize| {
            Tensor::<3>::from_data(TensorData::new(values.to_vec(), [n, length, width]), device)
        };
        let mut gap_end = Vec::with_capacity(n * length);
        let mut gap = vec![0.0f32; n * length * GAP_FEATURES];
        for (index, features) in gap.chunks_exact_mut(GAP_FEATURES).enumerate() {
            let t = index % length;
            let distance = batch.gaps.get(index).copied().unwrap_or(0) as usize;
            let distance = (distance > 0).then_some(distance);
            gap_features(distance, features);
            gap_end.push((t + distance.unwrap_or(0)).min(length - 1) as i64);
        }
        let input = ComposerInput {
            previous: floats(&batch.inputs, PITCH_COUNT),
            meter: floats(&batch.meter, METER_FEATURES),
            targets: floats(&batch.targets, PITCH_COUNT),
            gap_end: Tensor::<2, Int>::from_data(TensorData::new(gap_end, [n, length]), device),
            gap: floats(&gap, GAP_FEATURES),
        };
        let nll = net.step_nll(&input).reshape([n * length, 1]);
        Ok(weighted_mean(nll, &batch.weights, device))
    }

    /// Draws each target's gap: none for half of them, else the music after
    /// a gap ending 1..=length/2 steps later, log-uniformly (none where that
    /// passes the stretch's or the song's end). Seeded like feedback, so a resumed run draws the same.
    fn feed_back(
        &self,
        _own_logits: &mut OwnLogits<'_>,
        settings: &TrainSettings,
        batch: &mut BatchData,
        position: BatchPosition,
    ) -> Result<(), TrainError> {
        let length = settings.sequence_steps;
        let n = batch.targets.len() / (PITCH_COUNT * length);
        let longest = (length / 2).max(1);
        let mut rng = seeded_for(
            settings.rng_seed,
            &[position.epoch as u64, position.batch as u64, 0x6A9],
        );
        batch.gaps.clear();
        for sequence in 0..n {
            // The music after a gap is the song's: the silence past its end
            // (a stretch longer than its song) is no music to join.
            let song_steps = if batch.weights.is_empty() {
                length
            } else {
                let weights = &batch.weights[sequence * length..(sequence + 1) * length];
                weights.iter().take_while(|&&w| w > 0.0).count()
            };
            for t in 0..length {
                // Log-uniform: as many gaps end 1 step later as 2-3, 4-7 ...,
                // so the steps that lead into the music after are often seen.
                let distance = if rng.random::<f64>() < GAP_SHARE {
                    let span = (longest as f64 + 1.0).powf(rng.random::<f64>());
                    (span as usize).clamp(1, longest)
                } else {
                    0
                };
                let fits = t + distance < song_steps;
                batch.gaps.push(if fits { distance as u32 } else { 0 });
            }
        }
        Ok(())
    }

    /// Each validation song scored whole from its start (the benchmark's
    /// way): nats per step, continuing (no music after).
    fn own_validation_loss(
        &self,
        model: &Network,
        _settings: &TrainSettings,
        data: &Dataset,
    ) -> Option<Result<f64, TrainError>> {
        Some(whole_song_nll(model, data))
    }
}

/// The validation songs' negative log-likelihood, each scored whole from its
/// start, in nats per step.
fn whole_song_nll(model: &Network, data: &Dataset) -> Result<f64, TrainError> {
    crate::eval::song_likelihood(model, data)
        .map(|figures| figures.nll_per_step)
        .map_err(|e| TrainError::Backend(e.to_string()))
}

/// What every network trained on stretches needs: a stretch length and a
/// batch within bounds, and forward time.
fn check_stretches(settings: &TrainSettings) -> Result<(), TrainError> {
    limits::SEQUENCE_STEPS.check(settings.sequence_steps)?;
    limits::STEPS_PER_BATCH.check(settings.batch_size.saturating_mul(settings.sequence_steps))?;
    if settings.preset != Preset::Forward {
        return Err(TrainError::PresetNeedsArticleNetwork(settings.preset));
    }
    Ok(())
}

/// MSE or BCE: the losses of networks with one independent output per pitch.
fn independent_loss(loss: LossKind) -> Result<(), TrainError> {
    match loss {
        LossKind::Mse | LossKind::Bce => Ok(()),
        LossKind::Nll => Err(TrainError::WrongLoss {
            loss,
            expected: "mse or bce (one independent output per pitch)",
        }),
    }
}

/// The loss of probabilities against 0/1 targets.
pub(super) fn loss_of(kind: LossKind, predicted: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    match kind {
        LossKind::Mse => (predicted - target).square().mean(),
        // Per cell for these networks (`check` keeps NLL for the composer).
        LossKind::Bce | LossKind::Nll => {
            // Keras clips to [eps, 1 - eps] with eps = 1e-7.
            let p = predicted.clamp(1e-7, 1.0 - 1e-7);
            let not_target = target.clone().neg().add_scalar(1.0);
            let not_p = p.clone().neg().add_scalar(1.0);
            (target * p.log() + not_target * not_p.log()).neg().mean()
        }
    }
}

/// Each cell's loss from the logits of the probabilities (`[rows, pitches]`),
/// so binary cross-entropy stays finite however sure the network is.
fn cell_losses_of_logits(kind: LossKind, logits: Tensor<2>, target: Tensor<2>) -> Tensor<2> {
    match kind {
        LossKind::Mse => (sigmoid(logits) - target).square(),
        LossKind::Bce | LossKind::Nll => {
            // -(y log s(z) + (1 - y) log s(-z))
            let not_target = target.clone().neg().add_scalar(1.0);
            (target * log_sigmoid(logits.clone()) + not_target * log_sigmoid(logits.neg())).neg()
        }
    }
}

/// The mean of `losses` (`[rows, width]`, one row a target step) with each
/// row weighted by `weights` (empty: all 1), over the counted cells.
fn weighted_mean(losses: Tensor<2>, weights: &[f32], device: &Device) -> Tensor<1> {
    if weights.is_empty() {
        return losses.mean();
    }
    let [rows, width] = losses.dims();
    let counted: f32 = weights.iter().sum();
    let weights = Tensor::<2>::from_data(TensorData::new(weights.to_vec(), [rows, 1]), device);
    (losses * weights)
        .sum()
        .div_scalar((counted * width as f32).max(1.0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn input_dropout_silences_its_share_of_sounding_cells_and_keeps_the_mean() {
        let settings = TrainSettings {
            input_dropout: 0.2,
            rng_seed: 7,
            ..TrainSettings::default()
        };
        let position = BatchPosition { epoch: 3, batch: 5 };
        // Every third cell sounds.
        let original: Vec<f32> = (0..60_000)
            .map(|i| f32::from(u8::from(i % 3 == 0)))
            .collect();
        let mut inputs = original.clone();
        drop_inputs(&mut inputs, &settings, position);
        let sounding = original.iter().filter(|&&x| x > 0.0).count();
        let silenced = original
            .iter()
            .zip(&inputs)
            .filter(|&(&was, &now)| was > 0.0 && now == 0.0)
            .count();
        let share = silenced as f64 / sounding as f64;
        assert!((share - 0.2).abs() < 0.01, "silenced {share}");
        for (&was, &now) in original.iter().zip(&inputs) {
            if was == 0.0 {
                assert_eq!(now, 0.0, "a silent cell began to sound");
            } else {
                assert!(now == 0.0 || (now - 1.25).abs() < 1e-6, "kept cell {now}");
            }
        }
        let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        assert!((mean(&inputs) - mean(&original)).abs() < 0.01);
        // Same seed, epoch and batch: the same cells (a resumed run).
        let mut again = original.clone();
        drop_inputs(&mut again, &settings, position);
        assert_eq!(again, inputs);
        let mut next_batch = original;
        drop_inputs(
            &mut next_batch,
            &settings,
            BatchPosition { epoch: 3, batch: 6 },
        );
        assert_ne!(next_batch, inputs);
    }

    #[test]
    fn composer_gaps_never_join_the_silence_after_a_song() {
        let (n, length) = (6, 16);
        let song_steps = [16, 5, 16, 1, 9, 16];
        let mut batch = BatchData {
            targets: vec![0.0; n * length * PITCH_COUNT],
            weights: song_steps
                .iter()
                .flat_map(|&steps| (0..length).map(move |t| f32::from(u8::from(t < steps))))
                .collect(),
            ..BatchData::default()
        };
        let settings = TrainSettings {
            loss: LossKind::Nll,
            sequence_steps: length,
            ..TrainSettings::default()
        };
        let mut unused = |_: &[f32]| -> Result<Vec<f32>, TrainError> { Ok(Vec::new()) };
        for index in 0..20 {
            let position = BatchPosition {
                epoch: 1,
                batch: index,
            };
            ComposerScheme
                .feed_back(&mut unused, &settings, &mut batch, position)
                .unwrap();
            assert_eq!(batch.gaps.len(), n * length);
            for (gaps, &steps) in batch.gaps.chunks_exact(length).zip(&song_steps) {
                for (t, &gap) in gaps.iter().enumerate() {
                    assert!(
                        gap == 0 || t + (gap as usize) < steps,
                        "{t} + {gap} in {steps}"
                    );
                }
            }
        }
        // Songs that fill their stretch still see gaps.
        assert!(batch.gaps[..length].iter().any(|&gap| gap > 0));
    }
}
