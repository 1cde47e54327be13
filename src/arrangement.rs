//! What a file's studio put around the notes the networks see: the tempo map,
//! the time signatures, and the notes as played — each with its velocity, its
//! part (a track on a channel) and its program — drums included.
//!
//! The networks and the editor work on the merged pitched roll
//! ([`PianoRoll`]'s cells). The arrangement rides along with it and is
//! reconciled when the roll is played or written ([`PianoRoll::performance`]):
//! a played note that the roll still starts at its step and pitch keeps its
//! part, program and velocity (cut where the roll stops sounding it); a note
//! the roll gained since (drawn, generated) goes to the target part with a
//! velocity taken from the notes before it; drum notes and pitches the roll has
//! no row for are kept as they were.
//!
//! No IO here: `midi` fills it on import and writes it on export, `audio`
//! plays it.

use std::collections::HashSet;

use crate::meter::{Meter, TimeSignature};
use crate::midi::DRUM_CHANNEL;
use crate::roll::{PianoRoll, Pitch, RollMeta, RollNote, Tempo};

/// One instrument line of an arrangement: what a file's track played on one
/// channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Part {
    /// The track's name, or a made-up one ("Track 3", "Drums").
    pub name: String,
    /// MIDI channel, 0..=15; 9 is General MIDI's drums.
    pub channel: u8,
}

impl Part {
    /// Whether this part plays General MIDI drums (channel 10).
    pub fn is_drums(&self) -> bool {
        self.channel == DRUM_CHANNEL
    }
}

/// Sub-step ticks in a step: where a played note starts and ends between grid
/// lines (its timing as played), and the resolution of written MIDI files. 96
/// divides evenly into halves, thirds, quarters and eighths of a step.
pub const TICKS_PER_STEP: u32 = 96;

/// A note as a part plays it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlayedNote {
    /// First step on the roll's grid.
    pub start: usize,
    /// MIDI key, 0..=127.
    pub key: u8,
    /// Index into the arrangement's parts.
    pub part: u16,
    /// Length in steps, at least 1.
    pub len: usize,
    /// Note-on velocity, 1..=127.
    pub velocity: u8,
    /// General MIDI program in force for this note, 0..=127.
    pub program: u8,
    /// Where it starts as played, in [`TICKS_PER_STEP`]ths of a step from
    /// `start` (the grid step it was quantised to): within half a step.
    pub start_offset: i32,
    /// Where it ends as played, in ticks from `start + len`.
    pub end_offset: i32,
    /// Whether the note is one of the roll's cells (a pitched note in range, or
    /// a drum note imported with drums merged): it then lives and dies with
    /// its onset in the roll. Others (drums, pitches without a row) are kept
    /// whatever the roll does.
    pub in_roll: bool,
}

impl PlayedNote {
    /// A note exactly on the grid.
    pub fn on_grid(
        start: usize,
        len: usize,
        key: u8,
        part: u16,
        velocity: u8,
        program: u8,
    ) -> Self {
        Self {
            start,
            key,
            part,
            len,
            velocity,
            program,
            start_offset: 0,
            end_offset: 0,
            in_roll: Pitch::from_midi(key).is_some(),
        }
    }

    /// One past the last step.
    pub fn end(&self) -> usize {
        self.start + self.len
    }

    /// Where it starts as played, in ticks of [`TICKS_PER_STEP`] from step 0.
    pub fn start_tick(&self) -> u64 {
        offset_tick(self.start, self.start_offset)
    }

    /// Where it ends as played, in ticks from step 0; after its start.
    pub fn end_tick(&self) -> u64 {
        offset_tick(self.end(), self.end_offset).max(self.start_tick() + 1)
    }
}

fn offset_tick(step: usize, offset: i32) -> u64 {
    let tick = step as i64 * i64::from(TICKS_PER_STEP) + i64::from(offset);
    u64::try_from(tick).unwrap_or(0)
}

/// The tempo map, the metre map and the played notes of a roll; see the
/// module docs. The tempo and signature at step 0 are the roll's
/// [`RollMeta`]; only later changes are kept here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Arrangement {
    tempo_changes: Vec<(usize, Tempo)>,
    signature_changes: Vec<(usize, TimeSignature)>,
    parts: Vec<Part>,
    /// Sorted by (start, key, part).
    notes: Vec<PlayedNote>,
    target_part: Option<u16>,
}

/// The notes to play or write: the arrangement reconciled with the roll's
/// cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Performance {
    pub parts: Vec<Part>,
    /// Sorted by (start, key, part).
    pub notes: Vec<PlayedNote>,
}

impl Performance {
    /// The notes of one part, in order.
    pub fn part_notes(&self, part: u16) -> impl Iterator<Item = &PlayedNote> {
        self.notes.iter().filter(move |n| n.part == part)
    }
}

/// Why an arrangement does not fit its roll.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArrangementError {
    #[error("note at step {step} names part {part}, but there are {parts} parts")]
    NoSuchPart {
        step: usize,
        part: u16,
        parts: usize,
    },
    #[error("more than {} parts", usize::from(u16::MAX) + 1)]
    TooManyParts,
    #[error("a part's channel {0} is outside 0..=15")]
    BadChannel(u8),
}

impl Arrangement {
    /// An arrangement from its pieces. Changes are sorted, those at step 0 or
    /// repeating the value before them are dropped; notes are sorted, and
    /// their velocities and programs clamped to MIDI's range.
    pub fn new(
        parts: Vec<Part>,
        mut notes: Vec<PlayedNote>,
        tempo_changes: Vec<(usize, Tempo)>,
        signature_changes: Vec<(usize, TimeSignature)>,
        meta: &RollMeta,
    ) -> Result<Self, ArrangementError> {
        if parts.len() > usize::from(u16::MAX) + 1 {
            return Err(ArrangementError::TooManyParts);
        }
        if let Some(part) = parts.iter().find(|p| p.channel > 15) {
            return Err(ArrangementError::BadChannel(part.channel));
        }
        if let Some(note) = notes.iter().find(|n| usize::from(n.part) >= parts.len()) {
            return Err(ArrangementError::NoSuchPart {
                step: note.start,
                part: note.part,
                parts: parts.len(),
            });
        }
        for note in &mut notes {
            note.velocity = note.velocity.clamp(1, 127);
            note.program = note.program.min(127);
            note.key = note.key.min(127);
            note.len = note.len.max(1);
            note.in_roll &= Pitch::from_midi(note.key).is_some();
            // At least a tick long, as written (a note-off at its note-on's
            // tick would be read first and leave the note hanging).
            let shortest = note.start_offset + 1 - (note.len * TICKS_PER_STEP as usize) as i32;
            note.end_offset = note.end_offset.max(shortest);
        }
        // Two notes of one key may start in one step (a flam, a repeated
        // note played fast): both are kept.
        notes.sort_unstable();
        Ok(Self {
            tempo_changes: changes_only(tempo_changes, meta.tempo),
            signature_changes: changes_only(signature_changes, meta.time_signature),
            parts,
            notes,
            target_part: None,
        })
    }

    /// True when the arrangement adds nothing to its roll's cells and meta.
    pub fn is_empty(&self) -> bool {
        self.tempo_changes.is_empty()
            && self.signature_changes.is_empty()
            && self.parts.is_empty()
            && self.notes.is_empty()
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The played notes as stored (before reconciling with the roll).
    pub fn notes(&self) -> &[PlayedNote] {
        &self.notes
    }

    /// Tempo changes after step 0: (step, tempo from there on).
    pub fn tempo_changes(&self) -> &[(usize, Tempo)] {
        &self.tempo_changes
    }

    /// Time-signature changes after step 0: (step, signature from there on).
    pub fn signature_changes(&self) -> &[(usize, TimeSignature)] {
        &self.signature_changes
    }

    /// The part new notes go to, as chosen; see [`Self::target_part`].
    pub fn chosen_target(&self) -> Option<u16> {
        self.target_part
    }

    /// Chooses the part new notes go to (`None`: the default). Refused for a
    /// part that does not exist or plays drums.
    pub fn set_target_part(&mut self, part: Option<u16>) -> bool {
        let fits = part.is_none_or(|p| {
            self.parts
                .get(usize::from(p))
                .is_some_and(|part| !part.is_drums())
        });
        if fits {
            self.target_part = part;
        }
        fits
    }

    /// The part new notes go to: the chosen one, else the pitched part with
    /// the most notes (the first of equals); `None` when there is no pitched
    /// part (new notes then get a part of their own).
    pub fn target_part(&self) -> Option<u16> {
        if self.target_part.is_some() {
            return self.target_part;
        }
        let mut counts = vec![0usize; self.parts.len()];
        for note in &self.notes {
            counts[usize::from(note.part)] += 1;
        }
        (0..self.parts.len())
            .filter(|&p| !self.parts[p].is_drums())
            .max_by_key(|&p| (counts[p], std::cmp::Reverse(p)))
            .map(|p| p as u16)
    }

    /// Steps `start..end` of it, moved to start at step 0, for a roll sliced
    /// the same way: `meta` gets the tempo and signature in force at `start`.
    pub fn slice(&self, start: usize, end: usize, meta: &mut RollMeta) -> Self {
        meta.tempo = value_at(&self.tempo_changes, meta.tempo, start);
        meta.time_signature = value_at(&self.signature_changes, meta.time_signature, start);
        let notes = self
            .notes
            .iter()
            .filter(|n| n.start >= start && n.start < end)
            .map(|n| PlayedNote {
                start: n.start - start,
                len: n.len.min(end - n.start),
                end_offset: if n.end() > end { 0 } else { n.end_offset },
                // A note cannot start before the slice's first step.
                start_offset: if n.start == start {
                    n.start_offset.max(0)
                } else {
                    n.start_offset
                },
                ..*n
            })
            .collect();
        Self {
            tempo_changes: changes_within(&self.tempo_changes, start, end),
            signature_changes: changes_within(&self.signature_changes, start, end),
            parts: self.parts.clone(),
            notes,
            target_part: self.target_part,
        }
    }

    /// Takes in notes of a performance of its roll (`parts` are that
    /// performance's: a part it made up for new notes joins), each replacing
    /// the stored note of its step, key and part.
    pub fn add_played(&mut self, parts: Vec<Part>, notes: Vec<PlayedNote>) {
        if parts.len() > self.parts.len() {
            self.parts.extend(parts.into_iter().skip(self.parts.len()));
        }
        for note in notes {
            if usize::from(note.part) >= self.parts.len() {
                continue;
            }
            let stored = self
                .notes
                .iter_mut()
                .find(|n| n.start == note.start && n.key == note.key && n.part == note.part);
            match stored {
                Some(stored) => *stored = note,
                None => self.notes.push(note),
            }
        }
        self.notes.sort_unstable();
    }
}

/// `changes` sorted, without those at step 0 and those that repeat the value
/// in force (`initial` first).
fn changes_only<T: Copy + PartialEq>(mut changes: Vec<(usize, T)>, initial: T) -> Vec<(usize, T)> {
    changes.sort_by_key(|&(step, _)| step);
    let mut by_step: Vec<(usize, T)> = Vec::with_capacity(changes.len());
    for (step, value) in changes {
        if step == 0 {
            continue;
        }
        match by_step.last_mut() {
            // The last change at a step wins.
            Some(last) if last.0 == step => last.1 = value,
            _ => by_step.push((step, value)),
        }
    }
    let mut current = initial;
    by_step.retain(|&(_, value)| {
        let changes = value != current;
        current = value;
        changes
    });
    by_step
}

/// The changes strictly inside `start..end`, moved back by `start`.
fn changes_within<T: Copy>(changes: &[(usize, T)], start: usize, end: usize) -> Vec<(usize, T)> {
    changes
        .iter()
        .filter(|&&(step, _)| step > start && step < end)
        .map(|&(step, value)| (step - start, value))
        .collect()
}

/// The value in force at `step`: the last change at or before it, else `initial`.
fn value_at<T: Copy>(changes: &[(usize, T)], initial: T, step: usize) -> T {
    let index = changes.partition_point(|&(at, _)| at <= step);
    index.checked_sub(1).map_or(initial, |i| changes[i].1)
}

/// A roll's tempo map on its grid: where each step falls in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct TempoMap {
    /// (first step, seconds at that step, seconds per step from there on).
    segments: Vec<(usize, f64, f64)>,
}

impl TempoMap {
    /// The map of `meta`'s tempo followed by `changes` (sorted, after step 0).
    pub fn new(meta: &RollMeta, changes: &[(usize, Tempo)]) -> Self {
        let per_step = |tempo: Tempo| {
            f64::from(tempo.micros_per_quarter()) / 1e6 / f64::from(meta.steps_per_quarter.max(1))
        };
        let mut segments = vec![(0, 0.0, per_step(meta.tempo))];
        for &(step, tempo) in changes {
            let seconds = Self::seconds_in(&segments, step as f64);
            segments.push((step, seconds, per_step(tempo)));
        }
        Self { segments }
    }

    fn seconds_in(segments: &[(usize, f64, f64)], step: f64) -> f64 {
        let index = segments.partition_point(|s| s.0 as f64 <= step);
        let (from, seconds, per_step) = segments[index.saturating_sub(1)];
        seconds + (step - from as f64) * per_step
    }

    /// Seconds from step 0 to `step` (fractional steps allowed).
    pub fn seconds_at(&self, step: f64) -> f64 {
        Self::seconds_in(&self.segments, step.max(0.0))
    }

    /// The (fractional) step sounding `seconds` after step 0.
    pub fn step_at(&self, seconds: f64) -> f64 {
        let index = self.segments.partition_point(|s| s.1 <= seconds);
        let (from, at, per_step) = self.segments[index.saturating_sub(1)];
        from as f64 + (seconds.max(0.0) - at) / per_step
    }

    /// (first step, seconds per step) of every stretch of one tempo.
    pub fn stretches(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.segments
            .iter()
            .map(|&(step, _, per_step)| (step, per_step))
    }
}

/// A stretch of one metre: from `start` on, bars of `meter` counted from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetreStretch {
    pub start: usize,
    pub signature: TimeSignature,
    pub meter: Meter,
}

impl PianoRoll {
    /// The tempo map: the meta's tempo, then the arrangement's changes.
    pub fn tempo_map(&self) -> TempoMap {
        TempoMap::new(self.meta(), &self.arrangement().tempo_changes)
    }

    /// The tempo in force at `step`.
    pub fn tempo_at(&self, step: usize) -> Tempo {
        value_at(&self.arrangement().tempo_changes, self.meta().tempo, step)
    }

    /// The time signature in force at `step`.
    pub fn signature_at(&self, step: usize) -> TimeSignature {
        value_at(
            &self.arrangement().signature_changes,
            self.meta().time_signature,
            step,
        )
    }

    /// Every stretch of one metre, in order; the first starts at step 0.
    pub fn metre_stretches(&self) -> Vec<MetreStretch> {
        let spq = self.meta().steps_per_quarter;
        std::iter::once((0, self.meta().time_signature))
            .chain(self.arrangement().signature_changes.iter().copied())
            .map(|(start, signature)| MetreStretch {
                start,
                signature,
                meter: Meter::new(signature, spq),
            })
            .collect()
    }

    /// Steps that start a bar, up to the roll's end: each metre's bars are
    /// counted from where it begins.
    pub fn bar_starts(&self) -> Vec<usize> {
        let stretches = self.metre_stretches();
        let mut bars = Vec::new();
        for (i, stretch) in stretches.iter().enumerate() {
            let end = stretches.get(i + 1).map_or(self.steps(), |next| next.start);
            let per_bar = stretch.meter.steps_per_bar().max(1);
            bars.extend((stretch.start..end.max(stretch.start)).step_by(per_bar));
        }
        bars
    }

    /// Whether `step` starts a beat of the metre in force there.
    pub fn is_beat(&self, step: usize) -> bool {
        let stretches = self.metre_stretches();
        let index = stretches.partition_point(|s| s.start <= step);
        let stretch = stretches[index.saturating_sub(1)];
        stretch.meter.is_beat(step - stretch.start)
    }

    /// The notes to play or write: the arrangement reconciled with the cells
    /// (see the module docs). New notes take their velocity from the up to
    /// eight notes of their part before them, `default_velocity` when there
    /// are none.
    pub fn performance(&self, default_velocity: u8) -> Performance {
        let arrangement = self.arrangement();
        let mut parts = arrangement.parts.clone();
        let mut notes: Vec<PlayedNote> = Vec::with_capacity(arrangement.notes.len());
        let mut voiced: HashSet<(usize, usize)> = HashSet::new();
        for note in &arrangement.notes {
            // The roll's length is the piece's: nothing plays past it.
            if note.start >= self.steps() {
                continue;
            }
            if !note.in_roll {
                notes.push(if note.end() > self.steps() {
                    PlayedNote {
                        len: self.steps() - note.start,
                        end_offset: 0,
                        ..*note
                    }
                } else {
                    *note
                });
                continue;
            }
            let Some(pitch) = Pitch::from_midi(note.key) else {
                continue;
            };
            if !self.is_onset(note.start, pitch) {
                continue;
            }
            voiced.insert((note.start, pitch.row()));
            let run_end = self.sounding_run_end(note.start, pitch);
            notes.push(if note.end() > run_end {
                // The roll stops it earlier: it ends there, on the grid.
                PlayedNote {
                    len: run_end - note.start,
                    end_offset: 0,
                    ..*note
                }
            } else {
                *note
            });
        }

        self.play_runs_to_their_end(&mut notes, &voiced);

        let unvoiced: Vec<_> = self
            .notes()
            .into_iter()
            .filter(|n| !voiced.contains(&(n.start, n.pitch.row())))
            .collect();
        if !unvoiced.is_empty() {
            let target = arrangement.target_part().unwrap_or_else(|| {
                let used: Vec<u8> = parts.iter().map(|p| p.channel).collect();
                let channel = (0..16u8)
                    .find(|c| *c != DRUM_CHANNEL && !used.contains(c))
                    .unwrap_or(0);
                parts.push(Part {
                    name: "Cadenza".to_owned(),
                    channel,
                });
                (parts.len() - 1) as u16
            });
            let earlier: Vec<PlayedNote> = {
                let mut own: Vec<PlayedNote> =
                    notes.iter().filter(|n| n.part == target).copied().collect();
                own.sort_unstable();
                own
            };
            let default_program = earlier.first().map_or(self.meta().program, |n| n.program);
            let default_velocity = default_velocity.clamp(1, 127);
            for note in unvoiced {
                let before = earlier.partition_point(|n| n.start < note.start);
                let context = &earlier[before.saturating_sub(8)..before];
                let velocity = if context.is_empty() {
                    default_velocity
                } else {
                    let sum: usize = context.iter().map(|n| usize::from(n.velocity)).sum();
                    (sum / context.len()) as u8
                };
                let program = context.last().map_or(default_program, |n| n.program);
                notes.push(PlayedNote::on_grid(
                    note.start,
                    note.len,
                    note.pitch.midi(),
                    target,
                    velocity,
                    program,
                ));
            }
        }
        notes.sort_unstable();
        Performance { parts, notes }
    }

    /// The whole tempo map scaled so that it starts at `tempo` (every change
    /// keeps its ratio to the opening tempo).
    pub fn set_opening_tempo(&mut self, tempo: Tempo) {
        let scale = f64::from(self.meta().tempo.micros_per_quarter())
            / f64::from(tempo.micros_per_quarter());
        let mut meta = *self.meta();
        meta.tempo = tempo;
        self.set_meta_unchecked(meta);
        if self.arrangement().tempo_changes.is_empty() {
            return;
        }
        for (_, change) in &mut self.arrangement_mut().tempo_changes {
            let micros = (f64::from(change.micros_per_quarter()) / scale).round();
            *change = Tempo::from_micros_per_quarter(micros.clamp(1.0, f64::from(u32::MAX)) as u32);
        }
    }

    /// The main part (the one new notes go to; the whole roll when it has no
    /// parts) played by `program`.
    pub fn set_main_program(&mut self, program: u8) {
        let program = program.min(127);
        let mut meta = *self.meta();
        meta.program = program;
        self.set_meta_unchecked(meta);
        let Some(main) = self.arrangement().target_part() else {
            return;
        };
        for note in &mut self.arrangement_mut().notes {
            if note.part == main {
                note.program = program;
            }
        }
    }

    /// Takes the played notes of roll notes along where those notes went:
    /// each `(from, to)` moves (or, with `copy`, copies) the stored notes
    /// that start at `from` on its pitch to `to`, with their part, velocity,
    /// program and timing (a new length puts the end back on the grid).
    /// Stored notes left at a destination by notes since deleted make way.
    /// Call it with the cells already moved.
    pub fn carry_played(&mut self, moves: &[(RollNote, RollNote)], copy: bool) {
        let found: Vec<(usize, RollNote)> = moves
            .iter()
            .flat_map(|(from, to)| {
                self.arrangement()
                    .notes
                    .iter()
                    .enumerate()
                    .filter(move |(_, n)| {
                        n.in_roll && n.start == from.start && n.key == from.pitch.midi()
                    })
                    .map(move |(index, _)| (index, *to))
            })
            .collect();
        if found.is_empty() {
            return;
        }
        let arrangement = self.arrangement_mut();
        let carried: Vec<PlayedNote> = found
            .iter()
            .map(|&(index, to)| {
                let stored = arrangement.notes[index];
                PlayedNote {
                    start: to.start,
                    key: to.pitch.midi(),
                    len: to.len,
                    end_offset: if to.len == stored.len {
                        stored.end_offset
                    } else {
                        0
                    },
                    ..stored
                }
            })
            .collect();
        let moved: HashSet<usize> = found.iter().map(|&(index, _)| index).collect();
        let destinations: HashSet<(usize, u8)> = carried.iter().map(|n| (n.start, n.key)).collect();
        let mut index = 0;
        arrangement.notes.retain(|n| {
            let keep = (copy || !moved.contains(&index))
                && !(n.in_roll && destinations.contains(&(n.start, n.key)));
            index += 1;
            keep
        });
        arrangement.notes.extend(carried);
        arrangement.notes.sort_unstable();
    }

    /// Sets the velocity of the roll's notes that start at `step` on rows
    /// `rows` (every part's); returns how many there were. A note the
    /// arrangement did not know yet is added to it, in the part it plays in.
    pub fn set_velocity_at(
        &mut self,
        step: usize,
        rows: std::ops::Range<usize>,
        velocity: u8,
    ) -> usize {
        let velocity = velocity.clamp(1, 127);
        let performance = self.performance(velocity);
        let chosen: Vec<PlayedNote> = performance
            .notes
            .iter()
            .filter(|n| n.start == step && n.in_roll)
            .filter(|n| Pitch::from_midi(n.key).is_some_and(|p| rows.contains(&p.row())))
            .copied()
            .collect();
        if chosen.is_empty() {
            return 0;
        }
        let changed = chosen.len();
        let chosen = chosen
            .into_iter()
            .map(|n| PlayedNote { velocity, ..n })
            .collect();
        self.arrangement_mut().add_played(performance.parts, chosen);
        changed
    }

    /// Lengthens stored notes whose cells the roll holds longer (drawn or
    /// generated over their end): where no voiced note of a pitch sounds
    /// through a roll note's last step, the note voicing its onset that ends
    /// last plays to the roll note's end, on the grid. Without this the cells
    /// past it would be neither played nor written.
    fn play_runs_to_their_end(&self, notes: &mut [PlayedNote], voiced: &HashSet<(usize, usize)>) {
        // Per key: the voiced notes' indices sorted by start, and the latest
        // end among each prefix.
        let mut by_key: std::collections::HashMap<u8, Vec<usize>> =
            std::collections::HashMap::new();
        for (index, note) in notes.iter().enumerate() {
            if note.in_roll {
                by_key.entry(note.key).or_default().push(index);
            }
        }
        let mut longer: Vec<(usize, usize)> = Vec::new();
        for (key, indices) in &mut by_key {
            indices.sort_by_key(|&i| notes[i].start);
            let mut latest = 0;
            let prefix_end: Vec<usize> = indices
                .iter()
                .map(|&i| {
                    latest = latest.max(notes[i].end());
                    latest
                })
                .collect();
            let Some(pitch) = Pitch::from_midi(*key) else {
                continue;
            };
            for (k, &index) in indices.iter().enumerate() {
                let start = notes[index].start;
                if !voiced.contains(&(start, pitch.row())) {
                    continue;
                }
                // The roll note at this onset: up to the next onset or silence.
                let mut end = start + 1;
                while self.is_sounding(end, pitch) && !self.is_onset(end, pitch) {
                    end += 1;
                }
                let sounding_through = indices.partition_point(|&i| notes[i].start < end);
                let covered = prefix_end[sounding_through - 1];
                // Only the last of the notes at this onset (by end) grows.
                let last_here = indices[k + 1..]
                    .iter()
                    .take_while(|&&i| notes[i].start == start)
                    .all(|&i| notes[i].end() <= notes[index].end());
                if covered < end && last_here {
                    longer.push((index, end));
                }
            }
        }
        for (index, end) in longer {
            let note = &mut notes[index];
            note.len = end - note.start;
            note.end_offset = 0;
        }
    }

    /// One past the last step of the run of `pitch` that sounds at `start`.
    fn sounding_run_end(&self, start: usize, pitch: Pitch) -> usize {
        let mut end = start + 1;
        while end < self.steps() && self.is_sounding(end, pitch) {
            end += 1;
        }
        end
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;
    use crate::roll::{PITCH_COUNT, RollNote};

    fn pitch(key: u8) -> Pitch {
        Pitch::from_midi(key).unwrap()
    }

    fn played(start: usize, key: u8, len: usize, part: u16, velocity: u8) -> PlayedNote {
        PlayedNote {
            in_roll: Pitch::from_midi(key).is_some() && part != 2,
            ..PlayedNote::on_grid(start, len, key, part, velocity, part as u8 * 10)
        }
    }

    fn parts() -> Vec<Part> {
        vec![
            Part {
                name: "Piano".into(),
                channel: 0,
            },
            Part {
                name: "Bass".into(),
                channel: 1,
            },
            Part {
                name: "Drums".into(),
                channel: DRUM_CHANNEL,
            },
        ]
    }

    fn arranged(notes: Vec<PlayedNote>) -> PianoRoll {
        let meta = RollMeta::default();
        let cells: Vec<RollNote> = notes
            .iter()
            .filter(|n| n.in_roll)
            .map(|n| RollNote {
                start: n.start,
                pitch: pitch(n.key),
                len: n.len,
            })
            .collect();
        let mut roll = PianoRoll::from_notes(32, cells, meta).unwrap();
        let arrangement = Arrangement::new(parts(), notes, vec![], vec![], &meta).unwrap();
        roll.set_arrangement(arrangement);
        roll
    }

    #[test]
    fn an_untouched_roll_plays_its_notes_as_the_file_had_them() {
        let notes = vec![
            played(0, 60, 8, 0, 90),
            played(0, 36, 4, 1, 70),
            played(0, 36, 1, 2, 120),
            // Two parts on one pitch, the second inside the first.
            played(4, 60, 2, 1, 50),
            played(6, 10, 2, 0, 40),
        ];
        let roll = arranged(notes.clone());
        let mut expected = notes;
        expected.sort_unstable();
        assert_eq!(roll.performance(100).notes, expected);
    }

    #[test]
    fn edits_reach_the_parts_and_new_notes_take_the_target_and_its_velocity() {
        let mut roll = arranged(vec![
            played(0, 60, 2, 0, 80),
            played(2, 62, 2, 0, 60),
            played(0, 40, 8, 1, 30),
            played(0, 36, 1, 2, 120),
        ]);
        assert!(roll.remove_note_at(2, pitch(62)));
        roll.set(5, pitch(40), false);
        roll.add_note(RollNote {
            start: 8,
            pitch: pitch(64),
            len: 2,
        });
        let performance = roll.performance(100);
        let keys: Vec<_> = performance
            .notes
            .iter()
            .map(|n| (n.start, n.key, n.part, n.len, n.velocity))
            .collect();
        assert_eq!(
            keys,
            vec![
                (0, 36, 2, 1, 120),
                (0, 40, 1, 5, 30),
                (0, 60, 0, 2, 80),
                // The rest of the split bass note is new: it goes to the part
                // with the most notes, at the velocity of its notes before.
                (6, 40, 0, 2, 80),
                (8, 64, 0, 2, 80),
            ]
        );
        assert_eq!(performance.notes[3].program, 0);
    }

    #[test]
    fn velocities_are_set_on_known_and_new_notes_alike() {
        let mut roll = arranged(vec![played(0, 60, 2, 0, 80), played(0, 40, 2, 1, 30)]);
        roll.add_note(RollNote {
            start: 0,
            pitch: pitch(64),
            len: 1,
        });
        assert_eq!(roll.set_velocity_at(0, 0..PITCH_COUNT, 111), 3);
        let velocities: Vec<u8> = roll
            .performance(1)
            .notes
            .iter()
            .map(|n| n.velocity)
            .collect();
        assert_eq!(velocities, vec![111, 111, 111]);
        assert_eq!(
            roll.set_velocity_at(0, pitch(40).row()..pitch(40).row() + 1, 5),
            1
        );
        assert_eq!(roll.set_velocity_at(1, 0..PITCH_COUNT, 5), 0);

        let mut bare = PianoRoll::from_notes(
            4,
            [RollNote {
                start: 2,
                pitch: pitch(50),
                len: 1,
            }],
            RollMeta::default(),
        )
        .unwrap();
        assert_eq!(bare.set_velocity_at(2, 0..PITCH_COUNT, 64), 1);
        assert_eq!(bare.arrangement().parts().len(), 1);
        assert_eq!(bare.performance(100).notes[0].velocity, 64);
    }

    #[test]
    fn a_roll_without_parts_gets_one() {
        let roll = PianoRoll::from_notes(
            4,
            [RollNote {
                start: 1,
                pitch: pitch(60),
                len: 2,
            }],
            RollMeta {
                program: 40,
                ..RollMeta::default()
            },
        )
        .unwrap();
        let performance = roll.performance(90);
        assert_eq!(performance.parts.len(), 1);
        assert_eq!(performance.parts[0].channel, 0);
        assert_eq!(performance.notes[0].velocity, 90);
        assert_eq!(performance.notes[0].program, 40);
    }

    #[test]
    fn tempo_and_metre_maps_place_steps_and_bars() {
        let meta = RollMeta::default();
        let mut roll = PianoRoll::new(40, meta).unwrap();
        let fast = Tempo::from_bpm(240.0).unwrap();
        let three = TimeSignature::new(3, 4).unwrap();
        roll.set_arrangement(
            Arrangement::new(
                vec![],
                vec![],
                vec![(0, meta.tempo), (8, fast), (8, fast), (12, meta.tempo)],
                vec![(16, three), (20, three)],
                &meta,
            )
            .unwrap(),
        );
        let map = roll.tempo_map();
        // 8 sixteenths at 120 = 1 s, 4 at 240 = 0.25 s.
        assert!((map.seconds_at(8.0) - 1.0).abs() < 1e-12);
        assert!((map.seconds_at(12.0) - 1.25).abs() < 1e-12);
        assert!((map.seconds_at(14.0) - 1.5).abs() < 1e-12);
        assert!((map.step_at(1.25) - 12.0).abs() < 1e-9);
        assert_eq!(roll.tempo_at(9), fast);
        assert_eq!(roll.bar_starts(), vec![0, 16, 28]);
        assert!(roll.is_beat(20) && !roll.is_beat(22) && roll.is_beat(4));

        let sliced = roll.slice(10, 30);
        assert_eq!(sliced.meta().tempo, fast);
        assert_eq!(sliced.tempo_at(2), meta.tempo);
        assert_eq!(sliced.signature_at(6), three);
        assert_eq!(sliced.signature_at(5), TimeSignature::COMMON);
    }

    #[test]
    fn moved_and_copied_notes_keep_their_part_velocity_and_timing() {
        let mut roll = arranged(vec![
            PlayedNote {
                start_offset: 5,
                ..played(0, 60, 4, 0, 90)
            },
            played(4, 36, 4, 1, 70),
        ]);
        let from = RollNote {
            start: 0,
            pitch: pitch(60),
            len: 4,
        };
        let to = RollNote {
            start: 8,
            pitch: pitch(62),
            len: 4,
        };
        roll.remove_note_at(0, pitch(60));
        roll.add_note(to);
        roll.carry_played(&[(from, to)], false);
        let performance = roll.performance(100);
        let moved = performance.notes.iter().find(|n| n.key == 62).unwrap();
        assert_eq!(
            (moved.start, moved.part, moved.velocity, moved.start_offset),
            (8, 0, 90, 5)
        );
        assert!(!roll.arrangement().notes().iter().any(|n| n.key == 60));
        // A copy of the bass note, longer: the original stays.
        let bass = RollNote {
            start: 4,
            pitch: pitch(36),
            len: 4,
        };
        let copy = RollNote {
            start: 20,
            len: 6,
            ..bass
        };
        roll.add_note(copy);
        roll.carry_played(&[(bass, copy)], true);
        let performance = roll.performance(100);
        let basses: Vec<_> = performance.notes.iter().filter(|n| n.key == 36).collect();
        assert_eq!(basses.len(), 2);
        assert!(basses.iter().all(|n| n.part == 1 && n.velocity == 70));
        assert_eq!(basses[1].len, 6);
    }

    #[test]
    fn cells_held_past_a_stored_note_play_to_their_end() {
        let mut roll = arranged(vec![
            played(0, 60, 2, 0, 90),
            // Two parts on one pitch, the second inside the first: unchanged.
            played(4, 64, 8, 0, 80),
            played(6, 64, 2, 1, 50),
        ]);
        // Cells drawn on from the C's end, with no onset of their own.
        for step in 2..6 {
            roll.set(step, pitch(60), true);
        }
        let performance = roll.performance(100);
        let c = performance.notes.iter().find(|n| n.key == 60).unwrap();
        assert_eq!((c.start, c.len, c.velocity, c.part), (0, 6, 90, 0));
        let es: Vec<(usize, usize)> = performance
            .notes
            .iter()
            .filter(|n| n.key == 64)
            .map(|n| (n.start, n.len))
            .collect();
        assert_eq!(es, vec![(4, 8), (6, 2)]);
    }
}
