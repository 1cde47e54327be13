//! The piano roll: 106 pitch rows (MIDI 21..=126) by N time steps.
//!
//! Each step stores two 106-bit masks packed in a `u128`: which pitches sound, and
//! which of those start a new note there (an onset). Onsets let repeated notes of
//! one pitch survive a MIDI round trip; a roll with no explicit onsets (a PNG, a
//! generated continuation) gets one at the start of every run of sounding steps.
//! Sixteen bytes per step per mask keep a 10-minute piece under 100 KB.
//!
//! This module does no IO; `midi` and `image` convert files to and from it.

use std::fmt;
use std::sync::Arc;

use crate::arrangement::Arrangement;
use crate::meter::{Meter, TimeSignature};

/// Number of pitch rows in a roll.
pub const PITCH_COUNT: usize = 106;
/// The MIDI note number of row 0 (A0, the lowest piano key).
pub const LOWEST_MIDI_PITCH: u8 = 21;
/// The MIDI note number of the last row.
pub const HIGHEST_MIDI_PITCH: u8 = LOWEST_MIDI_PITCH + PITCH_COUNT as u8 - 1;
/// The longest roll any importer builds, in steps: 1,000,000 sixteenths is about
/// 34 hours at 120 BPM. Longer input is cut here and the import report says so,
/// so a corrupt delta time can never make an unbounded allocation.
pub const MAX_STEPS: usize = crate::limits::ROLL_STEPS.max;
/// Steps per quarter note allowed for a roll's grid.
pub const STEPS_PER_QUARTER_RANGE: std::ops::RangeInclusive<u8> = 1..=24;
/// The default grid: four steps per quarter note (sixteenth notes), as midi2img.
pub const DEFAULT_STEPS_PER_QUARTER: u8 = 4;

/// All 106 pitch bits set.
const ALL_PITCHES: u128 = (1u128 << PITCH_COUNT) - 1;

/// A pitch that has a row in the roll (MIDI 21..=126).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pitch(u8);

impl Pitch {
    /// The pitch for a MIDI note number, or `None` outside 21..=126.
    pub fn from_midi(note: u8) -> Option<Self> {
        (LOWEST_MIDI_PITCH..=HIGHEST_MIDI_PITCH)
            .contains(&note)
            .then_some(Self(note))
    }

    /// The pitch of a roll row, or `None` for a row past the last.
    pub fn from_row(row: usize) -> Option<Self> {
        (row < PITCH_COUNT).then(|| Self(LOWEST_MIDI_PITCH + row as u8))
    }

    /// The MIDI note number.
    pub fn midi(self) -> u8 {
        self.0
    }

    /// The roll row: 0 for MIDI 21.
    pub fn row(self) -> usize {
        usize::from(self.0 - LOWEST_MIDI_PITCH)
    }

    /// Every pitch, lowest first.
    pub fn all() -> impl Iterator<Item = Pitch> {
        (LOWEST_MIDI_PITCH..=HIGHEST_MIDI_PITCH).map(Pitch)
    }

    /// Scientific pitch notation with sharps, e.g. `C4` for MIDI 60.
    pub fn name(self) -> String {
        const NAMES: [&str; 12] = [
            "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
        ];
        let octave = i32::from(self.0 / 12) - 1;
        format!("{}{}", NAMES[usize::from(self.0 % 12)], octave)
    }
}

impl fmt::Display for Pitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A tempo, stored as MIDI stores it so MIDI round trips are exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tempo {
    micros_per_quarter: u32,
}

impl Tempo {
    /// MIDI's default when a file names no tempo: 120 BPM.
    pub const DEFAULT: Tempo = Tempo {
        micros_per_quarter: 500_000,
    };

    /// A tempo from MIDI's microseconds per quarter note (clamped to MIDI's 24-bit
    /// range, at least 1).
    pub fn from_micros_per_quarter(micros: u32) -> Self {
        Self {
            micros_per_quarter: micros.clamp(1, 0xFF_FFFF),
        }
    }

    /// A tempo in quarter notes per minute, or `None` outside
    /// [`TEMPO_BPM`](crate::limits::TEMPO_BPM).
    pub fn from_bpm(bpm: f64) -> Option<Self> {
        crate::limits::TEMPO_BPM.contains(bpm).then(|| Self {
            micros_per_quarter: (60_000_000.0 / bpm).round() as u32,
        })
    }

    /// Microseconds per quarter note.
    pub fn micros_per_quarter(self) -> u32 {
        self.micros_per_quarter
    }

    /// Quarter notes per minute.
    pub fn bpm(self) -> f64 {
        60_000_000.0 / f64::from(self.micros_per_quarter)
    }
}

impl Default for Tempo {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a roll needs besides its notes to become sound or MIDI again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RollMeta {
    /// Grid resolution, 1..=24 (4 = sixteenth notes).
    pub steps_per_quarter: u8,
    pub tempo: Tempo,
    /// General MIDI program, 0..=127 (0 = acoustic grand piano).
    pub program: u8,
    /// The file's metre, kept so the roll's bars and beats (and an export)
    /// match the music; 4/4 where the source gives none.
    pub time_signature: TimeSignature,
}

impl Default for RollMeta {
    fn default() -> Self {
        Self {
            steps_per_quarter: DEFAULT_STEPS_PER_QUARTER,
            tempo: Tempo::DEFAULT,
            program: 0,
            time_signature: TimeSignature::COMMON,
        }
    }
}

impl RollMeta {
    /// The time signature on this roll's grid.
    pub fn meter(&self) -> Meter {
        Meter::new(self.time_signature, self.steps_per_quarter)
    }

    /// Length of one step in seconds at this tempo.
    pub fn seconds_per_step(&self) -> f64 {
        f64::from(self.tempo.micros_per_quarter()) / 1e6 / f64::from(self.steps_per_quarter)
    }
}

/// A note as the roll sees it: a pitch sounding from `start` for `len` steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollNote {
    /// First step.
    pub start: usize,
    pub pitch: Pitch,
    /// Length in steps, at least 1.
    pub len: usize,
}

impl RollNote {
    /// One past the last step.
    pub fn end(&self) -> usize {
        self.start + self.len
    }
}

/// Errors from building a roll out of parts that do not fit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RollError {
    /// The roll would pass [`MAX_STEPS`].
    #[error("a roll of {steps} steps is longer than the limit of {MAX_STEPS} steps")]
    TooLong { steps: usize },
    /// Steps per quarter outside 1..=24.
    #[error("{0} steps per quarter note is outside the allowed 1..=24")]
    BadResolution(u8),
    /// The sounding and onset masks have different lengths.
    #[error("sounding mask has {sounding} steps but onset mask has {onsets}")]
    MaskLengths { sounding: usize, onsets: usize },
}

/// A binary piano roll with onsets; see the module docs.
///
/// Invariant: every onset sounds, and every step that sounds after a silent step
/// (or at step 0) of the same pitch is an onset.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PianoRoll {
    sounding: Vec<u128>,
    onsets: Vec<u128>,
    meta: RollMeta,
    /// Shared between a roll's versions (undo keeps many): cell edits leave it alone.
    arrangement: Arc<Arrangement>,
}

/// The positions of a bitmask's set bits, lowest first: the pitch rows that
/// sound in one step of a roll.
pub fn mask_bits(mask: u128) -> impl Iterator<Item = usize> {
    let mut rest = mask;
    std::iter::from_fn(move || {
        (rest != 0).then(|| {
            let bit = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            bit
        })
    })
}

/// One step's bitmask as 0/1 floats, one per pitch row (`out` holds
/// [`PITCH_COUNT`] values): the network's input encoding.
pub fn mask_to_floats(mask: u128, out: &mut [f32]) {
    for (row, value) in out.iter_mut().enumerate() {
        *value = if mask >> row & 1 == 1 { 1.0 } else { 0.0 };
    }
}

impl Default for PianoRoll {
    /// An empty roll (no steps) with the default metadata.
    fn default() -> Self {
        Self {
            sounding: Vec::new(),
            onsets: Vec::new(),
            meta: RollMeta::default(),
            arrangement: Arc::default(),
        }
    }
}

impl fmt::Debug for PianoRoll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PianoRoll")
            .field("steps", &self.steps())
            .field("notes", &self.note_count())
            .field("meta", &self.meta)
            .field("parts", &self.arrangement.parts().len())
            .finish()
    }
}

impl PianoRoll {
    /// A silent roll of `steps` steps.
    pub fn new(steps: usize, meta: RollMeta) -> Result<Self, RollError> {
        check_meta(&meta)?;
        if steps > MAX_STEPS {
            return Err(RollError::TooLong { steps });
        }
        Ok(Self {
            sounding: vec![0; steps],
            onsets: vec![0; steps],
            meta,
            arrangement: Arc::default(),
        })
    }

    /// A roll from per-step pitch bitmasks (bit `r` = row `r`). Onsets are the
    /// given ones that sound plus the start of every run; bits past row 105 are
    /// ignored.
    pub fn from_masks(
        sounding: Vec<u128>,
        onsets: Vec<u128>,
        meta: RollMeta,
    ) -> Result<Self, RollError> {
        check_meta(&meta)?;
        if sounding.len() != onsets.len() {
            return Err(RollError::MaskLengths {
                sounding: sounding.len(),
                onsets: onsets.len(),
            });
        }
        if sounding.len() > MAX_STEPS {
            return Err(RollError::TooLong {
                steps: sounding.len(),
            });
        }
        let mut roll = Self {
            sounding,
            onsets,
            meta,
            arrangement: Arc::default(),
        };
        roll.normalise_onsets();
        Ok(roll)
    }

    /// New cells (as [`Self::from_masks`] takes them) under this roll's meta
    /// and arrangement: an edit, a kept continuation, a filled passage.
    pub fn with_cells(&self, sounding: Vec<u128>, onsets: Vec<u128>) -> Result<Self, RollError> {
        let mut roll = Self::from_masks(sounding, onsets, self.meta)?;
        roll.arrangement = Arc::clone(&self.arrangement);
        Ok(roll)
    }

    /// A roll from sounding masks alone: each run of sounding steps is one note.
    pub fn from_sounding(sounding: Vec<u128>, meta: RollMeta) -> Result<Self, RollError> {
        let onsets = vec![0; sounding.len()];
        Self::from_masks(sounding, onsets, meta)
    }

    /// A roll of `steps` steps holding `notes`. Notes reaching past `steps` are cut.
    pub fn from_notes(
        steps: usize,
        notes: impl IntoIterator<Item = RollNote>,
        meta: RollMeta,
    ) -> Result<Self, RollError> {
        let mut roll = Self::new(steps, meta)?;
        // Merge each pitch's spans before filling, so overlapping notes cost
        // their union, not their sum: import stays linear in the roll's size
        // even for a file of many long notes stacked on one pitch.
        let mut spans: Vec<Vec<(usize, usize)>> = vec![Vec::new(); PITCH_COUNT];
        for note in notes {
            if note.len == 0 || note.start >= steps {
                continue;
            }
            roll.onsets[note.start] |= 1u128 << note.pitch.row();
            spans[note.pitch.row()].push((note.start, note.end().min(steps)));
        }
        for (row, spans) in spans.iter_mut().enumerate() {
            spans.sort_unstable();
            let bit = 1u128 << row;
            let mut filled_to = 0;
            for &(start, end) in spans.iter() {
                for mask in &mut roll.sounding[start.max(filled_to)..end.max(filled_to)] {
                    *mask |= bit;
                }
                filled_to = filled_to.max(end);
            }
        }
        Ok(roll)
    }

    fn normalise_onsets(&mut self) {
        let mut previous = 0u128;
        for (sounding, onset) in self.sounding.iter_mut().zip(self.onsets.iter_mut()) {
            *sounding &= ALL_PITCHES;
            *onset = (*onset & *sounding) | (*sounding & !previous);
            previous = *sounding;
        }
    }

    /// Number of steps.
    pub fn steps(&self) -> usize {
        self.sounding.len()
    }

    /// True when the roll has no steps.
    pub fn is_empty(&self) -> bool {
        self.sounding.is_empty()
    }

    /// Grid, tempo, program and time signature.
    pub fn meta(&self) -> &RollMeta {
        &self.meta
    }

    /// Replaces the metadata.
    pub fn set_meta(&mut self, meta: RollMeta) -> Result<(), RollError> {
        check_meta(&meta)?;
        self.meta = meta;
        Ok(())
    }

    /// Replaces metadata known to be valid (its grid unchanged).
    pub(crate) fn set_meta_unchecked(&mut self, meta: RollMeta) {
        self.meta = meta;
    }

    /// The tempo map, metre map and played notes that ride along with the cells.
    pub fn arrangement(&self) -> &Arrangement {
        &self.arrangement
    }

    /// Replaces the arrangement.
    pub fn set_arrangement(&mut self, arrangement: Arrangement) {
        self.arrangement = Arc::new(arrangement);
    }

    /// The arrangement, to change in place (copied first when shared).
    pub fn arrangement_mut(&mut self) -> &mut Arrangement {
        Arc::make_mut(&mut self.arrangement)
    }

    /// Length in seconds through the tempo map.
    pub fn duration_seconds(&self) -> f64 {
        self.tempo_map().seconds_at(self.steps() as f64)
    }

    /// Whether `pitch` sounds at `step` (false past the end).
    pub fn is_sounding(&self, step: usize, pitch: Pitch) -> bool {
        self.sounding
            .get(step)
            .is_some_and(|mask| mask >> pitch.row() & 1 == 1)
    }

    /// Whether a note of `pitch` starts at `step` (false past the end).
    pub fn is_onset(&self, step: usize, pitch: Pitch) -> bool {
        self.onsets
            .get(step)
            .is_some_and(|mask| mask >> pitch.row() & 1 == 1)
    }

    /// The sounding pitches of one step as a bitmask (bit `r` = row `r`); 0 past the end.
    pub fn sounding_mask(&self, step: usize) -> u128 {
        self.sounding.get(step).copied().unwrap_or(0)
    }

    /// The onsets of one step as a bitmask; 0 past the end.
    pub fn onset_mask(&self, step: usize) -> u128 {
        self.onsets.get(step).copied().unwrap_or(0)
    }

    /// Per-step sounding masks.
    pub fn sounding_masks(&self) -> &[u128] {
        &self.sounding
    }

    /// Per-step onset masks.
    pub fn onset_masks(&self) -> &[u128] {
        &self.onsets
    }

    /// Adds a note, cut at the roll's end. A note that overlaps one already
    /// sounding merges with it but keeps its own onset.
    pub fn add_note(&mut self, note: RollNote) {
        if note.len == 0 || note.start >= self.steps() {
            return;
        }
        let bit = 1u128 << note.pitch.row();
        let end = note.end().min(self.steps());
        self.onsets[note.start] |= bit;
        for mask in &mut self.sounding[note.start..end] {
            *mask |= bit;
        }
    }

    /// Removes the note sounding at `step` (from its onset to its end), if
    /// any; returns whether there was one.
    pub fn remove_note_at(&mut self, step: usize, pitch: Pitch) -> bool {
        let bit = 1u128 << pitch.row();
        if step >= self.steps() || self.sounding[step] & bit == 0 {
            return false;
        }
        let mut start = step;
        while self.onsets[start] & bit == 0 && start > 0 && self.sounding[start - 1] & bit != 0 {
            start -= 1;
        }
        let mut end = step + 1;
        while end < self.steps() && self.sounding[end] & bit != 0 && self.onsets[end] & bit == 0 {
            end += 1;
        }
        for cell in start..end {
            self.sounding[cell] &= !bit;
            self.onsets[cell] &= !bit;
        }
        true
    }

    /// Sets one cell. Turning a cell on after a silent step makes it an onset;
    /// turning one off makes the next sounding step an onset.
    pub fn set(&mut self, step: usize, pitch: Pitch, on: bool) {
        if step >= self.steps() {
            return;
        }
        let bit = 1u128 << pitch.row();
        if on {
            self.sounding[step] |= bit;
            if step == 0 || self.sounding[step - 1] & bit == 0 {
                self.onsets[step] |= bit;
            }
        } else {
            self.sounding[step] &= !bit;
            self.onsets[step] &= !bit;
        }
        if let Some(next) = self.sounding.get(step + 1)
            && next & bit != 0
            && !on
        {
            self.onsets[step + 1] |= bit;
        }
    }

    /// The notes: each onset starts one, which lasts while the pitch sounds and no
    /// new onset of it comes. Sorted by start, then pitch.
    pub fn notes(&self) -> Vec<RollNote> {
        let mut notes = Vec::new();
        for (start, &onsets) in self.onsets.iter().enumerate() {
            for row in mask_bits(onsets) {
                let bit = 1u128 << row;
                let mut end = start + 1;
                while end < self.steps()
                    && self.sounding[end] & bit != 0
                    && self.onsets[end] & bit == 0
                {
                    end += 1;
                }
                if let Some(pitch) = Pitch::from_row(row) {
                    notes.push(RollNote {
                        start,
                        pitch,
                        len: end - start,
                    });
                }
            }
        }
        notes
    }

    /// Number of notes (onsets).
    pub fn note_count(&self) -> usize {
        self.onsets.iter().map(|m| m.count_ones() as usize).sum()
    }

    /// Number of sounding cells.
    pub fn sounding_cells(&self) -> usize {
        self.sounding.iter().map(|m| m.count_ones() as usize).sum()
    }

    /// Lowest and highest sounding pitch, or `None` for a silent roll.
    pub fn pitch_range(&self) -> Option<(Pitch, Pitch)> {
        let all = self.sounding.iter().fold(0u128, |acc, m| acc | m);
        if all == 0 {
            return None;
        }
        let low = Pitch::from_row(all.trailing_zeros() as usize)?;
        let high = Pitch::from_row(127 - all.leading_zeros() as usize)?;
        Some((low, high))
    }

    /// Steps `start..end` as a new roll with the same grid and program, the
    /// tempo and metre in force at `start`, and the played notes that start
    /// inside; the first step's sounding pitches become onsets.
    pub fn slice(&self, start: usize, end: usize) -> PianoRoll {
        let end = end.min(self.steps());
        let start = start.min(end);
        let mut meta = self.meta;
        let arrangement = if self.arrangement.is_empty() {
            Arc::clone(&self.arrangement)
        } else {
            Arc::new(self.arrangement.slice(start, end, &mut meta))
        };
        let mut roll = Self {
            sounding: self.sounding[start..end].to_vec(),
            onsets: self.onsets[start..end].to_vec(),
            meta,
            arrangement,
        };
        roll.normalise_onsets();
        roll
    }
}

fn check_meta(meta: &RollMeta) -> Result<(), RollError> {
    if STEPS_PER_QUARTER_RANGE.contains(&meta.steps_per_quarter) {
        Ok(())
    } else {
        Err(RollError::BadResolution(meta.steps_per_quarter))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;

    fn pitch(n: u8) -> Pitch {
        Pitch::from_midi(n).unwrap()
    }

    #[test]
    fn pitch_names_and_rows() {
        assert_eq!(pitch(60).name(), "C4");
        assert_eq!(pitch(21).name(), "A0");
        assert_eq!(pitch(21).row(), 0);
        assert_eq!(pitch(126).row(), 105);
        assert_eq!(Pitch::from_midi(20), None);
        assert_eq!(Pitch::from_midi(127), None);
    }

    #[test]
    fn removing_a_note_leaves_its_repeated_neighbours() {
        let note = |start, len| RollNote {
            start,
            pitch: pitch(60),
            len,
        };
        let mut roll = PianoRoll::from_notes(
            10,
            [note(0, 2), note(2, 3), note(5, 2)],
            RollMeta::default(),
        )
        .unwrap();
        assert!(roll.remove_note_at(3, pitch(60)));
        assert_eq!(roll.notes(), vec![note(0, 2), note(5, 2)]);
        assert!(!roll.remove_note_at(3, pitch(60)));
        assert!(!roll.remove_note_at(99, pitch(60)));
    }

    #[test]
    fn repeated_notes_stay_apart() {
        let meta = RollMeta::default();
        let a = RollNote {
            start: 0,
            pitch: pitch(60),
            len: 2,
        };
        let b = RollNote {
            start: 2,
            pitch: pitch(60),
            len: 3,
        };
        let roll = PianoRoll::from_notes(8, [a, b], meta).unwrap();
        assert_eq!(roll.notes(), vec![a, b]);
        assert_eq!(roll.sounding_cells(), 5);
    }

    #[test]
    fn sounding_only_masks_get_run_onsets() {
        let bit = 1u128 << 39;
        let roll = PianoRoll::from_sounding(vec![bit, bit, 0, bit], RollMeta::default()).unwrap();
        assert_eq!(roll.onset_masks(), &[bit, 0, 0, bit]);
        assert_eq!(roll.note_count(), 2);
    }

    #[test]
    fn set_off_splits_a_note() {
        let mut roll = PianoRoll::from_notes(
            5,
            [RollNote {
                start: 0,
                pitch: pitch(40),
                len: 5,
            }],
            RollMeta::default(),
        )
        .unwrap();
        roll.set(2, pitch(40), false);
        let starts: Vec<_> = roll.notes().iter().map(|n| (n.start, n.len)).collect();
        assert_eq!(starts, vec![(0, 2), (3, 2)]);
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(
            PianoRoll::new(MAX_STEPS + 1, RollMeta::default()).err(),
            Some(RollError::TooLong {
                steps: MAX_STEPS + 1
            })
        );
        let meta = RollMeta {
            steps_per_quarter: 25,
            ..RollMeta::default()
        };
        assert_eq!(
            PianoRoll::new(1, meta).err(),
            Some(RollError::BadResolution(25))
        );
    }
}
