//! Training data: piano rolls from a folder of MIDI and midi2img PNG files,
//! cut on the fly into 9-step windows (the article's network) or into longer
//! stretches, optionally transposed (recurrent networks).
//!
//! Rolls are kept as one 128-bit mask per step, and a window or stretch is
//! only a few numbers until a batch is filled, so memory grows with the total
//! number of steps, not with windows x 9 x 106 floats. The validation split is
//! by file, so no validation window overlaps a training one.

use std::path::{Path, PathBuf};

use rand::Rng as _;
use rand::seq::SliceRandom as _;
use rayon::prelude::*;
use serde::Serialize;

use crate::files::{LoadOptions, find_roll_files, load_roll};
use crate::meter::{METER_FEATURES, Meter};
use crate::model::WINDOW_STEPS;
use crate::rng::{seeded, seeded_for};
use crate::roll::{PITCH_COUNT, mask_to_floats};

pub use crate::record::Preset;

impl Preset {
    /// Steps from a window's first step to its target.
    pub fn target_offset(self) -> usize {
        match self {
            Self::Forward => WINDOW_STEPS,
            Self::Article => WINDOW_STEPS + 1,
        }
    }

    fn reverses_time(self) -> bool {
        self == Self::Article
    }
}

/// Why a dataset could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    #[error("{} is not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error("no MIDI or PNG file under {} has the {needed} steps one window needs", dir.display())]
    NoWindows { dir: PathBuf, needed: usize },
    #[error("validation fraction {0} is outside 0..1")]
    BadValidationFraction(f64),
}

/// One song's roll, as sounding masks in training order, and its meter.
#[derive(Clone, Debug)]
struct Song {
    steps: Vec<u128>,
    meter: Meter,
}

/// Files that could not be read, with the reason.
type FailedFiles = Vec<(PathBuf, String)>;

/// Reads every MIDI/PNG file under `dir` (in parallel): the songs, and the
/// files that could not be read with the reason.
fn load_folder(
    dir: &Path,
    options: &LoadOptions,
) -> Result<(Vec<SongRoll>, FailedFiles), DatasetError> {
    if !dir.is_dir() {
        return Err(DatasetError::NotAFolder(dir.to_owned()));
    }
    let found = find_roll_files(dir, &|_| false);
    let loaded: Vec<_> = found
        .rolls
        .par_iter()
        .map(|(path, _)| {
            let song = load_roll(path, options).map(|loaded| SongRoll {
                steps: loaded.roll.sounding_masks().to_vec(),
                meter: loaded.roll.meta().meter(),
            });
            (path.clone(), song)
        })
        .collect();
    let mut files_failed = found.unreadable;
    let mut songs = Vec::with_capacity(loaded.len());
    for (path, result) in loaded {
        match result {
            Ok(song) => songs.push(song),
            Err(error) => files_failed.push((path, error.to_string())),
        }
    }
    Ok((songs, files_failed))
}

/// A window: the song and its first step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    song: u32,
    start: u32,
}

/// What building the dataset found, for the user.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DatasetReport {
    pub files_used: usize,
    pub files_validation: usize,
    /// Files that could not be read, with the reason.
    pub files_failed: Vec<(PathBuf, String)>,
    /// Files shorter than one window plus its target.
    pub files_too_short: usize,
    pub steps: usize,
    pub windows_train: usize,
    pub windows_validation: usize,
}

/// Windows of a folder of rolls, split into training and validation by file.
#[derive(Clone, Debug)]
pub struct Dataset {
    preset: Preset,
    songs: Vec<Song>,
    /// Indices into `songs`, sorted.
    train_songs: Vec<usize>,
    validation_songs: Vec<usize>,
    train: Vec<Window>,
    validation: Vec<Window>,
    report: DatasetReport,
}

/// Which files validate: a share of them drawn at random, or the songs given
/// last (an official split's validation folder).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Split {
    /// This share of the files, drawn with this seed.
    Fraction { share: f64, rng_seed: u64 },
    /// The last `count` songs.
    Last(usize),
}

/// One song as the dataset takes it: its sounding masks and its meter.
#[derive(Clone, Debug, PartialEq)]
pub struct SongRoll {
    pub steps: Vec<u128>,
    pub meter: Meter,
}

impl SongRoll {
    /// Steps with the default meter (4/4 on sixteenths).
    pub fn plain(steps: Vec<u128>) -> Self {
        Self {
            steps,
            meter: Meter::default(),
        }
    }
}

impl Dataset {
    /// Reads every MIDI/PNG file under `dir` (in parallel) and splits the
    /// files `validation_fraction` : rest, shuffled with `rng_seed`.
    pub fn from_folder(
        dir: &Path,
        options: &LoadOptions,
        preset: Preset,
        validation_fraction: f64,
        rng_seed: u64,
    ) -> Result<Self, DatasetError> {
        let (songs, files_failed) = load_folder(dir, options)?;
        let split = Split::Fraction {
            share: validation_fraction,
            rng_seed,
        };
        Self::from_loaded(dir, songs, files_failed, preset, split)
    }

    /// Trains on the files under `train` and validates on those under
    /// `validation`: a benchmark's own split.
    pub fn from_folders(
        train: &Path,
        validation: &Path,
        options: &LoadOptions,
        preset: Preset,
    ) -> Result<Self, DatasetError> {
        let (mut songs, mut files_failed) = load_folder(train, options)?;
        let (validation_songs, validation_failed) = load_folder(validation, options)?;
        let count = validation_songs.len();
        songs.extend(validation_songs);
        files_failed.extend(validation_failed);
        Self::from_loaded(train, songs, files_failed, preset, Split::Last(count))
    }

    fn from_loaded(
        dir: &Path,
        songs: Vec<SongRoll>,
        files_failed: FailedFiles,
        preset: Preset,
        split: Split,
    ) -> Result<Self, DatasetError> {
        let mut dataset = Self::from_songs(songs, preset, split).map_err(|error| match error {
            DatasetError::NoWindows { needed, .. } => DatasetError::NoWindows {
                dir: dir.to_owned(),
                needed,
            },
            other => other,
        })?;
        dataset.report.files_failed = files_failed;
        Ok(dataset)
    }

    /// Builds the dataset from rolls given as sounding masks (one per step),
    /// all in the default meter.
    pub fn from_rolls(
        rolls: Vec<Vec<u128>>,
        preset: Preset,
        validation_fraction: f64,
        rng_seed: u64,
    ) -> Result<Self, DatasetError> {
        let split = Split::Fraction {
            share: validation_fraction,
            rng_seed,
        };
        Self::from_songs(
            rolls.into_iter().map(SongRoll::plain).collect(),
            preset,
            split,
        )
    }

    /// Builds the dataset from songs, split as `split` says.
    pub fn from_songs(
        rolls: Vec<SongRoll>,
        preset: Preset,
        split: Split,
    ) -> Result<Self, DatasetError> {
        if let Split::Fraction { share, .. } = split
            && !(0.0..1.0).contains(&share)
        {
            return Err(DatasetError::BadValidationFraction(share));
        }
        let needed = preset.target_offset() + 1;
        let mut report = DatasetReport::default();
        let mut songs = Vec::with_capacity(rolls.len());
        let mut validation_given = 0;
        let given_from = match split {
            Split::Last(count) => rolls.len().saturating_sub(count),
            Split::Fraction { .. } => usize::MAX,
        };
        for (index, SongRoll { mut steps, meter }) in rolls.into_iter().enumerate() {
            if steps.len() < needed {
                report.files_too_short += 1;
                continue;
            }
            if preset.reverses_time() {
                steps.reverse();
            }
            report.steps += steps.len();
            if index >= given_from {
                validation_given += 1;
            }
            songs.push(Song { steps, meter });
        }
        if songs.is_empty() {
            return Err(DatasetError::NoWindows {
                dir: PathBuf::new(),
                needed,
            });
        }
        let (mut validation_songs, mut train_songs): (Vec<usize>, Vec<usize>) = match split {
            Split::Fraction { share, rng_seed } => {
                let mut order: Vec<usize> = (0..songs.len()).collect();
                order.shuffle(&mut seeded(rng_seed));
                // At least one file for validation when asked, but never all of them.
                let validation_files = if share > 0.0 && songs.len() > 1 {
                    ((songs.len() as f64 * share).round() as usize).clamp(1, songs.len() - 1)
                } else {
                    0
                };
                (
                    order[..validation_files].to_vec(),
                    order[validation_files..].to_vec(),
                )
            }
            Split::Last(_) => {
                let first = songs.len() - validation_given;
                ((first..songs.len()).collect(), (0..first).collect())
            }
        };
        let windows_of = |song: usize| {
            let count = songs[song].steps.len() + 1 - needed;
            (0..count).map(move |start| Window {
                song: song as u32,
                start: start as u32,
            })
        };
        validation_songs.sort_unstable();
        train_songs.sort_unstable();
        let validation: Vec<Window> = validation_songs
            .iter()
            .flat_map(|&song| windows_of(song))
            .collect();
        let train: Vec<Window> = train_songs
            .iter()
            .flat_map(|&song| windows_of(song))
            .collect();
        report.files_used = songs.len();
        report.files_validation = validation_songs.len();
        report.windows_train = train.len();
        report.windows_validation = validation.len();
        Ok(Self {
            preset,
            songs,
            train_songs,
            validation_songs,
            train,
            validation,
            report,
        })
    }

    pub fn preset(&self) -> Preset {
        self.preset
    }

    pub fn report(&self) -> &DatasetReport {
        &self.report
    }

    /// The training windows in the order of epoch `epoch`: shuffled with a
    /// generator seeded from `rng_seed` and the epoch, so a resumed run sees
    /// the same order it would have seen.
    pub fn train_order(&self, rng_seed: u64, epoch: usize) -> Vec<Window> {
        let mut order = self.train.clone();
        order.shuffle(&mut seeded_for(rng_seed, &[epoch as u64]));
        order
    }

    pub fn validation_windows(&self) -> &[Window] {
        &self.validation
    }

    /// The same songs with every one held out, for scoring a model on music
    /// it was not trained on.
    pub fn all_held_out(mut self) -> Self {
        self.validation_songs = (0..self.songs.len()).collect();
        self.train_songs.clear();
        self.validation.append(&mut self.train);
        self.validation.sort_unstable_by_key(|w| (w.song, w.start));
        self.report.files_validation = self.songs.len();
        self.report.windows_validation = self.validation.len();
        self.report.windows_train = 0;
        self
    }

    /// The steps (in training order: reversed for the article preset) of the
    /// training songs, or of the validation songs.
    pub fn songs(&self, validation: bool) -> impl Iterator<Item = &[u128]> {
        let part = if validation {
            &self.validation_songs
        } else {
            &self.train_songs
        };
        part.iter().map(|&song| self.songs[song].steps.as_slice())
    }

    /// A window's song's meter and the index of the step after its 9 input
    /// steps (what generation from it continues at).
    pub fn window_place(&self, window: Window) -> (Meter, usize) {
        let song = &self.songs[window.song as usize];
        (song.meter, window.start as usize + WINDOW_STEPS)
    }

    /// The steps of a window's song.
    pub fn window_song(&self, window: Window) -> &[u128] {
        &self.songs[window.song as usize].steps
    }

    /// A window's 9 input steps and its target step, as bitmasks.
    pub fn window_masks(&self, window: Window) -> ([u128; WINDOW_STEPS], u128) {
        let steps = &self.songs[window.song as usize].steps;
        let start = window.start as usize;
        let mut input = [0u128; WINDOW_STEPS];
        input.copy_from_slice(&steps[start..start + WINDOW_STEPS]);
        (input, steps[start + self.preset.target_offset()])
    }

    /// Writes `windows` as model input `[n, 9, 106]` and targets `[n, 106]`,
    /// 0/1 floats, replacing what `inputs` and `targets` held.
    pub fn fill_batch(&self, windows: &[Window], inputs: &mut Vec<f32>, targets: &mut Vec<f32>) {
        inputs.clear();
        targets.clear();
        let offset = self.preset.target_offset();
        for window in windows {
            let steps = &self.songs[window.song as usize].steps;
            let start = window.start as usize;
            for &mask in &steps[start..start + WINDOW_STEPS] {
                push_mask(mask, inputs);
            }
            push_mask(steps[start + offset], targets);
        }
    }
}

/// A stretch of one song for sequence training: the `length + 1` steps that
/// end at `end` (exclusive), silence before the song's start and after its
/// end. The first `length` are the input, the last `length` the targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stretch {
    song: u32,
    end: u32,
    /// Semitones to move the stretch up (down when negative).
    pub transpose: i8,
}

impl Dataset {
    /// Stretches of `length + 1` steps covering every training song (or
    /// validation song) at a stride of `length / 2`, the last one ending at
    /// the song's end. The first begins one step before its song, so the
    /// song's first step is a target too, predicted from silence and the
    /// initial state (as `cadenza eval` and the benchmark score it). A song
    /// shorter than a stretch gives one that runs on in silence past its
    /// end, steps no loss counts ([`fill_target_weights`](Self::fill_target_weights)):
    /// its first step is still predicted from the initial state, as whole
    /// songs are scored. None are transposed.
    pub fn stretches(&self, validation: bool, length: usize) -> Vec<Stretch> {
        let length = length.max(1);
        let songs = if validation {
            &self.validation_songs
        } else {
            &self.train_songs
        };
        let stride = (length / 2).max(1);
        let mut stretches = Vec::new();
        for &song in songs {
            let steps = self.songs[song].steps.len();
            let mut end = length;
            loop {
                stretches.push(Stretch {
                    song: song as u32,
                    end: end as u32,
                    transpose: 0,
                });
                if end >= steps {
                    break;
                }
                end = (end + stride).min(steps);
            }
        }
        stretches
    }

    /// The training stretches of epoch `epoch`, shuffled as
    /// [`train_order`](Self::train_order) shuffles windows, each moved by a
    /// random interval of up to `max_transpose` semitones that keeps its
    /// notes inside the roll.
    pub fn stretch_order(
        &self,
        rng_seed: u64,
        epoch: usize,
        length: usize,
        max_transpose: u8,
    ) -> Vec<Stretch> {
        self.shuffled(
            self.stretches(false, length),
            rng_seed,
            epoch,
            length,
            max_transpose,
        )
    }

    fn shuffled(
        &self,
        mut order: Vec<Stretch>,
        rng_seed: u64,
        epoch: usize,
        length: usize,
        max_transpose: u8,
    ) -> Vec<Stretch> {
        let mut rng = seeded_for(rng_seed, &[epoch as u64]);
        order.shuffle(&mut rng);
        if max_transpose > 0 {
            let limit = i32::from(max_transpose);
            for stretch in &mut order {
                let used = self
                    .stretch_steps(*stretch, length)
                    .fold(0u128, |all, mask| all | mask);
                if used == 0 {
                    continue;
                }
                let lowest = used.trailing_zeros() as i32;
                let highest = 127 - used.leading_zeros() as i32;
                let down = lowest.min(limit);
                let up = (PITCH_COUNT as i32 - 1 - highest).clamp(0, limit);
                stretch.transpose = rng.random_range(-down..=up) as i8;
            }
        }
        order
    }

    /// Writes the meter features of every target step of `stretches`,
    /// `[n, length, METER_FEATURES]`, each step counted from its song's start
    /// (the silence before and after a song too, as if the bars went on).
    pub fn fill_meter(&self, stretches: &[Stretch], length: usize, out: &mut Vec<f32>) {
        out.clear();
        out.resize(stretches.len() * length * METER_FEATURES, 0.0);
        let mut rows = out.chunks_exact_mut(METER_FEATURES);
        for stretch in stretches {
            let meter = self.songs[stretch.song as usize].meter;
            let bar = meter.steps_per_bar() as isize;
            let first = stretch.end as isize - length as isize;
            for t in 0..length as isize {
                if let Some(row) = rows.next() {
                    meter.features((first + t).rem_euclid(bar) as usize, row);
                }
            }
        }
    }

    /// The meter of each training (or validation) song, in the order of
    /// [`songs`](Self::songs).
    pub fn meters(&self, validation: bool) -> impl Iterator<Item = Meter> + '_ {
        let part = if validation {
            &self.validation_songs
        } else {
            &self.train_songs
        };
        part.iter().map(|&song| self.songs[song].meter)
    }

    /// The `length + 1` steps of a stretch, untransposed.
    fn stretch_steps(&self, stretch: Stretch, length: usize) -> impl Iterator<Item = u128> + '_ {
        let steps = &self.songs[stretch.song as usize].steps;
        let end = stretch.end as usize;
        let start = end as isize - (length as isize + 1);
        (start..end as isize).map(move |t| {
            usize::try_from(t)
                .ok()
                .and_then(|t| steps.get(t).copied())
                .unwrap_or(0)
        })
    }

    /// Writes how much each target step of `stretches` counts in the loss,
    /// `[n, length]`: 1 for a step of the song, 0 for the silence after its
    /// end. Leaves `out` empty when every step counts, as almost always, so
    /// the losses take their unweighted path.
    pub fn fill_target_weights(&self, stretches: &[Stretch], length: usize, out: &mut Vec<f32>) {
        out.clear();
        let past_end = |stretch: &Stretch| {
            stretch.end as usize > self.songs[stretch.song as usize].steps.len()
        };
        if !stretches.iter().any(past_end) {
            return;
        }
        for stretch in stretches {
            let steps = self.songs[stretch.song as usize].steps.len();
            // Target t is song step end - length + t.
            let first = stretch.end as isize - length as isize;
            out.extend(
                (0..length as isize).map(|t| f32::from(u8::from(first + t < steps as isize))),
            );
        }
    }

    /// Writes `stretches` as model input `[n, length, 106]` and targets (the
    /// same steps one later) `[n, length, 106]`, 0/1 floats.
    pub fn fill_stretches(
        &self,
        stretches: &[Stretch],
        length: usize,
        inputs: &mut Vec<f32>,
        targets: &mut Vec<f32>,
    ) {
        inputs.clear();
        targets.clear();
        for &stretch in stretches {
            let shift = i32::from(stretch.transpose);
            let moved = |mask: u128| {
                if shift >= 0 {
                    mask << shift
                } else {
                    mask >> -shift
                }
            };
            for (t, mask) in self.stretch_steps(stretch, length).enumerate() {
                let mask = moved(mask);
                if t < length {
                    push_mask(mask, inputs);
                }
                if t > 0 {
                    push_mask(mask, targets);
                }
            }
        }
    }
}

fn push_mask(mask: u128, out: &mut Vec<f32>) {
    let start = out.len();
    out.resize(start + PITCH_COUNT, 0.0);
    mask_to_floats(mask, &mut out[start..]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;

    /// A roll whose step `s` sounds only pitch `s % 106`, so windows can be
    /// recognised by their values.
    fn ramp(steps: usize) -> Vec<u128> {
        (0..steps).map(|s| 1u128 << (s % PITCH_COUNT)).collect()
    }

    fn hot_pitch(row: &[f32]) -> usize {
        row.iter().position(|&v| v == 1.0).unwrap()
    }

    #[test]
    fn forward_windows_predict_the_next_step() {
        let data = Dataset::from_rolls(vec![ramp(20)], Preset::Forward, 0.0, 0).unwrap();
        assert_eq!(data.report().windows_train, 20 - 9);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let window = data.train_order(0, 0)[0];
        data.fill_batch(&[window], &mut x, &mut y);
        assert_eq!(x.len(), 9 * PITCH_COUNT);
        let first = hot_pitch(&x[..PITCH_COUNT]);
        assert_eq!(hot_pitch(&x[8 * PITCH_COUNT..]), first + 8);
        assert_eq!(hot_pitch(&y), first + 9);
    }

    #[test]
    fn article_windows_run_backwards_and_skip_a_step() {
        // 106 steps give the article's 96 windows per song.
        let data = Dataset::from_rolls(vec![ramp(106)], Preset::Article, 0.0, 0).unwrap();
        assert_eq!(data.report().windows_train, 96);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        data.fill_batch(&[Window { song: 0, start: 0 }], &mut x, &mut y);
        assert_eq!(hot_pitch(&x[..PITCH_COUNT]), 105);
        assert_eq!(hot_pitch(&x[8 * PITCH_COUNT..]), 97);
        assert_eq!(hot_pitch(&y), 95);
    }

    #[test]
    fn validation_is_split_by_file_and_reproducible() {
        let rolls: Vec<_> = (0..10).map(|i| ramp(30 + i)).collect();
        let a = Dataset::from_rolls(rolls.clone(), Preset::Forward, 0.2, 7).unwrap();
        let b = Dataset::from_rolls(rolls, Preset::Forward, 0.2, 7).unwrap();
        assert_eq!(a.report().files_validation, 2);
        assert_eq!(a.validation_windows(), b.validation_windows());
        let val_songs: Vec<u32> = a.validation.iter().map(|w| w.song).collect();
        assert!(a.train.iter().all(|w| !val_songs.contains(&w.song)));
        assert_eq!(a.train_order(3, 1), b.train_order(3, 1));
        assert_ne!(a.train_order(3, 1), a.train_order(3, 2));
    }

    #[test]
    fn short_rolls_are_counted_and_an_empty_set_is_an_error() {
        let data = Dataset::from_rolls(vec![ramp(5), ramp(12)], Preset::Forward, 0.0, 0).unwrap();
        assert_eq!(data.report().files_too_short, 1);
        assert!(matches!(
            Dataset::from_rolls(vec![ramp(9)], Preset::Forward, 0.0, 0),
            Err(DatasetError::NoWindows { needed: 10, .. })
        ));
        assert!(Dataset::from_rolls(vec![ramp(12)], Preset::Forward, 1.0, 0).is_err());
    }
}
