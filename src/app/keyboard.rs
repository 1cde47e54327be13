//! A MIDI keyboard in the app: what is played sounds at once (see `midi`),
//! is recorded into the roll at the playhead while Record is on, and, in
//! Answer mode, is answered: when the player pauses for a bar, the phrase
//! joins the roll and the model continues it and plays the continuation.

use std::time::Instant;

use super::CadenzaApp;
use super::midi::OutputChoice;
use crate::audio::player::PlayerCommand;
use crate::live_midi::{AnswerWatch, LiveMessage, Recorder, write_taken};

/// A take being recorded: where it began in the roll and on the clock.
#[derive(Debug)]
pub struct Take {
    recorder: Recorder,
    start_step: f64,
    started: Instant,
}

/// Answer mode: the phrase being played and the pause that ends it.
#[derive(Debug)]
pub struct Answering {
    watch: AnswerWatch,
    recorder: Recorder,
    /// When the phrase's first note came.
    first: Option<Instant>,
    /// A phrase went to the model; its continuation plays when it comes.
    awaiting: bool,
}

/// The keyboard's state in the app.
#[derive(Debug, Default)]
pub struct Keyboard {
    pub take: Option<Take>,
    pub answering: Option<Answering>,
    /// The clock the answer watch counts seconds on.
    origin: Option<Instant>,
    /// Input and output port names, listed when asked.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Why ports could not be listed.
    pub port_problem: Option<String>,
    /// Whether the ports were listed at all yet.
    pub listed: bool,
    /// Whether the song and the keyboard sound through the internal synth.
    pub internal_synth: bool,
}

impl Keyboard {
    pub fn new() -> Self {
        Self {
            internal_synth: true,
            ..Self::default()
        }
    }

    /// Seconds from the keyboard's clock origin to `at` (negative before it).
    fn seconds(&mut self, at: Instant) -> f64 {
        let origin = *self.origin.get_or_insert_with(Instant::now);
        if at >= origin {
            at.duration_since(origin).as_secs_f64()
        } else {
            -origin.duration_since(at).as_secs_f64()
        }
    }

    pub fn is_recording(&self) -> bool {
        self.take.is_some()
    }

    pub fn is_answering(&self) -> bool {
        self.answering.is_some()
    }

    /// Whether an answered phrase waits for the model.
    pub fn awaits_answer(&self) -> bool {
        self.answering.as_ref().is_some_and(|a| a.awaiting)
    }
}

impl CadenzaApp {
    /// Steps per second of the roll where `step` is, at the listener's tempo.
    fn steps_per_second(&self, step: f64) -> f64 {
        let roll = self.document.roll();
        let scale = self.transport.settings.bpm / roll.meta().tempo.bpm();
        let bpm = roll.tempo_at(step.max(0.0) as usize).bpm() * scale;
        bpm / 60.0 * f64::from(roll.meta().steps_per_quarter)
    }

    /// The roll step a message that came at `at` belongs to: the playhead
    /// then, while sound plays; else the take's start plus the time since.
    fn step_at(&self, at: Instant) -> f64 {
        let now = Instant::now();
        if let Some(playhead) = self.transport.playhead() {
            let late = now.saturating_duration_since(at).as_secs_f64();
            return (playhead - late * self.steps_per_second(playhead)).max(0.0);
        }
        let Some(take) = &self.keyboard.take else {
            return 0.0;
        };
        let since = if at >= take.started {
            at.duration_since(take.started).as_secs_f64()
        } else {
            -take.started.duration_since(at).as_secs_f64()
        };
        (take.start_step + since * self.steps_per_second(take.start_step)).max(0.0)
    }

    /// A keyboard message that came at `at`.
    pub(super) fn take_midi(&mut self, at: Instant, message: LiveMessage) {
        if self.keyboard.take.is_some() {
            let step = self.step_at(at);
            if let Some(take) = &mut self.keyboard.take {
                take.recorder.take(message, step);
            }
        }
        if !self.keyboard.is_answering() {
            return;
        }
        let seconds = self.keyboard.seconds(at);
        let per_second = self.steps_per_second(self.document.roll().steps() as f64);
        if let Some(answering) = &mut self.keyboard.answering {
            if answering.first.is_none() && matches!(message, LiveMessage::NoteOn { .. }) {
                answering.first = Some(at);
            }
            if let Some(first) = answering.first {
                let since = at.saturating_duration_since(first).as_secs_f64();
                answering.recorder.take(message, since * per_second);
            }
            answering.watch.take(message, seconds);
        }
    }

    /// Starts recording at the playhead (else at the selection, else where
    /// the seed window ends), playing from there when sound can; or ends the
    /// take and writes it into the roll, undoably.
    pub(super) fn record(&mut self, on: bool) {
        if on == self.keyboard.is_recording() {
            return;
        }
        if on {
            let start = self.transport.playhead().unwrap_or_else(|| {
                self.document.selection().map_or_else(
                    || (self.document.seed_start() + crate::model::WINDOW_STEPS) as f64,
                    |s| s.steps.0 as f64,
                )
            });
            self.keyboard.take = Some(Take {
                recorder: Recorder::default(),
                start_step: start,
                started: Instant::now(),
            });
            if self.transport.playhead().is_none() {
                self.open_sound();
                let _ = self.transport.send(PlayerCommand::Seek(start));
                let _ = self.transport.send(PlayerCommand::Play);
            }
            self.status = format!("recording from step {start:.0}");
            return;
        }
        let end = self.step_at(Instant::now());
        let Some(mut take) = self.keyboard.take.take() else {
            return;
        };
        let taken = take.recorder.finish(end);
        let mut written = 0;
        let mut failed = None;
        let changed = self.document.edit(|roll| match write_taken(roll, &taken) {
            Ok(count) => {
                written = count;
                count > 0
            }
            Err(error) => {
                failed = Some(error);
                false
            }
        });
        if changed {
            self.document_changed(&format!("recorded {written} notes"));
        } else {
            self.status = failed.map_or_else(
                || "recorded nothing".to_owned(),
                |e| format!("cannot record: {e}"),
            );
        }
    }

    /// Answer mode on or off.
    pub(super) fn answer_mode(&mut self, on: bool) {
        if !on {
            self.keyboard.answering = None;
            return;
        }
        let roll = self.document.roll();
        let bar = roll
            .metre_stretches()
            .last()
            .map_or(16, |s| s.meter.steps_per_bar());
        let pause = bar as f64 / self.steps_per_second(roll.steps() as f64);
        self.keyboard.answering = Some(Answering {
            watch: AnswerWatch::new(pause),
            recorder: Recorder::default(),
            first: None,
            awaiting: false,
        });
        self.status = format!("answer mode: play, then pause for a bar ({pause:.1} s)");
    }

    /// Each frame in answer mode: a phrase followed by a bar's pause joins
    /// the end of the roll and the model continues it. Returns the seconds
    /// until it should look again.
    pub(super) fn answer_when_due(&mut self) -> Option<f64> {
        let now = Instant::now();
        let seconds = self.keyboard.seconds(now);
        let answering = self.keyboard.answering.as_mut()?;
        if !answering.watch.due(seconds) {
            return answering.watch.wait(seconds);
        }
        let end = answering
            .first
            .map_or(0.0, |first| now.duration_since(first).as_secs_f64());
        let per_second = self.steps_per_second(self.document.roll().steps() as f64);
        let answering = self.keyboard.answering.as_mut()?;
        let mut phrase = answering.recorder.finish(end * per_second);
        answering.first = None;
        let offset = self.document.roll().steps() as f64;
        for note in &mut phrase {
            note.start += offset;
            note.end += offset;
        }
        let phrase_end = phrase
            .iter()
            .map(|n| n.start_step() + n.len_steps())
            .max()
            .unwrap_or(0);
        let changed = self
            .document
            .edit(|roll| write_taken(roll, &phrase).is_ok_and(|count| count > 0));
        if !changed {
            return None;
        }
        self.document
            .set_seed_start(phrase_end.saturating_sub(crate::model::WINDOW_STEPS));
        if let Some(answering) = self.keyboard.answering.as_mut() {
            answering.awaiting = true;
        }
        self.rebuild_shown();
        self.request_generation();
        self.status = format!("answering a phrase of {} notes", phrase.len());
        None
    }

    /// The model's answer came: play it from its first step.
    pub(super) fn play_answer(&mut self) {
        let Some(answering) = self.keyboard.answering.as_mut() else {
            return;
        };
        if !std::mem::take(&mut answering.awaiting) {
            return;
        }
        let Some(first) = self.generation.result().map(|g| g.first_step()) else {
            return;
        };
        self.open_sound();
        let _ = self.transport.send(PlayerCommand::Loop(None));
        let _ = self.transport.send(PlayerCommand::Seek(first as f64));
        let _ = self.transport.send(PlayerCommand::Play);
        self.status = match self.transport.problem() {
            Some(problem) => format!("the answer is ready from step {first} ({problem})"),
            None => format!("the answer plays from step {first}"),
        };
    }

    /// Opens the sound output if it is not open, and hands its keyboard
    /// queue and event tap to the MIDI ports.
    pub(super) fn open_sound(&mut self) {
        self.transport.open(self.song(), self.loop_region());
        if let Some(control) = self.transport.live_control() {
            self.midi.attach(control);
        }
        let _ = self
            .transport
            .send(PlayerCommand::InternalSynth(self.keyboard.internal_synth));
        let _ = self
            .transport
            .send(PlayerCommand::LiveProgram(self.transport.settings.program));
    }

    /// Lists the MIDI ports again.
    pub(super) fn refresh_midi_ports(&mut self) {
        let inputs = super::midi::input_ports();
        let outputs = super::midi::output_ports();
        self.keyboard.port_problem = inputs.as_ref().err().or(outputs.as_ref().err()).cloned();
        self.keyboard.inputs = inputs.unwrap_or_default();
        self.keyboard.outputs = outputs.unwrap_or_default();
        self.keyboard.listed = true;
    }

    /// Listens to a keyboard (opening the sound, so it is heard at once).
    pub(super) fn choose_midi_input(&mut self, name: Option<String>) {
        if name.is_some() {
            self.open_sound();
        }
        let wake = std::sync::Arc::clone(&self.wake);
        match self.midi.connect_input(name.as_deref(), &wake) {
            Ok(()) => {
                self.status = name.map_or_else(
                    || "no MIDI input".to_owned(),
                    |n| format!("listening to {n}"),
                );
            }
            Err(error) => self.status = error,
        }
    }

    /// Sends playback to a MIDI output.
    pub(super) fn choose_midi_output(&mut self, choice: Option<OutputChoice>) {
        if choice.is_some() {
            self.open_sound();
        }
        let said = match &choice {
            None => "playback goes to the internal synth only".to_owned(),
            Some(OutputChoice::Virtual) => format!(
                "playback goes out on the virtual port {}",
                super::midi::VIRTUAL_PORT_NAME
            ),
            Some(OutputChoice::Port(name)) => format!("playback goes out to {name}"),
        };
        match self.midi.connect_output(choice) {
            Ok(()) => self.status = said,
            Err(error) => self.status = error,
        }
    }

    /// Opens last time's MIDI ports again, where they are; a note says why
    /// one is not.
    pub(super) fn reopen_midi(
        &mut self,
        input: Option<String>,
        output: Option<OutputChoice>,
        notes: &mut Vec<String>,
    ) {
        if let Some(name) = input {
            let present = super::midi::input_ports().is_ok_and(|ports| ports.contains(&name));
            if present {
                self.choose_midi_input(Some(name));
            } else {
                notes.push(format!("the MIDI input {name} of last time is not there"));
            }
        }
        if output.is_some() {
            self.choose_midi_output(output);
            if self.midi.output_choice().is_none() {
                notes.push(format!("MIDI output: {}", self.status));
            }
        }
    }

    /// Whether the song and the keyboard sound through the internal synth.
    pub(super) fn set_internal_synth(&mut self, on: bool) {
        self.keyboard.internal_synth = on;
        let sent = self.transport.send(PlayerCommand::InternalSynth(on));
        if let Err(error) = sent {
            self.status = error.to_string();
        }
    }
}
