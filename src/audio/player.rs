//! The render core: a roll's notes as timed events, and a player that turns
//! them into samples with rustysynth. It has no device: offline rendering and
//! the live output drive the same [`Player::render`], so tests can check one
//! against the other.
//!
//! Real-time rules: [`Player::render`] and [`Player::apply`] never allocate,
//! lock or block; a [`Song`] is built off the audio thread and handed over
//! whole.

use std::sync::Arc;

use rustysynth::{SoundFont, Synthesizer, SynthesizerError, SynthesizerSettings};

use crate::roll::{PianoRoll, Tempo, mask_bits};

/// One note-on or note-off, at a step of the roll's grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NoteEvent {
    pub step: u32,
    /// Offs sort before ons at the same step, so a repeated note restarts.
    pub on: bool,
    /// MIDI key, 21..=126.
    pub key: u8,
}

/// A roll as the synth plays it.
#[derive(Clone, Debug, PartialEq)]
pub struct Song {
    events: Vec<NoteEvent>,
    steps: u32,
    /// Tempo in quarter notes per minute.
    bpm: f64,
    steps_per_quarter: u8,
    program: u8,
    velocity: u8,
}

impl Song {
    /// The notes of `roll` at its tempo and GM program, every note at `velocity`.
    pub fn from_roll(roll: &PianoRoll, velocity: u8) -> Self {
        let mut events = Vec::with_capacity(roll.note_count() * 2);
        for note in roll.notes() {
            let key = note.pitch.midi();
            events.push(NoteEvent {
                step: note.start as u32,
                on: true,
                key,
            });
            events.push(NoteEvent {
                step: note.end() as u32,
                on: false,
                key,
            });
        }
        events.sort_unstable();
        let meta = roll.meta();
        Self {
            events,
            steps: roll.steps() as u32,
            bpm: meta.tempo.bpm(),
            steps_per_quarter: meta.steps_per_quarter,
            program: meta.program,
            velocity: velocity.clamp(1, 127),
        }
    }

    /// Length in steps.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// The roll's own tempo.
    pub fn bpm(&self) -> f64 {
        self.bpm
    }

    pub fn with_tempo(mut self, tempo: Tempo) -> Self {
        self.bpm = tempo.bpm();
        self
    }

    pub fn with_program(mut self, program: u8) -> Self {
        self.program = program.min(127);
        self
    }

    /// Seconds per step at `bpm`.
    fn seconds_per_step(&self, bpm: f64) -> f64 {
        60.0 / bpm / f64::from(self.steps_per_quarter)
    }

    /// Length in seconds at the song's tempo.
    pub fn duration_seconds(&self) -> f64 {
        f64::from(self.steps) * self.seconds_per_step(self.bpm)
    }
}

/// A small, copyable instruction for the player, sent to the audio thread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlayerCommand {
    Play,
    Pause,
    /// Pause and go back to the start (or the loop's start).
    Stop,
    /// Jump to a position in steps.
    Seek(f64),
    /// Loop between two step positions, or stop looping.
    Loop(Option<(f64, f64)>),
    /// Tempo in quarter notes per minute.
    Tempo(f64),
    /// Linear gain, 0..=4.
    Volume(f32),
}

/// Plays a [`Song`] through a synthesizer, tracking a playhead in steps.
pub struct Player {
    synth: Synthesizer,
    song: Box<Song>,
    /// Playhead in steps (fractional).
    position: f64,
    /// Index of the next event at or after `position`.
    next_event: usize,
    playing: bool,
    looping: Option<(f64, f64)>,
    bpm: f64,
    volume: f32,
    sample_rate: f64,
    /// Whether the end of the song has been passed without a loop.
    finished: bool,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("position", &self.position)
            .field("playing", &self.playing)
            .field("bpm", &self.bpm)
            .finish_non_exhaustive()
    }
}

/// Why a player could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the synthesizer: {0}")]
pub struct PlayerError(#[from] SynthesizerError);

impl Player {
    /// A paused player at step 0 of `song`, rendering at `sample_rate` Hz.
    pub fn new(
        soundfont: &Arc<SoundFont>,
        sample_rate: u32,
        song: Box<Song>,
        reverb_and_chorus: bool,
    ) -> Result<Self, PlayerError> {
        let mut settings = SynthesizerSettings::new(sample_rate as i32);
        settings.enable_reverb_and_chorus = reverb_and_chorus;
        let synth = Synthesizer::new(soundfont, &settings)?;
        let bpm = song.bpm;
        let mut player = Self {
            synth,
            song,
            position: 0.0,
            next_event: 0,
            playing: false,
            looping: None,
            bpm,
            volume: 1.0,
            sample_rate: f64::from(sample_rate),
            finished: false,
        };
        player.select_program();
        Ok(player)
    }

    fn select_program(&mut self) {
        // Program change on channel 0 (0xC0).
        self.synth
            .process_midi_message(0, 0xC0, i32::from(self.song.program), 0);
    }

    /// Playhead in steps.
    pub fn position(&self) -> f64 {
        self.position
    }

    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// True once playback has run past the end without a loop.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn song(&self) -> &Song {
        &self.song
    }

    /// Frames of one step at the current tempo.
    fn frames_per_step(&self) -> f64 {
        self.song.seconds_per_step(self.bpm) * self.sample_rate
    }

    fn seek_to(&mut self, position: f64) {
        self.synth.note_off_all(false);
        self.position = position.clamp(0.0, f64::from(self.song.steps));
        self.next_event = self
            .song
            .events
            .partition_point(|e| f64::from(e.step) < self.position);
        // Notes that started before the new position and still sound there
        // start again (a 128-bit mask of keys: no allocation).
        let mut sounding = 0u128;
        for event in &self.song.events[..self.next_event] {
            let bit = 1u128 << (event.key & 0x7f);
            if event.on {
                sounding |= bit;
            } else {
                sounding &= !bit;
            }
        }
        let velocity = i32::from(self.song.velocity);
        for key in mask_bits(sounding) {
            self.synth.note_on(0, key as i32, velocity);
        }
        self.finished = false;
    }

    /// Carries out a command. Never allocates.
    pub fn apply(&mut self, command: PlayerCommand) {
        match command {
            PlayerCommand::Play => {
                let start = if self.finished || self.position >= f64::from(self.song.steps) {
                    self.looping.map_or(0.0, |(start, _)| start)
                } else {
                    self.position
                };
                // Also restarts the notes that sound at the playhead.
                self.seek_to(start);
                self.playing = true;
            }
            PlayerCommand::Pause => {
                self.playing = false;
                self.synth.note_off_all(false);
            }
            PlayerCommand::Stop => {
                self.playing = false;
                let start = self.looping.map_or(0.0, |(start, _)| start);
                self.seek_to(start);
                self.synth.note_off_all(false);
            }
            PlayerCommand::Seek(position) if position.is_finite() => {
                self.seek_to(position);
                if !self.playing {
                    self.synth.note_off_all(false);
                }
            }
            PlayerCommand::Seek(_) => {}
            PlayerCommand::Loop(region) => {
                self.looping = region.filter(|(a, b)| a.is_finite() && b.is_finite() && b > a);
            }
            PlayerCommand::Tempo(bpm) => {
                if bpm.is_finite() && bpm > 0.0 {
                    self.bpm = bpm.clamp(4.0, 1000.0);
                }
            }
            PlayerCommand::Volume(volume) => {
                if volume.is_finite() {
                    self.volume = volume.clamp(0.0, 4.0);
                }
            }
        }
    }

    /// Swaps in a new song at the same playhead (clamped to its length) and
    /// returns the old one, which the caller drops off the audio thread.
    pub fn replace_song(&mut self, song: Box<Song>) -> Box<Song> {
        let old = std::mem::replace(&mut self.song, song);
        self.bpm = self.song.bpm;
        self.select_program();
        let position = self.position;
        self.seek_to(position);
        if !self.playing {
            self.synth.note_off_all(false);
        }
        old
    }

    /// Renders `left.len()` frames (`left` and `right` equal length), playing
    /// the events that fall inside. Paused, it renders the synth's release
    /// tails and then silence.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let frames = left.len().min(right.len());
        let mut done = 0;
        while done < frames {
            let mut chunk = frames - done;
            if self.playing {
                let frames_per_step = self.frames_per_step();
                // Half a frame, in steps: positions this close count as equal,
                // so an event lands on the same frame however the caller
                // splits its buffers (float sums of chunk lengths drift).
                let tolerance = 0.5 / frames_per_step;
                // Fire everything due at the playhead.
                while let Some(event) = self.song.events.get(self.next_event) {
                    if f64::from(event.step) > self.position + tolerance {
                        break;
                    }
                    let key = i32::from(event.key);
                    if event.on {
                        self.synth.note_on(0, key, i32::from(self.song.velocity));
                    } else {
                        self.synth.note_off(0, key);
                    }
                    self.next_event += 1;
                }
                let end = match self.looping {
                    Some((_, end)) if self.position < end - tolerance => end,
                    _ => f64::from(self.song.steps),
                };
                let boundary = self
                    .song
                    .events
                    .get(self.next_event)
                    .map_or(end, |e| f64::from(e.step).min(end));
                let until = ((boundary - self.position) * frames_per_step)
                    .round()
                    .max(1.0);
                chunk = chunk.min(until as usize);
                self.synth.render(
                    &mut left[done..done + chunk],
                    &mut right[done..done + chunk],
                );
                self.position += chunk as f64 / frames_per_step;
                if (self.position - boundary).abs() < tolerance {
                    self.position = boundary;
                }
                if self.position >= end - tolerance {
                    match self.looping {
                        Some((start, loop_end)) if (end - loop_end).abs() < 1e-9 => {
                            self.seek_to(start);
                        }
                        _ => {
                            self.position = f64::from(self.song.steps);
                            self.playing = false;
                            self.finished = true;
                            self.synth.note_off_all(false);
                        }
                    }
                }
            } else {
                self.synth.render(
                    &mut left[done..done + chunk],
                    &mut right[done..done + chunk],
                );
            }
            let volume = self.volume;
            if volume != 1.0 {
                for sample in left[done..done + chunk]
                    .iter_mut()
                    .chain(right[done..done + chunk].iter_mut())
                {
                    *sample *= volume;
                }
            }
            done += chunk;
        }
    }
}
