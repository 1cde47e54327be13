//! Carrying out commands: [`CadenzaApp::apply`], the one place that changes
//! the app's state, with one function per group of commands and the work
//! each command starts (opening and exporting files in the background,
//! keeping a continuation, restoring an autosave).

use std::path::PathBuf;
use std::sync::Arc;

use super::files::{self, Loaded, file_name};
use super::{CadenzaApp, Command, FileQuestion, LoadedModel, PathPrompt, TrainForm, dialogs};
use crate::assets::open_model;
use crate::audio::live::QueueFull;
use crate::audio::player::PlayerCommand;
use crate::audio::render::{RenderOptions, WavFormat, render_to_wav};
use crate::audio::soundfont::load_soundfont;
use crate::files::{SaveOptions, save_roll};
use crate::limits;

impl CadenzaApp {
    /// Carries out a command: the one place that changes state. Each group
    /// of commands has its own function; a command none of them takes is a
    /// mistake in this file, not the user's.
    pub fn apply(&mut self, command: Command) {
        let Some(command) = self.apply_to_document(command) else {
            return;
        };
        let Some(command) = self.apply_to_composing(command) else {
            return;
        };
        let Some(command) = self.apply_to_generation(command) else {
            return;
        };
        let Some(command) = self.apply_to_sound(command) else {
            return;
        };
        let Some(command) = self.apply_to_files(command) else {
            return;
        };
        let Some(command) = self.apply_to_view(command) else {
            return;
        };
        self.apply_to_the_rest(command);
    }

    /// The roll being composed; other commands are handed back.
    fn apply_to_document(&mut self, command: Command) -> Option<Command> {
        let (changed, what) = match command {
            Command::SetSeed(start) => {
                self.document.set_seed_start(start);
                // Back to continuing from the seed window.
                if self.composing.focus.take().is_some() {
                    self.generation.clear_result();
                    self.rebuild_shown();
                }
                if self.generation.params.live {
                    self.request_generation();
                }
                return None;
            }
            Command::DrawNote { row, start, end } => {
                self.composing.ghost_at = Some(end);
                (self.document.draw_note(row, start, end), "edited")
            }
            Command::EraseAt { row, step } => {
                self.composing.ghost_at = Some(step);
                (self.document.erase_at(row, step), "edited")
            }
            Command::Undo => (self.document.undo(), "undone"),
            Command::Redo => (self.document.redo(), "redone"),
            Command::DeleteSelection => (self.document.delete_selection(), "deleted"),
            Command::SetTargetPart(part) => (
                self.document
                    .edit(|roll| roll.arrangement_mut().set_target_part(part)),
                "new notes go to another part",
            ),
            Command::SetVelocity {
                step,
                rows,
                velocity,
            } => (
                self.document
                    .edit(|roll| roll.set_velocity_at(step, rows.0..rows.1, velocity) > 0),
                "velocity set",
            ),
            Command::Keep => {
                self.keep();
                return None;
            }
            Command::Select(selection) => {
                self.document.select(selection);
                let region = self.loop_region();
                let sent = self.transport.send(PlayerCommand::Loop(region));
                self.report(sent);
                return None;
            }
            other => return Some(other),
        };
        if changed {
            self.document_changed(what);
        }
        None
    }

    /// The controls, the model and the device; other commands are handed back.
    fn apply_to_generation(&mut self, command: Command) -> Option<Command> {
        match command {
            Command::ParamsChanged(params) => {
                self.generation.params = params;
                if params.live {
                    self.request_generation();
                }
            }
            Command::Generate => self.request_generation(),
            Command::ChooseVariation(index) => {
                if self.generation.choose(index) {
                    self.rebuild_shown();
                }
            }
            Command::SetBackend(backend) => {
                if backend != self.generation.backend() {
                    match self.generation.set_backend(backend) {
                        Ok(()) => self.request_generation(),
                        Err(error) => {
                            self.status =
                                format!("{error}; staying on {}", self.generation.device_label());
                        }
                    }
                }
            }
            Command::UseShippedModel(name) => match open_model(Some(&name)) {
                Ok((checkpoint, shown)) => self.install_model(LoadedModel {
                    checkpoint,
                    name: shown,
                    spec: Some(name),
                }),
                Err(error) => self.status = format!("cannot open the model {name}: {error}"),
            },
            other => return Some(other),
        }
        None
    }

    /// The transport; other commands are handed back.
    fn apply_to_sound(&mut self, command: Command) -> Option<Command> {
        let sent = match command {
            Command::Play => {
                self.open_sound();
                let played = self.transport.send(PlayerCommand::Play);
                if let Some(problem) = self.transport.problem() {
                    self.status = problem.to_owned();
                    return None;
                }
                if let Some(note) = self.transport.silent_because() {
                    self.status = note.to_owned();
                }
                played
            }
            Command::Pause => self.transport.send(PlayerCommand::Pause),
            Command::Stop => self.transport.send(PlayerCommand::Stop),
            Command::Seek(step) => self.transport.send(PlayerCommand::Seek(step)),
            Command::TransportChanged(settings) => {
                let region = self.loop_region();
                match self.transport.change(settings, region) {
                    Ok(true) => {
                        self.play_shown();
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(error) => Err(error),
                }
            }
            other => return Some(other),
        };
        self.report(sent);
        None
    }

    /// Opening, saving, exporting and asking for paths; other commands are
    /// handed back.
    fn apply_to_files(&mut self, command: Command) -> Option<Command> {
        match command {
            Command::Open(path) => self.open(path),
            Command::Loaded(loaded) => self.take_loaded(*loaded),
            Command::SaveRoll(path) => {
                self.status = match save_roll(&self.shown, &path, &SaveOptions::default()) {
                    Ok(_) => {
                        self.document.mark_written(file_name(&path));
                        format!("saved {}", path.display())
                    }
                    Err(error) => format!("cannot save: {error}"),
                };
            }
            Command::ExportWav(path) => self.export_wav(path),
            Command::Ask(question) => self.ask(question),
            Command::Answered(question, path) => {
                if let Some(path) = path {
                    self.answer(question, path);
                }
            }
            Command::PromptChanged(text) => {
                if let Some(prompt) = &mut self.prompt {
                    prompt.text = text;
                }
            }
            Command::AnswerPrompt(take) => {
                if let Some(prompt) = self.prompt.take()
                    && take
                    && !prompt.text.trim().is_empty()
                {
                    self.answer(prompt.question, PathBuf::from(prompt.text.trim()));
                }
            }
            Command::Report(message) => self.status = message,
            other => return Some(other),
        }
        None
    }

    /// The view: zoom, parts shown, snap, tool, the pitch range, ghost notes
    /// and the lens; other commands are handed back.
    fn apply_to_view(&mut self, command: Command) -> Option<Command> {
        match command {
            Command::Hover(step) => self.view.hovered_step = step,
            Command::SetRange(range) => {
                let mut params = self.generation.params;
                params.compose.range = range;
                self.apply(Command::ParamsChanged(params));
            }
            Command::ShowGhosts(on) => {
                self.composing.ghost_notes = on;
                if on {
                    if self.composing.ghost_at.is_none() {
                        // Until an edit says where, after the seed window.
                        self.composing.ghost_at =
                            Some(self.document.seed_start() + crate::model::WINDOW_STEPS);
                    }
                    self.suggest_ghosts();
                } else {
                    self.generation.take_ghost();
                }
            }
            Command::ShowLens(on) => {
                self.composing.lens = on;
                if on {
                    self.hear_again();
                } else {
                    self.generation.clear_heard();
                }
            }
            Command::SetSnap(snap) => self.view.snap = snap,
            Command::SetTool(tool) => self.view.tool = tool,
            Command::FitPitches => self.view.fit_pitches(self.document.roll()),
            Command::TogglePart { part, toggle } => {
                self.parts_view.flip(part, toggle);
                self.rebuild_shown();
            }
            Command::ShowVelocityLane(shown) => self.parts_view.velocity_lane = shown,
            Command::Zoom { steps, pitches } => {
                self.view.zoom = limits::ZOOM.clamp(steps);
                self.view.pitch_zoom = limits::PITCH_ZOOM.clamp(pitches);
            }
            other => return Some(other),
        }
        None
    }

    /// Training, measuring, the session and MIDI.
    fn apply_to_the_rest(&mut self, command: Command) {
        match command {
            Command::TrainFormChanged(form) => self.training.form = form,
            Command::StartTraining => {
                let backend = self.generation.backend();
                self.status = match self.training.start(backend, Arc::clone(&self.wake)) {
                    Ok(()) => "training...".to_owned(),
                    Err(error) => error,
                };
            }
            Command::CancelTraining => self.training.cancel(),
            Command::UseTrainedModel => match self.training.checkpoint() {
                Some(Ok(checkpoint)) => self.install_model(LoadedModel {
                    checkpoint,
                    name: "trained here (unsaved)".to_owned(),
                    spec: None,
                }),
                Some(Err(error)) => self.status = format!("cannot load the trained model: {error}"),
                None => self.status = "no epoch finished yet".to_owned(),
            },
            Command::SaveTrainedModel(path) => {
                self.status = match self.training.save(&path) {
                    Ok(()) => format!("saved the model to {}", path.display()),
                    Err(error) => format!("cannot save the model: {error}"),
                };
            }
            Command::MeasureFolderChanged(folder) => self.measuring.folder = folder,
            Command::Measure => self.measure(),
            Command::RestoreAutosave => self.restore_autosave(),
            Command::DiscardAutosave => self.session.discard_autosave(),
            Command::DismissNotices => self.session.notices.clear(),
            Command::MidiInput(name) => self.choose_midi_input(name),
            Command::MidiOutput(choice) => self.choose_midi_output(choice),
            Command::InternalSynth(on) => self.set_internal_synth(on),
            Command::RefreshMidiPorts => self.refresh_midi_ports(),
            Command::Record(on) => self.record(on),
            Command::Answer(on) => self.answer_mode(on),
            Command::MidiIn(at, message) => self.take_midi(at, message),
            // Taken by the groups above.
            Command::Hover(_)
            | Command::SetRange(_)
            | Command::ShowGhosts(_)
            | Command::ShowLens(_)
            | Command::SetSnap(_)
            | Command::SetTool(_)
            | Command::FitPitches
            | Command::TogglePart { .. }
            | Command::ShowVelocityLane(_)
            | Command::Zoom { .. }
            | Command::SetSeed(_)
            | Command::DrawNote { .. }
            | Command::EraseAt { .. }
            | Command::Undo
            | Command::Redo
            | Command::Keep
            | Command::DiscardFill
            | Command::Select(_)
            | Command::SelectAll
            | Command::DeleteSelection
            | Command::MoveNotes { .. }
            | Command::ResizeNote { .. }
            | Command::NudgeSelection { .. }
            | Command::Copy { .. }
            | Command::Paste
            | Command::Duplicate
            | Command::LockAt { .. }
            | Command::ToggleLockSelection
            | Command::Fill
            | Command::Harmonise
            | Command::AcceptGhost
            | Command::SetTargetPart(_)
            | Command::SetVelocity { .. }
            | Command::ParamsChanged(_)
            | Command::Generate
            | Command::ChooseVariation(_)
            | Command::SetBackend(_)
            | Command::UseShippedModel(_)
            | Command::Play
            | Command::Pause
            | Command::Stop
            | Command::Seek(_)
            | Command::TransportChanged(_)
            | Command::Open(_)
            | Command::SaveRoll(_)
            | Command::ExportWav(_)
            | Command::Ask(_)
            | Command::Answered(..)
            | Command::PromptChanged(_)
            | Command::AnswerPrompt(_)
            | Command::Loaded(_)
            | Command::Report(_) => {}
        }
    }

    /// Shows why a message to the audio thread was lost.
    fn report(&mut self, sent: Result<(), QueueFull>) {
        if let Err(error) = sent {
            self.status = error.to_string();
        }
    }

    /// Writes the chosen continuation into the roll and moves the seed
    /// window to its end.
    fn keep(&mut self) {
        if self.keep_fill() {
            return;
        }
        let Some(generated) = self.generation.take_result() else {
            return;
        };
        match self
            .document
            .keep(generated.first_step(), &generated.shown().steps)
        {
            Ok(()) => self.document_changed("kept the continuation"),
            Err(error) => self.status = format!("cannot keep it: {error}"),
        }
    }

    fn install_model(&mut self, model: LoadedModel) {
        if let Some(spec) = &model.spec {
            self.session.remember_model(spec);
        }
        self.generation.install(model);
        self.request_generation();
        // The new model's suggestions and reading.
        self.suggest_ghosts();
        self.hear_again();
    }

    /// Opens a file in the background: a roll, a model or a SoundFont.
    fn open(&mut self, path: PathBuf) {
        self.status = format!("opening {}...", path.display());
        let what = format!("opening {}", file_name(&path));
        self.run_in_background(&what, move || Command::Loaded(Box::new(files::load(path))));
    }

    /// Takes in what a file task read.
    fn take_loaded(&mut self, loaded: Loaded) {
        match loaded {
            Loaded::Roll { path, result } => match result {
                Ok(roll) => self.take_opened(roll, &path),
                Err(error) => self.status = format!("cannot open {}: {error}", path.display()),
            },
            Loaded::Model { path, result } => match result {
                Ok(checkpoint) => {
                    self.session.remember(&path);
                    self.install_model(LoadedModel {
                        checkpoint: *checkpoint,
                        name: file_name(&path),
                        spec: Some(path.display().to_string()),
                    });
                }
                Err(error) => {
                    self.status = format!("cannot open the model {}: {error}", path.display());
                }
            },
            Loaded::SoundFont { path, result } => match result {
                Ok(font) => {
                    self.transport.set_soundfont(font);
                    self.session.remember(&path);
                    self.status = format!("SoundFont {}", path.display());
                }
                Err(error) => self.status = error,
            },
        }
    }

    /// Makes `roll`, read from `path`, the document (undo brings the
    /// previous one back): the view fits its pitches, the key is estimated
    /// again, fills and locks of the previous roll are gone.
    pub(super) fn take_opened(&mut self, roll: crate::roll::PianoRoll, path: &std::path::Path) {
        self.document.replace(roll, file_name(path));
        self.document.mark_written(file_name(path));
        self.parts_view.reset();
        self.document.set_seed_start(0);
        self.generation.clear_result();
        self.composing.opened();
        self.generation.params.compose.scale = None;
        self.view.fit_pitches(self.document.roll());
        self.session.remember(path);
        self.rebuild_shown();
        self.status = format!("opened {}", path.display());
        self.request_generation();
        self.hear_again();
    }

    /// Renders the shown roll to a WAV file in the background, streaming it
    /// to disk.
    fn export_wav(&mut self, path: PathBuf) {
        let song = self.transport.settings.apply_to(self.song());
        let font = self.transport.soundfont();
        self.status = format!("rendering {}...", path.display());
        let what = format!("exporting {}", file_name(&path));
        self.run_in_background(&what, move || {
            let result = font
                .map_or_else(|| load_soundfont(None), Ok)
                .map_err(|e| e.to_string())
                .and_then(|font| {
                    render_to_wav(
                        &font,
                        song,
                        &RenderOptions::default(),
                        &path,
                        WavFormat::Pcm16,
                    )
                    .map_err(|e| e.to_string())
                });
            Command::Report(match result {
                Ok(seconds) => format!("exported {seconds:.1} s of audio to {}", path.display()),
                Err(error) => format!("cannot export {}: {error}", path.display()),
            })
        });
    }

    /// Asks for a path: a native dialog, or the typed-path prompt.
    fn ask(&mut self, question: FileQuestion) {
        match self.dialogs.problem() {
            None => self
                .tasks
                .push(dialogs::ask(question, Arc::clone(&self.wake))),
            Some(_) => {
                self.prompt = Some(PathPrompt {
                    question,
                    text: String::new(),
                });
            }
        }
    }

    /// Does what `question` was asked for with the path the user gave.
    fn answer(&mut self, question: FileQuestion, path: PathBuf) {
        let command = match question {
            FileQuestion::Open | FileQuestion::OpenModel => Command::Open(path),
            FileQuestion::SaveRoll => Command::SaveRoll(path),
            FileQuestion::ExportWav => Command::ExportWav(path),
            FileQuestion::SaveTrainedModel => Command::SaveTrainedModel(path),
            FileQuestion::TrainingFolder => Command::TrainFormChanged(TrainForm {
                data_dir: path.display().to_string(),
                ..self.training.form.clone()
            }),
            FileQuestion::MeasureFolder => {
                Command::MeasureFolderChanged(path.display().to_string())
            }
        };
        self.apply(command);
    }

    fn measure(&mut self) {
        let Some(model) = self.generation.model() else {
            self.status = "no model to measure".to_owned();
            return;
        };
        let options = self.generation.params.options();
        let name = model.name.clone();
        self.status = match self.measuring.start(model, options, Arc::clone(&self.wake)) {
            Ok(()) => format!("measuring {name} on {}...", self.measuring.folder.trim()),
            Err(error) => error,
        };
    }

    /// Takes back the offered autosave (undoably).
    fn restore_autosave(&mut self) {
        let Some(autosave) = self.session.take_restore_offer() else {
            return;
        };
        let state = autosave.state;
        self.document.replace(autosave.roll, state.source_name);
        self.document
            .restore_locks(state.locked.iter().map(|s| (s.step, s.mask())));
        self.document.set_seed_start(state.seed_start);
        self.generation.params = state.params;
        let region = self.loop_region();
        if let Err(error) = self.transport.change(state.transport, region) {
            self.status = error.to_string();
        }
        self.generation.clear_result();
        self.composing.opened();
        self.view.fit_pitches(self.document.roll());
        self.rebuild_shown();
        self.status = "restored the last session".to_owned();
        self.request_generation();
        self.hear_again();
    }
}
