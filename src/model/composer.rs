//! The composer: Cadenza's network that models the notes of a step together,
//! hears the beat, and can fill a gap from the music on both sides.
//!
//! - A *past* LSTM reads the music step by step (each input: the step before
//!   and the meter features of the step to predict), as the roll LSTM does.
//! - A *future* LSTM reads the music after a gap backwards, so its state at
//!   the gap's end sums up what follows; the first step after the gap also
//!   comes as it is, since the notes a gap must lead into matter most.
//!   Continuing is the case with nothing after: that part of the context is
//!   zero and a flag says so, with the distance to the gap's end in buckets
//!   when there is one.
//! - With `pitch_profile`, the context also holds the pitch-class profile of
//!   the music heard so far (see [`pitch_profiles`]): the key, as a direct
//!   input rather than something the past LSTM must carry over many steps.
//!   With `key_input` as well, how well that profile matches each of the 24
//!   keys (see [`key_weights`]): the biases are linear in the context, so the
//!   profile alone can only nudge each pitch by how much its pitch class was
//!   heard, while a weight per key lets each key bring its own scale (its
//!   third above all, which a linear read of the profile blurs between major
//!   and minor).
//! - A NADE output (Larochelle & Murray 2011, as in RNN-NADE) decides the
//!   pitches of a step from low to high, each conditioned on the ones already
//!   decided: `p(v_i | v_<i) = σ(b_i + V_i · σ(c + Σ_{j<i} v_j W_j))`, with `b`
//!   and `c` computed from the context. The chain rule gives the exact
//!   likelihood of a whole step; chords are drawn as chords, not as 106
//!   independent coins. Training evaluates every conditional at once with a
//!   cumulative sum over the pitches.

use std::sync::LazyLock;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::{log_sigmoid, sigmoid, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::ZeroBias as _;
use super::lstm::KerasLstm;
use crate::meter::METER_FEATURES;

/// Upper ends of the gap-distance buckets: the distance from a step to the
/// gap's end falls in the first bucket it does not exceed, or the last.
const GAP_BUCKET_ENDS: [usize; 11] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48];
/// Gap features: "there is music after", then the distance bucket, one-hot.
pub const GAP_FEATURES: usize = 1 + GAP_BUCKET_ENDS.len() + 1;

/// How near each distance bucket lies to the gap's end (about one over the
/// distance): the weight of the first step after the gap in the
/// [`near_after`](ComposerConfig::near_after) part of the context.
const GAP_BUCKET_NEARNESS: [f32; GAP_BUCKET_ENDS.len() + 1] = [
    1.0,
    1.0 / 2.0,
    1.0 / 3.0,
    1.0 / 4.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 10.0,
    1.0 / 14.0,
    1.0 / 20.0,
    1.0 / 28.0,
    1.0 / 40.0,
    1.0 / 64.0,
];

/// The nearness of a step to its gap's end read from its gap features
/// (0 with nothing after).
pub fn gap_nearness(features: &[f32]) -> f32 {
    features
        .get(1..)
        .unwrap_or(&[])
        .iter()
        .zip(GAP_BUCKET_NEARNESS)
        .map(|(&f, n)| f * n)
        .sum()
}

/// Writes the gap features of a step `distance` steps before the gap's end
/// (`None`: nothing after, continuing) to `out` ([`GAP_FEATURES`] values).
pub fn gap_features(distance: Option<usize>, out: &mut [f32]) {
    out.fill(0.0);
    if let Some(distance) = distance {
        out[0] = 1.0;
        let bucket = GAP_BUCKET_ENDS
            .iter()
            .position(|&end| distance <= end)
            .unwrap_or(GAP_BUCKET_ENDS.len());
        out[1 + bucket] = 1.0;
    }
}

/// Pitch classes in the profile.
pub const PROFILE_FEATURES: usize = 12;

/// Keys in the key input: major on C..B, then minor on C..B.
pub const KEY_FEATURES: usize = 24;

/// Values the profile and the key input add to the context (the key input
/// comes after the profile it is computed from).
pub fn profile_width(pitch_profile: bool, key_input: bool) -> usize {
    let profile = if pitch_profile { PROFILE_FEATURES } else { 0 };
    let key = if key_input { KEY_FEATURES } else { 0 };
    profile + key
}

/// How sharply the key input singles out the best-matching key: each key
/// weighs `exp(KEY_SHARPNESS * r)` for its correlation `r`, so a key that
/// matches 0.15 better than the next (a typical margin over the relative or
/// parallel key in tonal music) weighs 20 times as much, and an ambiguous
/// passage spreads the weight.
pub const KEY_SHARPNESS: f32 = 20.0;

/// A profile whose centred values are shorter than this has no key: nothing
/// heard yet, or every pitch class alike.
pub const KEY_MIN_SPREAD: f32 = 1e-6;

static KEY_TEMPLATES: LazyLock<[[f32; PROFILE_FEATURES]; KEY_FEATURES]> =
    LazyLock::new(crate::music::key_templates);

/// The key input of a profile (`PROFILE_FEATURES` shares) into `out`
/// (`KEY_FEATURES` values): the softmax of [`KEY_SHARPNESS`] times the
/// profile's Pearson correlation with each key's Krumhansl–Kessler profile,
/// the measure `eval`'s key estimate maximises; all zero when the profile has
/// no key ([`KEY_MIN_SPREAD`]).
pub fn key_weights(shares: &[f32], out: &mut [f32]) {
    let mean = shares.iter().sum::<f32>() / PROFILE_FEATURES as f32;
    let centred: [f32; PROFILE_FEATURES] = std::array::from_fn(|class| shares[class] - mean);
    let spread = centred.iter().map(|v| v * v).sum::<f32>().sqrt();
    if spread < KEY_MIN_SPREAD {
        out.fill(0.0);
        return;
    }
    for (weight, template) in out.iter_mut().zip(KEY_TEMPLATES.iter()) {
        let dot: f32 = centred.iter().zip(template).map(|(c, t)| c * t).sum();
        *weight = KEY_SHARPNESS * dot / spread;
    }
    let top = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    out.iter_mut().for_each(|w| *w = (*w - top).exp());
    let total: f32 = out.iter().sum();
    out.iter_mut().for_each(|w| *w /= total);
}

/// What the notes of a step one step further back weigh in the profile: a
/// half-life of 138 steps (over eight bars of sixteenths), so it tells the key of
/// a whole passage rather than the harmony of the last bar.
pub const PROFILE_DECAY: f32 = 0.995;

/// The pitch class (0 = C) of roll row `row` (row 0 is MIDI 21, an A).
pub fn pitch_class(row: usize) -> usize {
    (21 + row) % 12
}

/// The weight of the step `back` steps before the newest in the profile.
pub fn profile_weight(back: usize) -> f32 {
    PROFILE_DECAY.powi(i32::try_from(back).unwrap_or(i32::MAX))
}

/// Decays pitch-class counts by a step and adds the notes of the next one
/// (the rows that sound, low to high): the running sums of the profile.
pub fn add_to_profile(counts: &mut [f32], sounding_rows: impl Iterator<Item = usize>) {
    counts.iter_mut().for_each(|c| *c *= PROFILE_DECAY);
    for row in sounding_rows {
        counts[pitch_class(row)] += 1.0;
    }
}

/// The pitch-class profile after each of `steps` (one sequence, `[time][pitches]`
/// 0/1 values), `[time][profile_width(true, key_input)]`: each pitch class's
/// share of the notes heard up to and including that step, a step `k` steps
/// back weighing [`PROFILE_DECAY`]^k (zeros before any note), then with
/// `key_input` its [`key_weights`].
pub fn pitch_profiles(steps: &[f32], pitches: usize, key_input: bool, out: &mut [f32]) {
    let mut counts = [0.0f32; PROFILE_FEATURES];
    for (step, features) in steps
        .chunks_exact(pitches)
        .zip(out.chunks_exact_mut(profile_width(true, key_input)))
    {
        let (profile, key) = features.split_at_mut(PROFILE_FEATURES);
        add_to_profile(
            &mut counts,
            step.iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(row, _)| row),
        );
        profile.copy_from_slice(&counts);
        normalise_profile(profile);
        if key_input {
            key_weights(profile, key);
        }
    }
}

/// Turns weighted counts into shares (all zero stays zero).
pub fn normalise_profile(profile: &mut [f32]) {
    let total: f32 = profile.iter().sum();
    if total > 0.0 {
        profile.iter_mut().for_each(|p| *p /= total);
    }
}

/// The composer's shape.
#[derive(Config, Debug, PartialEq)]
pub struct ComposerConfig {
    /// Pitches per step, in and out (the roll's 106).
    #[config(default = 106)]
    pub pitches: usize,
    /// Units of the LSTM over the music before.
    #[config(default = 256)]
    pub units: usize,
    /// Units of the LSTM over the music after a gap.
    #[config(default = 128)]
    pub future_units: usize,
    /// Hidden units of the NADE output.
    #[config(default = 128)]
    pub nade_units: usize,
    /// Dropout on both LSTMs' outputs while training, `0..1`.
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Whether the context also holds the first step after the gap scaled by
    /// the step's nearness to it (about one over the distance). The biases
    /// are linear in the context, so without it the first step after the gap
    /// pulls each pitch the same at every distance; with it the pull can fade
    /// with the distance. Off (none) in files from before it existed: an
    /// optional field is one serde lets a file leave out.
    #[config(default = "None")]
    pub near_after: Option<bool>,
    /// Whether the context also holds the pitch-class profile of the music
    /// heard so far ([`pitch_profiles`]). Off (none) in files from before it.
    #[config(default = "None")]
    pub pitch_profile: Option<bool>,
    /// Whether the context also holds the profile's [`key_weights`] (needs
    /// `pitch_profile`). Off (none) in files from before it.
    #[config(default = "None")]
    pub key_input: Option<bool>,
}

impl Default for ComposerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ComposerConfig {
    /// Why this shape cannot be built, if it cannot.
    pub fn problem(&self) -> Option<String> {
        for (name, value) in [
            ("pitches", self.pitches),
            ("units", self.units),
            ("future units", self.future_units),
            ("NADE units", self.nade_units),
        ] {
            if let Err(error) = crate::limits::NETWORK_UNITS.check(value) {
                return Some(format!("{name}: {error}"));
            }
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Some(format!("dropout {} is outside 0..1", self.dropout));
        }
        if self.has_key_input() && !self.has_pitch_profile() {
            return Some("the key input is computed from the pitch-class profile".to_string());
        }
        None
    }

    /// Whether the context holds the first step after by nearness.
    pub fn has_near_after(&self) -> bool {
        self.near_after == Some(true)
    }

    /// Whether the context holds the pitch-class profile.
    pub fn has_pitch_profile(&self) -> bool {
        self.pitch_profile == Some(true)
    }

    /// Whether the context holds the key input.
    pub fn has_key_input(&self) -> bool {
        self.key_input == Some(true)
    }

    /// Values per step in the input of either LSTM.
    pub fn step_inputs(&self) -> usize {
        self.pitches + METER_FEATURES
    }

    /// Values of the context the NADE's biases are computed from: the past
    /// LSTM's state, the future LSTM's, the first step after the gap, the gap
    /// and the meter features, (with `near_after`) the first step after
    /// scaled by nearness, (with `pitch_profile`) the profile and (with
    /// `key_input`) the key input.
    pub fn context_size(&self) -> usize {
        let near = if self.has_near_after() {
            self.pitches
        } else {
            0
        };
        let profile = profile_width(self.has_pitch_profile(), self.has_key_input());
        self.units
            + self.future_units
            + self.pitches
            + GAP_FEATURES
            + METER_FEATURES
            + near
            + profile
    }

    /// Builds the network (Keras-style initialisation). Call
    /// [`problem`](Self::problem) first: a bad dropout panics in burn.
    pub fn init(&self, device: &Device) -> Composer {
        let glorot = Initializer::XavierUniform { gain: 1.0 };
        let (p, h) = (self.pitches, self.nade_units);
        let linear = |d_output: usize| {
            LinearConfig::new(self.context_size(), d_output)
                .with_initializer(glorot.clone())
                .init(device)
                .map_bias_to_zero(device)
        };
        Composer {
            past: KerasLstm::new(self.step_inputs(), self.units, device),
            future: KerasLstm::new(self.step_inputs(), self.future_units, device),
            dropout: DropoutConfig::new(self.dropout.clamp(0.0, 0.99)).init(),
            visible_bias: linear(p),
            hidden_bias: linear(h),
            nade_in: glorot.init_with([p, h], Some(p), Some(h), device),
            nade_out: glorot.init_with([p, h], Some(h), Some(p), device),
            near_after: self.has_near_after(),
            pitch_profile: self.has_pitch_profile(),
            key_input: self.has_key_input(),
        }
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        let lstm = |d_input: usize, units: usize| 4 * units * (d_input + units + 1);
        let context = self.context_size();
        lstm(self.step_inputs(), self.units)
            + lstm(self.step_inputs(), self.future_units)
            + (context + 1) * (self.pitches + self.nade_units)
            + 2 * self.pitches * self.nade_units
    }
}

/// The composer network; see the module docs.
#[derive(Module, Debug)]
pub struct Composer {
    pub past: KerasLstm,
    pub future: KerasLstm,
    pub dropout: Dropout,
    /// Context -> the NADE's visible biases `b`.
    pub visible_bias: Linear,
    /// Context -> the NADE's hidden biases `c`.
    pub hidden_bias: Linear,
    /// `W`, `[pitches, nade_units]`: what a decided pitch adds to the hidden
    /// pre-activation of every pitch above it.
    pub nade_in: Param<Tensor<2>>,
    /// `V`, `[pitches, nade_units]`: each pitch's read-out of the hidden layer.
    pub nade_out: Param<Tensor<2>>,
    /// The context's optional parts (see [`ComposerConfig`]).
    pub near_after: bool,
    pub pitch_profile: bool,
    pub key_input: bool,
}

/// A batch of stretches as the composer reads them, all `[batch, time, ..]`.
#[derive(Debug, Clone)]
pub struct ComposerInput {
    /// The step before each target (silence before a song), `[.., pitches]`.
    pub previous: Tensor<3>,
    /// Meter features of each target step, `[.., METER_FEATURES]`.
    pub meter: Tensor<3>,
    /// The target steps, `[.., pitches]` 0/1.
    pub targets: Tensor<3>,
    /// Where each target's gap ends, as an index into the time axis (any
    /// index where there is no gap: the gap features then say so),
    /// `[batch, time]`.
    pub gap_end: Tensor<2, Int>,
    /// Gap features of each target, `[.., GAP_FEATURES]`.
    pub gap: Tensor<3>,
}

impl Composer {
    /// Pitches per step the model reads and predicts.
    pub fn pitches(&self) -> usize {
        let [pitches, _] = self.nade_in.dims();
        pitches
    }

    /// The context of every target, `[batch * time, context_size]`.
    fn context(&self, input: &ComposerInput) -> Tensor<2> {
        let [batch, time, _] = input.targets.dims();
        let past = self.past.forward(Tensor::cat(
            vec![input.previous.clone(), input.meter.clone()],
            2,
        ));
        // The future LSTM runs from the stretch's end back to each step, so
        // its state at step s sums up steps s.. of the stretch.
        let backwards = Tensor::cat(vec![input.targets.clone(), input.meter.clone()], 2).flip([1]);
        let after = self.future.forward(backwards).flip([1]);
        let at_gap_end = |values: Tensor<3>| {
            let [_, _, width] = values.dims();
            let index = input
                .gap_end
                .clone()
                .unsqueeze_dim::<3>(2)
                .repeat_dim(2, width);
            values.gather(1, index)
        };
        let has_after = input.gap.clone().narrow(2, 0, 1);
        let future = at_gap_end(after) * has_after.clone();
        let first_after = at_gap_end(input.targets.clone()) * has_after;
        let context_size = self.visible_bias.weight.dims()[0];
        let mut parts = vec![
            self.dropout.forward(past),
            self.dropout.forward(future),
            first_after.clone(),
            input.gap.clone(),
            input.meter.clone(),
        ];
        if self.near_after {
            let buckets = GAP_BUCKET_NEARNESS.len();
            let nearness = Tensor::<1>::from_floats(GAP_BUCKET_NEARNESS, &first_after.device())
                .reshape([1, 1, buckets]);
            let near = (input.gap.clone().narrow(2, 1, buckets) * nearness).sum_dim(2);
            parts.push(first_after * near);
        }
        if self.pitch_profile {
            let profile = pitch_profile(input.previous.clone());
            let key = self.key_input.then(|| key_weights_of(profile.clone()));
            parts.push(profile);
            parts.extend(key);
        }
        Tensor::cat(parts, 2).reshape([batch * time, context_size])
    }

    /// The logit of every pitch of every target given the pitches below it
    /// in that target, `[batch * time, pitches]`.
    pub fn conditional_logits(&self, input: &ComposerInput) -> Tensor<2> {
        let context = self.context(input);
        let [rows, _] = context.dims();
        let pitches = self.pitches();
        let visible_bias = self.visible_bias.forward(context.clone());
        let hidden_bias = self.hidden_bias.forward(context);
        let targets = input.targets.clone().reshape([rows, pitches, 1]);
        // What each sounding pitch adds, then the sum over the pitches below.
        let added = targets * self.nade_in.val().unsqueeze::<3>();
        let below = added.clone().cumsum(1) - added;
        let hidden = sigmoid(below + hidden_bias.unsqueeze_dim::<3>(1));
        let read_out = (hidden * self.nade_out.val().unsqueeze::<3>()).sum_dim(2);
        read_out.reshape([rows, pitches]) + visible_bias
    }

    /// Negative log-likelihood of each target step in nats (the sum over its
    /// pitches by the chain rule), `[batch * time]`.
    pub fn step_nll(&self, input: &ComposerInput) -> Tensor<1> {
        let logits = self.conditional_logits(input);
        let [rows, pitches] = logits.dims();
        let targets = input.targets.clone().reshape([rows, pitches]);
        let not_targets = targets.clone().neg().add_scalar(1.0);
        let log_likelihood =
            targets * log_sigmoid(logits.clone()) + not_targets * log_sigmoid(logits.neg());
        log_likelihood.sum_dim(1).reshape([rows]).neg()
    }
}

/// [`pitch_profiles`] of every sequence of `steps` (`[batch, time, pitches]`)
/// as tensor operations, so that it runs where the model does.
fn pitch_profile(steps: Tensor<3>) -> Tensor<3> {
    let [batch, time, pitches] = steps.dims();
    let device = steps.device();
    let classes: Vec<f32> = (0..pitches)
        .flat_map(|row| {
            (0..PROFILE_FEATURES).map(move |class| f32::from(u8::from(pitch_class(row) == class)))
        })
        .collect();
    let classes = Tensor::<2>::from_data(
        TensorData::new(classes, [pitches, PROFILE_FEATURES]),
        &device,
    );
    let counts = steps
        .reshape([batch * time, pitches])
        .matmul(classes)
        .reshape([batch, time, PROFILE_FEATURES]);
    // weights[t][s]: how much step s counts in the profile after step t.
    let weights: Vec<f32> = (0..time)
        .flat_map(|t| (0..time).map(move |s| if s <= t { profile_weight(t - s) } else { 0.0 }))
        .collect();
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [time, time]), &device);
    let by_time = counts
        .swap_dims(0, 1)
        .reshape([time, batch * PROFILE_FEATURES]);
    let sums = weights
        .matmul(by_time)
        .reshape([time, batch, PROFILE_FEATURES])
        .swap_dims(0, 1);
    let total = sums.clone().sum_dim(2);
    // Zero before any note: 0 / 1.
    let divisor = total.clone().clamp_min(0.0) + total.equal_elem(0.0).float();
    sums / divisor
}

/// [`key_weights`] of every profile (`[batch, time, PROFILE_FEATURES]`) as
/// tensor operations.
fn key_weights_of(profiles: Tensor<3>) -> Tensor<3> {
    let [batch, time, classes] = profiles.dims();
    let device = profiles.device();
    let templates: Vec<f32> = (0..classes)
        .flat_map(|class| KEY_TEMPLATES.iter().map(move |template| template[class]))
        .collect();
    let templates =
        Tensor::<2>::from_data(TensorData::new(templates, [classes, KEY_FEATURES]), &device);
    let centred = profiles.clone() - profiles.mean_dim(2);
    let spread = centred.clone().powi_scalar(2).sum_dim(2).sqrt();
    let dots = centred
        .reshape([batch * time, classes])
        .matmul(templates)
        .reshape([batch, time, KEY_FEATURES]);
    let has_key = spread.clone().greater_equal_elem(KEY_MIN_SPREAD).float();
    // Divided by 1 where there is no key (the weights are zeroed there).
    let divisor = spread + has_key.clone().neg().add_scalar(1.0);
    softmax(dots.mul_scalar(KEY_SHARPNESS) / divisor, 2) * has_key
}
