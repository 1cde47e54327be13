//! Held-out evaluation: how well a model predicts the next step from real
//! music (teacher forcing), and what its own continuations look like next to
//! the data (free running).

use std::collections::HashSet;

use serde::Serialize;

use crate::dataset::Dataset;
use crate::generate::{GenerateError, GenerateOptions, Predictor, generate_with};

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
}

/// Everything `cadenza eval` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub teacher_forced: TeacherForced,
    pub free_running: FreeRunning,
}

/// Teacher-forced scores of `predictor` on the dataset's validation windows.
pub fn teacher_forced(
    predictor: &mut dyn Predictor,
    data: &Dataset,
) -> Result<TeacherForced, GenerateError> {
    let windows = data.validation_windows();
    // Per probability bin: cells that were on and cells that were off.
    let mut on = vec![0u64; BINS + 1];
    let mut off = vec![0u64; BINS + 1];
    let (mut bce, mut squared) = (0.0f64, 0.0f64);
    let mut probabilities = Vec::new();
    let mut inputs = Vec::with_capacity(256);
    let mut targets = Vec::with_capacity(256);
    for chunk in windows.chunks(256) {
        inputs.clear();
        targets.clear();
        for &window in chunk {
            let (input, target) = data.window_masks(window);
            inputs.push(input);
            targets.push(target);
        }
        predictor.predict(&inputs, &mut probabilities)?;
        for (target, row) in targets.iter().zip(probabilities.chunks_exact(PITCH_COUNT)) {
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
    }
    let count = windows.len().max(1) as f64;
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
        windows: windows.len(),
        bce_nats_per_step: bce / count,
        mse: squared / (count * PITCH_COUNT as f64),
        at_half: scores_at(BINS / 2),
        best,
    })
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
    let one = GenerateOptions {
        variations: 1,
        ..*options
    };
    for window in data.validation_windows().iter().step_by(stride) {
        let (seed, _) = data.window_masks(*window);
        let Some(song) = generate_with(predictor, &seed, &one)?.pop() else {
            continue;
        };
        seeds += 1;
        generated.add(&song.steps);
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
    Ok(FreeRunning {
        seeds,
        steps: options.steps,
        data_notes_per_step: data_per_step,
        vanish_curve: curve.iter().map(|&c| c as f64 / seeds_f).collect(),
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
    })
}

/// Both parts, on the dataset's validation songs.
pub fn evaluate(
    predictor: &mut dyn Predictor,
    data: &Dataset,
    options: &GenerateOptions,
    stride: usize,
) -> Result<Evaluation, GenerateError> {
    Ok(Evaluation {
        teacher_forced: teacher_forced(predictor, data)?,
        free_running: free_running(predictor, data, options, stride)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;
    use crate::dataset::Preset;
    use crate::generate::Rule;
    use crate::model::WINDOW_STEPS;

    /// Predicts "the last step again" with certainty: a model of held notes.
    struct Repeat;

    impl Predictor for Repeat {
        fn pitches(&self) -> usize {
            PITCH_COUNT
        }

        fn predict(
            &mut self,
            windows: &[[u128; WINDOW_STEPS]],
            out: &mut Vec<f32>,
        ) -> Result<(), GenerateError> {
            out.clear();
            for window in windows {
                let last = window[WINDOW_STEPS - 1];
                out.extend((0..PITCH_COUNT).map(|p| if last >> p & 1 == 1 { 0.9 } else { 0.1 }));
            }
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
        let scores = teacher_forced(&mut Repeat, &data).unwrap();
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
        let free = free_running(&mut Repeat, &data, &threshold, 4).unwrap();
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
