//! Musical facts about piano-roll steps: scales and modes, pitch names and
//! ranges as a musician types them, the key a passage is in, and measures
//! that say whether a continuation sounds like music (semitone clashes, notes
//! out of key, onsets off the beat, density).
//!
//! A step is a roll bitmask: bit `r` = row `r` = MIDI pitch 21 + `r` (see
//! [`crate::roll`]). Bits past the last row are ignored throughout. No IO.

use std::fmt;
use std::str::FromStr;

use crate::meter::Meter;
use crate::roll::{HIGHEST_MIDI_PITCH, LOWEST_MIDI_PITCH, PITCH_COUNT, Pitch};

/// Pitch-class names as [`Pitch::name`] spells them: sharps, so every name
/// reads back through [`FromStr`].
const PITCH_CLASS_NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// For each pitch class, the roll rows that have it: a step's pitch classes
/// are then twelve mask tests, not 106 bit walks.
const PITCH_CLASS_ROWS: [u128; 12] = pitch_class_rows();

const fn pitch_class_rows() -> [u128; 12] {
    let mut rows = [0u128; 12];
    let mut row = 0;
    while row < PITCH_COUNT {
        rows[(LOWEST_MIDI_PITCH as usize + row) % 12] |= 1u128 << row;
        row += 1;
    }
    rows
}

/// The 12-bit pitch-class set of a step: bit `k` when some sounding pitch
/// has pitch class `k` (0 = C).
fn step_pitch_classes(step: u128) -> u16 {
    let mut classes = 0u16;
    for (class, rows) in PITCH_CLASS_ROWS.iter().enumerate() {
        if step & rows != 0 {
            classes |= 1 << class;
        }
    }
    classes
}

/// `classes` turned `by` semitones up, within the octave.
fn rotate_classes(classes: u16, by: u8) -> u16 {
    let by = u32::from(by % 12);
    let classes = u32::from(classes & 0xFFF);
    (((classes << by) | (classes >> ((12 - by) % 12))) & 0xFFF) as u16
}

/// What the roll covers, for messages: `A0..F#9 (MIDI 21..=126)`.
fn roll_span() -> String {
    let name = |midi| Pitch::from_midi(midi).map_or_else(String::new, Pitch::name);
    format!(
        "{}..{} (MIDI {LOWEST_MIDI_PITCH}..={HIGHEST_MIDI_PITCH})",
        name(LOWEST_MIDI_PITCH),
        name(HIGHEST_MIDI_PITCH)
    )
}

/// The modes' names, comma-separated, for messages.
fn mode_list() -> String {
    Mode::ALL.map(Mode::name).join(", ")
}

/// Errors from reading a scale, a mode, a pitch or a pitch range as typed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MusicError {
    /// Not one of [`Mode::ALL`] (nor an alias).
    #[error(
        "unknown mode {0:?}; the modes are {modes} (aeolian means minor, ionian means major)",
        modes = mode_list()
    )]
    UnknownMode(String),
    /// A scale whose tonic is no note name.
    #[error(
        "{0:?} is not a scale: write a tonic note name (C, F#, Bb) and optionally \
         a mode, as in C:major or F#:harmonic-minor; the modes are {modes}",
        modes = mode_list()
    )]
    BadTonic(String),
    /// Neither a MIDI number nor a note name with an octave.
    #[error(
        "{0:?} is not a pitch: write a MIDI number (60) or a note name with its \
         octave (C4 = 60, Bb2, F#5)"
    )]
    BadPitch(String),
    /// A pitch the roll has no row for.
    #[error(
        "{text} is MIDI {midi}, {side} the roll, which covers {span}",
        side = if *midi < i64::from(LOWEST_MIDI_PITCH) { "below" } else { "above" },
        span = roll_span()
    )]
    OutsideRoll { text: String, midi: i64 },
    /// A range without `..` between two pitches.
    #[error("{0:?} is not a pitch range: write LOW..HIGH, as in C3..C6 or 48..84")]
    BadRange(String),
    /// A range whose low end is above its high end.
    #[error("the pitch range {low}..{high} runs downwards: put the lower pitch first")]
    ReversedRange { low: Pitch, high: Pitch },
}

/// The name of pitch class `class` (0 = C, taken modulo 12), with sharps.
pub fn pitch_class_name(class: u8) -> &'static str {
    PITCH_CLASS_NAMES[usize::from(class % 12)]
}

/// A scale's pattern of steps above its tonic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Major,
    /// Natural minor (aeolian).
    Minor,
    HarmonicMinor,
    /// The ascending form: raised 6th and 7th.
    MelodicMinor,
    Dorian,
    Phrygian,
    Lydian,
    Mixolydian,
    Locrian,
    MajorPentatonic,
    MinorPentatonic,
    /// The minor pentatonic plus the flat 5th.
    Blues,
    WholeTone,
    Chromatic,
}

impl Mode {
    /// Every mode, in the order the CLI lists them.
    pub const ALL: [Mode; 14] = [
        Mode::Major,
        Mode::Minor,
        Mode::HarmonicMinor,
        Mode::MelodicMinor,
        Mode::Dorian,
        Mode::Phrygian,
        Mode::Lydian,
        Mode::Mixolydian,
        Mode::Locrian,
        Mode::MajorPentatonic,
        Mode::MinorPentatonic,
        Mode::Blues,
        Mode::WholeTone,
        Mode::Chromatic,
    ];

    /// Semitones above the tonic, ascending, starting with 0.
    pub fn intervals(self) -> &'static [u8] {
        match self {
            Mode::Major => &[0, 2, 4, 5, 7, 9, 11],
            Mode::Minor => &[0, 2, 3, 5, 7, 8, 10],
            Mode::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
            Mode::MelodicMinor => &[0, 2, 3, 5, 7, 9, 11],
            Mode::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            Mode::Phrygian => &[0, 1, 3, 5, 7, 8, 10],
            Mode::Lydian => &[0, 2, 4, 6, 7, 9, 11],
            Mode::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
            Mode::Locrian => &[0, 1, 3, 5, 6, 8, 10],
            Mode::MajorPentatonic => &[0, 2, 4, 7, 9],
            Mode::MinorPentatonic => &[0, 3, 5, 7, 10],
            Mode::Blues => &[0, 3, 5, 6, 7, 10],
            Mode::WholeTone => &[0, 2, 4, 6, 8, 10],
            Mode::Chromatic => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        }
    }

    /// [`Self::intervals`] as a 12-bit set: bit `k` = `k` semitones above the
    /// tonic.
    pub fn mask(self) -> u16 {
        self.intervals().iter().fold(0, |mask, &i| mask | 1 << i)
    }

    /// The name the CLI reads and writes: lowercase, words joined by hyphens.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Major => "major",
            Mode::Minor => "minor",
            Mode::HarmonicMinor => "harmonic-minor",
            Mode::MelodicMinor => "melodic-minor",
            Mode::Dorian => "dorian",
            Mode::Phrygian => "phrygian",
            Mode::Lydian => "lydian",
            Mode::Mixolydian => "mixolydian",
            Mode::Locrian => "locrian",
            Mode::MajorPentatonic => "major-pentatonic",
            Mode::MinorPentatonic => "minor-pentatonic",
            Mode::Blues => "blues",
            Mode::WholeTone => "whole-tone",
            Mode::Chromatic => "chromatic",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = MusicError;

    /// A [`Mode::name`], any case, `_` or a space allowed for `-`; the church
    /// names "aeolian" and "ionian" for minor and major.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_lowercase().replace(['_', ' '], "-");
        match wanted.as_str() {
            "aeolian" => return Ok(Mode::Minor),
            "ionian" => return Ok(Mode::Major),
            _ => {}
        }
        Mode::ALL
            .into_iter()
            .find(|mode| mode.name() == wanted)
            .ok_or_else(|| MusicError::UnknownMode(text.to_owned()))
    }
}

/// A note letter with at most one sharp or flat at the start of `text`,
/// any case: its semitones above C (-1 for Cb, 12 for B#) and the rest of
/// the text. Unreduced, so an octave number after it keeps its meaning
/// (Cb4 is B3).
fn split_note_name(text: &str) -> Option<(i64, &str)> {
    let mut chars = text.chars();
    let letter = match chars.next()?.to_ascii_uppercase() {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let after_letter = chars.as_str();
    let accidental = match chars.next() {
        Some('#' | '♯') => 1,
        Some('b' | 'B' | '♭') => -1,
        _ => return Some((letter, after_letter)),
    };
    Some((letter + accidental, chars.as_str()))
}

/// A tonic and a mode: the pitch classes a melody may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Scale {
    /// Pitch class 0..12, 0 = C (taken modulo 12).
    pub tonic: u8,
    pub mode: Mode,
}

impl Scale {
    /// The 12-bit pitch-class set: bit `k` = pitch class `k` (0 = C).
    pub fn pitch_classes(&self) -> u16 {
        rotate_classes(self.mode.mask(), self.tonic)
    }

    /// Whether MIDI note `note` is in the scale, in any octave.
    pub fn contains_midi(&self, note: u8) -> bool {
        self.pitch_classes() >> (note % 12) & 1 == 1
    }

    /// The roll rows whose pitch is in the scale; rows past the last are
    /// never set.
    pub fn row_mask(&self) -> u128 {
        let classes = self.pitch_classes();
        (0..12)
            .filter(|class| classes >> class & 1 == 1)
            .fold(0, |mask, class| mask | PITCH_CLASS_ROWS[class])
    }
}

impl fmt::Display for Scale {
    /// `TONIC:MODE`, e.g. `F#:harmonic-minor`: what [`FromStr`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            PITCH_CLASS_NAMES[usize::from(self.tonic % 12)],
            self.mode
        )
    }
}

impl FromStr for Scale {
    type Err = MusicError;

    /// `TONIC:MODE` or a bare `TONIC` (major), any case; the tonic a note
    /// letter with an optional sharp (`#`, `♯`) or flat (`b`, `♭`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (tonic_text, mode) = match text.trim().split_once(':') {
            Some((tonic, mode)) => (tonic.trim(), mode.parse()?),
            None => (text.trim(), Mode::Major),
        };
        match split_note_name(tonic_text) {
            Some((semitones, "")) => Ok(Scale {
                tonic: semitones.rem_euclid(12) as u8,
                mode,
            }),
            _ => Err(MusicError::BadTonic(text.to_owned())),
        }
    }
}

/// A pitch as typed: a MIDI number (`60`) or a note name with its octave in
/// scientific notation (`C4` = 60, `A0` = 21, `Bb2`, `F#5`), any case. A
/// pitch the roll has no row for is refused, naming the roll's bounds.
pub fn parse_pitch(text: &str) -> Result<Pitch, MusicError> {
    let trimmed = text.trim();
    let midi = match trimmed.parse::<i64>() {
        Ok(number) => number,
        Err(_) => {
            let bad = || MusicError::BadPitch(text.to_owned());
            let (semitones, octave) = split_note_name(trimmed).ok_or_else(bad)?;
            let octave: i64 = octave.parse().map_err(|_| bad())?;
            octave
                .checked_add(1)
                .and_then(|o| o.checked_mul(12))
                .and_then(|c| c.checked_add(semitones))
                .ok_or_else(bad)?
        }
    };
    u8::try_from(midi)
        .ok()
        .and_then(Pitch::from_midi)
        .ok_or_else(|| MusicError::OutsideRoll {
            text: trimmed.to_owned(),
            midi,
        })
}

/// Pitches from `low` to `high`, both included: where a melody may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PitchRange {
    pub low: Pitch,
    pub high: Pitch,
}

impl PitchRange {
    /// The rows from `low` to `high`.
    pub fn row_mask(&self) -> u128 {
        // Rows stop at 105, so the shifts stay inside a u128.
        let through_high = (1u128 << (self.high.row() + 1)) - 1;
        let below_low = (1u128 << self.low.row()) - 1;
        through_high & !below_low
    }

    /// Whether `pitch` lies from `low` to `high`.
    pub fn contains(&self, pitch: Pitch) -> bool {
        (self.low..=self.high).contains(&pitch)
    }
}

impl fmt::Display for PitchRange {
    /// `LOW..HIGH` by name, e.g. `C3..C6`: what [`FromStr`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.low, self.high)
    }
}

impl FromStr for PitchRange {
    type Err = MusicError;

    /// `LOW..HIGH` or `LOW..=HIGH`, both ends included, each end as
    /// [`parse_pitch`] reads it (`C3..C6`, `48..84`); low above high is
    /// refused rather than swapped, as it is more likely a typo.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (low, high) = text
            .split_once("..")
            .ok_or_else(|| MusicError::BadRange(text.to_owned()))?;
        let high = high.strip_prefix('=').unwrap_or(high);
        let (low, high) = (parse_pitch(low)?, parse_pitch(high)?);
        if low > high {
            return Err(MusicError::ReversedRange { low, high });
        }
        Ok(PitchRange { low, high })
    }
}

/// A major or minor key, as [`estimate_key`] hears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Pitch class 0..12, 0 = C (taken modulo 12).
    pub tonic: u8,
    pub minor: bool,
}

impl Key {
    /// The key's scale: major, or natural minor for a minor key.
    pub fn scale(&self) -> Scale {
        Scale {
            tonic: self.tonic % 12,
            mode: if self.minor { Mode::Minor } else { Mode::Major },
        }
    }

    /// The pitch classes music in this key uses without leaving it: a major
    /// key's major scale; a minor key's natural minor plus the raised 6th
    /// and 7th, because minor-key music routinely takes them from the
    /// melodic and harmonic forms (the leading tone above all), so counting
    /// them out of key would mark idiomatic minor music as wrong.
    pub fn pitch_classes_in_key(&self) -> u16 {
        let scale = self.scale().pitch_classes();
        if self.minor {
            scale | rotate_classes(1 << 9 | 1 << 11, self.tonic)
        } else {
            scale
        }
    }
}

impl fmt::Display for Key {
    /// `C major`, `F# minor`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quality = if self.minor { "minor" } else { "major" };
        write!(
            f,
            "{} {quality}",
            PITCH_CLASS_NAMES[usize::from(self.tonic % 12)]
        )
    }
}

/// Krumhansl–Kessler probe-tone ratings of the twelve pitch classes above a
/// major tonic (Krumhansl 1990).
const MAJOR_PROFILE: [f64; 12] = [
    6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88,
];
/// The same above a minor tonic.
const MINOR_PROFILE: [f64; 12] = [
    6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17,
];

/// The 24 keys' Krumhansl–Kessler profiles as unit vectors with zero mean,
/// majors on C..B then minors on C..B: the Pearson correlation of a
/// pitch-class profile with key `k` is its centred values' dot product with
/// template `k` over their norm.
pub fn key_templates() -> [[f32; 12]; 24] {
    let mut templates = [[0.0f32; 12]; 24];
    for (k, template) in templates.iter_mut().enumerate() {
        let profile = if k < 12 {
            &MAJOR_PROFILE
        } else {
            &MINOR_PROFILE
        };
        let tonic = k % 12;
        let mean = profile.iter().sum::<f64>() / 12.0;
        let centred: Vec<f64> = (0..12)
            .map(|class| profile[(class + 12 - tonic) % 12] - mean)
            .collect();
        let norm = centred.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (value, centred) in template.iter_mut().zip(&centred) {
            *value = (centred / norm) as f32;
        }
    }
    templates
}

/// Pearson correlation of `x` with `profile` turned to start on `tonic`, or
/// `None` when `x` does not vary (no key can be told from it).
fn key_correlation(x: &[f64; 12], profile: &[f64; 12], tonic: usize) -> Option<f64> {
    let y = |class: usize| profile[(class + 12 - tonic) % 12];
    let mean_x = x.iter().sum::<f64>() / 12.0;
    let mean_y = profile.iter().sum::<f64>() / 12.0;
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (class, &value) in x.iter().enumerate() {
        let (dx, dy) = (value - mean_x, y(class) - mean_y);
        xy += dx * dy;
        xx += dx * dx;
        yy += dy * dy;
    }
    (xx > 0.0 && yy > 0.0).then(|| xy / (xx * yy).sqrt())
}

/// The key whose Krumhansl–Kessler profile best matches (Pearson) how long
/// each pitch class sounds in `steps` (every sounding pitch in every step
/// counts, so long and doubled notes weigh more, as in Krumhansl–Schmuckler).
/// `None` when nothing sounds, or when every pitch class sounds equally long
/// (a chromatic cluster has no key). Ties go to the lower tonic, major first.
pub fn estimate_key(steps: &[u128]) -> Option<Key> {
    let mut durations = [0.0f64; 12];
    for &step in steps {
        for (duration, rows) in durations.iter_mut().zip(PITCH_CLASS_ROWS) {
            *duration += f64::from((step & rows).count_ones());
        }
    }
    let mut best: Option<(f64, Key)> = None;
    // A correlation is `None` only for flat durations, the same for every
    // key: then no key.
    for tonic in 0..12u8 {
        for (minor, profile) in [(false, &MAJOR_PROFILE), (true, &MINOR_PROFILE)] {
            let r = key_correlation(&durations, profile, usize::from(tonic))?;
            if best.is_none_or(|(best_r, _)| r > best_r) {
                best = Some((r, Key { tonic, minor }));
            }
        }
    }
    best.map(|(_, key)| key)
}

/// The notes that start in each step: pitches sounding there that did not
/// sound in the step before (`before` precedes `steps[0]`). The measures use
/// this one rule for real and generated music alike, so the two compare
/// fairly even though a generated continuation has no onsets of its own.
pub fn onsets(steps: &[u128], before: u128) -> Vec<u128> {
    let mut previous = before;
    steps
        .iter()
        .map(|&step| {
            let onset = step & !previous;
            previous = step;
            onset
        })
        .collect()
}

/// Whether two sounding pitch classes are a semitone apart (minor second,
/// major seventh, minor ninth ...): the harshest clash a continuation makes.
fn has_semitone_clash(step: u128) -> bool {
    let classes = step_pitch_classes(step);
    classes & rotate_classes(classes, 1) != 0
}

/// Sounding notes in a mask, counting only the roll's rows.
fn cells(mask: u128) -> u64 {
    let rows = PITCH_CLASS_ROWS.iter().fold(0, |all, rows| all | rows);
    u64::from((mask & rows).count_ones())
}

/// Onset notes whose pitch class is in `classes`, and all onset notes.
fn onsets_in_classes(onsets: &[u128], classes: u16) -> (u64, u64) {
    let in_classes = (0..12)
        .filter(|class| classes >> class & 1 == 1)
        .fold(0, |mask, class| mask | PITCH_CLASS_ROWS[class]);
    onsets.iter().fold((0, 0), |(inside, all), &onset| {
        (inside + cells(onset & in_classes), all + cells(onset))
    })
}

/// `part / whole`, or `None` when there is nothing to count.
fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Of the steps where anything sounds, the share holding a semitone clash:
/// two sounding pitches whose pitch classes are one semitone apart (C+C#,
/// B3+C5). `None` when nothing sounds.
pub fn clash_share(steps: &[u128]) -> Option<f64> {
    let mut tally = MusicTally::default();
    tally.count_clashes(steps);
    share(tally.clash_steps, tally.sounding_steps)
}

/// The share of note onsets whose pitch class is in
/// [`Key::pitch_classes_in_key`]. `None` without onsets.
pub fn in_key_share(onsets: &[u128], key: Key) -> Option<f64> {
    let (inside, all) = onsets_in_classes(onsets, key.pitch_classes_in_key());
    share(inside, all)
}

/// The share of note onsets that fall on a beat, `onsets[0]` being step
/// `first_step` of the file (the meter counts from the file's start).
/// `None` without onsets.
pub fn on_beat_share(onsets: &[u128], first_step: usize, meter: Meter) -> Option<f64> {
    let mut tally = MusicTally::default();
    tally.count_beats(onsets, first_step, meter);
    share(tally.on_beat_onsets, tally.onsets)
}

/// Mean sounding pitches per step. `None` for no steps.
pub fn notes_per_step(steps: &[u128]) -> Option<f64> {
    let sounding = steps.iter().map(|&step| cells(step)).sum();
    share(sounding, steps.len() as u64)
}

/// The measures of one continuation, or pooled over many; each `None` when
/// there was nothing to count.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct MusicFigures {
    /// See [`clash_share`].
    pub clash_share: Option<f64>,
    /// See [`in_key_share`]; the key is the context's.
    pub in_key_share: Option<f64>,
    /// See [`on_beat_share`].
    pub on_beat_share: Option<f64>,
    /// See [`notes_per_step`].
    pub notes_per_step: Option<f64>,
}

/// The measures of `steps`, a continuation of `context` (the music before
/// it) starting at step `first_step` of the file. The key comes from the
/// context alone, so a continuation that wanders off key is judged against
/// where it started; from `steps` when the context is silent. The first
/// onsets of `steps` are read against the context's last step, so a note
/// held over from the context is no new note.
pub fn music_figures(
    context: &[u128],
    steps: &[u128],
    first_step: usize,
    meter: Meter,
) -> MusicFigures {
    let mut tally = MusicTally::default();
    tally.add(context, steps, first_step, meter);
    tally.figures()
}

/// The counts behind [`MusicFigures`], summed over any number of
/// continuations, so pooled shares weigh every step and every onset the same
/// rather than every continuation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MusicTally {
    /// Steps with a semitone clash.
    clash_steps: u64,
    /// Steps where anything sounds.
    sounding_steps: u64,
    /// Onsets in the key of their context.
    in_key_onsets: u64,
    /// Onsets whose context had a key.
    keyed_onsets: u64,
    /// Onsets on a beat.
    on_beat_onsets: u64,
    /// All onsets.
    onsets: u64,
    /// Sounding pitches summed over steps.
    sounding_cells: u64,
    /// All steps.
    steps: u64,
}

impl MusicTally {
    /// Counts `steps`, a continuation of `context` starting at step
    /// `first_step`; see [`music_figures`].
    pub fn add(&mut self, context: &[u128], steps: &[u128], first_step: usize, meter: Meter) {
        let key = estimate_key(context).or_else(|| estimate_key(steps));
        let onsets = onsets(steps, context.last().copied().unwrap_or(0));
        self.count_clashes(steps);
        self.count_beats(&onsets, first_step, meter);
        if let Some(key) = key {
            let (inside, all) = onsets_in_classes(&onsets, key.pitch_classes_in_key());
            self.in_key_onsets += inside;
            self.keyed_onsets += all;
        }
        self.sounding_cells += steps.iter().map(|&step| cells(step)).sum::<u64>();
        self.steps += steps.len() as u64;
    }

    /// Adds another tally's counts, as when continuations are measured in
    /// parallel.
    pub fn merge(&mut self, other: &MusicTally) {
        self.clash_steps += other.clash_steps;
        self.sounding_steps += other.sounding_steps;
        self.in_key_onsets += other.in_key_onsets;
        self.keyed_onsets += other.keyed_onsets;
        self.on_beat_onsets += other.on_beat_onsets;
        self.onsets += other.onsets;
        self.sounding_cells += other.sounding_cells;
        self.steps += other.steps;
    }

    /// The pooled shares.
    pub fn figures(&self) -> MusicFigures {
        MusicFigures {
            clash_share: share(self.clash_steps, self.sounding_steps),
            in_key_share: share(self.in_key_onsets, self.keyed_onsets),
            on_beat_share: share(self.on_beat_onsets, self.onsets),
            notes_per_step: share(self.sounding_cells, self.steps),
        }
    }

    fn count_clashes(&mut self, steps: &[u128]) {
        for &step in steps {
            if cells(step) > 0 {
                self.sounding_steps += 1;
                self.clash_steps += u64::from(has_semitone_clash(step));
            }
        }
    }

    fn count_beats(&mut self, onsets: &[u128], first_step: usize, meter: Meter) {
        for (offset, &onset) in onsets.iter().enumerate() {
            let notes = cells(onset);
            self.onsets += notes;
            if meter.is_beat(first_step + offset) {
                self.on_beat_onsets += notes;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;
    use crate::meter::TimeSignature;

    /// The step mask of MIDI notes.
    fn chord(notes: &[u8]) -> u128 {
        notes.iter().fold(0, |mask, &note| {
            mask | 1u128 << Pitch::from_midi(note).map_or(0, Pitch::row)
        })
    }

    fn pitch(midi: u8) -> Pitch {
        Pitch::from_midi(midi).unwrap()
    }

    /// Each chord held for `len` steps.
    fn held(chords: &[&[u8]], len: usize) -> Vec<u128> {
        chords
            .iter()
            .flat_map(|notes| std::iter::repeat_n(chord(notes), len))
            .collect()
    }

    /// A C-major scale up from C4 then I–IV–V–I in close position.
    fn c_major_passage() -> Vec<u128> {
        let mut steps = held(&[&[60], &[62], &[64], &[65], &[67], &[69], &[71], &[72]], 2);
        steps.extend(held(
            &[
                &[48, 60, 64, 67],
                &[53, 60, 65, 69],
                &[55, 59, 62, 67],
                &[48, 60, 64, 67],
            ],
            4,
        ));
        steps
    }

    fn transposed(steps: &[u128], semitones: u32) -> Vec<u128> {
        steps.iter().map(|&step| step << semitones).collect()
    }

    #[test]
    fn modes_have_names_intervals_and_aliases() {
        assert_eq!(Mode::Major.mask(), 0b1010_1011_0101);
        assert_eq!(Mode::Chromatic.mask(), 0xFFF);
        assert_eq!(Mode::Blues.intervals(), &[0, 3, 5, 6, 7, 10]);
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse(), Ok(mode));
            assert_eq!(mode.to_string(), mode.name());
            assert_eq!(mode.mask().count_ones() as usize, mode.intervals().len());
            assert!(mode.intervals().windows(2).all(|w| w[0] < w[1]));
            assert_eq!(mode.intervals().first(), Some(&0));
        }
        let mut names: Vec<_> = Mode::ALL.map(Mode::name).into();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Mode::ALL.len());
        assert_eq!("Aeolian".parse(), Ok(Mode::Minor));
        assert_eq!("ionian".parse(), Ok(Mode::Major));
        assert_eq!("Harmonic_Minor".parse(), Ok(Mode::HarmonicMinor));
        assert_eq!(Mode::ALL.map(Mode::name)[2], "harmonic-minor");
        assert_eq!(Mode::WholeTone.name(), "whole-tone");
    }

    #[test]
    fn scales_parse_print_and_cover_rows() {
        let scale = |tonic, mode| Scale { tonic, mode };
        assert_eq!("C".parse(), Ok(scale(0, Mode::Major)));
        assert_eq!("c#:minor".parse(), Ok(scale(1, Mode::Minor)));
        assert_eq!("Db:dorian".parse(), Ok(scale(1, Mode::Dorian)));
        assert_eq!("Bb".parse(), Ok(scale(10, Mode::Major)));
        assert_eq!("E♭:aeolian".parse(), Ok(scale(3, Mode::Minor)));
        assert_eq!(
            "F♯:HARMONIC-MINOR".parse(),
            Ok(scale(6, Mode::HarmonicMinor))
        );
        assert_eq!("cb".parse(), Ok(scale(11, Mode::Major)));
        assert_eq!(scale(0, Mode::Major).to_string(), "C:major");
        assert_eq!(
            scale(6, Mode::HarmonicMinor).to_string(),
            "F#:harmonic-minor"
        );
        for tonic in 0..12 {
            for mode in Mode::ALL {
                let s = scale(tonic, mode);
                assert_eq!(s.to_string().parse(), Ok(s));
            }
        }

        assert!(matches!(
            "H:major".parse::<Scale>(),
            Err(MusicError::BadTonic(_))
        ));
        assert!(matches!(
            "C#4".parse::<Scale>(),
            Err(MusicError::BadTonic(_))
        ));
        assert!(matches!("".parse::<Scale>(), Err(MusicError::BadTonic(_))));
        let unknown = "C:mixed".parse::<Scale>().unwrap_err();
        assert_eq!(unknown, MusicError::UnknownMode("mixed".into()));
        let message = unknown.to_string();
        assert!(message.contains("\"mixed\"") && message.contains("whole-tone, chromatic"));
        assert!(
            MusicError::BadTonic("X".into())
                .to_string()
                .contains("harmonic-minor")
        );

        let c_major = scale(0, Mode::Major);
        assert_eq!(c_major.pitch_classes(), 0b1010_1011_0101);
        assert!(
            c_major.contains_midi(60) && !c_major.contains_midi(61) && c_major.contains_midi(71)
        );
        assert_eq!(
            scale(9, Mode::Minor).pitch_classes(),
            c_major.pitch_classes()
        );
        assert_eq!(scale(9, Mode::Minor).row_mask(), c_major.row_mask());
        // G major has F#, not F.
        let g = scale(7, Mode::Major);
        assert!(g.contains_midi(66) && !g.contains_midi(65));
        let rows = c_major.row_mask();
        assert!(rows >> pitch(60).row() & 1 == 1 && rows >> pitch(61).row() & 1 == 0);
        assert!(rows >> pitch(21).row() & 1 == 1); // A0
        assert_eq!(
            scale(4, Mode::Chromatic).row_mask(),
            (1u128 << PITCH_COUNT) - 1
        );
        for s in [c_major, g, scale(3, Mode::Blues)] {
            let expected = Pitch::all().filter(|p| s.contains_midi(p.midi()));
            assert_eq!(s.row_mask().count_ones() as usize, expected.count());
        }
    }

    #[test]
    fn pitches_parse_as_numbers_and_names() {
        assert_eq!(parse_pitch("60").map(Pitch::midi), Ok(60));
        assert_eq!(parse_pitch("C4").map(Pitch::midi), Ok(60));
        assert_eq!(parse_pitch(" c4 ").map(Pitch::midi), Ok(60));
        assert_eq!(parse_pitch("A0").map(Pitch::midi), Ok(21));
        assert_eq!(parse_pitch("Bb2").map(Pitch::midi), Ok(46));
        assert_eq!(parse_pitch("bB2").map(Pitch::midi), Ok(46));
        assert_eq!(parse_pitch("F#8").map(Pitch::midi), Ok(114));
        assert_eq!(parse_pitch("F#9").map(Pitch::midi), Ok(126));
        assert_eq!(parse_pitch("E♭5").map(Pitch::midi), Ok(75));
        assert_eq!(parse_pitch("Cb4").map(Pitch::midi), Ok(59));
        assert_eq!(parse_pitch("B#3").map(Pitch::midi), Ok(60));
        for p in Pitch::all() {
            assert_eq!(parse_pitch(&p.name()), Ok(p));
        }

        let below = parse_pitch("c#-1").unwrap_err();
        assert_eq!(
            below,
            MusicError::OutsideRoll {
                text: "c#-1".into(),
                midi: 1
            }
        );
        let message = below.to_string();
        assert!(message.contains("below") && message.contains("A0..F#9"));
        assert!(message.contains("MIDI 21..=126"));
        assert!(parse_pitch("G9").unwrap_err().to_string().contains("above"));
        assert!(matches!(
            parse_pitch("20"),
            Err(MusicError::OutsideRoll { midi: 20, .. })
        ));
        assert!(matches!(
            parse_pitch("127"),
            Err(MusicError::OutsideRoll { .. })
        ));
        assert!(matches!(
            parse_pitch("-4"),
            Err(MusicError::OutsideRoll { .. })
        ));
        assert!(matches!(
            parse_pitch("Cb-1"),
            Err(MusicError::OutsideRoll { midi: -1, .. })
        ));
        for bad in ["", "C", "H4", "C#x", "4C", "C99999999999999999999", "C#b4"] {
            assert_eq!(
                parse_pitch(bad),
                Err(MusicError::BadPitch(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn pitch_ranges_parse_and_cover_rows() {
        let range: PitchRange = "C3..C6".parse().unwrap();
        assert_eq!((range.low.midi(), range.high.midi()), (48, 84));
        assert_eq!("48..84".parse(), Ok(range));
        assert_eq!("48..=C6".parse(), Ok(range));
        assert_eq!(range.to_string(), "C3..C6");
        assert_eq!(range.row_mask().count_ones(), 37);
        assert_eq!(range.row_mask().trailing_zeros() as usize, range.low.row());
        assert!(range.contains(pitch(48)) && range.contains(pitch(84)));
        assert!(!range.contains(pitch(47)) && !range.contains(pitch(85)));
        let whole: PitchRange = "A0..F#9".parse().unwrap();
        assert_eq!(whole.row_mask(), (1u128 << PITCH_COUNT) - 1);
        let one: PitchRange = "C4..=C4".parse().unwrap();
        assert_eq!(one.row_mask(), 1u128 << pitch(60).row());

        assert_eq!(
            "C6..C3".parse::<PitchRange>(),
            Err(MusicError::ReversedRange {
                low: pitch(84),
                high: pitch(48)
            })
        );
        assert_eq!(
            "C3".parse::<PitchRange>(),
            Err(MusicError::BadRange("C3".into()))
        );
        assert!(matches!(
            "C3..X".parse::<PitchRange>(),
            Err(MusicError::BadPitch(_))
        ));
        assert!(matches!(
            "0..60".parse::<PitchRange>(),
            Err(MusicError::OutsideRoll { .. })
        ));
    }

    #[test]
    fn keys_print_and_list_their_pitch_classes() {
        let c = Key {
            tonic: 0,
            minor: false,
        };
        let a = Key {
            tonic: 9,
            minor: true,
        };
        assert_eq!(c.to_string(), "C major");
        assert_eq!(a.to_string(), "A minor");
        assert_eq!(
            Key {
                tonic: 6,
                minor: true
            }
            .to_string(),
            "F# minor"
        );
        assert_eq!(
            c.scale(),
            Scale {
                tonic: 0,
                mode: Mode::Major
            }
        );
        assert_eq!(
            a.scale(),
            Scale {
                tonic: 9,
                mode: Mode::Minor
            }
        );
        assert_eq!(c.pitch_classes_in_key(), Mode::Major.mask());
        // A minor: the white keys plus F# and G#.
        assert_eq!(
            a.pitch_classes_in_key(),
            Mode::Major.mask() | 1 << 6 | 1 << 8
        );
    }

    #[test]
    fn keys_are_estimated_from_durations() {
        assert_eq!(estimate_key(&[]), None);
        assert_eq!(estimate_key(&[0, 0]), None);
        assert_eq!(estimate_key(&[(1u128 << 12) - 1]), None); // every class once
        let passage = c_major_passage();
        assert_eq!(
            estimate_key(&passage),
            Some(Key {
                tonic: 0,
                minor: false
            })
        );
        for shift in 1..12 {
            assert_eq!(
                estimate_key(&transposed(&passage, shift)),
                Some(Key {
                    tonic: shift as u8,
                    minor: false
                }),
                "up {shift}"
            );
        }
        // A harmonic minor up from A3, then i–iv–V–i.
        let mut minor = held(&[&[57], &[59], &[60], &[62], &[64], &[65], &[68], &[69]], 2);
        minor.extend(held(
            &[
                &[45, 57, 60, 64],
                &[50, 57, 62, 65],
                &[52, 56, 59, 64],
                &[45, 57, 60, 64],
            ],
            4,
        ));
        assert_eq!(
            estimate_key(&minor),
            Some(Key {
                tonic: 9,
                minor: true
            })
        );
        assert_eq!(
            estimate_key(&transposed(&minor, 5)),
            Some(Key {
                tonic: 2,
                minor: true
            })
        );
        // Bits past the roll's rows are ignored.
        assert_eq!(estimate_key(&[1u128 << 120]), None);
    }

    #[test]
    fn onsets_start_where_a_pitch_starts_sounding() {
        let (c, e) = (chord(&[60]), chord(&[64]));
        let steps = [c, c, c | e, 0, c];
        assert_eq!(onsets(&steps, 0), vec![c, 0, e, 0, c]);
        assert_eq!(onsets(&steps, c | e), vec![0, 0, e, 0, c]);
        assert_eq!(onsets(&[], c), Vec::<u128>::new());
    }

    #[test]
    fn clashes_are_pitch_classes_a_semitone_apart() {
        assert_eq!(clash_share(&[]), None);
        assert_eq!(clash_share(&[0, 0]), None);
        assert_eq!(clash_share(&[chord(&[60, 61])]), Some(1.0)); // C+C#
        assert_eq!(clash_share(&[chord(&[60, 64])]), Some(0.0)); // C+E
        assert_eq!(clash_share(&[chord(&[59, 72])]), Some(1.0)); // B3+C5, major 7th
        assert_eq!(clash_share(&[chord(&[60, 73])]), Some(1.0)); // minor 9th
        assert_eq!(clash_share(&[chord(&[60, 62, 64])]), Some(0.0)); // whole tones
        assert_eq!(clash_share(&[chord(&[60, 72])]), Some(0.0)); // octave
        let steps = [chord(&[60, 64]), 0, chord(&[66, 67]), chord(&[48, 60, 67])];
        assert_eq!(clash_share(&steps), Some(1.0 / 3.0));
    }

    #[test]
    fn in_key_counts_onset_notes() {
        let c = Key {
            tonic: 0,
            minor: false,
        };
        let a = Key {
            tonic: 9,
            minor: true,
        };
        assert_eq!(in_key_share(&[], c), None);
        assert_eq!(in_key_share(&[0], c), None);
        let onsets = [chord(&[60, 66]), 0, chord(&[64])];
        assert_eq!(in_key_share(&onsets, c), Some(2.0 / 3.0));
        // G# is a leading tone in A minor, not in C major.
        let leading = [chord(&[68, 69])];
        assert_eq!(in_key_share(&leading, a), Some(1.0));
        assert_eq!(in_key_share(&leading, c), Some(0.5));
    }

    #[test]
    fn on_beat_counts_onset_notes_on_the_file_grid() {
        let meter = Meter::new(TimeSignature::COMMON, 4);
        let mut onsets = vec![0u128; 12];
        for step in [0, 4, 8] {
            onsets[step] = chord(&[60]);
        }
        assert_eq!(on_beat_share(&onsets, 0, meter), Some(1.0));
        assert_eq!(on_beat_share(&onsets, 2, meter), Some(0.0));
        assert_eq!(on_beat_share(&onsets, 4, meter), Some(1.0));
        onsets[2] = chord(&[62]);
        onsets[3] = chord(&[64, 67]);
        assert_eq!(on_beat_share(&onsets, 0, meter), Some(0.5));
        assert_eq!(on_beat_share(&[0, 0], 0, meter), None);
    }

    #[test]
    fn notes_per_step_is_the_mean_polyphony() {
        assert_eq!(notes_per_step(&[]), None);
        assert_eq!(notes_per_step(&[0]), Some(0.0));
        assert_eq!(
            notes_per_step(&[chord(&[60, 64]), 0, chord(&[67])]),
            Some(1.0)
        );
        assert_eq!(notes_per_step(&[1u128 << 127]), Some(0.0));
    }

    #[test]
    fn figures_judge_a_continuation_by_its_context() {
        let meter = Meter::new(TimeSignature::COMMON, 4);
        let context = c_major_passage(); // 48 steps, ends on a C chord
        let held_c = *context.last().unwrap_or(&0);
        // The held chord goes on (no onsets), then F# on a beat, C#+D off it.
        let steps = [held_c, chord(&[66]), chord(&[61, 62]), 0];
        let figures = music_figures(&context, &steps, 47, meter);
        assert_eq!(
            figures,
            MusicFigures {
                clash_share: Some(1.0 / 3.0),
                in_key_share: Some(1.0 / 3.0),
                on_beat_share: Some(1.0 / 3.0),
                notes_per_step: Some(7.0 / 4.0),
            }
        );
        // From a silent start every note of the held chord is an onset, and
        // the key comes from the continuation itself.
        let alone = music_figures(&[0], &steps, 0, meter);
        assert_eq!(alone.on_beat_share, Some(4.0 / 7.0));
        assert_eq!(music_figures(&[], &[], 0, meter), MusicFigures::default());
    }

    #[test]
    fn tallies_pool_every_onset_alike() {
        let meter = Meter::new(TimeSignature::COMMON, 4);
        let context = c_major_passage();
        let one_out = [chord(&[61])]; // one onset, out of key
        let three_in = [chord(&[60, 64, 67])]; // three onsets, in key
        let mut tally = MusicTally::default();
        tally.add(&context, &one_out, 0, meter);
        tally.add(&[0], &three_in, 0, meter);
        let figures = tally.figures();
        assert_eq!(figures.in_key_share, Some(0.75)); // not the mean 0.5
        assert_eq!(figures.notes_per_step, Some(2.0));
        let mut split = MusicTally::default();
        split.add(&context, &one_out, 0, meter);
        let mut other = MusicTally::default();
        other.add(&[0], &three_in, 0, meter);
        split.merge(&other);
        assert_eq!(split, tally);
    }
}
