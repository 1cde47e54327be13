//! The desktop composer (feature `gui`): the roll as an image, a seed window
//! picked on it, the boost sliders, generation on a worker thread, a plot of
//! what the model did, and live playback.
//!
//! The app is made of parts that own their state: the [`Document`] (roll,
//! selection, undo), [`Generation`], [`Transport`] (sound), [`Training`],
//! [`Measuring`], the [`Session`] (settings, autosave, recent files) and the
//! [`View`]. Panels draw from them and return [`Command`]s;
//! [`CadenzaApp::apply`] is the one place that carries commands out. Work
//! that takes time runs on `jobs` workers, which report back as commands
//! or messages and say when they fail.

mod apply;
mod command;
mod compose;
mod dialogs;
mod document;
mod files;
mod generation;
mod jobs;
mod keyboard;
mod measure;
mod midi;
mod panels;
mod parts;
mod roll_view;
mod session;
mod training;
mod transport;

pub use command::{Command, FileQuestion};
pub use compose::Composing;
pub use document::{Clip, Document, Locks, UndoHistory};
pub use generation::{
    ComposeSettings, GenerateRequest, Generated, Generation, Ghost, Heard, LoadedModel, Params,
    Passage,
};
pub use keyboard::Keyboard;
pub use measure::{Measurement, Measuring};
pub use midi::{MidiIo, OutputChoice};
pub use parts::{PartToggle, PartToggles, PartsView};
pub use roll_view::{Selection, Snap, Tool, View};
pub use session::{Autosave, AutosaveState, LockedStep, Session, SessionStore, Settings};
pub use training::{TrainForm, TrainProgress, Training};
pub use transport::{Transport, TransportSettings};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use eframe::egui;

use crate::arrangement::Performance;
use crate::assets::{default_demo, open_model};
use crate::audio::player::{PlayerCommand, Song};
use crate::device::{self, BackendChoice};
use crate::midi::{ImportOptions, import};
use crate::roll::PianoRoll;

use dialogs::DialogSupport;
use generation::GenerationNews;
use jobs::{Task, TaskOutcome, Waker};

/// How the app starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// A real window: audio on demand, the model on `--backend auto`, file
    /// dialogs where the desktop has them.
    Desktop,
    /// Tests: no audio device, the model on the CPU, no native dialogs.
    Headless,
}

/// The typed-path prompt, shown where no file dialog can open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPrompt {
    pub question: FileQuestion,
    pub text: String,
}

/// The whole app.
pub struct CadenzaApp {
    document: Document,
    generation: Generation,
    transport: Transport,
    training: Training,
    measuring: Measuring,
    session: Session,
    view: View,
    /// The roll shown and played: the document up to the end of the seed
    /// window, then the chosen continuation; `shown_key` changes with it.
    shown: PianoRoll,
    shown_key: u64,
    /// The document's notes as its parts play them, kept with `shown`.
    performance: Performance,
    parts_view: PartsView,
    midi: MidiIo,
    keyboard: Keyboard,
    /// Background work whose result is a command.
    tasks: Vec<Task>,
    dialogs: DialogSupport,
    prompt: Option<PathPrompt>,
    status: String,
    /// Wakes the UI from other threads.
    wake: Waker,
    first_frame_shown: bool,
    /// Fills, locks, the key, ghost notes and the lens.
    composing: Composing,
    /// The window title last sent.
    title: String,
}

impl std::fmt::Debug for CadenzaApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CadenzaApp")
            .field("document", &self.document.name())
            .field("seed_start", &self.document.seed_start())
            .field("params", &self.generation.params)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Velocity of notes that have none of their own and nothing before them in
/// their part.
const DEFAULT_VELOCITY: u8 = 100;

/// When `run` was called, for the start-up figure.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Opens the window, on `file` when given (else the demo); returns when it
/// closes. With `CADENZA_REPORT_STARTUP` set, says on stderr how long the
/// first frame took to arrive.
pub fn run(file: Option<PathBuf>) -> anyhow::Result<()> {
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
        Box::new(|cc| {
            Ok(Box::new(match file {
                Some(file) => CadenzaApp::open_on(&cc.egui_ctx, StartMode::Desktop, &file),
                None => CadenzaApp::new(&cc.egui_ctx, StartMode::Desktop),
            }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

/// The shipped demo as the document (an empty roll, with a note, should it
/// not import).
fn demo_document(notes: &mut Vec<String>) -> Document {
    let demo = default_demo();
    match import(demo.midi, &ImportOptions::default()) {
        Ok((roll, _)) => Document::new(roll, demo.name.to_owned()),
        Err(error) => {
            notes.push(format!("the shipped demo is unreadable: {error}"));
            Document::new(
                PianoRoll::new(64, crate::roll::RollMeta::default()).unwrap_or_default(),
                "empty roll".to_owned(),
            )
        }
    }
}

/// The model of the last session, else the default one; notes say why the
/// remembered one could not be had.
fn start_model(remembered: Option<&str>, notes: &mut Vec<String>) -> Option<LoadedModel> {
    let opened = match open_model(remembered) {
        Ok(opened) => Ok((opened, remembered.map(str::to_owned))),
        Err(error) if remembered.is_some() => {
            notes.push(format!(
                "cannot open the last model ({error}); using the default"
            ));
            open_model(None).map(|opened| (opened, None))
        }
        Err(error) => Err(error),
    };
    match opened {
        Ok(((checkpoint, name), spec)) => Some(LoadedModel {
            checkpoint,
            name,
            spec,
        }),
        Err(error) => {
            notes.push(format!("no model: {error}"));
            None
        }
    }
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
        Self::start(ctx, mode, store, None)
    }

    /// The app opened on `path` (a MIDI file or roll PNG) instead of the
    /// demo; a file that cannot be read leaves the demo and says why.
    pub fn open_on(ctx: &egui::Context, mode: StartMode, path: &std::path::Path) -> Self {
        let store = match mode {
            StartMode::Desktop => SessionStore::default_location(),
            StartMode::Headless => None,
        };
        Self::start(ctx, mode, store, Some(path))
    }

    /// The app on `file`, else the shipped demo.
    fn start(
        ctx: &egui::Context,
        mode: StartMode,
        store: Option<SessionStore>,
        file: Option<&std::path::Path>,
    ) -> Self {
        // The UI and the audio need a core of their own: a lone generation
        // takes a second one only where a third is left for them.
        crate::model::split::leave_a_core_for_the_ui();
        let wake: Waker = {
            let ctx = ctx.clone();
            Arc::new(move || ctx.request_repaint())
        };
        let mut notes = Vec::new();
        let opened = file.and_then(|path| match files::read_roll(path) {
            Ok(roll) => Some(Document::new(roll, files::file_name(path))),
            Err(error) => {
                notes.push(format!("cannot open {}: {error}", path.display()));
                None
            }
        });
        let from_file = opened.is_some();
        let document = opened.unwrap_or_else(|| demo_document(&mut notes));
        let (session, settings) = Session::open(store, &mut notes);
        let model = start_model(settings.model.as_deref(), &mut notes);
        let mut params = settings.params;
        if settings.model.is_none()
            && let Some(model) = &model
        {
            // A first start: the rule the default model is meant for.
            params.suit(&model.checkpoint.header);
        }
        if from_file {
            // Another piece: its key is heard afresh.
            params.compose.scale = None;
        }
        let backend = match mode {
            StartMode::Desktop => settings.backend.unwrap_or(BackendChoice::Auto),
            StartMode::Headless => BackendChoice::Cpu,
        };
        let gpu = device::select(BackendChoice::Gpu)
            .map(|selected| selected.label)
            .map_err(|error| error.to_string());
        let (generation, device_problem) =
            Generation::new(model, params, backend, gpu, Arc::clone(&wake));
        notes.extend(device_problem);
        let meta = *document.roll().meta();
        let transport_settings = settings.transport.unwrap_or(TransportSettings {
            bpm: meta.tempo.bpm(),
            program: meta.program,
            ..TransportSettings::default()
        });
        let view = View {
            zoom: settings.zoom.unwrap_or(View::default().zoom),
            pitch_zoom: settings.pitch_zoom.unwrap_or(1.0),
            ..View::default()
        };
        let performance = document.roll().performance(DEFAULT_VELOCITY);
        let mut app = Self {
            shown: document.roll().clone(),
            shown_key: 1,
            parts_view: PartsView::default(),
            midi: MidiIo::default(),
            keyboard: Keyboard::new(),
            performance,
            document,
            generation,
            transport: Transport::new(transport_settings, mode == StartMode::Desktop),
            training: Training::default(),
            measuring: Measuring::default(),
            session,
            view,
            tasks: Vec::new(),
            dialogs: match mode {
                StartMode::Desktop => DialogSupport::probe(),
                StartMode::Headless => DialogSupport::headless(),
            },
            prompt: None,
            status: String::new(),
            wake,
            first_frame_shown: false,
            composing: Composing::default(),
            title: String::new(),
        };
        app.take_toggles(&settings);
        if mode == StartMode::Desktop {
            app.reopen_midi(settings.midi_input, settings.midi_output, &mut notes);
        }
        if let Some(path) = file.filter(|_| from_file) {
            app.session.remember(path);
            app.status = format!("opened {}", path.display());
        }
        for note in &notes {
            eprintln!("cadenza: {note}");
        }
        app.session.notices = notes;
        if let Some(offer) = app.session.restore_offer() {
            eprintln!(
                "cadenza: the last session did not exit cleanly; offering its autosave back \
                 ({}, {} notes)",
                offer.state.source_name,
                offer.roll.note_count()
            );
        }
        app.composing.hear_key(&app.document);
        app.view.fit_pitches(app.document.roll());
        // Open the sound output now, so a missing device shows at once.
        app.transport.open(app.song(), app.loop_region());
        app.request_generation();
        app.hear_again();
        app
    }

    /// The view and keyboard toggles the settings remember.
    fn take_toggles(&mut self, settings: &Settings) {
        self.parts_view.velocity_lane = settings.velocity_lane.unwrap_or(false);
        self.view.snap = settings.snap.unwrap_or_default();
        self.composing.ghost_notes = settings.ghost_notes.unwrap_or(false);
        self.composing.lens = settings.surprise_lens.unwrap_or(false);
        self.keyboard.internal_synth = settings.internal_synth.unwrap_or(true);
    }

    // What tests and panels read.

    /// The roll shown (and played).
    pub fn display(&self) -> &PianoRoll {
        &self.shown
    }

    pub fn document(&self) -> &Document {
        &self.document
    }

    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    pub fn seed_start(&self) -> usize {
        self.document.seed_start()
    }

    pub fn params(&self) -> &Params {
        &self.generation.params
    }

    /// The status line's text.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// Notes about settings or an autosave that were adjusted on loading.
    pub fn notices(&self) -> &[String] {
        &self.session.notices
    }

    /// Whether nothing the user waits for is running: no generation, ghost
    /// notes or lens pending, and no file, dialog or export task.
    pub fn is_idle(&self) -> bool {
        !self.generation.is_busy() && self.tasks.is_empty()
    }

    /// The name of the model generating now.
    pub fn model_name(&self) -> &str {
        self.generation.model_name()
    }

    /// Whether an autosave from an unclean exit is being offered.
    pub fn offers_restore(&self) -> bool {
        self.session.restore_offer().is_some()
    }

    /// Notes in the roll being composed.
    pub fn source_note_count(&self) -> usize {
        self.document.roll().note_count()
    }

    /// The playhead while sound plays.
    pub fn playing_position(&self) -> Option<f64> {
        self.transport.playhead()
    }

    /// The step under the mouse, when the mouse is over the roll.
    /// The document's notes as its parts play them.
    pub fn performance(&self) -> &Performance {
        &self.performance
    }

    /// Which parts are muted, soloed or hidden.
    pub fn parts_view(&self) -> &PartsView {
        &self.parts_view
    }

    /// The MIDI input listened to.
    pub fn keyboard_port(&self) -> Option<&str> {
        self.midi.input_name()
    }

    /// The keyboard: recording, answer mode, the ports listed.
    pub fn keyboard(&self) -> &Keyboard {
        &self.keyboard
    }

    /// The song the player gets now.
    pub fn current_song(&self) -> Song {
        self.song()
    }

    /// Fills, locks, the key, ghost notes and the lens.
    pub fn composing(&self) -> &Composing {
        &self.composing
    }

    /// How the roll is looked at (zoom, snap, tool).
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The window title: the file's name, a star while it has unsaved
    /// edits.
    pub fn window_title(&self) -> String {
        let star = if self.document.is_modified() { "*" } else { "" };
        format!("{}{star} — Cadenza", self.document.name())
    }

    pub fn hovered_step(&self) -> Option<usize> {
        self.view.hovered_step
    }

    pub fn transport(&self) -> &TransportSettings {
        &self.transport.settings
    }

    /// The training run's progress, if one was started.
    pub fn training_progress(&self) -> Option<&TrainProgress> {
        self.training.progress()
    }

    /// The last measurement: `None` before one, `Some(None)` while running.
    pub fn measurement(&self) -> Option<Option<&Result<Measurement, String>>> {
        self.measuring.measurement()
    }

    /// The typed-path prompt, while it is open.
    pub fn prompt(&self) -> Option<&PathPrompt> {
        self.prompt.as_ref()
    }

    /// Why there are no file dialogs, if there are none.
    pub fn dialog_problem(&self) -> Option<&str> {
        self.dialogs.problem()
    }

    /// Runs `work` in the background like every file and export task: the
    /// command it returns is applied when it is done, and a panic or an end
    /// without a result is reported in the status line. `what` names it.
    pub fn run_in_background(
        &mut self,
        what: &str,
        work: impl FnOnce() -> Command + Send + 'static,
    ) {
        self.tasks
            .push(Task::spawn(what, Arc::clone(&self.wake), work));
    }

    // Derived state.

    /// The song the player plays: the shown roll's audible parts (the
    /// transport adds its tempo and instrument).
    fn song(&self) -> Song {
        let performance = self.shown.performance(DEFAULT_VELOCITY);
        Song::from_performance(&self.shown, &performance, |part| {
            self.parts_view.audible(part)
        })
    }

    /// The loop region when looping is on: a fill being auditioned (looped
    /// whether looping is on or not), the selected steps, else the
    /// generated part, else the whole roll.
    pub fn loop_region(&self) -> Option<(f64, f64)> {
        let auditioning = self.generation.result().is_some_and(Generated::is_fill);
        if !self.transport.settings.looping && !auditioning {
            return None;
        }
        let (start, end) = match (self.document.selection(), self.generation.result()) {
            (_, Some(generated)) if generated.is_fill() => (
                generated.first_step(),
                generated.first_step() + generated.shown().steps.len(),
            ),
            (Some(selection), _) => selection.steps,
            (None, Some(generated)) => (generated.first_step(), self.shown.steps()),
            (None, None) => (0, self.shown.steps()),
        };
        Some((start as f64, end as f64))
    }

    /// The document up to the end of the seed window, then the chosen
    /// continuation; hands it to the player when sound is on.
    fn rebuild_shown(&mut self) {
        self.shown_key += 1;
        self.performance = self.document.roll().performance(DEFAULT_VELOCITY);
        self.parts_view.fit(self.performance.parts.len());
        self.composing.hear_key(&self.document);
        let Some(generated) = self.generation.result() else {
            self.shown = self.document.roll().clone();
            self.play_shown();
            return;
        };
        if generated.is_fill() {
            let first = generated.first_step();
            match generated.shown().written_into(self.document.roll(), first) {
                Ok(roll) => self.shown = roll,
                Err(error) => self.status = format!("cannot show the fill: {error}"),
            }
            let variations = generated.continuations.len();
            let by = generated
                .filled_by
                .map(|model| {
                    format!(" with the {model} (the model in use hears only what comes before)")
                })
                .unwrap_or_default();
            self.status = format!(
                "filled steps {first}..{}{by} in {:.1} ms{}",
                first + generated.shown().steps.len(),
                generated.millis,
                if variations > 1 {
                    format!(": {variations} variations to audition, Keep (K) writes one in")
                } else {
                    String::new()
                }
            );
            self.play_shown();
            return;
        }
        let head = self.document.roll().slice(0, generated.first_step());
        let continuation = generated.shown();
        let mut sounding = head.sounding_masks().to_vec();
        let mut onsets = head.onset_masks().to_vec();
        sounding.extend_from_slice(&continuation.steps);
        onsets.extend(std::iter::repeat_n(0, continuation.steps.len()));
        match self.document.roll().with_cells(sounding, onsets) {
            Ok(roll) => self.shown = roll,
            Err(error) => self.status = format!("cannot show the result: {error}"),
        }
        let cells: u32 = continuation.steps.iter().map(|m| m.count_ones()).sum();
        self.status = format!(
            "generated {} steps ({cells} sounding cells) from step {} in {:.1} ms",
            continuation.steps.len(),
            generated.first_step() - crate::model::WINDOW_STEPS,
            generated.millis
        );
        self.play_shown();
    }

    /// Gives the player the shown roll and the loop region.
    fn play_shown(&mut self) {
        let region = self.loop_region();
        let sent = self
            .transport
            .play_song(self.song())
            .and_then(|()| self.transport.send(PlayerCommand::Loop(region)));
        if let Err(error) = sent {
            self.status = error.to_string();
        }
    }

    /// Asks for the passage in focus again: the continuation after the
    /// seed window, or the fill being auditioned.
    fn request_generation(&mut self) {
        let passage = self.composing.focus.clone().unwrap_or(Passage::Continue {
            seed_start: self.document.seed_start(),
        });
        self.request_passage(passage);
    }

    /// After the document changed: redraw, regenerate when live, and
    /// refresh the ghost notes and the lens.
    fn document_changed(&mut self, what: &str) {
        self.rebuild_shown();
        self.status = format!("{what} ({} notes)", self.document.roll().note_count());
        if self.generation.params.live {
            self.request_generation();
        }
        self.suggest_ghosts();
        self.hear_again();
    }

    /// The settings as the parts hold them now.
    fn current_settings(&self) -> Settings {
        Settings {
            params: self.generation.params,
            model: self.session.model().map(str::to_owned),
            transport: Some(self.transport.settings),
            zoom: Some(self.view.zoom),
            pitch_zoom: Some(self.view.pitch_zoom),
            backend: Some(self.generation.backend()),
            recent: self.session.recent().to_vec(),
            midi_input: self.midi.input_name().map(str::to_owned),
            midi_output: self.midi.output_choice().cloned(),
            internal_synth: Some(self.keyboard.internal_synth),
            velocity_lane: Some(self.parts_view.velocity_lane),
            snap: Some(self.view.snap),
            ghost_notes: Some(self.composing.ghost_notes),
            surprise_lens: Some(self.composing.lens),
        }
    }

    /// Writes the autosave and the settings now (the app does it every few
    /// seconds while there are unsaved edits).
    pub fn autosave_now(&mut self) {
        let state = AutosaveState {
            source_name: self.document.name().to_owned(),
            steps_per_quarter: self.document.roll().meta().steps_per_quarter,
            seed_start: self.document.seed_start(),
            params: self.generation.params,
            transport: self.transport.settings,
            locked: session::LockedStep::all(self.document.locked()),
        };
        let settings = self.current_settings();
        match self
            .session
            .autosave(self.document.roll(), &state, &settings)
        {
            Ok(true) => self.document.mark_saved(),
            Ok(false) => {}
            Err(error) => self.status = format!("cannot autosave: {error}"),
        }
    }

    // Each frame.

    /// Takes what the workers sent and carries it out.
    fn poll_work(&mut self) {
        for (at, message) in self.midi.received() {
            self.take_midi(at, message);
        }
        if let Some(news) = self.midi.check_ports() {
            self.status = news;
        }
        for news in self.generation.poll() {
            match news {
                GenerationNews::Generated => {
                    self.rebuild_shown();
                    self.play_answer();
                }
                // Drawn from the generation's state each frame.
                GenerationNews::Ghost | GenerationNews::Heard => {}
                GenerationNews::Failed(error) => self.status = error,
            }
        }
        let mut finished = Vec::new();
        self.tasks.retain_mut(|task| match task.poll() {
            Some(outcome) => {
                finished.push(outcome);
                false
            }
            None => true,
        });
        for outcome in finished {
            match outcome {
                TaskOutcome::Done(command) => self.apply(command),
                TaskOutcome::Failed(error) => self.status = error,
            }
        }
        if let Some(message) = self.training.poll() {
            self.status = message;
        }
        if let Some(message) = self.measuring.poll() {
            self.status = message;
        }
        if self.transport.has_unsent() && self.transport.retry() {
            self.status = "the sound caught up with the screen".to_owned();
        }
    }

    /// Whether something runs that the screen should follow every frame.
    fn animating(&self) -> bool {
        self.transport.playhead().is_some()
            || self.generation.is_busy()
            || self.transport.has_unsent()
    }
}

impl eframe::App for CadenzaApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll_work();
        self.follow_playback();
        let title = self.window_title();
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
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
        if self.document.is_dirty() && self.session.autosave_due() {
            self.autosave_now();
        }
        if self.document.is_dirty() {
            ctx.request_repaint_after(Session::AUTOSAVE_EVERY);
        }
        if let Some(wait) = self.answer_when_due() {
            ctx.request_repaint_after(Duration::from_secs_f64(wait.min(1.0)));
        }
        if self.midi.input_name().is_some() {
            // Ports are looked for every second.
            ctx.request_repaint_after(Duration::from_secs(1));
        }
        if self.animating() {
            ctx.request_repaint();
        } else if !self.tasks.is_empty() || self.training.is_running() {
            // Workers wake the UI when they send; this is a safety net.
            ctx.request_repaint_after(Duration::from_millis(250));
        }
    }

    /// A clean exit: keep the settings and drop the autosave, unless an
    /// earlier session's autosave is still waiting for an answer.
    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        let settings = self.current_settings();
        self.session.close(&settings);
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
