//! The desktop composer (feature `gui`): the roll as an image, a seed window
//! picked on it, the boost sliders, generation on a worker thread, a plot of
//! what the model did, and live playback.
//!
//! Panels draw and return [`Command`]s; [`CadenzaApp::apply`] is the one place
//! that changes state. Heavy work runs on the generation worker (`jobs`).

mod jobs;
mod measure;
mod panels;
mod roll_view;
mod session;
mod training;

pub use roll_view::Selection;
pub use session::{Autosave, AutosaveState, SessionStore, Settings};
pub use training::TrainProgress;

use measure::MeasureRun;
pub use measure::Measurement;
use training::{TrainRequest, TrainingRun};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use eframe::egui;

use crate::assets::{default_demo, open_model};
use crate::audio::output::AudioOutput;
use crate::audio::player::{PlayerCommand, Song};
use crate::audio::render::{RenderOptions, WavFormat, render_song, write_wav};
use crate::audio::soundfont::{SoundFont, load_soundfont};
use crate::checkpoint::Checkpoint;
use crate::device::{self, BackendChoice};
use crate::files::{LoadOptions, SaveOptions, load_roll, save_roll};
use crate::generate::{Continuation, GenerateOptions, RuleKind, RuleSettings, seed_context};
use crate::midi::{ImportOptions, import};
use crate::model::WINDOW_STEPS;
use crate::roll::{PianoRoll, Pitch, RollNote};

use jobs::{GenerateJob, JobEvent, Jobs};
use roll_view::RollTextures;

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
    fn options(&self) -> GenerateOptions {
        GenerateOptions {
            steps: self.steps,
            variations: self.variations,
            rule: self.rule.rule(),
        }
    }
}

/// Playback settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Transport {
    /// Quarter notes per minute.
    pub bpm: f64,
    /// General MIDI program.
    pub program: u8,
    /// Linear gain.
    pub volume: f32,
    /// Loop the generated part.
    pub looping: bool,
}

impl Default for Transport {
    fn default() -> Self {
        Self {
            bpm: 120.0,
            program: 0,
            volume: 1.0,
            looping: false,
        }
    }
}

/// The training panel's fields.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainForm {
    pub data_dir: String,
    pub epochs: usize,
    pub arch: crate::model::Architecture,
    pub preset: crate::dataset::Preset,
    pub loss: crate::train::LossKind,
}

impl Default for TrainForm {
    fn default() -> Self {
        Self {
            data_dir: String::new(),
            epochs: 10,
            arch: crate::model::Architecture::RollLstm,
            preset: crate::dataset::Preset::Forward,
            loss: crate::train::LossKind::Bce,
        }
    }
}

/// The model of the last session, else the default one, and its name; on a
/// first start, the rule the model is meant for.
fn start_model(settings: &mut Settings, status: &mut String) -> (Option<Checkpoint>, String) {
    let remembered = settings.model.as_deref();
    let opened = open_model(remembered).or_else(|error| {
        *status = format!("cannot open the last model ({error}); using the default");
        open_model(None)
    });
    match opened {
        Ok((checkpoint, name)) => {
            if remembered.is_none() {
                settings.params.rule.kind =
                    RuleKind::default_for(checkpoint.header.network.architecture());
                settings.params.rule.threshold = checkpoint.header.tuned_threshold().unwrap_or(0.5);
            }
            (Some(checkpoint), name)
        }
        Err(error) => {
            *status = format!("no model: {error}");
            (None, "none".to_owned())
        }
    }
}

/// What panels ask for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    TrainFormChanged(TrainForm),
    StartTraining,
    CancelTraining,
    /// Generate with the model the last training run wrote.
    UseTrainedModel,
    /// Generate with a model shipped in the binary, by name.
    UseShippedModel(String),
    MeasureFolderChanged(String),
    /// Score the model in use on a folder, with the controls' rule.
    Measure,
    SaveTrainedModel(PathBuf),
    SetSeed(usize),
    /// Move the playhead (steps).
    Seek(f64),
    TransportChanged(Transport),
    ExportWav(PathBuf),
    SetBackend(BackendChoice),
    /// The step under the mouse, for the probability plot.
    Hover(Option<usize>),
    /// Draw a note on pitch row `row` over steps `start..end` of the source.
    DrawNote {
        row: usize,
        start: usize,
        end: usize,
    },
    /// Erase the note sounding at this cell of the source.
    EraseAt {
        row: usize,
        step: usize,
    },
    Undo,
    Redo,
    /// Write the shown continuation into the source roll.
    Keep,
    /// Select a rectangle of notes, or nothing.
    Select(Option<roll_view::Selection>),
    /// Delete the notes that start inside the selection.
    DeleteSelection,
    /// Take back the autosave of a run that did not exit cleanly.
    RestoreAutosave,
    DiscardAutosave,
    /// The controls changed (regenerates when live).
    ParamsChanged(Params),
    Generate,
    ChooseVariation(usize),
    Play,
    Pause,
    Stop,
    Open(PathBuf),
    SaveRoll(PathBuf),
}

/// The latest continuation(s) and what made them.
#[derive(Debug)]
struct Generated {
    seed_start: usize,
    continuations: Vec<Continuation>,
    options: GenerateOptions,
    chosen: usize,
    millis: f64,
}

/// Whether sound can play.
enum Audio {
    /// Not opened yet (opened on the first Play).
    Closed,
    Open(AudioOutput),
    Unavailable(String),
    /// Tests and headless runs: never open a device.
    Disabled,
}

/// How the app starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// A real window: audio on demand, the model on `--backend auto`.
    Desktop,
    /// Tests: no audio device, the model on the CPU.
    Headless,
}

/// The whole app state.
pub struct CadenzaApp {
    source: PianoRoll,
    source_name: String,
    seed_start: usize,
    params: Params,
    generated: Option<Generated>,
    /// The roll shown and played: the source up to the end of the seed
    /// window, then the chosen continuation.
    display: PianoRoll,
    display_key: u64,
    textures: RollTextures,
    zoom: f32,
    pitch_zoom: f32,
    selection: Option<roll_view::Selection>,
    jobs: Option<Jobs>,
    checkpoint: Option<Checkpoint>,
    backend: BackendChoice,
    transport: Transport,
    hovered_step: Option<usize>,
    /// Source rolls before each edit, and after each undo.
    undo: Vec<PianoRoll>,
    redo: Vec<PianoRoll>,
    /// Messages from background tasks (WAV export) for the status line.
    task_messages: (
        std::sync::mpsc::Sender<String>,
        std::sync::mpsc::Receiver<String>,
    ),
    next_job: u64,
    pending: Option<u64>,
    audio: Audio,
    soundfont: Option<Arc<SoundFont>>,
    model_name: String,
    device_label: String,
    /// Why the device is not the one asked for (auto fell back to the CPU).
    device_notice: Option<String>,
    status: String,
    /// Wakes the UI from other threads.
    wake: Arc<dyn Fn() + Send + Sync>,
    /// Where settings and autosaves go (none in tests that do not ask).
    store: Option<SessionStore>,
    settings: Settings,
    /// Edits not yet autosaved.
    dirty: bool,
    last_autosave: std::time::Instant,
    /// An autosave from a run that did not exit cleanly, offered back.
    restore_offer: Option<Autosave>,
    train_form: TrainForm,
    training: Option<TrainingRun>,
    /// The folder to measure the model on, as typed.
    measure_dir: String,
    measure: Option<MeasureRun>,
    first_frame_shown: bool,
    /// The GPU the GPU button would use, or why there is none.
    gpu: Result<String, String>,
}

impl std::fmt::Debug for CadenzaApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CadenzaApp")
            .field("source", &self.source_name)
            .field("seed_start", &self.seed_start)
            .field("params", &self.params)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// When `run` was called, for the start-up figure.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Opens the window; returns when it closes. With `CADENZA_REPORT_STARTUP`
/// set, says on stderr how long the first frame took to arrive.
pub fn run() -> anyhow::Result<()> {
    STARTED.get_or_init(std::time::Instant::now);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Cadenza")
            .with_inner_size([1280.0, 800.0])
            .with_drag_and_drop(true),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "Cadenza",
        options,
        Box::new(|cc| Ok(Box::new(CadenzaApp::new(&cc.egui_ctx, StartMode::Desktop)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

impl CadenzaApp {
    /// The app on the shipped demo roll and default model, generating at
    /// once; a desktop run keeps settings and autosaves in the user's data
    /// folder.
    pub fn new(ctx: &egui::Context, mode: StartMode) -> Self {
        let store = match mode {
            StartMode::Desktop => SessionStore::default_location(),
            StartMode::Headless => None,
        };
        Self::with_store(ctx, mode, store)
    }

    /// [`new`](Self::new) with settings and autosaves in `store`.
    pub fn with_store(ctx: &egui::Context, mode: StartMode, store: Option<SessionStore>) -> Self {
        let demo = default_demo();
        let (source, source_name, mut status) = match import(demo.midi, &ImportOptions::default()) {
            Ok((roll, _)) => (roll, demo.name.to_owned(), String::new()),
            Err(error) => (
                PianoRoll::new(64, crate::roll::RollMeta::default()).unwrap_or_default(),
                "empty roll".to_owned(),
                format!("the shipped demo is unreadable: {error}"),
            ),
        };
        let mut settings = store
            .as_ref()
            .map(SessionStore::load_settings)
            .unwrap_or_default();
        let restore_offer = store.as_ref().and_then(SessionStore::load_autosave);
        if let Some(offer) = &restore_offer {
            eprintln!(
                "cadenza: the last session did not exit cleanly; offering its autosave back \
                 ({}, {} notes)",
                offer.state.source_name,
                offer.roll.note_count()
            );
        }
        let backend = match mode {
            StartMode::Desktop => settings.backend.unwrap_or(BackendChoice::Auto),
            StartMode::Headless => BackendChoice::Cpu,
        };
        let (checkpoint, model_name) = start_model(&mut settings, &mut status);
        let transport = settings.transport.unwrap_or(Transport {
            bpm: source.meta().tempo.bpm(),
            program: source.meta().program,
            volume: 1.0,
            looping: false,
        });
        let mut app = Self {
            display: source.clone(),
            source,
            source_name,
            seed_start: 0,
            params: settings.params,
            generated: None,
            display_key: 1,
            textures: RollTextures::default(),
            zoom: settings.zoom.unwrap_or(6.0).clamp(1.0, 24.0),
            pitch_zoom: 1.0,
            selection: None,
            jobs: None,
            checkpoint,
            backend,
            transport,
            hovered_step: None,
            undo: Vec::new(),
            redo: Vec::new(),
            task_messages: std::sync::mpsc::channel(),
            next_job: 0,
            pending: None,
            audio: match mode {
                StartMode::Desktop => Audio::Closed,
                StartMode::Headless => Audio::Disabled,
            },
            soundfont: None,
            model_name,
            device_label: String::new(),
            device_notice: None,
            status,
            wake: {
                let ctx = ctx.clone();
                Arc::new(move || ctx.request_repaint())
            },
            store,
            settings,
            dirty: false,
            last_autosave: std::time::Instant::now(),
            restore_offer,
            train_form: TrainForm::default(),
            training: None,
            measure_dir: String::new(),
            measure: None,
            first_frame_shown: false,
            gpu: device::select(BackendChoice::Gpu)
                .map(|selected| selected.label)
                .map_err(|error| error.to_string()),
        };
        app.start_worker(backend);
        // Open the sound output now, so a missing device shows at once.
        app.open_audio();
        app.apply(Command::Generate);
        app
    }

    /// The roll shown (and played).
    pub fn display(&self) -> &PianoRoll {
        &self.display
    }

    pub fn seed_start(&self) -> usize {
        self.seed_start
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The status line's text.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// Whether a generation result is on screen and none is pending.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
    }

    /// (Re)starts the generation worker on `backend`; the status says why a
    /// GPU could not be used.
    fn start_worker(&mut self, backend: BackendChoice) {
        let selected = match device::select(backend) {
            Ok(selected) => selected,
            Err(error) => {
                self.status = format!("{error}; staying on {}", self.device_label);
                return;
            }
        };
        self.backend = backend;
        self.device_label.clone_from(&selected.label);
        self.device_notice.clone_from(&selected.notice);
        if let Some(checkpoint) = &self.checkpoint {
            let wake = Arc::clone(&self.wake);
            self.jobs = Some(Jobs::start(checkpoint.clone(), selected, move || wake()));
            self.pending = None;
        }
    }

    /// The GPU adapter `--backend gpu` would use, or why there is none
    /// (asked once, at start).
    pub fn gpu_choice(&self) -> Result<&str, &str> {
        self.gpu.as_deref().map_err(String::as_str)
    }

    /// The song the player plays: the shown roll with the transport's tempo
    /// and instrument.
    fn song(&self) -> Song {
        let mut song = Song::from_roll(&self.display, 100).with_program(self.transport.program);
        if let Some(tempo) = crate::roll::Tempo::from_bpm(self.transport.bpm) {
            song = song.with_tempo(tempo);
        }
        song
    }

    /// The loop region for the transport's setting: the generated part.
    /// The loop region when looping is on: the selected steps, else the
    /// generated part, else the whole roll.
    fn loop_region(&self) -> Option<(f64, f64)> {
        if !self.transport.looping {
            return None;
        }
        let (start, end) = match (&self.selection, &self.generated) {
            (Some(selection), _) => selection.steps,
            (None, Some(generated)) => (generated.seed_start + WINDOW_STEPS, self.display.steps()),
            (None, None) => (0, self.display.steps()),
        };
        Some((start as f64, end as f64))
    }

    /// Writes the autosave and the settings now (the app does it every few
    /// seconds while there are unsaved edits).
    pub fn autosave_now(&mut self) {
        let Some(store) = &self.store else {
            return;
        };
        let state = AutosaveState {
            source_name: self.source_name.clone(),
            steps_per_quarter: self.source.meta().steps_per_quarter,
            seed_start: self.seed_start,
            params: self.params,
            transport: self.transport,
        };
        let saved = store
            .autosave(&self.source, &state)
            .and_then(|()| store.save_settings(&self.current_settings()));
        match saved {
            Ok(()) => self.dirty = false,
            Err(error) => self.status = format!("cannot autosave: {error}"),
        }
        self.last_autosave = std::time::Instant::now();
    }

    fn current_settings(&self) -> Settings {
        Settings {
            params: self.params,
            transport: Some(self.transport),
            zoom: Some(self.zoom),
            backend: Some(self.backend),
            model: self.settings.model.clone(),
            recent: self.settings.recent.clone(),
        }
    }

    fn start_training(&mut self) {
        if self
            .training
            .as_ref()
            .is_some_and(|run| !run.progress().finished)
        {
            return;
        }
        let data_dir = PathBuf::from(self.train_form.data_dir.trim());
        if !data_dir.is_dir() {
            self.status = format!(
                "choose a folder of MIDI or PNG files to train on ({} is not one)",
                data_dir.display()
            );
            return;
        }
        let request = TrainRequest {
            data_dir,
            epochs: self.train_form.epochs.max(1),
            arch: self.train_form.arch,
            preset: self.train_form.preset,
            loss: self.train_form.loss,
            backend: self.backend,
            out: std::env::temp_dir()
                .join(format!("cadenza-training-{}.cadenza", std::process::id())),
        };
        self.training = Some(TrainingRun::start(request, Arc::clone(&self.wake)));
        self.status = "training...".to_owned();
    }

    fn save_trained_model(&mut self, path: &Path) {
        let saved = self
            .training
            .as_ref()
            .and_then(TrainingRun::checkpoint)
            .map(|c| c.and_then(|c| c.save(path).map_err(|e| e.to_string())));
        self.status = match saved {
            Some(Ok(())) => format!("saved the model to {}", path.display()),
            Some(Err(error)) => format!("cannot save the model: {error}"),
            None => "no trained model yet".to_owned(),
        };
    }

    /// Takes back the offered autosave (undoably).
    fn restore_autosave(&mut self) {
        if let Some(autosave) = self.restore_offer.take() {
            let state = autosave.state;
            self.undo
                .push(std::mem::replace(&mut self.source, autosave.roll));
            self.source_name = state.source_name;
            self.params = state.params;
            self.transport = state.transport;
            self.seed_start = state.seed_start;
            self.generated = None;
            self.source_changed("restored the last session");
            self.request_generation();
        }
    }

    fn undo(&mut self) {
        if let Some(previous) = self.undo.pop() {
            self.redo
                .push(std::mem::replace(&mut self.source, previous));
            self.source_changed("undone");
        }
    }

    fn redo(&mut self) {
        if let Some(next) = self.redo.pop() {
            self.undo.push(std::mem::replace(&mut self.source, next));
            self.source_changed("redone");
        }
    }

    /// Generates with `checkpoint` from now on, with the rule its kind of
    /// network is meant for (the user can change it again).
    fn install_model(&mut self, checkpoint: Checkpoint, name: String) {
        self.params.rule.kind = RuleKind::default_for(checkpoint.header.network.architecture());
        self.params.rule.threshold = checkpoint.header.tuned_threshold().unwrap_or(0.5);
        self.checkpoint = Some(checkpoint);
        self.model_name = name;
        self.start_worker(self.backend);
        self.request_generation();
    }

    fn use_shipped_model(&mut self, name: &str) {
        match open_model(Some(name)) {
            Ok((checkpoint, shown)) => {
                self.install_model(checkpoint, shown);
                self.settings.model = Some(name.to_owned());
            }
            Err(error) => self.status = format!("cannot open the model {name}: {error}"),
        }
    }

    fn use_trained_model(&mut self) {
        match self.training.as_ref().and_then(TrainingRun::checkpoint) {
            Some(Ok(checkpoint)) => {
                self.install_model(checkpoint, "trained here (unsaved)".to_owned());
            }
            Some(Err(error)) => self.status = format!("cannot load the trained model: {error}"),
            None => self.status = "no epoch finished yet".to_owned(),
        }
    }

    fn start_measuring(&mut self) {
        let Some(checkpoint) = &self.checkpoint else {
            self.status = "no model to measure".to_owned();
            return;
        };
        let folder = self.measure_dir.trim();
        if folder.is_empty() {
            self.status = "choose a folder of MIDI/PNG files to measure on".to_owned();
            return;
        }
        self.measure = Some(MeasureRun::start(
            checkpoint.clone(),
            self.model_name.clone(),
            PathBuf::from(folder),
            self.params.options(),
            Arc::clone(&self.wake),
        ));
        self.status = format!("measuring {} on {folder}...", self.model_name);
    }

    /// The last measurement: `None` before one, `Some(None)` while running.
    pub fn measurement(&self) -> Option<Option<&Result<Measurement, String>>> {
        self.measure.as_ref().map(MeasureRun::outcome)
    }

    /// The folder the measurement panel names.
    pub fn measure_folder(&self) -> &str {
        &self.measure_dir
    }

    /// The training run's progress, if one was started.
    pub fn training_progress(&self) -> Option<&TrainProgress> {
        self.training.as_ref().map(TrainingRun::progress)
    }

    /// The name of the model generating now.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Whether an autosave from an unclean exit is being offered.
    pub fn offers_restore(&self) -> bool {
        self.restore_offer.is_some()
    }

    /// Notes in the roll being composed (the seed source).
    pub fn source_note_count(&self) -> usize {
        self.source.note_count()
    }

    /// The playhead while sound plays.
    pub fn playing_position(&self) -> Option<f64> {
        self.playhead()
    }

    /// The step under the mouse, when the mouse is over the roll.
    pub fn hovered_step(&self) -> Option<usize> {
        self.hovered_step
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Carries out a command: the one place that changes state.
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::Seek(step) => {
                if let Audio::Open(output) = &mut self.audio {
                    output.send(PlayerCommand::Seek(step));
                }
            }
            Command::TransportChanged(transport) => self.change_transport(transport),
            Command::ExportWav(path) => self.export_wav(path),
            Command::SetBackend(backend) => {
                if backend != self.backend {
                    self.start_worker(backend);
                    self.request_generation();
                }
            }
            Command::Hover(step) => self.hovered_step = step,
            Command::DrawNote { row, start, end } => self.draw_note(row, start, end),
            Command::EraseAt { row, step } => {
                if let Some(pitch) = Pitch::from_row(row) {
                    self.edit(|roll| roll.remove_note_at(step, pitch));
                }
            }
            Command::Undo => self.undo(),
            Command::Redo => self.redo(),
            Command::Keep => self.keep(),
            Command::Select(selection) => {
                self.selection = selection;
                let region = self.loop_region();
                if let Audio::Open(output) = &mut self.audio {
                    output.send(PlayerCommand::Loop(region));
                }
            }
            Command::DeleteSelection => self.delete_selection(),
            Command::TrainFormChanged(form) => self.train_form = form,
            Command::StartTraining => self.start_training(),
            Command::CancelTraining => {
                if let Some(run) = &self.training {
                    run.cancel();
                }
            }
            Command::UseTrainedModel => self.use_trained_model(),
            Command::UseShippedModel(name) => self.use_shipped_model(&name),
            Command::MeasureFolderChanged(folder) => self.measure_dir = folder,
            Command::Measure => self.start_measuring(),
            Command::SaveTrainedModel(path) => self.save_trained_model(&path),
            Command::RestoreAutosave => self.restore_autosave(),
            Command::DiscardAutosave => {
                self.restore_offer = None;
                if let Some(store) = &self.store {
                    store.clear_autosave();
                }
            }
            Command::SetSeed(start) => {
                let latest = self.source.steps().saturating_sub(WINDOW_STEPS);
                self.seed_start = start.min(latest);
                if self.params.live {
                    self.request_generation();
                }
            }
            Command::ParamsChanged(params) => {
                self.params = params;
                if params.live {
                    self.request_generation();
                }
            }
            Command::Generate => self.request_generation(),
            Command::ChooseVariation(index) => {
                if let Some(generated) = &mut self.generated
                    && index < generated.continuations.len()
                {
                    generated.chosen = index;
                    self.rebuild_display();
                }
            }
            Command::Play => self.play(),
            Command::Pause => {
                if let Audio::Open(output) = &mut self.audio {
                    output.send(PlayerCommand::Pause);
                }
            }
            Command::Stop => {
                if let Audio::Open(output) = &mut self.audio {
                    output.send(PlayerCommand::Stop);
                }
            }
            Command::Open(path) => self.open(&path),
            Command::SaveRoll(path) => {
                match save_roll(&self.display, &path, &SaveOptions::default()) {
                    Ok(_) => self.status = format!("saved {}", path.display()),
                    Err(error) => self.status = format!("cannot save: {error}"),
                }
            }
        }
    }

    fn request_generation(&mut self) {
        let Some(jobs) = &self.jobs else {
            return;
        };
        let seed = match seed_context(&self.source, self.seed_start) {
            Ok(seed) => seed.to_vec(),
            Err(error) => {
                self.status = error.to_string();
                return;
            }
        };
        self.next_job += 1;
        let job = GenerateJob {
            id: self.next_job,
            seed_start: self.seed_start,
            seed,
            options: self.params.options(),
        };
        let id = job.id;
        if jobs.submit(job) {
            self.pending = Some(id);
        } else {
            self.status = "the generation worker stopped".to_owned();
        }
    }

    /// Takes finished jobs; results older than the newest request are dropped.
    fn poll_jobs(&mut self) {
        let Some(jobs) = &self.jobs else {
            return;
        };
        for event in jobs.poll() {
            match event {
                JobEvent::Generated {
                    job,
                    continuations,
                    millis,
                } => {
                    if Some(job.id) != self.pending {
                        continue;
                    }
                    self.pending = None;
                    let chosen = self
                        .generated
                        .as_ref()
                        .map_or(0, |g| g.chosen)
                        .min(continuations.len().saturating_sub(1));
                    self.generated = Some(Generated {
                        seed_start: job.seed_start,
                        continuations,
                        options: job.options,
                        chosen,
                        millis,
                    });
                    self.rebuild_display();
                }
                JobEvent::Failed { id, error } => {
                    if id == 0 || Some(id) == self.pending {
                        self.pending = None;
                        self.status = format!("generation failed: {error}");
                    }
                }
            }
        }
    }

    /// The source up to the end of the seed window, then the chosen
    /// continuation; hands it to the player when sound is on.
    fn rebuild_display(&mut self) {
        let Some(generated) = &self.generated else {
            self.display = self.source.clone();
            self.display_key += 1;
            return;
        };
        let seed_end = generated.seed_start + WINDOW_STEPS;
        let head = self.source.slice(0, seed_end);
        let continuation = &generated.continuations[generated.chosen];
        let mut sounding = head.sounding_masks().to_vec();
        let mut onsets = head.onset_masks().to_vec();
        sounding.extend_from_slice(&continuation.steps);
        onsets.extend(std::iter::repeat_n(0, continuation.steps.len()));
        match PianoRoll::from_masks(sounding, onsets, *self.source.meta()) {
            Ok(roll) => self.display = roll,
            Err(error) => self.status = format!("cannot show the result: {error}"),
        }
        self.display_key += 1;
        let notes: u32 = continuation.steps.iter().map(|m| m.count_ones()).sum();
        self.status = format!(
            "generated {} steps ({notes} sounding cells) from step {} in {:.1} ms",
            continuation.steps.len(),
            generated.seed_start,
            generated.millis
        );
        let (song, region) = (self.song(), self.loop_region());
        if let Audio::Open(output) = &mut self.audio {
            output.replace_song(song);
            output.send(PlayerCommand::Loop(region));
        }
    }

    /// New tempo, instrument, volume or looping, passed to the playing synth.
    fn change_transport(&mut self, transport: Transport) {
        let before = self.transport;
        self.transport = transport;
        let region = self.loop_region();
        let song = (transport.program != before.program).then(|| self.song());
        if let Audio::Open(output) = &mut self.audio {
            if transport.bpm != before.bpm {
                output.send(PlayerCommand::Tempo(transport.bpm));
            }
            if transport.volume != before.volume {
                output.send(PlayerCommand::Volume(transport.volume));
            }
            if transport.looping != before.looping {
                output.send(PlayerCommand::Loop(region));
            }
            if let Some(song) = song {
                output.replace_song(song);
            }
        }
    }

    fn delete_selection(&mut self) {
        let Some(selection) = self.selection.take() else {
            return;
        };
        self.edit(|roll| {
            let doomed: Vec<RollNote> = roll
                .notes()
                .into_iter()
                .filter(|n| {
                    (selection.rows.0..selection.rows.1).contains(&n.pitch.row())
                        && (selection.steps.0..selection.steps.1).contains(&n.start)
                })
                .collect();
            for note in &doomed {
                roll.remove_note_at(note.start, note.pitch);
            }
            !doomed.is_empty()
        });
    }

    fn draw_note(&mut self, row: usize, start: usize, end: usize) {
        if let Some(pitch) = Pitch::from_row(row)
            && end > start
        {
            self.edit(|roll| {
                let before = roll.note_count();
                roll.add_note(RollNote {
                    start,
                    pitch,
                    len: end - start,
                });
                roll.note_count() != before
            });
        }
    }

    /// Applies `change` to the source roll as one undoable edit; `change`
    /// says whether it changed anything.
    fn edit(&mut self, change: impl FnOnce(&mut PianoRoll) -> bool) {
        let before = self.source.clone();
        if change(&mut self.source) {
            self.undo.push(before);
            // A long session keeps the last 200 edits.
            if self.undo.len() > 200 {
                self.undo.remove(0);
            }
            self.redo.clear();
            self.source_changed("edited");
        }
    }

    /// After an edit, undo or redo: redraw, and regenerate when live.
    fn source_changed(&mut self, what: &str) {
        self.dirty = true;
        self.seed_start = self
            .seed_start
            .min(self.source.steps().saturating_sub(WINDOW_STEPS));
        self.rebuild_display();
        self.status = format!("{what} ({} notes)", self.source.note_count());
        if self.params.live {
            self.request_generation();
        }
    }

    /// Writes the chosen continuation over the source from the end of the
    /// seed window on (lengthening the roll if it reaches past the end), and
    /// moves the seed window to its last 9 steps, ready to continue.
    fn keep(&mut self) {
        let Some(generated) = self.generated.take() else {
            return;
        };
        let start = generated.seed_start + WINDOW_STEPS;
        let steps = &generated.continuations[generated.chosen].steps;
        let total = self.source.steps().max(start + steps.len());
        let mut sounding = self.source.sounding_masks().to_vec();
        let mut onsets = self.source.onset_masks().to_vec();
        sounding.resize(total, 0);
        onsets.resize(total, 0);
        sounding[start..start + steps.len()].copy_from_slice(steps);
        onsets[start..start + steps.len()].fill(0);
        match PianoRoll::from_masks(sounding, onsets, *self.source.meta()) {
            Ok(kept) => {
                self.undo.push(std::mem::replace(&mut self.source, kept));
                self.redo.clear();
                self.seed_start = (start + steps.len()).saturating_sub(WINDOW_STEPS);
                self.source_changed("kept the continuation");
            }
            Err(error) => self.status = format!("cannot keep it: {error}"),
        }
    }

    /// Renders the shown roll to a WAV file on a background thread.
    fn export_wav(&mut self, path: PathBuf) {
        let song = self.song();
        let font = self.soundfont.clone();
        let messages = self.task_messages.0.clone();
        let wake = Arc::clone(&self.wake);
        self.status = format!("rendering {}...", path.display());
        std::thread::spawn(move || {
            let result = font
                .map_or_else(|| load_soundfont(None), Ok)
                .map_err(anyhow::Error::from)
                .and_then(|font| {
                    let audio = render_song(&font, song, &RenderOptions::default())?;
                    write_wav(&audio, &path, WavFormat::Pcm16)?;
                    Ok(audio.seconds())
                });
            let message = match result {
                Ok(seconds) => format!("exported {seconds:.1} s of audio to {}", path.display()),
                Err(error) => format!("cannot export {}: {error:#}", path.display()),
            };
            let _ = messages.send(message);
            wake();
        });
    }

    fn play(&mut self) {
        self.open_audio();
        match &mut self.audio {
            Audio::Open(output) => {
                output.send(PlayerCommand::Play);
            }
            Audio::Unavailable(reason) => self.status = reason.clone(),
            Audio::Disabled => self.status = "sound is off in this mode".to_owned(),
            Audio::Closed => {}
        }
    }

    /// Opens the output device if it is not open yet; a failure is kept as
    /// the reason the transport is disabled.
    fn open_audio(&mut self) {
        if matches!(self.audio, Audio::Closed) {
            let font = match &self.soundfont {
                Some(font) => Ok(Arc::clone(font)),
                None => load_soundfont(None),
            };
            self.audio = match font {
                Ok(font) => {
                    self.soundfont = Some(Arc::clone(&font));
                    let start = [
                        PlayerCommand::Volume(self.transport.volume),
                        PlayerCommand::Loop(self.loop_region()),
                    ];
                    match AudioOutput::open(&font, self.song(), &start) {
                        Ok(output) => Audio::Open(output),
                        Err(error) => Audio::Unavailable(format!(
                            "no audio output ({error}); saving still works"
                        )),
                    }
                }
                Err(error) => Audio::Unavailable(error.to_string()),
            };
        }
    }

    /// Opens a roll (MIDI, PNG), a model (Cadenza file, Keras .npz) or a
    /// SoundFont, by the file's extension.
    fn open(&mut self, path: &Path) {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match extension.as_str() {
            "cadenza" => self.open_model(path, Checkpoint::load(path).map_err(anyhow::Error::from)),
            "npz" => {
                let config = crate::model::SeedModelConfig::seed();
                let imported = crate::keras::load_keras_npz(path, &config, &device::cpu())
                    .map_err(anyhow::Error::from)
                    .and_then(|model| {
                        let origin = format!("imported from Keras weights {}", path.display());
                        Ok(Checkpoint::new(
                            crate::checkpoint::CheckpointHeader::new(config, origin),
                            &crate::model::Network::Seed(model),
                        )?)
                    });
                self.open_model(path, imported);
            }
            "sf2" | "sf3" => match load_soundfont(Some(path)) {
                Ok(font) => {
                    self.soundfont = Some(font);
                    // The next Play opens the output with the new bank.
                    if !matches!(self.audio, Audio::Disabled) {
                        self.audio = Audio::Closed;
                    }
                    self.status = format!("SoundFont {}", path.display());
                    self.settings.remember(path);
                }
                Err(error) => self.status = error.to_string(),
            },
            _ => self.open_roll(path),
        }
    }

    fn open_model(&mut self, path: &Path, checkpoint: anyhow::Result<Checkpoint>) {
        match checkpoint {
            Ok(checkpoint) => {
                self.install_model(checkpoint, file_name(path));
                self.settings.model = Some(path.display().to_string());
                self.settings.remember(path);
            }
            Err(error) => {
                self.status = format!("cannot open the model {}: {error:#}", path.display());
            }
        }
    }

    fn open_roll(&mut self, path: &Path) {
        let loaded = load_roll(path, &LoadOptions::default())
            .with_context(|| format!("cannot open {}", path.display()));
        match loaded {
            Ok(loaded) if loaded.roll.steps() >= WINDOW_STEPS => {
                // Undo brings the previous roll back.
                self.undo
                    .push(std::mem::replace(&mut self.source, loaded.roll));
                self.redo.clear();
                self.source_name = file_name(path);
                self.seed_start = 0;
                self.generated = None;
                self.rebuild_display();
                self.status = format!("opened {}", path.display());
                self.settings.remember(path);
                self.request_generation();
            }
            Ok(loaded) => {
                self.status = format!(
                    "{} has {} steps; a seed window needs {WINDOW_STEPS}",
                    path.display(),
                    loaded.roll.steps()
                );
            }
            Err(error) => self.status = format!("{error:#}"),
        }
    }

    fn playhead(&self) -> Option<f64> {
        match &self.audio {
            Audio::Open(output) if output.status().is_playing() => Some(output.status().position()),
            _ => None,
        }
    }

    fn audio_problem(&self) -> Option<&str> {
        match &self.audio {
            Audio::Unavailable(reason) => Some(reason),
            _ => None,
        }
    }
}

impl eframe::App for CadenzaApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll_jobs();
        while let Ok(message) = self.task_messages.1.try_recv() {
            self.status = message;
        }
        if let Some(run) = &mut self.measure {
            run.poll();
        }
        if let Some(run) = &mut self.training {
            run.poll();
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for path in dropped {
            self.apply(Command::Open(path));
        }
        // While an earlier session's autosave waits for an answer, it is not
        // overwritten.
        if self.dirty
            && self.restore_offer.is_none()
            && self.last_autosave.elapsed() > std::time::Duration::from_secs(3)
        {
            self.autosave_now();
        }
        if self.dirty {
            ctx.request_repaint_after(std::time::Duration::from_secs(3));
        }
        if self.playhead().is_some() || self.pending.is_some() {
            ctx.request_repaint();
        }
    }

    /// A clean exit: keep the settings and drop the autosave, unless an
    /// earlier session's autosave is still waiting for an answer.
    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        if let Some(store) = &self.store {
            let _ = store.save_settings(&self.current_settings());
            if self.restore_offer.is_none() {
                store.clear_autosave();
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if !self.first_frame_shown {
            self.first_frame_shown = true;
            if let Some(started) = STARTED.get()
                && std::env::var_os("CADENZA_REPORT_STARTUP").is_some()
            {
                eprintln!(
                    "cadenza: first frame {:.0} ms after start",
                    started.elapsed().as_secs_f64() * 1e3
                );
            }
        }
        let commands = panels::show(ui, self);
        for command in commands {
            self.apply(command);
        }
    }
}
