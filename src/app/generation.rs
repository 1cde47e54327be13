//! Generation in the app: the controls, the model in use and the device it
//! runs on, and workers that own the loaded network, take requests, skip
//! those a newer one has replaced and send results back: one for
//! continuations and fills, one for ghost notes, one for the surprise lens,
//! so none waits for another.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, TryRecvError, channel};
use std::time::Instant;

use super::jobs::{Waker, Worker, WorkerEnd};
use crate::assets::open_model;
use crate::checkpoint::{Checkpoint, CheckpointHeader};
use crate::device::{self, BackendChoice, SelectedDevice};
use crate::generate::{
    After, Constraints, Continuation, GenerateError, GenerateOptions, NativeComposerPredictor,
    Placement, Predictor, RuleKind, RuleSettings, Runner, compose, hear,
};
use crate::limits;
use crate::meter::Meter;
use crate::model::native::NativeComposer;
use crate::model::{Network, WINDOW_STEPS};
use crate::music::{Key, Scale};
use crate::roll::{PITCH_COUNT, mask_bits};

/// The generation controls.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Params {
    pub rule: RuleSettings,
    pub steps: usize,
    pub variations: usize,
    /// Regenerate as soon as a control changes.
    pub live: bool,
    /// Key, scale, range and density.
    pub compose: ComposeSettings,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            rule: RuleSettings::default(),
            steps: 106,
            variations: 1,
            live: true,
            compose: ComposeSettings::default(),
        }
    }
}

impl Params {
    pub fn options(&self) -> GenerateOptions {
        GenerateOptions {
            steps: self.steps,
            variations: self.variations_drawn(),
            rule: self.rule.rule(),
        }
    }

    /// The variations a generation makes: one unless the rule draws at
    /// random, since the others would give the same roll each time.
    pub fn variations_drawn(&self) -> usize {
        if self.rule.kind.draws_at_random() {
            self.variations
        } else {
            1
        }
    }

    /// The rule a network of `header`'s kind is meant for (the user can
    /// change it again): sampling for the roll LSTM, the boost for the
    /// article's, and the threshold its training found best.
    pub fn suit(&mut self, header: &CheckpointHeader) {
        self.rule.kind = RuleKind::default_for(header.network.architecture());
        self.rule.threshold = header.tuned_threshold().unwrap_or(0.5);
    }

    /// These controls inside the ranges the app offers; a note for each
    /// value that was not.
    pub fn clamped(mut self, notes: &mut Vec<String>) -> Self {
        let rule = &mut self.rule;
        limits::GENERATE_STEPS.clamp_noting(&mut self.steps, notes);
        limits::VARIATIONS.clamp_noting(&mut self.variations, notes);
        limits::VANISH_PROOF.clamp_noting(&mut rule.vanish_proof, notes);
        limits::VANISH_INC.clamp_noting(&mut rule.vanish_inc, notes);
        limits::THRESHOLD.clamp_noting(&mut rule.threshold, notes);
        limits::TEMPERATURE.clamp_noting(&mut rule.temperature, notes);
        self.compose = self.compose.clamped(notes);
        self
    }
}

/// What generation obeys besides the model: the key and scale, the pitch
/// range, the density. Saved with the other controls.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ComposeSettings {
    /// The scale the user set; `None`: the key estimated from the music.
    pub scale: Option<Scale>,
    /// Generated notes stay in the scale.
    pub in_key: bool,
    /// Lowest and highest roll row generated notes may use.
    pub range: (usize, usize),
    /// Notes per step to steer towards; `None`: as the model likes.
    pub density: Option<f32>,
}

impl Default for ComposeSettings {
    fn default() -> Self {
        Self {
            scale: None,
            in_key: false,
            range: (0, PITCH_COUNT - 1),
            density: None,
        }
    }
}

impl ComposeSettings {
    /// The scale in force: the user's, else the estimated key's.
    pub fn scale_or(&self, estimated: Option<Key>) -> Option<Scale> {
        self.scale.or(estimated.map(|key| key.scale()))
    }

    /// The rows generated notes may use: the range, and the scale's rows
    /// when "in key" is on; `None` when that is every row.
    pub fn allowed_rows(&self, estimated: Option<Key>) -> Option<u128> {
        let mut allowed = range_rows(self.range);
        if self.in_key
            && let Some(scale) = self.scale_or(estimated)
        {
            allowed &= scale.row_mask();
        }
        (allowed != range_rows((0, PITCH_COUNT - 1))).then_some(allowed)
    }

    fn clamped(mut self, notes: &mut Vec<String>) -> Self {
        let (low, high) = self.range;
        let clamped = (
            low.min(PITCH_COUNT - 1),
            high.min(PITCH_COUNT - 1).max(low.min(PITCH_COUNT - 1)),
        );
        if clamped != self.range {
            notes.push(format!(
                "pitch range rows {low}..{high} lie outside the roll; using {}..{}",
                clamped.0, clamped.1
            ));
            self.range = clamped;
        }
        if let Some(density) = &mut self.density {
            limits::DENSITY.clamp_noting(density, notes);
        }
        if let Some(scale) = &mut self.scale {
            scale.tonic %= 12;
        }
        self
    }
}

/// Rows `low..=high` as a mask.
pub fn range_rows((low, high): (usize, usize)) -> u128 {
    let high = high.min(PITCH_COUNT - 1);
    if low > high {
        return 0;
    }
    let through_high = (1u128 << (high + 1)) - 1;
    through_high & !((1u128 << low) - 1)
}

/// A model ready to generate with.
#[derive(Clone, Debug)]
pub struct LoadedModel {
    pub checkpoint: Checkpoint,
    /// As the status bar shows it: "roll (shipped)", a file name.
    pub name: String,
    /// What reopens it next time: a shipped name or a path; none for a
    /// model only in memory (trained here, unsaved).
    pub spec: Option<String>,
}

/// What a request regenerates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passage {
    /// The steps after the seed window that starts at `seed_start`.
    Continue { seed_start: usize },
    /// Steps `range` of the roll, on pitch rows `rows.0..rows.1` (the other
    /// rows stay as they are), from the music on both sides.
    Fill {
        range: Range<usize>,
        rows: (usize, usize),
    },
}

impl Passage {
    /// The first step it writes.
    pub fn first_step(&self) -> usize {
        match self {
            Self::Continue { seed_start } => seed_start + WINDOW_STEPS,
            Self::Fill { range, .. } => range.start,
        }
    }
}

/// Everything a generation needs, cut from the document on the UI thread.
#[derive(Clone, Debug)]
pub struct GenerateRequest {
    pub passage: Passage,
    /// Up to [`CONTEXT_STEPS`](crate::generate::CONTEXT_STEPS) steps before
    /// the first generated one (a silent step at the piece's start).
    pub seed: Vec<u128>,
    /// The music after a fill, from the fill's end.
    pub after: Option<Vec<u128>>,
    /// The roll's meter, for networks that hear the beat.
    pub meter: Meter,
    pub constraints: Constraints,
    pub options: GenerateOptions,
}

/// A request to a worker; `id` grows with every request.
#[derive(Debug)]
enum Job {
    Generate(u64, Box<GenerateRequest>),
    /// Score every cell of these steps (the surprise lens).
    Hear {
        id: u64,
        steps: Vec<u128>,
        meter: Meter,
    },
}

impl Job {
    fn id(&self) -> u64 {
        match self {
            Self::Generate(id, _) | Self::Hear { id, .. } => *id,
        }
    }
}

/// What a worker sends back.
#[derive(Debug)]
enum WorkerEvent {
    Generated {
        id: u64,
        request: Box<GenerateRequest>,
        continuations: Vec<Continuation>,
        /// The model that filled, when not the one in use.
        filled_by: Option<&'static str>,
        millis: f64,
    },
    Heard {
        id: u64,
        heard: Heard,
    },
    Failed {
        id: u64,
        error: String,
    },
}

/// How likely the model found each sounding cell of a roll: the
/// probabilities of the sounding cells, step by step and row by row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Heard {
    /// The steps scored, as they were when scored.
    pub steps: Vec<u128>,
    pub sounding: Vec<f32>,
    pub millis: f64,
}

impl Heard {
    /// Each sounding cell's surprise in nats (`-ln p`), step by step and
    /// row by row.
    pub fn surprise(&self) -> impl Iterator<Item = f32> + '_ {
        self.sounding.iter().map(|&p| -(p.max(1e-6)).ln())
    }
}

/// The latest continuation(s) or fill(s) and what made them.
#[derive(Debug)]
pub struct Generated {
    pub passage: Passage,
    pub continuations: Vec<Continuation>,
    pub options: GenerateOptions,
    pub chosen: usize,
    pub millis: f64,
    /// The model that filled, when the one in use cannot hear what comes
    /// after a gap.
    pub filled_by: Option<&'static str>,
}

impl Generated {
    /// The continuation shown.
    pub fn shown(&self) -> &Continuation {
        &self.continuations[self.chosen]
    }

    /// The first step it writes.
    pub fn first_step(&self) -> usize {
        self.passage.first_step()
    }

    /// Whether it fills a passage (rather than continuing).
    pub fn is_fill(&self) -> bool {
        matches!(self.passage, Passage::Fill { .. })
    }
}

/// Faint suggested notes: what the model would play next.
#[derive(Debug)]
pub struct Ghost {
    pub first_step: usize,
    /// The suggested notes by step, without the notes already there.
    pub cells: Vec<u128>,
    /// Each step's probabilities, `[steps * 106]`.
    pub probabilities: Vec<f32>,
}

/// What polling the workers brought.
#[derive(Debug, PartialEq)]
pub enum GenerationNews {
    /// A new result is in [`Generation::result`].
    Generated,
    /// New ghost notes are in [`Generation::ghost`].
    Ghost,
    /// A new reading is in [`Generation::heard`].
    Heard,
    /// The newest request failed, or a worker stopped; the text says why.
    Failed(String),
}

/// The model that fills gaps when the one in use only continues.
const FILL_MODEL: &str = "composer";

/// A worker that owns a copy of the network and takes jobs.
#[derive(Debug)]
struct ModelWorker {
    jobs: Sender<Job>,
    /// The newest job's id: a job that is not it stops at its next step.
    /// `u64::MAX` once the UI has let go of the worker.
    newest: Arc<AtomicU64>,
    worker: Worker<WorkerEvent>,
}

impl Drop for ModelWorker {
    fn drop(&mut self) {
        self.newest.store(u64::MAX, Ordering::Relaxed);
    }
}

/// The network that fills when the model in use cannot: the shipped
/// composer's plain-Rust copy, made on first use and kept.
struct FillRunner {
    composer: Option<Result<Box<NativeComposer>, String>>,
}

impl FillRunner {
    fn composer(&mut self) -> Result<&NativeComposer, String> {
        self.composer
            .get_or_insert_with(|| {
                let (checkpoint, _) = open_model(Some(FILL_MODEL))
                    .map_err(|error| format!("cannot open the {FILL_MODEL} to fill: {error}"))?;
                match checkpoint.model(&device::cpu()) {
                    Ok(Network::Composer(model)) => NativeComposer::from_model(&model)
                        .map(Box::new)
                        .map_err(|error| format!("cannot prepare the {FILL_MODEL}: {error}")),
                    Ok(_) => Err(format!("the shipped {FILL_MODEL} is not a composer")),
                    Err(error) => Err(format!("cannot load the {FILL_MODEL} to fill: {error}")),
                }
            })
            .as_deref()
            .map_err(Clone::clone)
    }
}

/// Runs one generation request with `runner`, or with the fill model where
/// the request has music after it that `runner`'s network cannot hear.
fn run_generation(
    runner: &Runner<'_>,
    fills: bool,
    fill_runner: &mut FillRunner,
    request: &GenerateRequest,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<(Vec<Continuation>, Option<&'static str>), String> {
    let after = request.after.as_deref().map(|steps| After {
        steps,
        at: request.passage.first_step() + request.options.steps,
    });
    let placement = Placement {
        meter: request.meter,
        first_step: request.passage.first_step(),
        after,
    };
    let compose_with = |predictor: &mut dyn Predictor| {
        compose(
            predictor,
            &request.seed,
            &placement,
            &request.constraints,
            &request.options,
            stop,
        )
        .map_err(|error| error.to_string())
    };
    if after.is_none() || fills {
        return compose_with(runner.predictor().as_mut()).map(|c| (c, None));
    }
    let composer = fill_runner.composer()?;
    compose_with(&mut NativeComposerPredictor::new(composer)).map(|c| (c, Some(FILL_MODEL)))
}

impl ModelWorker {
    fn start(name: &str, checkpoint: Checkpoint, selected: SelectedDevice, wake: Waker) -> Self {
        let (jobs, inbox) = channel::<Job>();
        let newest = Arc::new(AtomicU64::new(0));
        let latest = Arc::clone(&newest);
        let worker = Worker::spawn(name, wake, move |outbox| {
            let fills = checkpoint.header.network.architecture().fills();
            let model = checkpoint
                .model(&selected.device)
                .map_err(|error| format!("cannot load the model: {error}"));
            // Prepared once (on the CPU, the copy of the weights every
            // generation would otherwise make again).
            let runner = model.as_ref().map_err(Clone::clone).and_then(|model| {
                Runner::new(model, &selected)
                    .map_err(|error| format!("cannot prepare the model: {error}"))
            });
            let runner = match runner {
                Ok(runner) => runner,
                Err(error) => {
                    outbox.send(WorkerEvent::Failed { id: 0, error });
                    return;
                }
            };
            let mut fill_runner = FillRunner { composer: None };
            while let Ok(mut job) = inbox.recv() {
                // Only the newest request matters (a slider being dragged).
                loop {
                    match inbox.try_recv() {
                        Ok(newer) => job = newer,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return,
                    }
                }
                let id = job.id();
                let started = Instant::now();
                let replaced = || latest.load(Ordering::Relaxed) != id;
                let event = match job {
                    Job::Generate(id, request) => {
                        match run_generation(&runner, fills, &mut fill_runner, &request, &replaced)
                        {
                            Ok((continuations, filled_by)) => WorkerEvent::Generated {
                                id,
                                request,
                                continuations,
                                filled_by,
                                millis: started.elapsed().as_secs_f64() * 1e3,
                            },
                            // A newer request is waiting (or the app closed).
                            Err(_) if replaced() => continue,
                            Err(error) => WorkerEvent::Failed { id, error },
                        }
                    }
                    Job::Hear { id, steps, meter } => {
                        let mut sounding = Vec::new();
                        let heard = hear(
                            runner.predictor().as_mut(),
                            &steps,
                            meter,
                            &replaced,
                            |index, p| {
                                for row in mask_bits(steps[index]) {
                                    sounding.push(p[row]);
                                }
                            },
                        );
                        match heard {
                            Ok(()) => WorkerEvent::Heard {
                                id,
                                heard: Heard {
                                    steps,
                                    sounding,
                                    millis: started.elapsed().as_secs_f64() * 1e3,
                                },
                            },
                            Err(GenerateError::Stopped) => continue,
                            Err(error) => WorkerEvent::Failed {
                                id,
                                error: error.to_string(),
                            },
                        }
                    }
                };
                if !outbox.send(event) {
                    return;
                }
            }
        });
        Self {
            jobs,
            newest,
            worker,
        }
    }
}

/// One kind of work (the continuation or fill, the ghost notes, the lens):
/// its worker and the request it waits for.
#[derive(Debug, Default)]
struct Lane {
    worker: Option<ModelWorker>,
    pending: Option<u64>,
}

impl Lane {
    fn forget(&mut self) {
        self.worker = None;
        self.pending = None;
    }
}

/// Which lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LaneKind {
    Main,
    Ghost,
    Lens,
}

impl LaneKind {
    fn name(self) -> &'static str {
        match self {
            Self::Main => "generation",
            Self::Ghost => "ghost notes",
            Self::Lens => "surprise lens",
        }
    }
}

/// Generation's state: controls, model, device, workers and the results.
pub struct Generation {
    pub params: Params,
    model: Option<LoadedModel>,
    backend: BackendChoice,
    selected: Option<SelectedDevice>,
    /// The GPU the GPU button would use, or why there is none (asked once).
    gpu: Result<String, String>,
    lanes: [Lane; 3],
    next_id: u64,
    result: Option<Generated>,
    ghost: Option<Ghost>,
    heard: Option<Heard>,
    wake: Waker,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("params", &self.params)
            .field("model", &self.model_name())
            .field("backend", &self.backend)
            .field("pending", &self.lanes[0].pending)
            .finish_non_exhaustive()
    }
}

impl Generation {
    /// Generation with `model` on `backend` (the CPU when it cannot be had,
    /// with the reason returned).
    pub fn new(
        model: Option<LoadedModel>,
        params: Params,
        backend: BackendChoice,
        gpu: Result<String, String>,
        wake: Waker,
    ) -> (Self, Option<String>) {
        let mut generation = Self {
            params,
            model,
            backend: BackendChoice::Cpu,
            selected: None,
            gpu,
            lanes: Default::default(),
            next_id: 0,
            result: None,
            ghost: None,
            heard: None,
            wake,
        };
        let problem = generation.set_backend(backend).err();
        if problem.is_some() {
            generation.selected = Some(device::cpu_selected(problem.clone()));
        }
        (generation, problem)
    }

    pub fn model(&self) -> Option<&LoadedModel> {
        self.model.as_ref()
    }

    /// The model's name, or "none".
    pub fn model_name(&self) -> &str {
        self.model.as_ref().map_or("none", |m| m.name.as_str())
    }

    /// Whether the model in use fills gaps itself (others fill with the
    /// shipped composer).
    pub fn model_fills(&self) -> bool {
        self.model
            .as_ref()
            .is_some_and(|m| m.checkpoint.header.network.architecture().fills())
    }

    pub fn backend(&self) -> BackendChoice {
        self.backend
    }

    /// What runs the model, for the status bar.
    pub fn device_label(&self) -> &str {
        self.selected.as_ref().map_or("", |s| s.label.as_str())
    }

    /// Why the device is not the one asked for (auto fell back to the CPU).
    pub fn device_notice(&self) -> Option<&str> {
        self.selected.as_ref()?.notice.as_deref()
    }

    pub fn gpu(&self) -> Result<&str, &str> {
        self.gpu.as_deref().map_err(String::as_str)
    }

    pub fn result(&self) -> Option<&Generated> {
        self.result.as_ref()
    }

    /// The ghost notes, when shown.
    pub fn ghost(&self) -> Option<&Ghost> {
        self.ghost.as_ref()
    }

    /// The lens's reading of the roll, when on.
    pub fn heard(&self) -> Option<&Heard> {
        self.heard.as_ref()
    }

    /// Takes the result away (it was kept in the roll).
    pub fn take_result(&mut self) -> Option<Generated> {
        self.result.take()
    }

    /// Takes the ghost notes away (accepted or out of date).
    pub fn take_ghost(&mut self) -> Option<Ghost> {
        self.lanes[LaneKind::Ghost as usize].pending = None;
        self.ghost.take()
    }

    /// Forgets the lens's reading and stops its worker (the lens is off).
    pub fn clear_heard(&mut self) {
        self.heard = None;
        self.lanes[LaneKind::Lens as usize].forget();
    }

    /// Forgets the result (the roll it continued is gone).
    pub fn clear_result(&mut self) {
        self.result = None;
    }

    /// Whether a continuation or fill is being made.
    pub fn is_pending(&self) -> bool {
        self.lanes[LaneKind::Main as usize].pending.is_some()
    }

    /// Whether any work (ghost notes and the lens too) is being done.
    pub fn is_busy(&self) -> bool {
        self.lanes.iter().any(|lane| lane.pending.is_some())
    }

    /// Shows continuation `index` of the result; false when there is none.
    pub fn choose(&mut self, index: usize) -> bool {
        match &mut self.result {
            Some(result) if index < result.continuations.len() => {
                result.chosen = index;
                true
            }
            _ => false,
        }
    }

    /// Runs the model on `backend` from now on (new workers); an error says
    /// why that device cannot be had, and nothing changes.
    pub fn set_backend(&mut self, backend: BackendChoice) -> Result<(), String> {
        let selected = device::select(backend).map_err(|error| error.to_string())?;
        self.backend = backend;
        self.selected = Some(selected);
        self.lanes.iter_mut().for_each(Lane::forget);
        Ok(())
    }

    /// Generates with `model` from now on, with the rule its kind of network
    /// is meant for (the user can change it again).
    pub fn install(&mut self, model: LoadedModel) {
        self.params.suit(&model.checkpoint.header);
        self.model = Some(model);
        self.lanes.iter_mut().for_each(Lane::forget);
        self.heard = None;
        self.ghost = None;
    }

    /// Sends `job` to the lane's worker (started when there is none).
    fn send(&mut self, kind: LaneKind, job: impl FnOnce(u64) -> Job) -> Result<(), String> {
        let Some(model) = &self.model else {
            return Err("no model to generate with".to_owned());
        };
        let lane = &mut self.lanes[kind as usize];
        let worker = match &mut lane.worker {
            Some(worker) if worker.worker.ended().is_none() => worker,
            stale => {
                let selected = self
                    .selected
                    .clone()
                    .unwrap_or_else(|| device::cpu_selected(None));
                stale.insert(ModelWorker::start(
                    kind.name(),
                    model.checkpoint.clone(),
                    selected,
                    Arc::clone(&self.wake),
                ))
            }
        };
        self.next_id += 1;
        let id = self.next_id;
        worker.newest.store(id, Ordering::Relaxed);
        if worker.jobs.send(job(id)).is_err() {
            lane.pending = None;
            return Err(format!("the {} worker has stopped", kind.name()));
        }
        lane.pending = Some(id);
        Ok(())
    }

    /// Asks for continuations or fills as `request` says.
    pub fn request(&mut self, request: GenerateRequest) -> Result<(), String> {
        self.send(LaneKind::Main, |id| Job::Generate(id, Box::new(request)))
    }

    /// Asks for ghost notes: `request` fills a few steps around the notes
    /// already there (locked in it).
    pub fn request_ghost(&mut self, request: GenerateRequest) -> Result<(), String> {
        self.ghost = None;
        self.send(LaneKind::Ghost, |id| Job::Generate(id, Box::new(request)))
    }

    /// Asks how likely the model finds each note of `steps`.
    pub fn request_hearing(&mut self, steps: Vec<u128>, meter: Meter) -> Result<(), String> {
        self.send(LaneKind::Lens, |id| Job::Hear { id, steps, meter })
    }

    /// Takes what the workers sent; results older than a lane's newest
    /// request are dropped. A worker that stopped leaves nothing pending.
    pub fn poll(&mut self) -> Vec<GenerationNews> {
        let mut news = Vec::new();
        for kind in [LaneKind::Main, LaneKind::Ghost, LaneKind::Lens] {
            let lane = &mut self.lanes[kind as usize];
            let Some(worker) = &mut lane.worker else {
                continue;
            };
            for event in worker.worker.poll() {
                match event {
                    WorkerEvent::Generated {
                        id,
                        request,
                        continuations,
                        filled_by,
                        millis,
                    } => {
                        if Some(id) != lane.pending {
                            continue;
                        }
                        lane.pending = None;
                        if kind == LaneKind::Ghost {
                            self.ghost = ghost_of(&request, &continuations);
                            news.push(GenerationNews::Ghost);
                            continue;
                        }
                        let chosen = self
                            .result
                            .as_ref()
                            .map_or(0, |g| g.chosen)
                            .min(continuations.len().saturating_sub(1));
                        self.result = Some(Generated {
                            passage: request.passage,
                            continuations,
                            options: request.options,
                            chosen,
                            millis,
                            filled_by,
                        });
                        news.push(GenerationNews::Generated);
                    }
                    WorkerEvent::Heard { id, heard } => {
                        if Some(id) == lane.pending {
                            lane.pending = None;
                            self.heard = Some(heard);
                            news.push(GenerationNews::Heard);
                        }
                    }
                    WorkerEvent::Failed { id, error } => {
                        if id == 0 || Some(id) == lane.pending {
                            lane.pending = None;
                            news.push(GenerationNews::Failed(format!(
                                "{} failed: {error}",
                                kind.name()
                            )));
                        }
                    }
                }
            }
            if let Some(end) = worker.worker.ended() {
                let why = match end {
                    WorkerEnd::Returned => format!("the {} worker stopped", kind.name()),
                    WorkerEnd::Failed(reason) => {
                        format!("the {} worker failed: {reason}", kind.name())
                    }
                };
                lane.worker = None;
                if lane.pending.take().is_some() {
                    news.push(GenerationNews::Failed(why));
                }
            }
        }
        news
    }
}

/// The ghost notes of a ghost request's answer: the new cells only.
fn ghost_of(request: &GenerateRequest, continuations: &[Continuation]) -> Option<Ghost> {
    let continuation = continuations.first()?;
    let first_step = request.passage.first_step();
    let cells = continuation
        .steps
        .iter()
        .enumerate()
        .map(|(k, &mask)| {
            let there = request
                .constraints
                .sounding
                .get(&(first_step + k))
                .copied()
                .unwrap_or(0);
            mask & !there
        })
        .collect();
    Some(Ghost {
        first_step,
        cells,
        probabilities: continuation.probabilities.clone(),
    })
}
