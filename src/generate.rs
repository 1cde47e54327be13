//! Continuing a roll: feed the network the seed, turn its probabilities into
//! the next step with a rule, feed that step back, repeat. A window network
//! (the article's) reads the last 9 steps each time; a recurrent one (the roll
//! LSTM) carries its state, so it hears everything since the seed began.
//!
//! The article's rule is [`Rule::Boost`]: its trained model never outputs much
//! more than 0.6, so plain rounding gives silence, and silence fed back makes
//! the music fade ("vanish"). It adds a boost that grows each step: a pitch
//! sounds iff `p + vanish_proof * vanish_inc^k >= 1` at step `k`.

use std::collections::BTreeMap;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use crate::device::SelectedDevice;
use crate::limits::{self, OutOfRange};
use crate::meter::Meter;
use crate::model::native::{
    ComposerState, NativeArticleNet, NativeComposer, NativeRollNet, RollState, Scratch,
};
use crate::model::{Architecture, ArticleNet, LstmState, Network, RollLstm, WINDOW_STEPS};
use crate::rng::{SeededRng, seeded, unit_f32};
use crate::roll::{PITCH_COUNT, PianoRoll, RollError, mask_to_floats};

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

    /// Which rule this is.
    pub fn kind(&self) -> RuleKind {
        match self {
            Rule::Boost { .. } => RuleKind::Boost,
            Rule::Threshold { .. } => RuleKind::Threshold,
            Rule::Sample { .. } => RuleKind::Sample,
        }
    }
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
            Architecture::RollLstm | Architecture::Composer => Self::Sample,
        }
    }

    /// Whether the rule draws at random. The others decide every note the
    /// same way each time, so their variations would be one roll repeated.
    pub fn draws_at_random(self) -> bool {
        self == Self::Sample
    }

    /// The rule's name, as `--rule` takes it.
    pub fn name(self) -> String {
        use clap::ValueEnum as _;
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |value| value.get_name().to_owned())
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
    /// Filling asked of a network that only continues.
    #[error(
        "the {0} network only continues what comes before; filling a gap from both sides \
         needs the composer (the shipped jsb model, or one trained with --arch composer)"
    )]
    CannotFill(&'static str),
    /// A fill's steps run past the music after the gap.
    #[error("{steps} steps from step {first} run past the gap's end at step {gap_end}")]
    PastGapEnd {
        first: usize,
        steps: usize,
        gap_end: usize,
    },
    /// A fill range that is empty or leaves the roll.
    #[error("cannot fill steps {start}..{end} of a roll of {steps} steps")]
    BadFillRange {
        start: usize,
        end: usize,
        steps: usize,
    },
}

/// Where generated steps lie in the music: the meter, the first generated
/// step's index in the piece, and, when filling a gap, the music after it.
/// Networks that do not hear the beat ignore the meter; only the composer
/// can use the music after.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Placement<'a> {
    pub meter: Meter,
    /// Index (from the piece's start) of the first generated step.
    pub first_step: usize,
    pub after: Option<After<'a>>,
}

/// The music after a gap: its steps, the first of them at step `at`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct After<'a> {
    pub steps: &'a [u128],
    pub at: usize,
}

/// What generated notes must obey, applied while each step is drawn (a cell
/// a constraint decides is set before the network decides the pitches above
/// it, so the rest of the step fits around it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Constraints {
    /// Rows that may sound (a scale and a pitch range); `None`: all.
    pub allowed: Option<u128>,
    /// Cells that must sound, by step index in the piece.
    pub sounding: BTreeMap<usize, u128>,
    /// Cells that must stay silent, by step index in the piece.
    pub silent: BTreeMap<usize, u128>,
    /// Notes per step to steer towards.
    pub density: Option<f32>,
}

impl Constraints {
    /// Whether these constrain nothing.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_none()
            && self.sounding.is_empty()
            && self.silent.is_empty()
            && self.density.is_none()
    }

    /// Locks the notes of `roll` to sound where they sound.
    pub fn lock_notes_of(&mut self, roll: &PianoRoll) {
        for (step, &mask) in roll.sounding_masks().iter().enumerate() {
            if mask != 0 {
                *self.sounding.entry(step).or_default() |= mask;
            }
        }
    }

    /// (must sound, must stay silent) at `step`; a cell locked to sound
    /// sounds even where the scale or range would silence it.
    fn at(&self, step: usize) -> (u128, u128) {
        let on = self.sounding.get(&step).copied().unwrap_or(0);
        let mut off = self.silent.get(&step).copied().unwrap_or(0);
        if let Some(allowed) = self.allowed {
            off |= !allowed;
        }
        (on, off & !on)
    }
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
    /// `roll` with steps `start..` replaced by these (as many as there are),
    /// every other cell as it was. A note the passage cuts at either end
    /// starts anew where it sounds again.
    pub fn written_into(&self, roll: &PianoRoll, start: usize) -> Result<PianoRoll, RollError> {
        let mut sounding = roll.sounding_masks().to_vec();
        let mut onsets = roll.onset_masks().to_vec();
        let end = (start + self.steps.len()).min(sounding.len());
        let start = start.min(end);
        sounding[start..end].copy_from_slice(&self.steps[..end - start]);
        onsets[start..end].fill(0);
        roll.with_cells(sounding, onsets)
    }

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

    /// Says where the steps to predict lie, before [`start`](Self::start).
    /// Networks that hear neither the beat nor the music after a gap ignore
    /// the meter and refuse a gap.
    fn place(&mut self, placement: &Placement<'_>) -> Result<(), GenerateError> {
        match placement.after {
            Some(_) => Err(GenerateError::CannotFill(self.name())),
            None => Ok(()),
        }
    }

    /// The network's name, for messages.
    fn name(&self) -> &'static str;

    /// A fresh predictor over the same network, for a share of the
    /// variations on another core; `None` where one device (burn's) runs
    /// them all at once.
    fn fork(&self) -> Option<Box<dyn Predictor + Send + '_>> {
        None
    }

    /// Decides the next step of every sequence: `deciders[sequence]` says
    /// whether each row sounds given its probability. A network with
    /// independent outputs asks about every row at once; a joint one gives
    /// each row's probability given the rows already decided below it.
    /// Writes the chosen masks and the probabilities it asked with.
    fn draw(
        &mut self,
        deciders: &mut [RowDecider],
        chosen: &mut [u128],
        probabilities: &mut Vec<f32>,
    ) -> Result<(), GenerateError> {
        self.predict(probabilities)?;
        let pitches = self.pitches();
        for ((p, mask), decider) in probabilities
            .chunks_exact(pitches)
            .zip(chosen.iter_mut())
            .zip(deciders)
        {
            *mask = 0;
            for (row, &p) in p.iter().enumerate() {
                if decider.decide(row, p) {
                    *mask |= 1u128 << row;
                }
            }
        }
        Ok(())
    }

    /// Each row's probability of sounding at the next step given the rows
    /// below it as they are in `truth` (one step per sequence): what scores
    /// a known step by the chain rule. Independent outputs need no truth.
    fn conditionals(&mut self, truth: &[u128], out: &mut Vec<f32>) -> Result<(), GenerateError> {
        let _ = truth;
        self.predict(out)
    }
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

/// The seeds to feed: only the first when all are the same (the usual
/// case, variations of one request), whose state is then copied, else all.
fn distinct_seeds<'s>(seeds: &'s [&'s [u128]]) -> &'s [&'s [u128]] {
    if seeds.windows(2).all(|pair| pair[0] == pair[1]) {
        &seeds[..seeds.len().min(1)]
    } else {
        seeds
    }
}

/// Hands `feed` the aligned seeds a step at a time: the step of every seed
/// (a column), its index and the longest seed's length.
fn feed_seed_steps(
    seeds: &[&[u128]],
    column: &mut Vec<u128>,
    mut feed: impl FnMut(&[u128], usize, usize),
) {
    let (longest, steps) = aligned_seeds(seeds);
    for t in 0..longest {
        column.clear();
        column.extend(steps.chunks_exact(longest).map(|seed| seed[t]));
        feed(column, t, longest);
    }
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

    /// A fresh predictor over the same network for a share of the
    /// variations on another core (see [`Predictor::fork`]).
    fn fork(&self) -> Option<Box<dyn Predictor + Send + '_>> {
        None
    }
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

    fn name(&self) -> &'static str {
        "article's"
    }

    fn fork(&self) -> Option<Box<dyn Predictor + Send + '_>> {
        self.net.fork()
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

    fn fork(&self) -> Option<Box<dyn Predictor + Send + '_>> {
        Some(Box::new(NativePredictor::new(self.net)))
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

    fn name(&self) -> &'static str {
        "roll LSTM"
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

    fn name(&self) -> &'static str {
        "roll LSTM"
    }

    fn fork(&self) -> Option<Box<dyn Predictor + Send + '_>> {
        Some(Box::new(NativeRollPredictor::new(self.net)))
    }

    fn start(&mut self, seeds: &[&[u128]]) -> Result<(), GenerateError> {
        let fed = distinct_seeds(seeds);
        self.net.reset(&mut self.state, fed.len());
        let (net, state) = (self.net, &mut self.state);
        feed_seed_steps(fed, &mut self.column, |column, _, _| {
            net.advance(state, column);
        });
        if fed.len() < seeds.len() {
            self.net.replicate(&mut self.state, seeds.len());
        }
        Ok(())
    }

    fn predict(&mut self, out: &mut Vec<f32>) -> Result<(), GenerateError> {
        out.resize(self.net.sequences(&self.state) * self.net.pitches(), 0.0);
        self.net.predict(&self.state, out);
        Ok(())
    }

    fn advance(&mut self, steps: &[u128]) -> Result<(), GenerateError> {
        self.net.advance(&mut self.state, steps);
        Ok(())
    }
}

/// The composer's plain-Rust copy (see `model::native`), on every device:
/// its steps are drawn pitch by pitch.
#[derive(Debug)]
pub struct NativeComposerPredictor<'a> {
    net: &'a NativeComposer,
    state: ComposerState,
    meter: Meter,
    /// Index in the piece of the step to predict next.
    next: usize,
    column: Vec<u128>,
    /// Chosen steps nobody asked for (scoring, plain prediction).
    scratch: Vec<u128>,
}

impl<'a> NativeComposerPredictor<'a> {
    pub fn new(net: &'a NativeComposer) -> Self {
        Self {
            net,
            state: ComposerState::default(),
            meter: Meter::default(),
            next: 0,
            column: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

impl Predictor for NativeComposerPredictor<'_> {
    fn pitches(&self) -> usize {
        self.net.pitches()
    }

    fn name(&self) -> &'static str {
        "composer"
    }

    fn fork(&self) -> Option<Box<dyn Predictor + Send + '_>> {
        Some(Box::new(NativeComposerPredictor::new(self.net)))
    }

    fn place(&mut self, placement: &Placement<'_>) -> Result<(), GenerateError> {
        self.meter = placement.meter;
        self.next = placement.first_step;
        self.net.forget_after(&mut self.state);
        if let Some(after) = placement.after {
            if after.at < placement.first_step {
                return Err(GenerateError::PastGapEnd {
                    first: placement.first_step,
                    steps: 1,
                    gap_end: after.at,
                });
            }
            self.net
                .hear_after(&mut self.state, after.steps, after.at, self.meter);
        }
        Ok(())
    }

    /// Seeds end just before the placed first step.
    fn start(&mut self, seeds: &[&[u128]]) -> Result<(), GenerateError> {
        let fed = distinct_seeds(seeds);
        self.net.reset(&mut self.state, fed.len());
        let (net, state, meter, next) = (self.net, &mut self.state, self.meter, self.next);
        feed_seed_steps(fed, &mut self.column, |column, t, longest| {
            // Seed step t lies at next - longest + t; it comes with the
            // meter of the step after it.
            let after = meter.wrap(next as i64 - longest as i64 + t as i64 + 1);
            net.advance(state, column, after, meter);
        });
        if fed.len() < seeds.len() {
            self.net.replicate(&mut self.state, seeds.len());
        }
        Ok(())
    }

    /// Each row's probability given the likelier choice at every row below.
    fn predict(&mut self, out: &mut Vec<f32>) -> Result<(), GenerateError> {
        let mut likelier = vec![(); self.net.sequences(&self.state)];
        self.chain(&mut likelier, &|_, _, p| p >= 0.5, None, out);
        Ok(())
    }

    fn draw(
        &mut self,
        deciders: &mut [RowDecider],
        chosen: &mut [u128],
        probabilities: &mut Vec<f32>,
    ) -> Result<(), GenerateError> {
        self.chain(
            deciders,
            &|decider, row, p| decider.decide(row, p),
            Some(chosen),
            probabilities,
        );
        Ok(())
    }

    fn conditionals(&mut self, truth: &[u128], out: &mut Vec<f32>) -> Result<(), GenerateError> {
        let mut truth: Vec<u128> = (0..self.net.sequences(&self.state))
            .map(|s| truth.get(s).copied().unwrap_or(0))
            .collect();
        self.chain(
            &mut truth,
            &|truth, row, _| *truth >> row & 1 == 1,
            None,
            out,
        );
        Ok(())
    }

    fn advance(&mut self, steps: &[u128]) -> Result<(), GenerateError> {
        self.next += 1;
        self.net
            .advance(&mut self.state, steps, self.next, self.meter);
        Ok(())
    }
}

impl NativeComposerPredictor<'_> {
    /// Decides the next step of every sequence pitch by pitch, into `chosen`
    /// (or scratch when the caller wants only the probabilities). Sequences
    /// without a decider, or beyond a too short `chosen`, get nothing.
    fn chain<D>(
        &mut self,
        deciders: &mut [D],
        decide: &impl Fn(&mut D, usize, f32) -> bool,
        chosen: Option<&mut [u128]>,
        probabilities: &mut Vec<f32>,
    ) {
        let sequences = self.net.sequences(&self.state);
        probabilities.resize(sequences * self.net.pitches(), 0.0);
        self.scratch.resize(sequences, 0);
        let chosen = match chosen {
            Some(chosen) if chosen.len() >= sequences => chosen,
            _ => &mut self.scratch[..],
        };
        self.net.chain(
            &mut self.state,
            self.next,
            self.meter,
            deciders,
            decide,
            chosen,
            probabilities,
        );
    }
}

/// A network ready to predict on the CPU or a GPU: the plain-Rust copy on
/// the CPU (same results, no per-operation overhead), burn on a GPU. The
/// composer always runs its plain-Rust copy.
#[derive(Debug)]
pub enum Runner<'a> {
    ArticleBurn(&'a ArticleNet, Device),
    ArticleNative(Box<NativeArticleNet>),
    RollBurn(&'a RollLstm, Device),
    RollNative(Box<NativeRollNet>),
    ComposerNative(Box<NativeComposer>),
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
            (Network::Composer(model), _) => Self::ComposerNative(Box::new(
                NativeComposer::from_model(model).map_err(copy_error)?,
            )),
        })
    }

    /// A predictor over this network.
    pub fn predictor(&self) -> Box<dyn Predictor + '_> {
        match self {
            Self::ArticleBurn(model, device) => Box::new(BurnPredictor::new(model, device)),
            Self::ArticleNative(net) => Box::new(NativePredictor::new(net)),
            Self::RollBurn(model, device) => Box::new(BurnRollPredictor::new(model, device)),
            Self::RollNative(net) => Box::new(NativeRollPredictor::new(net)),
            Self::ComposerNative(net) => Box::new(NativeComposerPredictor::new(net)),
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
        Network::Composer(model) => {
            let net = NativeComposer::from_model(model)
                .map_err(|e| GenerateError::Backend(e.to_string()))?;
            generate_with(&mut NativeComposerPredictor::new(&net), seed, options)
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
    let placement = Placement {
        first_step: seed.len(),
        ..Placement::default()
    };
    let runner = Runner::new(network, selected)?;
    compose(
        runner.predictor().as_mut(),
        seed,
        &placement,
        &Constraints::default(),
        options,
        &|| false,
    )
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
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Continuation>, GenerateError> {
    let placement = Placement {
        first_step: seed.len(),
        ..Placement::default()
    };
    compose(
        predictor,
        seed,
        &placement,
        &Constraints::default(),
        options,
        stop,
    )
}

/// Generates `options.steps` steps after `seed`, placed as `placement` says
/// (the meter, where they start, the music after a gap) and bound by
/// `constraints`, `options.variations` times, asking `predictor` once per
/// step for all variations. The same inputs always give the same result.
pub fn compose(
    predictor: &mut dyn Predictor,
    seed: &[u128],
    placement: &Placement<'_>,
    constraints: &Constraints,
    options: &GenerateOptions,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Continuation>, GenerateError> {
    check_options(options)?;
    if let Some(density) = constraints.density {
        limits::DENSITY.check(density)?;
    }
    if predictor.pitches() != PITCH_COUNT {
        return Err(GenerateError::ModelPitches(predictor.pitches()));
    }
    if let Some(after) = placement.after
        && placement.first_step + options.steps > after.at
    {
        return Err(GenerateError::PastGapEnd {
            first: placement.first_step,
            steps: options.steps,
            gap_end: after.at,
        });
    }
    let lanes = variation_lanes(options.variations);
    if lanes > 1
        && let Some(forks) = (0..lanes)
            .map(|_| predictor.fork())
            .collect::<Option<Vec<_>>>()
    {
        return compose_in_lanes(forks, seed, placement, constraints, options, stop);
    }
    let all = Lane {
        first_variation: 0,
        variations: options.variations,
    };
    compose_lane(predictor, seed, placement, constraints, options, all, stop)
}

/// Variations `first_variation..first_variation + variations` of a request.
#[derive(Clone, Copy, Debug)]
struct Lane {
    first_variation: usize,
    variations: usize,
}

/// How many cores share `variations` variations: one lane per core, each
/// stepping its variations together. Variations are independent (each has
/// its own random stream), so the result does not depend on the split.
fn variation_lanes(variations: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lanes = cores.min(variations).max(1);
    // As many lanes as the even shares fill (9 on 8 cores: 5 lanes of 2 and 1).
    variations
        .max(1)
        .div_ceil(variations.max(1).div_ceil(lanes))
}

/// [`compose`] with each lane of variations on its own thread and
/// predictor; the results in variation order.
fn compose_in_lanes(
    predictors: Vec<Box<dyn Predictor + Send + '_>>,
    seed: &[u128],
    placement: &Placement<'_>,
    constraints: &Constraints,
    options: &GenerateOptions,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Continuation>, GenerateError> {
    let per_lane = options.variations.div_ceil(predictors.len());
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = predictors
            .into_iter()
            .enumerate()
            .map(|(i, mut predictor)| {
                let first_variation = i * per_lane;
                let lane = Lane {
                    first_variation,
                    variations: per_lane.min(options.variations - first_variation),
                };
                // Each lane has a core: its products stay whole.
                scope.spawn(move || {
                    crate::model::split::without_splitting(|| {
                        compose_lane(
                            predictor.as_mut(),
                            seed,
                            placement,
                            constraints,
                            options,
                            lane,
                            stop,
                        )
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(options.variations);
    for continuations in results {
        all.extend(continuations?);
    }
    Ok(all)
}

/// The variations of `lane`, stepped together by `predictor`.
fn compose_lane(
    predictor: &mut dyn Predictor,
    seed: &[u128],
    placement: &Placement<'_>,
    constraints: &Constraints,
    options: &GenerateOptions,
    lane: Lane,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Continuation>, GenerateError> {
    let variations = lane.variations;
    if variations == 0 {
        return Ok(Vec::new());
    }
    predictor.place(placement)?;
    predictor.start(&vec![seed; variations])?;
    let mut results: Vec<Continuation> = (0..variations)
        .map(|_| Continuation {
            steps: Vec::with_capacity(options.steps),
            probabilities: Vec::with_capacity(options.steps * PITCH_COUNT),
        })
        .collect();
    let mut decider = Decider::new(options, constraints, lane);
    let mut probabilities = Vec::with_capacity(variations * PITCH_COUNT);
    let mut chosen = vec![0u128; variations];

    for k in 0..options.steps {
        if stop() {
            return Err(GenerateError::Stopped);
        }
        decider.enter(placement.first_step + k);
        predictor.draw(&mut decider.variations, &mut chosen, &mut probabilities)?;
        for ((result, &mask), p) in results
            .iter_mut()
            .zip(&chosen)
            .zip(probabilities.chunks_exact(PITCH_COUNT))
        {
            result.steps.push(mask);
            result.probabilities.extend_from_slice(p);
        }
        decider.leave(&chosen);
        predictor.advance(&chosen)?;
    }
    Ok(results)
}

/// How far the density control moves the tilt per note of error.
const DENSITY_GAIN: f32 = 0.15;
/// The density control's tilt stays within this many nats of logit.
const MAX_TILT: f32 = 6.0;

/// Turns probabilities into notes: the rule, the constraints, and the
/// density control, which tilts every free row's logit by the same amount
/// (an exponential tilt of the step's distribution towards more or fewer
/// notes) and moves the tilt after each step by how far the step's notes
/// were from the target. Each variation decides with its own
/// [`RowDecider`], so variations may be drawn on different threads.
struct Decider<'a> {
    rule: Rule,
    constraints: &'a Constraints,
    boost: f64,
    variations: Vec<RowDecider>,
}

/// How one variation decides the rows of a step: the rule, the step's locked
/// cells, its own random stream and its density tilt.
#[derive(Clone, Debug)]
pub struct RowDecider {
    rule: Rule,
    /// The boost rule's boost at this step.
    boost: f32,
    /// This step's cells that must sound / stay silent.
    on: u128,
    off: u128,
    tilt: f32,
    rng: SeededRng,
}

impl<'a> Decider<'a> {
    fn new(options: &GenerateOptions, constraints: &'a Constraints, lane: Lane) -> Self {
        let rule = options.rule;
        Self {
            rule,
            constraints,
            boost: match rule {
                Rule::Boost { vanish_proof, .. } => vanish_proof,
                _ => 0.0,
            },
            variations: (lane.first_variation as u64
                ..(lane.first_variation + lane.variations) as u64)
                .map(|i| RowDecider {
                    rule,
                    boost: 0.0,
                    on: 0,
                    off: 0,
                    tilt: 0.0,
                    rng: match rule {
                        Rule::Sample { rng_seed, .. } => seeded(rng_seed.wrapping_add(i)),
                        _ => seeded(i),
                    },
                })
                .collect(),
        }
    }

    /// Starts deciding step `step` of the piece.
    fn enter(&mut self, step: usize) {
        let (on, off) = self.constraints.at(step);
        // As the article's numpy does: the boost (a Python float) is
        // rounded to f32 and added in f32.
        let boost = self.boost as f32;
        for decider in &mut self.variations {
            (decider.on, decider.off, decider.boost) = (on, off, boost);
        }
    }

    /// Ends a step whose chosen notes were `chosen`.
    fn leave(&mut self, chosen: &[u128]) {
        if let Some(target) = self.constraints.density {
            for (decider, mask) in self.variations.iter_mut().zip(chosen) {
                let error = target - mask.count_ones() as f32;
                decider.tilt = (decider.tilt + DENSITY_GAIN * error).clamp(-MAX_TILT, MAX_TILT);
            }
        }
        if let Rule::Boost { vanish_inc, .. } = self.rule {
            self.boost *= vanish_inc;
        }
    }
}

impl RowDecider {
    /// Whether `row` sounds, given its probability `p`.
    pub fn decide(&mut self, row: usize, p: f32) -> bool {
        // Drawn for every row, so a constraint changes no other row's draw.
        let draw = match self.rule {
            Rule::Sample { .. } => unit_f32(&mut self.rng),
            _ => 0.0,
        };
        let bit = 1u128 << row;
        if self.on & bit != 0 {
            return true;
        }
        if self.off & bit != 0 {
            return false;
        }
        let tilt = self.tilt;
        match self.rule {
            Rule::Boost { .. } => tilted(p, tilt) + self.boost >= 1.0,
            Rule::Threshold { threshold } => tilted(p, tilt) >= threshold,
            Rule::Sample { temperature, .. } => draw < tilted(sharpen(p, temperature), tilt),
        }
    }
}

/// `p` with `tilt` added to its logit (itself when the tilt is 0).
fn tilted(p: f32, tilt: f32) -> f32 {
    if tilt == 0.0 {
        return p;
    }
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    let logit = (p / (1.0 - p)).ln() + tilt;
    1.0 / (1.0 + (-logit).exp())
}

/// A passage to regenerate: its steps, the meter, what binds the new notes,
/// and how to draw them (`options.steps` is the passage's length).
#[derive(Clone, Debug, PartialEq)]
pub struct Fill {
    pub range: std::ops::Range<usize>,
    pub meter: Meter,
    pub constraints: Constraints,
    pub options: GenerateOptions,
}

/// Regenerates steps `fill.range` of `roll` from the music on both sides
/// with `network` (the composer; others cannot hear what comes after): up to
/// [`CONTEXT_STEPS`] steps before the gap and as many after it. A passage
/// that reaches the roll's end is a continuation. Returns the new steps of
/// each variation; every other cell of the roll stays as it was.
pub fn fill(
    network: &Network,
    selected: &SelectedDevice,
    roll: &PianoRoll,
    fill: &Fill,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Continuation>, GenerateError> {
    let Fill {
        range,
        meter,
        constraints,
        options,
    } = fill;
    let (range, meter) = (range.clone(), *meter);
    let steps = roll.steps();
    if range.is_empty() || range.end > steps {
        return Err(GenerateError::BadFillRange {
            start: range.start,
            end: range.end,
            steps,
        });
    }
    let (seed, after) = fill_context(roll.sounding_masks(), &range);
    let after = after.map(|steps| After {
        steps,
        at: range.end,
    });
    let placement = Placement {
        meter,
        first_step: range.start,
        after,
    };
    let options = GenerateOptions {
        steps: range.len(),
        ..*options
    };
    let runner = Runner::new(network, selected)?;
    compose(
        runner.predictor().as_mut(),
        seed,
        &placement,
        constraints,
        &options,
        stop,
    )
}

/// Plays `steps` to `predictor` in order from a silent lead-in, as it heard
/// its training music, and hands `each` every step's index and each row's
/// probability of sounding there given all the steps before it (and, for a
/// network that decides a step's rows jointly, the rows below it as they
/// are): how expected each note is, for a lens over the music.
pub fn hear(
    predictor: &mut dyn Predictor,
    steps: &[u128],
    meter: Meter,
    stop: &(dyn Fn() -> bool + Sync),
    mut each: impl FnMut(usize, &[f32]),
) -> Result<(), GenerateError> {
    if predictor.pitches() != PITCH_COUNT {
        return Err(GenerateError::ModelPitches(predictor.pitches()));
    }
    predictor.place(&Placement {
        meter,
        first_step: 0,
        after: None,
    })?;
    predictor.start(&[&[0u128]])?;
    let mut probabilities = Vec::with_capacity(PITCH_COUNT);
    for (index, &step) in steps.iter().enumerate() {
        if stop() {
            return Err(GenerateError::Stopped);
        }
        predictor.conditionals(&[step], &mut probabilities)?;
        each(index, &probabilities[..PITCH_COUNT]);
        predictor.advance(&[step])?;
    }
    Ok(())
}

/// What a fill of `range` hears of `masks` (a roll's steps): up to
/// [`CONTEXT_STEPS`] steps before the gap (a silent step at the piece's
/// start, which leads its first step in as in training), and as many after
/// it, if any.
pub fn fill_context<'m>(
    masks: &'m [u128],
    range: &std::ops::Range<usize>,
) -> (&'m [u128], Option<&'m [u128]>) {
    const LEAD_IN: &[u128] = &[0];
    let start = range.start.min(masks.len());
    let seed = if start == 0 {
        LEAD_IN
    } else {
        &masks[start.saturating_sub(CONTEXT_STEPS)..start]
    };
    let after = (range.end < masks.len())
        .then(|| &masks[range.end..(range.end + CONTEXT_STEPS).min(masks.len())]);
    (seed, after)
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
