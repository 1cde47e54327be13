//! Continuing a roll: feed the network the seed, turn its probabilities into
//! the next step with a rule, feed that step back, repeat. A window network
//! (the article's) reads the last 9 steps each time; a recurrent one (the roll
//! LSTM) carries its state, so it hears everything since the seed began.
//!
//! The article's rule is [`Rule::Boost`]: its trained model never outputs much
//! more than 0.6, so plain rounding gives silence, and silence fed back makes
//! the music fade ("vanish"). It adds a boost that grows each step: a pitch
//! sounds iff `p + vanish_proof * vanish_inc^k >= 1` at step `k`.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use crate::device::SelectedDevice;
use crate::limits::{self, OutOfRange};
use crate::model::native::{NativeArticleNet, NativeRollNet, RollState, Scratch};
use crate::model::{Architecture, ArticleNet, LstmState, Network, RollLstm, WINDOW_STEPS};
use crate::rng::{SeededRng, seeded, unit_f32};
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

impl RuleKind {
    /// The rule a network of `architecture` is meant to be used with: the
    /// article's network needs its boost; the roll LSTM's probabilities
    /// are calibrated, so drawing from them gives the music's own density and
    /// note lengths (README, "Measuring the music"), where a threshold holds
    /// notes or, at 0.5, falls silent.
    pub fn default_for(architecture: Architecture) -> Self {
        match architecture {
            Architecture::Article => Self::Boost,
            Architecture::RollLstm => Self::Sample,
        }
    }
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
    /// Steps, variations or a rule parameter out of its range (or NaN).
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
    /// The compute backend handed back something other than f32 probabilities.
    #[error("the compute backend returned unreadable output: {0}")]
    Backend(String),
    /// Asked to stop before it was done.
    #[error("generation was stopped before it was done")]
    Stopped,
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

/// Steps of music before a seed window's end that a recurrent network hears
/// before continuing: the length of its training stretches, so it is never
/// asked to remember further back than it learnt to.
pub const CONTEXT_STEPS: usize = 64;

/// The seed window at `start` with up to [`CONTEXT_STEPS`] steps before its
/// end: what [`generate_with`] continues. A window network reads only the
/// last 9 of them; a recurrent one hears them all.
pub fn seed_context(roll: &PianoRoll, start: usize) -> Result<&[u128], GenerateError> {
    seed_window(roll, start)?;
    let end = start + WINDOW_STEPS;
    Ok(&roll.sounding_masks()[end.saturating_sub(CONTEXT_STEPS)..end])
}

fn check_options(options: &GenerateOptions) -> Result<(), GenerateError> {
    limits::GENERATE_STEPS.check(options.steps)?;
    limits::VARIATIONS.check(options.variations)?;
    match options.rule {
        Rule::Boost {
            vanish_proof,
            vanish_inc,
        } => {
            limits::VANISH_PROOF.check(vanish_proof)?;
            limits::VANISH_INC.check(vanish_inc)?;
        }
        Rule::Threshold { threshold } => {
            limits::THRESHOLD.check(threshold)?;
        }
        Rule::Sample { temperature, .. } => {
            limits::TEMPERATURE.check(temperature)?;
        }
    }
    Ok(())
}

/// What generation and evaluation need from a network: sequences of steps it
/// extends one step at a time, and the next step's probabilities for each.
/// Window networks (the seed) look at the last 9 steps; recurrent ones carry
/// a state over everything fed so far.
pub trait Predictor {
    /// Pitches per step the network reads and predicts.
    fn pitches(&self) -> usize;
    /// Begins one sequence per seed, replacing any before. Seeds of different
    /// lengths are aligned at their ends, shorter ones led in by silence.
    fn start(&mut self, seeds: &[&[u128]]) -> Result<(), GenerateError>;
    /// Writes the next step's probabilities of every sequence to `out`
    /// (`sequences * pitches`, sequence by sequence).
    fn predict(&mut self, out: &mut Vec<f32>) -> Result<(), GenerateError>;
    /// Appends one step (a pitch bitmask) to each sequence.
    fn advance(&mut self, steps: &[u128]) -> Result<(), GenerateError>;
}

/// Each seed left-padded with silence to the longest: `[longest]` steps per
/// seed, seed by seed.
fn aligned_seeds(seeds: &[&[u128]]) -> (usize, Vec<u128>) {
    let longest = seeds.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut steps = vec![0u128; seeds.len() * longest];
    for (seed, row) in seeds.iter().zip(steps.chunks_exact_mut(longest.max(1))) {
        row[longest - seed.len()..].copy_from_slice(seed);
    }
    (longest, steps)
}

fn backend_error(error: impl std::fmt::Debug) -> GenerateError {
    GenerateError::Backend(format!("{error:?}"))
}

/// A network that reads a window of the last [`WINDOW_STEPS`] steps.
pub trait WindowNet {
    fn pitches(&self) -> usize;
    /// Writes the next step's probabilities for each window to `out`.
    fn predict_windows(
        &mut self,
        windows: &[[u128; WINDOW_STEPS]],
        out: &mut Vec<f32>,
    ) -> Result<(), GenerateError>;
}

/// A window network as a [`Predictor`]: each sequence is its last 9 steps.
#[derive(Debug)]
pub struct Windowed<N> {
    net: N,
    windows: Vec<[u128; WINDOW_STEPS]>,
}

impl<N: WindowNet> Predictor for Windowed<N> {
    fn pitches(&self) -> usize {
        self.net.pitches()
    }

    fn start(&mut self, seeds: &[&[u128]]) -> Result<(), GenerateError> {
        self.windows.clear();
        self.windows.extend(seeds.iter().map(|seed| {
            let mut window = [0u128; WINDOW_STEPS];
            let kept = seed.len().min(WINDOW_STEPS);
            window[WINDOW_STEPS - kept..].copy_from_slice(&seed[seed.len() - kept..]);
            window
        }));
        Ok(())
    }

    fn predict(&mut self, out: &mut Vec<f32>) -> Result<(), GenerateError> {
        self.net.predict_windows(&self.windows, out)
    }

    fn advance(&mut self, steps: &[u128]) -> Result<(), GenerateError> {
        for (window, &step) in self.windows.iter_mut().zip(steps) {
            window.copy_within(1.., 0);
            window[WINDOW_STEPS - 1] = step;
        }
        Ok(())
    }
}

/// The article's network on its burn device: one forward pass per step for all
/// windows.
#[derive(Debug)]
pub struct BurnArticleNet<'a> {
    model: &'a ArticleNet,
    device: Device,
    input: Vec<f32>,
}

/// [`BurnArticleNet`] as a predictor.
pub type BurnPredictor<'a> = Windowed<BurnArticleNet<'a>>;

impl<'a> Windowed<BurnArticleNet<'a>> {
    pub fn new(model: &'a ArticleNet, device: &Device) -> Self {
        Self {
            net: BurnArticleNet {
                model,
                device: device.clone(),
                input: Vec::new(),
            },
            windows: Vec::new(),
        }
    }
}

impl WindowNet for BurnArticleNet<'_> {
    fn pitches(&self) -> usize {
        self.model.pitches()
    }

    fn predict_windows(
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
            fill_steps(window, chunk);
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
            .map_err(backend_error)?;
        Ok(())
    }
}

/// The article's network's plain-Rust CPU copy (see `model::native`).
#[derive(Debug)]
pub struct NativeArticleWindows<'a> {
    net: &'a NativeArticleNet,
    scratch: Scratch,
}

/// [`NativeArticleWindows`] as a predictor.
pub type NativePredictor<'a> = Windowed<NativeArticleWindows<'a>>;

impl<'a> Windowed<NativeArticleWindows<'a>> {
    pub fn new(net: &'a NativeArticleNet) -> Self {
        Self {
            net: NativeArticleWindows {
                net,
                scratch: Scratch::default(),
            },
            windows: Vec::new(),
        }
    }
}

impl WindowNet for NativeArticleWindows<'_> {
    fn pitches(&self) -> usize {
        self.net.pitches()
    }

    fn predict_windows(
        &mut self,
        windows: &[[u128; WINDOW_STEPS]],
        out: &mut Vec<f32>,
    ) -> Result<(), GenerateError> {
        out.resize(windows.len() * self.net.pitches(), 0.0);
        self.net.forward(windows, &mut self.scratch, out);
        Ok(())
    }
}

/// The roll LSTM on its burn device, its state carried between steps.
#[derive(Debug)]
pub struct BurnRollPredictor<'a> {
    model: &'a RollLstm,
    device: Device,
    state: Option<LstmState>,
    /// Logits of the next step, `[sequences, pitches]`.
    next: Option<Tensor<2>>,
    input: Vec<f32>,
}

impl<'a> BurnRollPredictor<'a> {
    pub fn new(model: &'a RollLstm, device: &Device) -> Self {
        Self {
            model,
            device: device.clone(),
            state: None,
            next: None,
            input: Vec::new(),
        }
    }

    /// Runs `steps` (`[sequences, time]` masks, row-major) from the state.
    fn feed(&mut self, sequences: usize, time: usize, steps: &[u128]) {
        self.input.resize(steps.len() * PITCH_COUNT, 0.0);
        fill_steps(steps, &mut self.input);
        let x: Tensor<3> = Tensor::from_data(
            TensorData::new(self.input.clone(), [sequences, time, PITCH_COUNT]),
            &self.device,
        );
        let (logits, state) = self.model.logits_from(x, self.state.take());
        self.state = state;
        self.next = Some(
            logits
                .narrow(1, time - 1, 1)
                .reshape([sequences, self.model.pitches()]),
        );
    }
}

impl Predictor for BurnRollPredictor<'_> {
    fn pitches(&self) -> usize {
        self.model.pitches()
    }

    fn start(&mut self, seeds: &[&[u128]]) -> Result<(), GenerateError> {
        self.state = None;
        self.next = None;
        let (longest, steps) = aligned_seeds(seeds);
        if longest > 0 && !seeds.is_empty() {
            self.feed(seeds.len(), longest, &steps);
        }
        Ok(())
    }

    fn predict(&mut self, out: &mut Vec<f32>) -> Result<(), GenerateError> {
        let Some(logits) = &self.next else {
            return Err(GenerateError::Backend(
                "the roll LSTM was asked for a step before it was given any".to_owned(),
            ));
        };
        *out = sigmoid(logits.clone())
            .into_data()
            .try_into_vec()
            .map_err(backend_error)?;
        Ok(())
    }

    fn advance(&mut self, steps: &[u128]) -> Result<(), GenerateError> {
        self.feed(steps.len(), 1, steps);
        Ok(())
    }
}

/// The roll LSTM's plain-Rust CPU copy (see `model::native`).
#[derive(Debug)]
pub struct NativeRollPredictor<'a> {
    net: &'a NativeRollNet,
    state: RollState,
    column: Vec<u128>,
}

impl<'a> NativeRollPredictor<'a> {
    pub fn new(net: &'a NativeRollNet) -> Self {
        Self {
            net,
            state: RollState::default(),
            column: Vec::new(),
        }
    }
}

impl Predictor for NativeRollPredictor<'_> {
    fn pitches(&self) -> usize {
        self.net.pitches()
    }

    fn start(&mut self, seeds: &[&[u128]]) -> Result<(), GenerateError> {
        self.net.reset(&mut self.state, seeds.len());
        let (longest, steps) = aligned_seeds(seeds);
        for t in 0..longest {
            self.column.clear();
            self.column
                .extend(steps.chunks_exact(longest).map(|seed| seed[t]));
            self.net.advance(&mut self.state, &self.column);
        }
        Ok(())
    }

    fn predict(&mut self, out: &mut Vec<f32>) -> Result<(), GenerateError> {
        out.resize(self.state.sequences(self.net) * self.net.pitches(), 0.0);
        self.net.predict(&self.state, out);
        Ok(())
    }

    fn advance(&mut self, steps: &[u128]) -> Result<(), GenerateError> {
        self.net.advance(&mut self.state, steps);
        Ok(())
    }
}

/// A network ready to predict on the CPU or a GPU: the plain-Rust copy on
/// the CPU (same results, no per-operation overhead), burn on a GPU.
#[derive(Debug)]
pub enum Runner<'a> {
    ArticleBurn(&'a ArticleNet, Device),
    ArticleNative(Box<NativeArticleNet>),
    RollBurn(&'a RollLstm, Device),
    RollNative(Box<NativeRollNet>),
}

impl<'a> Runner<'a> {
    /// Prepares `network` for `selected`.
    pub fn new(network: &'a Network, selected: &SelectedDevice) -> Result<Self, GenerateError> {
        let copy_error =
            |e: crate::model::native::NativeCopyError| GenerateError::Backend(e.to_string());
        Ok(match (network, selected.native_inference) {
            (Network::Article(model), true) => Self::ArticleNative(Box::new(
                NativeArticleNet::from_model(model).map_err(copy_error)?,
            )),
            (Network::Article(model), false) => Self::ArticleBurn(model, selected.device.clone()),
            (Network::RollLstm(model), true) => Self::RollNative(Box::new(
                NativeRollNet::from_model(model).map_err(copy_error)?,
            )),
            (Network::RollLstm(model), false) => Self::RollBurn(model, selected.device.clone()),
        })
    }

    /// A predictor over this network.
    pub fn predictor(&self) -> Box<dyn Predictor + '_> {
        match self {
            Self::ArticleBurn(model, device) => Box::new(BurnPredictor::new(model, device)),
            Self::ArticleNative(net) => Box::new(NativePredictor::new(net)),
            Self::RollBurn(model, device) => Box::new(BurnRollPredictor::new(model, device)),
            Self::RollNative(net) => Box::new(NativeRollPredictor::new(net)),
        }
    }
}

/// Continues `seed` with `network` through burn on `device`; see
/// [`generate_with`].
pub fn generate(
    network: &Network,
    device: &Device,
    seed: &[u128],
    options: &GenerateOptions,
) -> Result<Vec<Continuation>, GenerateError> {
    match network {
        Network::Article(model) => {
            generate_with(&mut BurnPredictor::new(model, device), seed, options)
        }
        Network::RollLstm(model) => {
            generate_with(&mut BurnRollPredictor::new(model, device), seed, options)
        }
    }
}

/// Continues `seed` with `network` where `selected` says; see
/// [`generate_with`].
pub fn generate_on(
    network: &Network,
    selected: &SelectedDevice,
    seed: &[u128],
    options: &GenerateOptions,
) -> Result<Vec<Continuation>, GenerateError> {
    generate_on_until(network, selected, seed, options, &|| false)
}

/// [`generate_on`] that gives up with [`GenerateError::Stopped`] as soon as
/// `stop` says so (checked before each step): a request a newer one has
/// replaced, an app closing.
pub fn generate_on_until(
    network: &Network,
    selected: &SelectedDevice,
    seed: &[u128],
    options: &GenerateOptions,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<Continuation>, GenerateError> {
    let runner = Runner::new(network, selected)?;
    generate_until(runner.predictor().as_mut(), seed, options, stop)
}

/// Continues `seed` for `options.steps` steps, `options.variations` times,
/// asking `predictor` once per step for all variations. The same inputs
/// always give the same continuations.
pub fn generate_with(
    predictor: &mut dyn Predictor,
    seed: &[u128],
    options: &GenerateOptions,
) -> Result<Vec<Continuation>, GenerateError> {
    generate_until(predictor, seed, options, &|| false)
}

fn generate_until(
    predictor: &mut dyn Predictor,
    seed: &[u128],
    options: &GenerateOptions,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<Continuation>, GenerateError> {
    check_options(options)?;
    if predictor.pitches() != PITCH_COUNT {
        return Err(GenerateError::ModelPitches(predictor.pitches()));
    }
    let variations = options.variations;
    predictor.start(&vec![seed; variations])?;
    let mut results: Vec<Continuation> = (0..variations)
        .map(|_| Continuation {
            steps: Vec::with_capacity(options.steps),
            probabilities: Vec::with_capacity(options.steps * PITCH_COUNT),
        })
        .collect();
    let mut rngs: Vec<SeededRng> = (0..variations as u64)
        .map(|i| match options.rule {
            Rule::Sample { rng_seed, .. } => seeded(rng_seed.wrapping_add(i)),
            _ => seeded(i),
        })
        .collect();
    let mut boost = match options.rule {
        Rule::Boost { vanish_proof, .. } => vanish_proof,
        _ => 0.0,
    };
    let mut probabilities = Vec::with_capacity(variations * PITCH_COUNT);
    let mut chosen = vec![0u128; variations];

    for _ in 0..options.steps {
        if stop() {
            return Err(GenerateError::Stopped);
        }
        predictor.predict(&mut probabilities)?;
        for (v, p) in probabilities.chunks_exact(PITCH_COUNT).enumerate() {
            let mut mask = 0u128;
            for (row, &p) in p.iter().enumerate() {
                let on = match options.rule {
                    // As the article's numpy does: the boost (a Python
                    // float) is rounded to f32 and added in f32.
                    Rule::Boost { .. } => p + boost as f32 >= 1.0,
                    Rule::Threshold { threshold } => p >= threshold,
                    Rule::Sample { temperature, .. } => {
                        unit_f32(&mut rngs[v]) < sharpen(p, temperature)
                    }
                };
                if on {
                    mask |= 1u128 << row;
                }
            }
            let result = &mut results[v];
            result.steps.push(mask);
            result.probabilities.extend_from_slice(p);
            chosen[v] = mask;
        }
        predictor.advance(&chosen)?;
        if let Rule::Boost { vanish_inc, .. } = options.rule {
            boost *= vanish_inc;
        }
    }
    Ok(results)
}

/// Writes steps given as bitmasks as 0/1 floats, `[steps, 106]` row-major.
fn fill_steps(steps: &[u128], out: &mut [f32]) {
    for (&mask, row) in steps.iter().zip(out.chunks_exact_mut(PITCH_COUNT)) {
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
