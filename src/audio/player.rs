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

use crate::arrangement::{Performance, TICKS_PER_STEP};
use crate::live_midi::LiveMessage;
use crate::roll::{PianoRoll, Tempo, mask_bits};

/// What a [`SongEvent`] does. The order is the order at one step: offs first
/// (a repeated note restarts), then program changes (a note starts under its
/// program), then ons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    NoteOff,
    Program,
    NoteOn,
}

/// One note-on, note-off or program change, where it was played.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SongEvent {
    /// In [`TICKS_PER_STEP`]ths of a step from step 0.
    pub tick: u64,
    pub kind: EventKind,
    /// MIDI channel, 0..=15 (9: drums).
    pub channel: u8,
    /// The key of a note event, the program of a program change.
    pub value: u8,
    pub velocity: u8,
    /// The part it belongs to.
    pub part: u16,
}

impl SongEvent {
    /// Its place in steps, as the playhead counts.
    pub fn position(&self) -> f64 {
        self.tick as f64 / f64::from(TICKS_PER_STEP)
    }
}

/// A roll as the synth plays it: every part on its channel, with its
/// programs, velocities and the tempo map.
#[derive(Clone, Debug, PartialEq)]
pub struct Song {
    events: Vec<SongEvent>,
    steps: u32,
    /// (first step, quarter notes per minute) of each stretch of one tempo;
    /// the first starts at 0.
    tempos: Vec<(u32, f64)>,
    steps_per_quarter: u8,
    /// The part new notes go to: the one [`Song::with_program`] re-voices.
    main_part: Option<u16>,
}

impl Song {
    /// The performance of `roll` ([`PianoRoll::performance`]; notes without a
    /// velocity of their own get `velocity`), every part audible.
    pub fn from_roll(roll: &PianoRoll, velocity: u8) -> Self {
        Self::from_performance(roll, &roll.performance(velocity), |_| true)
    }

    /// `performance` (of `roll`) with only the parts `audible` accepts, at
    /// the roll's tempo map.
    pub fn from_performance(
        roll: &PianoRoll,
        performance: &Performance,
        audible: impl Fn(u16) -> bool,
    ) -> Self {
        let mut events = Vec::with_capacity(performance.notes.len() * 2 + 16);
        let mut programs: Vec<Option<u8>> = vec![None; performance.parts.len()];
        for note in performance.notes.iter().filter(|n| audible(n.part)) {
            let Some(part) = performance.parts.get(usize::from(note.part)) else {
                continue;
            };
            let event = |tick: u64, kind, value, velocity| SongEvent {
                tick,
                kind,
                channel: part.channel & 15,
                value,
                velocity,
                part: note.part,
            };
            let program = &mut programs[usize::from(note.part)];
            if *program != Some(note.program) {
                *program = Some(note.program);
                events.push(event(
                    note.start_tick(),
                    EventKind::Program,
                    note.program,
                    0,
                ));
            }
            events.push(event(
                note.start_tick(),
                EventKind::NoteOn,
                note.key,
                note.velocity,
            ));
            events.push(event(note.end_tick(), EventKind::NoteOff, note.key, 0));
        }
        events.sort_unstable();
        let tempos = std::iter::once((0, roll.meta().tempo))
            .chain(roll.arrangement().tempo_changes().iter().copied())
            .map(|(step, tempo)| (u32::try_from(step).unwrap_or(u32::MAX), tempo.bpm()))
            .collect();
        // The part new notes go to; with no pitched part in the arrangement,
        // the one the performance made for them (never a drum part: a new
        // program there would change the kit).
        let main_part = roll.arrangement().target_part().or_else(|| {
            let index = performance.parts.iter().rposition(|p| !p.is_drums())?;
            u16::try_from(index).ok()
        });
        // A note played a little late may end past the roll's last step.
        let last_event = events
            .last()
            .map_or(0, |e| e.tick.div_ceil(u64::from(TICKS_PER_STEP)));
        let steps = (roll.steps() as u64).max(last_event);
        Self {
            events,
            steps: u32::try_from(steps).unwrap_or(u32::MAX),
            tempos,
            steps_per_quarter: roll.meta().steps_per_quarter.max(1),
            main_part,
        }
    }

    /// Length in steps.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// The tempo at the start, in quarter notes per minute.
    pub fn bpm(&self) -> f64 {
        self.tempos[0].1
    }

    /// The events in playing order.
    pub fn events(&self) -> &[SongEvent] {
        &self.events
    }

    /// The whole tempo map scaled so that it starts at `tempo`.
    pub fn with_tempo(mut self, tempo: Tempo) -> Self {
        let scale = tempo.bpm() / self.bpm();
        for (_, bpm) in &mut self.tempos {
            *bpm *= scale;
        }
        self
    }

    /// The main part (the one new notes go to) played by `program`.
    pub fn with_program(mut self, program: u8) -> Self {
        let program = program.min(127);
        for event in &mut self.events {
            if event.kind == EventKind::Program && Some(event.part) == self.main_part {
                event.value = program;
            }
        }
        self
    }

    /// Seconds per step of the stretch `index`, sped up by `scale`.
    fn seconds_per_step(&self, index: usize, scale: f64) -> f64 {
        60.0 / (self.tempos[index].1 * scale) / f64::from(self.steps_per_quarter)
    }

    /// The stretch of one tempo that `position` (in steps) falls in.
    fn tempo_index(&self, position: f64) -> usize {
        self.tempos
            .partition_point(|&(step, _)| f64::from(step) <= position)
            .saturating_sub(1)
    }

    /// Length in seconds through the song's tempo map.
    pub fn duration_seconds(&self) -> f64 {
        let mut seconds = 0.0;
        for (index, &(start, _)) in self.tempos.iter().enumerate() {
            let end = self
                .tempos
                .get(index + 1)
                .map_or(self.steps, |&(next, _)| next.min(self.steps));
            seconds += f64::from(end.saturating_sub(start)) * self.seconds_per_step(index, 1.0);
        }
        seconds
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
    /// The program a live keyboard plays on [`LIVE_CHANNEL`].
    LiveProgram(u8),
    /// Whether the song and the keyboard sound through the synth (off: the
    /// playhead still runs, for a MIDI output to play them instead).
    InternalSynth(bool),
}

/// The synth channel a live keyboard plays on: 16, which files rarely use
/// and General MIDI leaves pitched.
pub const LIVE_CHANNEL: u8 = 15;

/// What the player tells a MIDI output about the song it plays: each event
/// it fires, as three MIDI bytes, into a queue that never blocks (a full
/// queue drops the event).
pub type EventTap = rtrb::Producer<[u8; 3]>;

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
    /// The listener's tempo over the song's own (1: as written).
    tempo_scale: f64,
    /// The song's tempo stretch the playhead is in.
    tempo_index: usize,
    volume: f32,
    sample_rate: f64,
    /// Whether the end of the song has been passed without a loop.
    finished: bool,
    /// Whether notes sound through the synth.
    internal_synth: bool,
    tap: Option<EventTap>,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("position", &self.position)
            .field("playing", &self.playing)
            .field("tempo_scale", &self.tempo_scale)
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
        Ok(Self {
            synth,
            song,
            position: 0.0,
            next_event: 0,
            playing: false,
            looping: None,
            tempo_scale: 1.0,
            tempo_index: 0,
            volume: 1.0,
            sample_rate: f64::from(sample_rate),
            finished: false,
            internal_synth: true,
            tap: None,
        })
    }

    /// From now on, every event the song fires also goes to `tap` (a MIDI
    /// output's queue), and every stop to an all-notes-off per channel.
    pub fn set_tap(&mut self, tap: EventTap) {
        self.tap = Some(tap);
    }

    fn tell_tap(&mut self, bytes: [u8; 3]) {
        if let Some(tap) = &mut self.tap {
            let _ = tap.push(bytes);
        }
    }

    /// Every note of the song off, in the synth and at the tap (a live
    /// keyboard's held notes sound on).
    fn silence(&mut self) {
        for channel in (0..16u8).filter(|&c| c != LIVE_CHANNEL) {
            self.synth.note_off_all_channel(i32::from(channel), false);
        }
        if self.tap.is_some() {
            for channel in 0..16u8 {
                self.tell_tap([0xB0 | channel, 123, 0]);
            }
        }
    }

    /// A note from a live keyboard: through the synth at once, on
    /// [`LIVE_CHANNEL`].
    pub fn play_live(&mut self, message: LiveMessage) {
        if !self.internal_synth {
            return;
        }
        let channel = i32::from(LIVE_CHANNEL);
        match message {
            LiveMessage::NoteOn { key, velocity, .. } => {
                self.synth
                    .note_on(channel, i32::from(key), i32::from(velocity));
            }
            LiveMessage::NoteOff { key, .. } => self.synth.note_off(channel, i32::from(key)),
            LiveMessage::AllNotesOff { .. } => self.synth.note_off_all_channel(channel, false),
        }
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

    /// Frames of one step at the tempo under the playhead.
    fn frames_per_step(&self) -> f64 {
        self.song
            .seconds_per_step(self.tempo_index, self.tempo_scale)
            * self.sample_rate
    }

    /// The step where the next tempo stretch begins, if one does.
    fn next_tempo_step(&self) -> Option<f64> {
        self.song
            .tempos
            .get(self.tempo_index + 1)
            .map(|&(step, _)| f64::from(step))
    }

    fn seek_to(&mut self, position: f64) {
        self.silence();
        self.position = position.clamp(0.0, f64::from(self.song.steps));
        self.tempo_index = self.song.tempo_index(self.position);
        self.next_event = self
            .song
            .events
            .partition_point(|e| e.position() < self.position);
        // Programs set and notes that started before the new position and
        // still sound there start again: per-channel masks on the stack, no
        // allocation.
        let mut sounding = [0u128; 16];
        let mut velocities = [[0u8; 128]; 16];
        let mut programs = [None::<u8>; 16];
        for event in &self.song.events[..self.next_event] {
            let channel = usize::from(event.channel & 15);
            let key = usize::from(event.value & 0x7f);
            match event.kind {
                EventKind::NoteOn => {
                    sounding[channel] |= 1u128 << key;
                    velocities[channel][key] = event.velocity;
                }
                EventKind::NoteOff => sounding[channel] &= !(1u128 << key),
                EventKind::Program => programs[channel] = Some(event.value),
            }
        }
        for channel in 0..16 {
            if let Some(program) = programs[channel] {
                self.program_change(channel as i32, program);
            }
            for key in mask_bits(sounding[channel]) {
                self.note_on(channel as u8, key as u8, velocities[channel][key]);
            }
        }
        self.finished = false;
    }

    fn program_change(&mut self, channel: i32, program: u8) {
        self.synth
            .process_midi_message(channel, 0xC0, i32::from(program), 0);
        self.tell_tap([0xC0 | (channel as u8 & 15), program & 0x7F, 0]);
    }

    fn note_on(&mut self, channel: u8, key: u8, velocity: u8) {
        if self.internal_synth {
            self.synth
                .note_on(i32::from(channel), i32::from(key), i32::from(velocity));
        }
        self.tell_tap([0x90 | (channel & 15), key & 0x7F, velocity.clamp(1, 127)]);
    }

    fn note_off(&mut self, channel: u8, key: u8) {
        self.synth.note_off(i32::from(channel), i32::from(key));
        self.tell_tap([0x80 | (channel & 15), key & 0x7F, 64]);
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
                self.silence();
            }
            PlayerCommand::Stop => {
                self.playing = false;
                let start = self.looping.map_or(0.0, |(start, _)| start);
                self.seek_to(start);
                self.silence();
            }
            PlayerCommand::Seek(position) if position.is_finite() => {
                self.seek_to(position);
                if !self.playing {
                    self.silence();
                }
            }
            PlayerCommand::Seek(_) => {}
            PlayerCommand::LiveProgram(program) => {
                self.program_change(i32::from(LIVE_CHANNEL), program.min(127));
            }
            PlayerCommand::InternalSynth(on) => {
                self.internal_synth = on;
                if !on {
                    self.synth.note_off_all(false);
                }
            }
            PlayerCommand::Loop(region) => {
                self.looping = region.filter(|(a, b)| a.is_finite() && b.is_finite() && b > a);
            }
            PlayerCommand::Tempo(bpm) => {
                if bpm.is_finite() && bpm > 0.0 {
                    self.tempo_scale = bpm.clamp(4.0, 1000.0) / self.song.bpm();
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
        // A new song comes at the listener's tempo already.
        self.tempo_scale = 1.0;
        let position = self.position;
        self.seek_to(position);
        if !self.playing {
            self.silence();
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
                    if event.position() > self.position + tolerance {
                        break;
                    }
                    let (channel, value) = (event.channel, event.value);
                    match event.kind {
                        EventKind::NoteOn => self.note_on(channel, value, event.velocity),
                        EventKind::NoteOff => self.note_off(channel, value),
                        EventKind::Program => self.program_change(i32::from(channel), value),
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
                    .map_or(end, |e| e.position().min(end));
                let boundary = self.next_tempo_step().map_or(boundary, |t| t.min(boundary));
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
                while self
                    .next_tempo_step()
                    .is_some_and(|step| self.position >= step - tolerance)
                {
                    self.tempo_index += 1;
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
                            self.silence();
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
