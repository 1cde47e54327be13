//! Continuing a roll: feed the model a 9-step window, turn its probabilities
//! into the next step with a rule, slide the window, repeat.
//!
//! The article's rule is [`Rule::Boost`]: its trained model never outputs much
//! more than 0.6, so plain rounding gives silence, and silence fed back makes
//! the music fade ("vanish"). It adds a boost that grows each step: a pitch
//! sounds iff `p + vanish_proof * vanish_inc^k >= 1` at step `k`.

use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::device::SelectedDevice;
use crate::model::native::{NativeSeedNet, Scratch};
use crate::model::{SeedModel, WINDOW_STEPS};
use crate::roll::{PITCH_COUNT, PianoRoll, mask_to_floats};

/// How probabilities become notes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// The article's: on iff `p + vanish_proof * vanish_inc^k >= 1` at step k.
    Boost { vanish_proof: f64, vanish_inc: f64 },
    /// On iff `p >= threshold`.
    Threshold { threshold: f32 },
    /// On with probability `p` sharpened or flattened by `temperature` (the logit
    /// is divided by it), drawn from a generator seeded with `rng_seed`
    /// (variation `i` uses `rng_seed + i`).
    Sample { temperature: f32, rng_seed: u64 },
}

impl Rule {
    /// The article's defaults: vanish_proof 0.65, vanish_inc 1.001.
    pub const ARTICLE: Rule = Rule::Boost {
        vanish_proof: 0.65,
        vanish_inc: 1.001,
    };
}

/// Which rule, by name.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum RuleKind {
    /// The article's: on iff p + vanish_proof * vanish_inc^k >= 1.
    #[default]
    Boost,
    /// On iff p >= threshold.
    Threshold,
    /// On with probability p (sharpened by temperature), seeded.
    Sample,
}

/// Every rule's parameters at once, as controls and flags hold them: switching
/// the rule keeps the others' settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RuleSettings {
    pub kind: RuleKind,
    pub vanish_proof: f64,
    pub vanish_inc: f64,
    pub threshold: f32,
    pub temperature: f32,
    pub rng_seed: u64,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            kind: RuleKind::Boost,
            vanish_proof: 0.65,
            vanish_inc: 1.001,
            threshold: 0.5,
            temperature: 1.0,
            rng_seed: 0,
        }
    }
}

impl RuleSettings {
    /// The rule these settings select.
    pub fn rule(&self) -> Rule {
        match self.kind {
            RuleKind::Boost => Rule::Boost {
                vanish_proof: self.vanish_proof,
                vanish_inc: self.vanish_inc,
            },
            RuleKind::Threshold => Rule::Threshold {
                threshold: self.threshold,
            },
            RuleKind::Sample => Rule::Sample {
                temperature: self.temperature,
                rng_seed: self.rng_seed,
            },
        }
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Steps to generate after the seed window.
    pub steps: usize,
    pub rule: Rule,
    /// Continuations computed together, one forward pass per step for all.
    pub variations: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            steps: 106,
            rule: Rule::ARTICLE,
            variations: 1,
        }
    }
}

/// Why generation could not start.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum GenerateError {
    /// The seed window reaches past the roll's end.
    #[error(
        "a {WINDOW_STEPS}-step seed window starting at step {start} needs {needed} steps, \
         but the roll has {steps}"
    )]
    SeedPastEnd {
        start: usize,
        needed: usize,
        steps: usize,
    },
    #[error("the number of steps to generate must be at least 1")]
    ZeroSteps,
    #[error("the number of variations must be at least 1")]
    ZeroVariations,
    /// A rule parameter that is NaN, infinite or out of range.
    #[error("{name} = {value} is not allowed: {expected}")]
    BadParameter {
        name: &'static str,
        value: f64,
        expected: &'static str,
    },
    /// The compute backend handed back something other than f32 probabilities.
    #[error("the compute backend returned unreadable output: {0}")]
    Backend(String),
    /// The model reads a different number of pitches than the roll has.
    #[error("the model reads {0} pitches per step, but piano rolls have {PITCH_COUNT}")]
    ModelPitches(usize),
}

/// One generated continuation.
#[derive(Clone, Debug, PartialEq)]
pub struct Continuation {
    /// The generated steps as pitch bitmasks (bit `r` = roll row `r`).
    pub steps: Vec<u128>,
    /// The model's raw output at each step, `[steps * 106]`, row-major by step.
    pub probabilities: Vec<f32>,
}

impl Continuation {
    /// The probabilities of one generated step.
    pub fn step_probabilities(&self, step: usize) -> &[f32] {
        &self.probabilities[step * PITCH_COUNT..(step + 1) * PITCH_COUNT]
    }
}

/// The 9 steps of `roll` starting at `start`, as pitch bitmasks.
pub fn seed_window(roll: &PianoRoll, start: usize) -> Result<[u128; WINDOW_STEPS], GenerateError> {
    let needed = start.saturating_add(WINDOW_STEPS);
    if needed > roll.steps() {
        return Err(GenerateError::SeedPastEnd {
            start,
            needed,
            steps: roll.steps(),
        });
    }
    let mut window = [0u128; WINDOW_STEPS];
    window.copy_from_slice(&roll.sounding_masks()[start..needed]);
    Ok(window)
}

fn check_options(options: &GenerateOptions) -> Result<(), GenerateError> {
    let bad = |name, value: f64, expected| {
        Err(GenerateError::BadParameter {
            name,
            value,
            expected,
        })
    };
    if options.steps == 0 {
        return Err(GenerateError::ZeroSteps);
    }
    if options.variations == 0 {
        return Err(GenerateError::ZeroVariations);
    }
    match options.rule {
        Rule::Boost { vanish_proof, .. } if !vanish_proof.is_finite() => {
            bad("vanish_proof", vanish_proof, "a finite number")
        }
        Rule::Boost { vanish_inc, .. } if !(vanish_inc.is_finite() && vanish_inc > 0.0) => {
            bad("vanish_inc", vanish_inc, "a finite number above 0")
        }
        Rule::Threshold { threshold } if !threshold.is_finite() => {
            bad("threshold", f64::from(threshold), "a finite number")
        }
        Rule::Sample { temperature, .. } if !(temperature.is_finite() && temperature > 0.0) => bad(
            "temperature",
            f64::from(temperature),
            "a finite number above 0",
        ),
        _ => Ok(()),
    }
}

/// What generation needs from a network: the next step's probabilities for a
/// batch of windows.
pub trait Predictor {
    /// Pitches per step the network reads and predicts.
    fn pitches(&self) -> usize;
    /// Writes `windows.len() * pitches` probabilities to `out`, window by window.
    fn predict(
        &mut self,
        windows: &[[u128; WINDOW_STEPS]],
        out: &mut Vec<f32>,
    ) -> Result<(), GenerateError>;
}

/// The burn model on its device: one forward pass per step for all windows.
#[derive(Debug)]
pub struct BurnPredictor<'a> {
    model: &'a SeedModel,
    device: Device,
    input: Vec<f32>,
}

impl<'a> BurnPredictor<'a> {
    pub fn new(model: &'a SeedModel, device: &Device) -> Self {
        Self {
            model,
            device: device.clone(),
            input: Vec::new(),
        }
    }
}

impl Predictor for BurnPredictor<'_> {
    fn pitches(&self) -> usize {
        self.model.pitches()
    }

    fn predict(
        &mut self,
        windows: &[[u128; WINDOW_STEPS]],
        out: &mut Vec<f32>,
    ) -> Result<(), GenerateError> {
        self.input
            .resize(windows.len() * WINDOW_STEPS * PITCH_COUNT, 0.0);
        for (window, chunk) in windows
            .iter()
            .zip(self.input.chunks_exact_mut(WINDOW_STEPS * PITCH_COUNT))
        {
            fill_window(window, chunk);
        }
        let x: Tensor<3> = Tensor::from_data(
            TensorData::new(
                self.input.clone(),
                [windows.len(), WINDOW_STEPS, PITCH_COUNT],
            ),
            &self.device,
        );
        *out = self
            .model
            .forward(x)
            .into_data()
            .try_into_vec()
            .map_err(|e| GenerateError::Backend(format!("{e:?}")))?;
        Ok(())
    }
}

/// The network's plain-Rust CPU copy (see `model::native`).
#[derive(Debug)]
pub struct NativePredictor<'a> {
    net: &'a NativeSeedNet,
    scratch: Scratch,
}

impl<'a> NativePredictor<'a> {
    pub fn new(net: &'a NativeSeedNet) -> Self {
        Self {
            net,
            scratch: Scratch::default(),
        }
    }
}

impl Predictor for NativePredictor<'_> {
    fn pitches(&self) -> usize {
        self.net.pitches()
    }

    fn predict(
        &mut self,
        windows: &[[u128; WINDOW_STEPS]],
        out: &mut Vec<f32>,
    ) -> Result<(), GenerateError> {
        out.resize(windows.len() * self.net.pitches(), 0.0);
        self.net.forward(windows, &mut self.scratch, out);
        Ok(())
    }
}

/// Continues `seed` (9 steps) with the burn `model` on `device`; see
/// [`generate_with`].
pub fn generate(
    model: &SeedModel,
    device: &Device,
    seed: &[u128; WINDOW_STEPS],
    options: &GenerateOptions,
) -> Result<Vec<Continuation>, GenerateError> {
    generate_with(&mut BurnPredictor::new(model, device), seed, options)
}

/// Continues `seed` with `model` where `selected` says: on the CPU through the
/// network's plain-Rust copy (same results, no per-operation overhead), on a
/// GPU through burn.
pub fn generate_on(
    model: &SeedModel,
    selected: &SelectedDevice,
    seed: &[u128; WINDOW_STEPS],
    options: &GenerateOptions,
) -> Result<Vec<Continuation>, GenerateError> {
    if selected.native_inference {
        let net =
            NativeSeedNet::from_model(model).map_err(|e| GenerateError::Backend(e.to_string()))?;
        generate_with(&mut NativePredictor::new(&net), seed, options)
    } else {
        generate(model, &selected.device, seed, options)
    }
}

/// Continues `seed` (9 steps) for `options.steps` steps, `options.variations`
/// times, asking `predictor` once per step for all variations. The same inputs
/// always give the same continuations.
pub fn generate_with(
    predictor: &mut dyn Predictor,
    seed: &[u128; WINDOW_STEPS],
    options: &GenerateOptions,
) -> Result<Vec<Continuation>, GenerateError> {
    check_options(options)?;
    if predictor.pitches() != PITCH_COUNT {
        return Err(GenerateError::ModelPitches(predictor.pitches()));
    }
    let variations = options.variations;
    let mut windows: Vec<[u128; WINDOW_STEPS]> = vec![*seed; variations];
    let mut results: Vec<Continuation> = (0..variations)
        .map(|_| Continuation {
            steps: Vec::with_capacity(options.steps),
            probabilities: Vec::with_capacity(options.steps * PITCH_COUNT),
        })
        .collect();
    let mut rngs: Vec<StdRng> = (0..variations as u64)
        .map(|i| match options.rule {
            Rule::Sample { rng_seed, .. } => StdRng::seed_from_u64(rng_seed.wrapping_add(i)),
            _ => StdRng::seed_from_u64(i),
        })
        .collect();
    let mut boost = match options.rule {
        Rule::Boost { vanish_proof, .. } => vanish_proof,
        _ => 0.0,
    };
    let mut probabilities = Vec::with_capacity(variations * PITCH_COUNT);

    for _ in 0..options.steps {
        predictor.predict(&windows, &mut probabilities)?;
        for (v, p) in probabilities.chunks_exact(PITCH_COUNT).enumerate() {
            let mut mask = 0u128;
            for (row, &p) in p.iter().enumerate() {
                let on = match options.rule {
                    // As the article's numpy does: the boost (a Python
                    // float) is rounded to f32 and added in f32.
                    Rule::Boost { .. } => p + boost as f32 >= 1.0,
                    Rule::Threshold { threshold } => p >= threshold,
                    Rule::Sample { temperature, .. } => {
                        rngs[v].random::<f32>() < sharpen(p, temperature)
                    }
                };
                if on {
                    mask |= 1u128 << row;
                }
            }
            let result = &mut results[v];
            result.steps.push(mask);
            result.probabilities.extend_from_slice(p);
            windows[v].copy_within(1.., 0);
            windows[v][WINDOW_STEPS - 1] = mask;
        }
        if let Rule::Boost { vanish_inc, .. } = options.rule {
            boost *= vanish_inc;
        }
    }
    Ok(results)
}

/// Writes a window of bitmasks as 0/1 floats, `[9, 106]` row-major.
fn fill_window(window: &[u128; WINDOW_STEPS], out: &mut [f32]) {
    for (&mask, row) in window.iter().zip(out.chunks_exact_mut(PITCH_COUNT)) {
        mask_to_floats(mask, row);
    }
}

/// `p` with its logit divided by `temperature`.
fn sharpen(p: f32, temperature: f32) -> f32 {
    if temperature == 1.0 {
        return p;
    }
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    let logit = (p / (1.0 - p)).ln() / temperature;
    1.0 / (1.0 + (-logit).exp())
}
