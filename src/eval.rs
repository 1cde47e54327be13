//! Held-out evaluation: how well a model predicts the next step from real
//! music (teacher forcing), and what its own continuations look like next to
//! the data (free running).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::checkpoint::CheckpointHeader;
use crate::dataset::Window;
use crate::dataset::{Dataset, DatasetError, Preset};
use crate::files::LoadOptions;
use crate::generate::{
    After, CONTEXT_STEPS, Constraints, Continuation, GenerateError, GenerateOptions, Placement,
    Predictor, Rule, Runner, compose,
};
use crate::meter::Meter;
use crate::model::{Network, WINDOW_STEPS};
use crate::music::{MusicFigures, MusicTally};
use crate::roll::{PITCH_COUNT, mask_bits};

/// Length of the stretches checked for verbatim copies of the training data.
pub const COPY_STRETCH: usize = 16;
/// Probability bins for finding the best threshold.
const BINS: usize = 1000;

/// Precision, recall and F1 over all (step, pitch) cells at one threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FrameScores {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// TP / (TP + FP + FN), the frame-level accuracy of Boulanger-Lewandowski
    /// et al. (2012).
    pub accuracy: f64,
}

impl FrameScores {
    fn new(threshold: f64, tp: u64, fp: u64, fn_: u64) -> Self {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Self {
            threshold,
            precision,
            recall,
            f1,
            accuracy: ratio(tp, tp + fp + fn_),
        }
    }
}

/// Next-step prediction from real windows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TeacherForced {
    pub windows: usize,
    /// Binary cross-entropy summed over the 106 pitches, in nats per step.
    pub bce_nats_per_step: f64,
    /// Mean squared error per cell.
    pub mse: f64,
    pub at_half: FrameScores,
    /// At the threshold (0.001 steps) with the highest F1.
    pub best: FrameScores,
}

/// The model's own continuations against the held-out music.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FreeRunning {
    /// Seed windows used (every `stride` steps of the held-out songs).
    pub seeds: usize,
    pub steps: usize,
    /// Sounding notes per step in the held-out songs.
    pub data_notes_per_step: f64,
    /// Sounding notes per step of the continuations, by generated step: the
    /// "vanish curve".
    pub vanish_curve: Vec<f64>,
    /// The lowest and highest point of the vanish curve as a share of the
    /// data's density: both within 0.5..1.5 means the continuations neither
    /// fade nor swell by more than half at any step.
    pub curve_ratio_range: (f64, f64),
    pub notes_per_step: f64,
    /// `notes_per_step / data_notes_per_step`.
    pub density_ratio: f64,
    /// Generated steps with no note at all.
    pub empty_step_rate: f64,
    /// Notes per non-empty generated step.
    pub polyphony: f64,
    pub data_polyphony: f64,
    /// Total-variation distance (0..1) between the pitch-class histograms of
    /// the generated and the held-out notes.
    pub pitch_class_distance: f64,
    /// Mean length of a generated note in steps (runs cut by the end count).
    pub mean_note_length: f64,
    pub data_mean_note_length: f64,
    /// Share of generated 16-step stretches with notes that occur verbatim in
    /// the training songs (none when the training songs are not at hand).
    pub copied_stretch_rate: Option<f64>,
    /// How the continuations sound: semitone clashes, notes in the key of
    /// the music before, onsets on a beat, density.
    pub music: MusicFigures,
    /// The same figures of the real steps that follow each seed window.
    pub data_music: MusicFigures,
}

/// Everything `cadenza eval` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub teacher_forced: TeacherForced,
    /// Whole held-out songs scored from their first step.
    pub likelihood: Likelihood,
    /// Real gaps scored from both sides, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<FillLikelihood>,
    pub free_running: FreeRunning,
}

/// Teacher-forced scores of `predictor` on the dataset's validation windows.
pub fn teacher_forced(
    predictor: &mut dyn Predictor,
    data: &Dataset,
) -> Result<TeacherForced, GenerateError> {
    // Each held-out song is fed step by step from its first window on, so a
    // recurrent network keeps its state; a window network sees the same
    // windows as the dataset's. The window ending before step t predicts
    // step t - WINDOW_STEPS + offset.
    let offset = data.preset().target_offset();
    let songs: Vec<(&[u128], Meter)> = data
        .songs(true)
        .zip(data.meters(true))
        .filter(|(song, _)| song.len() > offset)
        .collect();
    // Per probability bin: cells that were on and cells that were off.
    let mut on = vec![0u64; BINS + 1];
    let mut off = vec![0u64; BINS + 1];
    let (mut bce, mut squared) = (0.0f64, 0.0f64);
    let mut windows = 0usize;
    let mut probabilities = Vec::new();
    let (mut column, mut truth) = (Vec::new(), Vec::new());
    for group in same_meter_groups(&songs, 64) {
        let seeds: Vec<&[u128]> = group
            .iter()
            .map(|(song, _)| &song[..WINDOW_STEPS])
            .collect();
        predictor.place(&Placement {
            meter: group[0].1,
            first_step: WINDOW_STEPS,
            after: None,
        })?;
        predictor.start(&seeds)?;
        let longest = group.iter().map(|(song, _)| song.len()).max().unwrap_or(0);
        for t in WINDOW_STEPS..longest {
            let target_at = t - WINDOW_STEPS + offset;
            if target_at >= longest {
                break;
            }
            truth.clear();
            truth.extend(
                group
                    .iter()
                    .map(|(song, _)| song.get(target_at).copied().unwrap_or(0)),
            );
            predictor.conditionals(&truth, &mut probabilities)?;
            for ((song, _), row) in group.iter().zip(probabilities.chunks_exact(PITCH_COUNT)) {
                let Some(&target) = song.get(target_at) else {
                    continue;
                };
                windows += 1;
                for (pitch, &p) in row.iter().enumerate() {
                    let p = f64::from(p).clamp(1e-7, 1.0 - 1e-7);
                    let sounding = target >> pitch & 1 == 1;
                    let bin = (p * BINS as f64) as usize;
                    if sounding {
                        bce -= p.ln();
                        squared += (1.0 - p) * (1.0 - p);
                        on[bin] += 1;
                    } else {
                        bce -= (1.0 - p).ln();
                        squared += p * p;
                        off[bin] += 1;
                    }
                }
            }
            column.clear();
            column.extend(
                group
                    .iter()
                    .map(|(song, _)| song.get(t).copied().unwrap_or(0)),
            );
            predictor.advance(&column)?;
        }
    }
    let count = windows.max(1) as f64;
    // Cells at or above bin b count as predicted on at threshold b / BINS.
    let total_on: u64 = on.iter().sum();
    let scores_at = |bin: usize| {
        let tp: u64 = on[bin..].iter().sum();
        let fp: u64 = off[bin..].iter().sum();
        FrameScores::new(bin as f64 / BINS as f64, tp, fp, total_on - tp)
    };
    let best = (1..BINS)
        .map(scores_at)
        .max_by(|a, b| a.f1.total_cmp(&b.f1))
        .unwrap_or_else(|| scores_at(BINS / 2));
    Ok(TeacherForced {
        windows,
        bce_nats_per_step: bce / count,
        mse: squared / (count * PITCH_COUNT as f64),
        at_half: scores_at(BINS / 2),
        best,
    })
}

/// Consecutive runs of `songs` that share a meter, at most `most` long:
/// sequences a predictor runs together must agree on where the beat is.
fn same_meter_groups<'a, 'b>(
    songs: &'b [(&'a [u128], Meter)],
    most: usize,
) -> impl Iterator<Item = &'b [(&'a [u128], Meter)]> {
    songs
        .chunk_by(|a, b| a.1 == b.1)
        .flat_map(move |run| run.chunks(most.max(1)))
}

/// Lowest roll row the benchmark scores (MIDI 21, A0) and how many rows
/// (the 88 piano keys, MIDI 21..=108).
const BENCHMARK_ROWS: std::ops::Range<usize> = 0..88;

/// How likely a model finds real music, step by step, by the chain rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Likelihood {
    /// Steps scored.
    pub frames: usize,
    /// Negative log-likelihood of a whole step (all 106 rows), nats per step.
    pub nll_per_step: f64,
    /// The benchmark's figure: the same over the 88 piano keys (MIDI
    /// 21..=108), sounding and silent alike, pooled over every frame
    /// including each song's first (predicted from silence and the initial
    /// state). The composer decides the rows from low to high, so the rows
    /// above the piano come after these in its chain: this is the exact
    /// likelihood of the 88 keys, not one conditioned on the rows above.
    pub frame_nll_88: f64,
}

/// Adds the negative log-likelihood of each `truth` step under the
/// conditional probabilities `probabilities` to `(all rows, piano rows)`.
fn add_nll(truth: &[u128], probabilities: &[f32], sums: &mut (f64, f64)) {
    for (&target, row) in truth.iter().zip(probabilities.chunks_exact(PITCH_COUNT)) {
        for (pitch, &p) in row.iter().enumerate() {
            let p = f64::from(p).clamp(1e-7, 1.0 - 1e-7);
            let nll = if target >> pitch & 1 == 1 {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            };
            sums.0 += nll;
            if BENCHMARK_ROWS.contains(&pitch) {
                sums.1 += nll;
            }
        }
    }
}

/// Scores every validation song whole, from its first step (predicted from
/// a step of silence, as training leads songs in), continuing only.
pub fn likelihood(
    predictor: &mut dyn Predictor,
    data: &Dataset,
) -> Result<Likelihood, GenerateError> {
    let songs: Vec<(&[u128], Meter)> = data.songs(true).zip(data.meters(true)).collect();
    let mut sums = (0.0, 0.0);
    let mut frames = 0;
    let (mut truth, mut probabilities) = (Vec::new(), Vec::new());
    let silence = [0u128];
    for group in same_meter_groups(&songs, 64) {
        predictor.place(&Placement {
            meter: group[0].1,
            first_step: 0,
            after: None,
        })?;
        predictor.start(&vec![&silence[..]; group.len()])?;
        let longest = group.iter().map(|(song, _)| song.len()).max().unwrap_or(0);
        for t in 0..longest {
            truth.clear();
            truth.extend(
                group
                    .iter()
                    .map(|(song, _)| song.get(t).copied().unwrap_or(0)),
            );
            predictor.conditionals(&truth, &mut probabilities)?;
            for (index, (song, _)) in group.iter().enumerate() {
                if t < song.len() {
                    frames += 1;
                    let row = &probabilities[index * PITCH_COUNT..(index + 1) * PITCH_COUNT];
                    add_nll(&truth[index..=index], row, &mut sums);
                }
            }
            predictor.advance(&truth)?;
        }
    }
    let count = frames.max(1) as f64;
    Ok(Likelihood {
        frames,
        nll_per_step: sums.0 / count,
        frame_nll_88: sums.1 / count,
    })
}

/// [`likelihood`] of a network on the CPU: what the composer's training
/// validates with.
pub fn song_likelihood(model: &Network, data: &Dataset) -> Result<Likelihood, GenerateError> {
    let runner = Runner::new(model, &crate::device::cpu_selected(None))?;
    likelihood(runner.predictor().as_mut(), data)
}

/// Real gaps scored from both sides against the same steps from the left
/// only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FillLikelihood {
    /// Gap length in steps.
    pub gap: usize,
    pub gaps: usize,
    pub frames: usize,
    /// Nats per step (all 106 rows) of the gaps' steps given the music on
    /// both sides.
    pub fill_nll_per_frame: f64,
    /// The same steps given only the music before.
    pub continue_nll_per_frame: f64,
    /// The gaps that start on a beat (a selection snapped to beats or
    /// bars), and the same two figures over them: their first step usually
    /// starts a chord and the step after them the next one.
    pub on_beat_gaps: usize,
    pub on_beat_fill_nll_per_frame: f64,
    pub on_beat_continue_nll_per_frame: f64,
}

/// Cuts `gap`-step gaps out of every validation song (one every `2 * gap +
/// 1` steps, each with at least `gap` steps of music before and one after)
/// and scores their real steps with and without the music after. The odd
/// spacing puts gaps at every place in the bar in turn: an even one would
/// start every 1-step gap on the second half of a beat, where a held note
/// already tells the step.
pub fn fill_likelihood(
    predictor: &mut dyn Predictor,
    data: &Dataset,
    gap: usize,
) -> Result<FillLikelihood, GenerateError> {
    let gap = gap.max(1);
    let mut result = FillLikelihood {
        gap,
        ..FillLikelihood::default()
    };
    // Nats with and without the music after: every gap, then those on a beat.
    let (mut all, mut on_beat) = ([0.0; 2], [0.0; 2]);
    let mut probabilities = Vec::new();
    for (song, meter) in data.songs(true).zip(data.meters(true)) {
        let mut start = gap;
        while start + gap < song.len() {
            let end = start + gap;
            let seed = &song[start.saturating_sub(CONTEXT_STEPS)..start];
            let after = After {
                steps: &song[end..(end + CONTEXT_STEPS).min(song.len())],
                at: end,
            };
            let mut nats = [0.0; 2];
            for (with_after, sum) in [true, false].into_iter().zip(&mut nats) {
                predictor.place(&Placement {
                    meter,
                    first_step: start,
                    after: with_after.then_some(after),
                })?;
                predictor.start(&[seed])?;
                let mut sums = (0.0, 0.0);
                for &step in &song[start..end] {
                    predictor.conditionals(&[step], &mut probabilities)?;
                    add_nll(&[step], &probabilities, &mut sums);
                    predictor.advance(&[step])?;
                }
                *sum = sums.0;
            }
            add_pair(&mut all, nats);
            result.gaps += 1;
            if meter.is_beat(start) {
                add_pair(&mut on_beat, nats);
                result.on_beat_gaps += 1;
            }
            start += 2 * gap + 1;
        }
    }
    let per_frame = |nats: f64, gaps: usize| nats / (gaps * gap).max(1) as f64;
    result.frames = result.gaps * gap;
    result.fill_nll_per_frame = per_frame(all[0], result.gaps);
    result.continue_nll_per_frame = per_frame(all[1], result.gaps);
    result.on_beat_fill_nll_per_frame = per_frame(on_beat[0], result.on_beat_gaps);
    result.on_beat_continue_nll_per_frame = per_frame(on_beat[1], result.on_beat_gaps);
    Ok(result)
}

fn add_pair(sums: &mut [f64; 2], nats: [f64; 2]) {
    sums[0] += nats[0];
    sums[1] += nats[1];
}

/// Sounding notes per step, notes per non-empty step, mean note length and
/// the pitch-class histogram of some steps.
struct Texture {
    steps: usize,
    cells: u64,
    non_empty: usize,
    note_runs: u64,
    pitch_classes: [u64; 12],
}

impl Texture {
    fn new() -> Self {
        Self {
            steps: 0,
            cells: 0,
            non_empty: 0,
            note_runs: 0,
            pitch_classes: [0; 12],
        }
    }

    fn add(&mut self, steps: &[u128]) {
        let mut previous = 0u128;
        for &mask in steps {
            self.steps += 1;
            self.cells += u64::from(mask.count_ones());
            self.non_empty += usize::from(mask != 0);
            // A note starts where a pitch sounds and did not at the step before.
            self.note_runs += u64::from((mask & !previous).count_ones());
            for row in mask_bits(mask) {
                // Row 0 is MIDI 21, an A: pitch class (21 + row) % 12.
                self.pitch_classes[(21 + row) % 12] += 1;
            }
            previous = mask;
        }
    }

    fn per_step(&self) -> f64 {
        self.cells as f64 / self.steps.max(1) as f64
    }

    fn polyphony(&self) -> f64 {
        self.cells as f64 / self.non_empty.max(1) as f64
    }

    fn mean_note_length(&self) -> f64 {
        self.cells as f64 / self.note_runs.max(1) as f64
    }

    fn distribution(&self) -> [f64; 12] {
        let total = self.pitch_classes.iter().sum::<u64>().max(1) as f64;
        self.pitch_classes.map(|c| c as f64 / total)
    }
}

/// Continues every `stride`-th validation window for `options.steps` steps
/// and compares the results with the held-out and training music.
pub fn free_running(
    predictor: &mut dyn Predictor,
    data: &Dataset,
    options: &GenerateOptions,
    stride: usize,
) -> Result<FreeRunning, GenerateError> {
    let stride = stride.max(1);
    let mut held_out = Texture::new();
    for song in data.songs(true) {
        held_out.add(song);
    }
    let training: HashSet<&[u128]> = data
        .songs(false)
        .flat_map(|song| song.windows(COPY_STRETCH))
        .filter(|stretch| stretch.iter().any(|&m| m != 0))
        .collect();

    let mut generated = Texture::new();
    let mut curve = vec![0u64; options.steps];
    let (mut stretches, mut copies) = (0u64, 0u64);
    let mut seeds = 0usize;
    let (mut music, mut data_music) = (MusicTally::default(), MusicTally::default());
    for (index, window) in data.validation_windows().iter().step_by(stride).enumerate() {
        let Some(song) = continue_window(predictor, data, *window, index, options)? else {
            continue;
        };
        seeds += 1;
        generated.add(&song.steps);
        let (meter, first_step) = data.window_place(*window);
        let music_before = data.window_song(*window);
        let context = &music_before[first_step.saturating_sub(CONTEXT_STEPS)..first_step];
        music.add(context, &song.steps, first_step, meter);
        let real_end = (first_step + options.steps).min(music_before.len());
        data_music.add(
            context,
            &music_before[first_step..real_end],
            first_step,
            meter,
        );
        for (k, &mask) in song.steps.iter().enumerate() {
            curve[k] += u64::from(mask.count_ones());
        }
        for stretch in song.steps.windows(COPY_STRETCH) {
            if stretch.iter().any(|&m| m != 0) {
                stretches += 1;
                copies += u64::from(training.contains(stretch));
            }
        }
    }
    let data_per_step = held_out.per_step();
    let (ours, theirs) = (generated.distribution(), held_out.distribution());
    let distance = 0.5
        * ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>();
    let seeds_f = seeds.max(1) as f64;
    let vanish_curve: Vec<f64> = curve.iter().map(|&c| c as f64 / seeds_f).collect();
    let ratio = |v: f64| {
        if data_per_step > 0.0 {
            v / data_per_step
        } else {
            0.0
        }
    };
    let curve_ratio_range = (
        ratio(vanish_curve.iter().copied().fold(f64::INFINITY, f64::min)),
        ratio(
            vanish_curve
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max),
        ),
    );
    Ok(FreeRunning {
        seeds,
        steps: options.steps,
        data_notes_per_step: data_per_step,
        vanish_curve,
        curve_ratio_range,
        notes_per_step: generated.per_step(),
        density_ratio: if data_per_step > 0.0 {
            generated.per_step() / data_per_step
        } else {
            0.0
        },
        empty_step_rate: 1.0 - generated.non_empty as f64 / generated.steps.max(1) as f64,
        polyphony: generated.polyphony(),
        data_polyphony: held_out.polyphony(),
        pitch_class_distance: distance,
        mean_note_length: generated.mean_note_length(),
        data_mean_note_length: held_out.mean_note_length(),
        copied_stretch_rate: (!training.is_empty()).then(|| {
            if stretches == 0 {
                0.0
            } else {
                copies as f64 / stretches as f64
            }
        }),
        music: music.figures(),
        data_music: data_music.figures(),
    })
}

/// Continues the music before `window`'s end (up to [`CONTEXT_STEPS`]
/// steps) once, placed where the window lies in its song. A sampling rule
/// gets its own stream per window (`index`), or every continuation would
/// draw the same numbers.
fn continue_window(
    predictor: &mut dyn Predictor,
    data: &Dataset,
    window: Window,
    index: usize,
    options: &GenerateOptions,
) -> Result<Option<Continuation>, GenerateError> {
    let one = GenerateOptions {
        variations: 1,
        rule: match options.rule {
            Rule::Sample {
                temperature,
                rng_seed,
            } => Rule::Sample {
                temperature,
                rng_seed: rng_seed.wrapping_add(index as u64),
            },
            rule => rule,
        },
        ..*options
    };
    let (meter, first_step) = data.window_place(window);
    let song = data.window_song(window);
    let seed = &song[first_step.saturating_sub(CONTEXT_STEPS)..first_step];
    let placement = Placement {
        meter,
        first_step,
        after: None,
    };
    let none = Constraints::default();
    Ok(compose(predictor, seed, &placement, &none, &one, &|| false)?.pop())
}

/// The files of `dir` a model was not trained on, as a dataset whose
/// validation part holds them: the model's own validation files when `dir`
/// is the folder it was trained on (same fraction and rng seed), else every
/// file (also with `all_files`). Cut the way the model was trained.
pub fn held_out_data(
    header: &CheckpointHeader,
    dir: &Path,
    options: &LoadOptions,
    all_files: bool,
) -> Result<Dataset, DatasetError> {
    let training = header.training.as_ref();
    let same_folder = training.is_some_and(|t| {
        let trained = Path::new(&t.data).canonicalize().ok();
        trained.is_some() && trained == dir.canonicalize().ok()
    });
    let (preset, validation, rng_seed) = match training {
        Some(t) if same_folder && !all_files => (
            t.settings.preset,
            t.settings.validation_fraction,
            t.settings.rng_seed,
        ),
        Some(t) => (t.settings.preset, 0.0, 0),
        None => (Preset::Forward, 0.0, 0),
    };
    let data = Dataset::from_folder(dir, options, preset, validation, rng_seed)?;
    // With no split every file is held out: score them as "validation".
    Ok(if validation == 0.0 {
        data.all_held_out()
    } else {
        data
    })
}

/// Every figure, on the dataset's validation songs; the fill figures with
/// `fill_gap`-step gaps when given (a network that cannot fill says so).
pub fn evaluate(
    predictor: &mut dyn Predictor,
    data: &Dataset,
    options: &GenerateOptions,
    stride: usize,
    fill_gap: Option<usize>,
) -> Result<Evaluation, GenerateError> {
    Ok(Evaluation {
        teacher_forced: teacher_forced(predictor, data)?,
        likelihood: likelihood(predictor, data)?,
        fill: match fill_gap {
            Some(gap) => Some(fill_likelihood(predictor, data, gap)?),
            None => None,
        },
        free_running: free_running(predictor, data, options, stride)?,
    })
}

/// A line chart of vanish curves, as SVG: notes per step by generated step
/// for each `(name, curve)`, the data's density as a dashed line and the
/// band within half of it shaded.
pub fn vanish_curves_svg(curves: &[(String, Vec<f64>)], data_notes_per_step: f64) -> String {
    const COLOURS: [&str; 6] = [
        "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
    ];
    let (width, height) = (720.0, 360.0);
    let (left, right, top, bottom) = (56.0, 200.0, 20.0, 44.0);
    let steps = curves
        .iter()
        .map(|(_, c)| c.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let highest = curves
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .chain([data_notes_per_step * 1.6, 1.0])
        .fold(0.0f64, f64::max);
    let y_max = (highest + 0.5).ceil();
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let x = |step: usize| left + plot_w * step as f64 / (steps - 1) as f64;
    let y = |v: f64| top + plot_h * (1.0 - v / y_max);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let (band_top, band_bottom) = (y(data_notes_per_step * 1.5), y(data_notes_per_step * 0.5));
    let _ = writeln!(
        svg,
        "<rect x=\"{left}\" y=\"{band_top:.1}\" width=\"{plot_w}\" height=\"{:.1}\" \
         fill=\"#e8e8e8\"/>",
        band_bottom - band_top
    );
    for tick in 0..=(y_max as usize) {
        let ty = y(tick as f64);
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\" stroke=\"#ccc\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
            left + plot_w,
            left - 6.0,
            ty + 4.0
        );
    }
    for step in (0..steps).step_by(16).chain([steps - 1]) {
        let tx = x(step);
        let _ = writeln!(
            svg,
            "<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top + plot_h + 16.0,
            step + 1
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">generated step</text>\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">\
         notes per step</text>",
        left + plot_w / 2.0,
        height - 8.0,
        top + plot_h / 2.0
    );
    let data_y = y(data_notes_per_step);
    let _ = writeln!(
        svg,
        "<line x1=\"{left}\" y1=\"{data_y:.1}\" x2=\"{:.1}\" y2=\"{data_y:.1}\" \
         stroke=\"black\" stroke-dasharray=\"6 4\"/>",
        left + plot_w
    );
    let legend_x = left + plot_w + 16.0;
    let mut legend = vec![(
        format!("held-out music ({data_notes_per_step:.2})"),
        "black",
        true,
    )];
    for (index, (name, curve)) in curves.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points: Vec<String> = curve
            .iter()
            .enumerate()
            .map(|(step, &v)| format!("{:.1},{:.1}", x(step), y(v)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        legend.push((name.clone(), colour, false));
    }
    legend.push(("within half of the data".to_owned(), "#e8e8e8", false));
    draw_legend(&mut svg, &legend, legend_x, top);
    svg.push_str("</svg>\n");
    svg
}

/// Legend rows: a colour swatch (dashed for the data) and a name each.
fn draw_legend(svg: &mut String, rows: &[(String, &str, bool)], x: f64, top: f64) {
    for (row, (name, colour, dashed)) in rows.iter().enumerate() {
        let y = top + 10.0 + 20.0 * row as f64;
        let dash = if *dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" \
             stroke=\"{colour}\" stroke-width=\"6\"{dash}/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 20.0,
            x + 26.0,
            y + 4.0,
            escape_xml(name)
        );
    }
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;
    use crate::dataset::Preset;

    /// Predicts "the last step again" with certainty: a model of held notes.
    #[derive(Default)]
    struct Repeat {
        last: Vec<u128>,
    }

    impl Predictor for Repeat {
        fn pitches(&self) -> usize {
            PITCH_COUNT
        }

        fn name(&self) -> &'static str {
            "repeat"
        }

        fn start(&mut self, seeds: &[&[u128]]) -> Result<(), GenerateError> {
            self.last = seeds
                .iter()
                .map(|s| s.last().copied().unwrap_or(0))
                .collect();
            Ok(())
        }

        fn predict(&mut self, out: &mut Vec<f32>) -> Result<(), GenerateError> {
            out.clear();
            for &last in &self.last {
                out.extend((0..PITCH_COUNT).map(|p| if last >> p & 1 == 1 { 0.9 } else { 0.1 }));
            }
            Ok(())
        }

        fn advance(&mut self, steps: &[u128]) -> Result<(), GenerateError> {
            self.last.copy_from_slice(steps);
            Ok(())
        }
    }

    #[test]
    fn a_held_note_model_scores_perfectly_on_held_notes() {
        // Two songs of one long chord each: the next step is always the last.
        let chord = |mask: u128| vec![mask; 40];
        let data = Dataset::from_rolls(
            vec![chord(0b1011 << 20), chord(0b101 << 40), chord(0b11 << 60)],
            Preset::Forward,
            0.34,
            3,
        )
        .unwrap();
        let scores = teacher_forced(&mut Repeat::default(), &data).unwrap();
        assert_eq!(scores.windows, 31);
        assert!((scores.at_half.f1 - 1.0).abs() < 1e-12);
        assert!((scores.at_half.accuracy - 1.0).abs() < 1e-12);
        // -(ln 0.9) per sounding cell, -(ln 0.9) per silent one: 106 cells.
        assert!((scores.bce_nats_per_step - 106.0 * -(0.9f64.ln())).abs() < 1e-4);
        assert!((scores.mse - 0.01).abs() < 1e-6);

        let threshold = GenerateOptions {
            steps: 20,
            rule: Rule::Threshold { threshold: 0.5 },
            variations: 1,
        };
        let free = free_running(&mut Repeat::default(), &data, &threshold, 4).unwrap();
        assert_eq!(free.seeds, 8);
        assert!((free.density_ratio - 1.0).abs() < 1e-12, "{free:?}");
        assert_eq!(free.empty_step_rate, 0.0);
        assert_eq!(free.pitch_class_distance, 0.0);
        assert_eq!(free.vanish_curve.len(), 20);
        // Held notes never stop inside the continuation.
        assert!((free.mean_note_length - 20.0).abs() < 1e-12);
        // The held-out chord is not in the training songs.
        assert_eq!(free.copied_stretch_rate, Some(0.0));
    }

    #[test]
    fn frame_scores_follow_their_definitions() {
        let s = FrameScores::new(0.5, 6, 2, 4);
        assert!((s.precision - 0.75).abs() < 1e-12);
        assert!((s.recall - 0.6).abs() < 1e-12);
        assert!((s.accuracy - 0.5).abs() < 1e-12);
        assert!((s.f1 - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12);
        assert_eq!(FrameScores::new(0.5, 0, 0, 0).f1, 0.0);
    }
}
