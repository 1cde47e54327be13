//! The desktop composer (feature `gui`): the roll as an image, a seed window
//! picked on it, the boost sliders, generation on a worker thread, a plot of
//! what the model did, and live playback.
//!
//! Panels draw and return [`Command`]s; [`CadenzaApp::apply`] is the one place
//! that changes state. Heavy work runs on the generation worker (`jobs`).

mod jobs;
mod panels;
mod roll_view;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use eframe::egui;

use crate::assets::{default_demo, open_model};
use crate::audio::output::AudioOutput;
use crate::audio::player::{PlayerCommand, Song};
use crate::audio::soundfont::{SoundFont, load_soundfont};
use crate::device::{self, BackendChoice};
use crate::files::{LoadOptions, SaveOptions, load_roll, save_roll};
use crate::generate::{Continuation, GenerateOptions, RuleSettings, seed_window};
use crate::midi::{ImportOptions, import};
use crate::model::WINDOW_STEPS;
use crate::roll::PianoRoll;

use jobs::{GenerateJob, JobEvent, Jobs};
use roll_view::RollTextures;

/// The generation controls.
#[derive(Clone, Copy, Debug, PartialEq)]
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

/// What panels ask for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SetSeed(usize),
    /// The controls changed (regenerates when live).
    ParamsChanged(Params),
    Generate,
    ChooseVariation(usize),
    Play,
    Stop,
    Open(PathBuf),
    SaveMidi(PathBuf),
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
    jobs: Option<Jobs>,
    next_job: u64,
    pending: Option<u64>,
    audio: Audio,
    soundfont: Option<Arc<SoundFont>>,
    model_name: String,
    device_label: String,
    status: String,
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

/// Opens the window; returns when it closes.
pub fn run() -> anyhow::Result<()> {
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
    /// The app on the shipped demo roll and default model, generating at once.
    pub fn new(ctx: &egui::Context, mode: StartMode) -> Self {
        let demo = default_demo();
        let (source, source_name, mut status) = match import(demo.midi, &ImportOptions::default()) {
            Ok((roll, _)) => (roll, demo.name.to_owned(), String::new()),
            Err(error) => (
                PianoRoll::new(64, crate::roll::RollMeta::default()).unwrap_or_default(),
                "empty roll".to_owned(),
                format!("the shipped demo is unreadable: {error}"),
            ),
        };
        let backend = match mode {
            StartMode::Desktop => BackendChoice::Auto,
            StartMode::Headless => BackendChoice::Cpu,
        };
        let selected = device::select(backend).unwrap_or_else(|_| device::cpu_selected(None));
        let device_label = match &selected.notice {
            Some(notice) => format!("{} ({notice})", selected.label),
            None => selected.label.clone(),
        };
        let wake_ctx = ctx.clone();
        let (jobs, model_name) = match open_model(None) {
            Ok((checkpoint, name)) => (
                Some(Jobs::start(checkpoint, selected, move || {
                    wake_ctx.request_repaint();
                })),
                name,
            ),
            Err(error) => {
                status = format!("no model: {error}");
                (None, "none".to_owned())
            }
        };
        let mut app = Self {
            display: source.clone(),
            source,
            source_name,
            seed_start: 0,
            params: Params::default(),
            generated: None,
            display_key: 1,
            textures: RollTextures::default(),
            zoom: 6.0,
            jobs,
            next_job: 0,
            pending: None,
            audio: match mode {
                StartMode::Desktop => Audio::Closed,
                StartMode::Headless => Audio::Disabled,
            },
            soundfont: None,
            model_name,
            device_label,
            status,
        };
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

    /// Carries out a command: the one place that changes state.
    pub fn apply(&mut self, command: Command) {
        match command {
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
            Command::Stop => {
                if let Audio::Open(output) = &mut self.audio {
                    output.send(PlayerCommand::Stop);
                }
            }
            Command::Open(path) => self.open(&path),
            Command::SaveMidi(path) => {
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
        let seed = match seed_window(&self.source, self.seed_start) {
            Ok(seed) => seed,
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
        if jobs.submit(job) {
            self.pending = Some(job.id);
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
        if let Audio::Open(output) = &mut self.audio {
            output.replace_song(Song::from_roll(&self.display, 100));
        }
    }

    fn play(&mut self) {
        if matches!(self.audio, Audio::Closed) {
            let font = match &self.soundfont {
                Some(font) => Ok(Arc::clone(font)),
                None => load_soundfont(None),
            };
            self.audio = match font {
                Ok(font) => {
                    self.soundfont = Some(Arc::clone(&font));
                    match AudioOutput::open(&font, Song::from_roll(&self.display, 100), &[]) {
                        Ok(output) => Audio::Open(output),
                        Err(error) => Audio::Unavailable(format!(
                            "no audio output ({error}); saving still works"
                        )),
                    }
                }
                Err(error) => Audio::Unavailable(error.to_string()),
            };
        }
        match &mut self.audio {
            Audio::Open(output) => {
                output.send(PlayerCommand::Play);
            }
            Audio::Unavailable(reason) => self.status = reason.clone(),
            Audio::Disabled => self.status = "sound is off in this mode".to_owned(),
            Audio::Closed => {}
        }
    }

    fn open(&mut self, path: &Path) {
        let loaded = load_roll(path, &LoadOptions::default())
            .with_context(|| format!("cannot open {}", path.display()));
        match loaded {
            Ok(loaded) if loaded.roll.steps() >= WINDOW_STEPS => {
                self.source = loaded.roll;
                self.source_name = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                self.seed_start = 0;
                self.generated = None;
                self.rebuild_display();
                self.status = format!("opened {}", path.display());
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
        if self.playhead().is_some() || self.pending.is_some() {
            ctx.request_repaint();
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let commands = panels::show(ui, self);
        for command in commands {
            self.apply(command);
        }
    }
}
