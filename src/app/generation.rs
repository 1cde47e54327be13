//! Generation in the app: the controls, the model in use and the device it
//! runs on, and a worker that owns the loaded network, takes requests,
//! skips those a newer one has replaced and sends continuations back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, TryRecvError, channel};
use std::time::Instant;

use super::jobs::{Waker, Worker, WorkerEnd};
use crate::checkpoint::{Checkpoint, CheckpointHeader};
use crate::device::{self, BackendChoice, SelectedDevice};
use crate::generate::{
    Constraints, Continuation, GenerateError, GenerateOptions, Placement, RuleKind, RuleSettings,
    Runner, compose,
};
use crate::limits;
use crate::meter::Meter;
use crate::model::WINDOW_STEPS;

/// The generation controls.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Params {
    pub rule: RuleSettings,
    pub steps: usize,
    pub variations: usize,
    /// Regenerate as soon as a control changes.
    pub live: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            rule: RuleSettings::default(),
            steps: 106,
            variations: 1,
            live: true,
        }
    }
}

impl Params {
    pub fn options(&self) -> GenerateOptions {
        GenerateOptions {
            steps: self.steps,
            variations: self.variations,
            rule: self.rule.rule(),
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
        self
    }
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

/// A request to the worker; `id` grows with every request.
#[derive(Clone, Debug)]
struct GenerateJob {
    id: u64,
    seed_start: usize,
    /// The seed window and the music before it (see `seed_context`).
    seed: Vec<u128>,
    /// The roll's meter, for networks that hear the beat.
    meter: Meter,
    options: GenerateOptions,
}

/// What the worker sends back.
#[derive(Debug)]
enum WorkerEvent {
    Generated {
        job: Box<GenerateJob>,
        continuations: Vec<Continuation>,
        millis: f64,
    },
    Failed {
        id: u64,
        error: String,
    },
}

/// The latest continuation(s) and what made them.
#[derive(Debug)]
pub struct Generated {
    pub seed_start: usize,
    pub continuations: Vec<Continuation>,
    pub options: GenerateOptions,
    pub chosen: usize,
    pub millis: f64,
}

impl Generated {
    /// The continuation shown.
    pub fn shown(&self) -> &Continuation {
        &self.continuations[self.chosen]
    }

    /// The step the continuation starts at: the seed window's end.
    pub fn first_step(&self) -> usize {
        self.seed_start + WINDOW_STEPS
    }
}

/// What polling the worker brought.
#[derive(Debug, PartialEq)]
pub enum GenerationNews {
    /// A new result is in [`Generation::result`].
    Generated,
    /// The newest request failed, or the worker stopped; the text says why.
    Failed(String),
}

/// The worker that owns the network.
#[derive(Debug)]
struct GenerationWorker {
    requests: Sender<GenerateJob>,
    /// The newest request's id: a job that is not it stops at its next
    /// step. `u64::MAX` once the UI has let go of the worker.
    newest: Arc<AtomicU64>,
    worker: Worker<WorkerEvent>,
}

impl Drop for GenerationWorker {
    fn drop(&mut self) {
        self.newest.store(u64::MAX, Ordering::Relaxed);
    }
}

impl GenerationWorker {
    fn start(checkpoint: Checkpoint, selected: SelectedDevice, wake: Waker) -> Self {
        let (requests, jobs) = channel::<GenerateJob>();
        let newest = Arc::new(AtomicU64::new(0));
        let latest = Arc::clone(&newest);
        let worker = Worker::spawn("generation", wake, move |outbox| {
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
            while let Ok(mut job) = jobs.recv() {
                // Only the newest request matters (a slider being dragged).
                loop {
                    match jobs.try_recv() {
                        Ok(newer) => job = newer,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return,
                    }
                }
                let started = Instant::now();
                let replaced = || latest.load(Ordering::Relaxed) != job.id;
                let placement = Placement {
                    meter: job.meter,
                    first_step: job.seed_start + WINDOW_STEPS,
                    after: None,
                };
                let generated = compose(
                    runner.predictor().as_mut(),
                    &job.seed,
                    &placement,
                    &Constraints::default(),
                    &job.options,
                    &replaced,
                );
                let event = match generated {
                    Ok(continuations) => WorkerEvent::Generated {
                        job: Box::new(job),
                        continuations,
                        millis: started.elapsed().as_secs_f64() * 1e3,
                    },
                    // A newer request is waiting (or the app closed).
                    Err(GenerateError::Stopped) => continue,
                    Err(error) => WorkerEvent::Failed {
                        id: job.id,
                        error: error.to_string(),
                    },
                };
                if !outbox.send(event) {
                    return;
                }
            }
        });
        Self {
            requests,
            newest,
            worker,
        }
    }
}

/// Generation's state: controls, model, device, worker and the result.
pub struct Generation {
    pub params: Params,
    model: Option<LoadedModel>,
    backend: BackendChoice,
    selected: Option<SelectedDevice>,
    /// The GPU the GPU button would use, or why there is none (asked once).
    gpu: Result<String, String>,
    worker: Option<GenerationWorker>,
    next_id: u64,
    pending: Option<u64>,
    result: Option<Generated>,
    wake: Waker,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("params", &self.params)
            .field("model", &self.model_name())
            .field("backend", &self.backend)
            .field("pending", &self.pending)
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
            worker: None,
            next_id: 0,
            pending: None,
            result: None,
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

    /// Takes the result away (it was kept in the roll).
    pub fn take_result(&mut self) -> Option<Generated> {
        self.result.take()
    }

    /// Forgets the result (the roll it continued is gone).
    pub fn clear_result(&mut self) {
        self.result = None;
    }

    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
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

    /// Runs the model on `backend` from now on (a new worker); an error says
    /// why that device cannot be had, and nothing changes.
    pub fn set_backend(&mut self, backend: BackendChoice) -> Result<(), String> {
        let selected = device::select(backend).map_err(|error| error.to_string())?;
        self.backend = backend;
        self.selected = Some(selected);
        self.worker = None;
        self.pending = None;
        Ok(())
    }

    /// Generates with `model` from now on, with the rule its kind of network
    /// is meant for (the user can change it again).
    pub fn install(&mut self, model: LoadedModel) {
        self.params.suit(&model.checkpoint.header);
        self.model = Some(model);
        self.worker = None;
        self.pending = None;
    }

    /// Asks for continuations of `seed` (the seed window at `seed_start` and
    /// the music before it, in `meter`) with the current controls.
    pub fn request(
        &mut self,
        seed_start: usize,
        seed: Vec<u128>,
        meter: Meter,
    ) -> Result<(), String> {
        let Some(model) = &self.model else {
            return Err("no model to generate with".to_owned());
        };
        let worker = match &mut self.worker {
            Some(worker) if worker.worker.ended().is_none() => worker,
            stale => {
                let selected = self
                    .selected
                    .clone()
                    .unwrap_or_else(|| device::cpu_selected(None));
                stale.insert(GenerationWorker::start(
                    model.checkpoint.clone(),
                    selected,
                    Arc::clone(&self.wake),
                ))
            }
        };
        self.next_id += 1;
        let job = GenerateJob {
            id: self.next_id,
            seed_start,
            seed,
            meter,
            options: self.params.options(),
        };
        worker.newest.store(job.id, Ordering::Relaxed);
        if worker.requests.send(job).is_err() {
            self.pending = None;
            return Err("the generation worker has stopped".to_owned());
        }
        self.pending = Some(self.next_id);
        Ok(())
    }

    /// Takes what the worker sent; results older than the newest request
    /// are dropped. A worker that stopped leaves nothing pending.
    pub fn poll(&mut self) -> Vec<GenerationNews> {
        let Some(worker) = &mut self.worker else {
            return Vec::new();
        };
        let mut news = Vec::new();
        for event in worker.worker.poll() {
            match event {
                WorkerEvent::Generated {
                    job,
                    continuations,
                    millis,
                } => {
                    if Some(job.id) != self.pending {
                        continue;
                    }
                    self.pending = None;
                    let chosen = self
                        .result
                        .as_ref()
                        .map_or(0, |g| g.chosen)
                        .min(continuations.len().saturating_sub(1));
                    self.result = Some(Generated {
                        seed_start: job.seed_start,
                        continuations,
                        options: job.options,
                        chosen,
                        millis,
                    });
                    news.push(GenerationNews::Generated);
                }
                WorkerEvent::Failed { id, error } => {
                    if id == 0 || Some(id) == self.pending {
                        self.pending = None;
                        news.push(GenerationNews::Failed(format!(
                            "generation failed: {error}"
                        )));
                    }
                }
            }
        }
        if let Some(end) = worker.worker.ended() {
            let why = match end {
                WorkerEnd::Returned => "the generation worker stopped".to_owned(),
                WorkerEnd::Failed(reason) => format!("the generation worker failed: {reason}"),
            };
            self.worker = None;
            if self.pending.take().is_some() {
                news.push(GenerationNews::Failed(why));
            }
        }
        news
    }
}
