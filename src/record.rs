//! The plain records of a training run: its settings (the loss, how
//! windows are cut), one line per epoch and the whole history. Model files
//! keep them (`checkpoint`), training writes them (`train`), the dataset
//! reads the preset, and the CLI and the app show them. This module depends
//! on nothing else of Cadenza's, so none of those depend on each other
//! through it.

use serde::{Deserialize, Serialize};

/// How windows and targets are cut from a roll (the article's network).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// 9 steps predict the next step, forward in time (Cadenza's default).
    #[default]
    Forward,
    /// The article's code: time reversed (its 90-degree image rotation), and
    /// steps i..i+8 predict step i+10 (step i+9 is skipped).
    #[serde(alias = "seed")]
    #[value(alias = "seed")]
    Article,
}

/// The training loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Mean squared error, as the article trains.
    #[default]
    Mse,
    /// Binary cross-entropy, the usual loss for independent on/off outputs.
    Bce,
    /// Negative log-likelihood of whole steps by the chain rule, in nats
    /// per step: the composer's, whose pitches are not independent.
    Nll,
}

/// How a run trains; stored in the checkpoint so `--resume` needs none of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub preset: Preset,
    pub loss: LossKind,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub validation_fraction: f64,
    /// Seeds the weights, the file split and every epoch's shuffle.
    #[serde(alias = "seed")]
    pub rng_seed: u64,
    /// Steps per training stretch of a recurrent network.
    #[serde(default = "default_sequence_steps")]
    pub sequence_steps: usize,
    /// Largest random transposition of a training stretch, in semitones
    /// (recurrent networks; 0: none).
    #[serde(default)]
    pub max_transpose: u8,
    /// Recurrent networks: the share of input steps replaced by the
    /// network's own thresholded prediction of that step (scheduled sampling,
    /// in its parallel form), so it learns to go on from its own output as
    /// generation makes it. 0: the real steps only (teacher forcing).
    #[serde(default)]
    pub feedback: f64,
    /// Roll LSTM: the share of sounding input cells silenced while training
    /// (inverted dropout: the rest scaled by 1 / (1 - share)), after any
    /// feedback, so the network cannot lean on any one note of the past.
    /// 0: the input as it is.
    #[serde(default)]
    pub input_dropout: f64,
    /// Roll LSTM: the share of the LSTM's hidden units silenced where they
    /// feed its next step while training (variational dropout: one draw per
    /// stretch, the same at every step, the rest scaled by 1 / (1 - share)),
    /// so the state cannot lean on any one unit. 0: none.
    #[serde(default)]
    pub recurrent_dropout: f64,
    /// A folder whose files validate (a benchmark's own split), instead of
    /// a share of the training folder's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_dir: Option<String>,
    /// The grid the music was read on, in steps per quarter note: what the
    /// network learnt a step to be (files before this field: 4).
    #[serde(default = "default_steps_per_quarter")]
    pub steps_per_quarter: u8,
    /// The model validated and saved averages the weights at the end of
    /// recent epochs, exponentially, with the mean age of the last
    /// `average_epochs` epochs' plain mean (`train::average`); 0 or 1: the
    /// weights as the optimizer left them. The optimizer goes on from its own.
    #[serde(default)]
    pub average_epochs: usize,
}

fn default_steps_per_quarter() -> u8 {
    4
}

fn default_sequence_steps() -> usize {
    64
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            preset: Preset::Forward,
            loss: LossKind::Mse,
            batch_size: 32,
            learning_rate: 1e-3,
            validation_fraction: 0.1,
            rng_seed: 0,
            sequence_steps: default_sequence_steps(),
            max_transpose: 0,
            feedback: 0.0,
            input_dropout: 0.0,
            recurrent_dropout: 0.0,
            validation_dir: None,
            steps_per_quarter: default_steps_per_quarter(),
            average_epochs: 0,
        }
    }
}

/// How far above the lowest validation loss (a share of it) an epoch may
/// lie and still be chosen for how its music sounds.
pub const NEAR_BEST_LOSS: f64 = 0.02;

impl EpochRecord {
    /// The loss epochs are compared by: validation, else training.
    pub fn selection_loss(&self) -> f64 {
        self.validation_loss.unwrap_or(self.train_loss)
    }

    /// Music goals missed; all four when not measured.
    pub fn goals_missed(&self) -> usize {
        self.music.map_or(4, |music| music.goals_missed())
    }
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (training-mode batch norm).
    pub train_loss: f64,
    /// Loss on the validation files, inference mode; none without validation.
    pub validation_loss: Option<f64>,
    /// Frame-level F1 of the next-step prediction on the validation files at
    /// the threshold that maximises it (teacher forced, as `cadenza eval`).
    #[serde(default)]
    pub validation_f1: Option<f64>,
    /// That threshold: the one the threshold rule uses with this model.
    #[serde(default)]
    pub best_threshold: Option<f64>,
    pub windows_per_s: f64,
    pub seconds: f64,
    /// How the epoch's own continuations of the validation music sound;
    /// none without validation (and in files from before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub music: Option<MusicCheck>,
}

/// A network's own continuations of held-out music beside the music that
/// really follows (the figures `cadenza eval` reports under "music"), and the
/// goals a model is held to: clashes at most 1.2x the music's, notes in key
/// and onsets on a beat at most 0.03 / 0.10 below its shares, and a density
/// of 0.85-1.15 of its own.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MusicCheck {
    pub clash_share: Option<f64>,
    pub data_clash_share: Option<f64>,
    pub in_key_share: Option<f64>,
    pub data_in_key_share: Option<f64>,
    pub on_beat_share: Option<f64>,
    pub data_on_beat_share: Option<f64>,
    /// Notes per step of the continuations over the music's.
    pub density_ratio: f64,
}

impl MusicCheck {
    pub const MAX_CLASH_RATIO: f64 = 1.2;
    pub const IN_KEY_MARGIN: f64 = 0.03;
    pub const ON_BEAT_MARGIN: f64 = 0.10;
    pub const DENSITY_RATIO: std::ops::RangeInclusive<f64> = 0.85..=1.15;

    /// How many of the four goals the continuations miss (a figure the
    /// music or the continuations leave undefined misses nothing).
    pub fn goals_missed(&self) -> usize {
        let missed = |ours: Option<f64>, theirs: Option<f64>, ok: &dyn Fn(f64, f64) -> bool| matches!((ours, theirs), (Some(a), Some(b)) if !ok(a, b));
        [
            missed(self.clash_share, self.data_clash_share, &|a, b| {
                a <= Self::MAX_CLASH_RATIO * b
            }),
            missed(self.in_key_share, self.data_in_key_share, &|a, b| {
                a >= b - Self::IN_KEY_MARGIN
            }),
            missed(self.on_beat_share, self.data_on_beat_share, &|a, b| {
                a >= b - Self::ON_BEAT_MARGIN
            }),
            !Self::DENSITY_RATIO.contains(&self.density_ratio),
        ]
        .into_iter()
        .filter(|&m| m)
        .count()
    }
}

/// Settings and history of a training run, kept in its checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub settings: TrainSettings,
    /// The folder trained on, as given.
    pub data: String,
    pub windows_train: usize,
    pub windows_validation: usize,
    pub log: Vec<EpochRecord>,
}

impl TrainingRecord {
    pub fn epochs_done(&self) -> usize {
        self.log.len()
    }

    /// The epoch with the lowest validation loss (training loss without
    /// validation): what patience counts from.
    pub fn lowest_loss_epoch(&self) -> Option<&EpochRecord> {
        self.log
            .iter()
            .min_by(|a, b| a.selection_loss().total_cmp(&b.selection_loss()))
    }

    /// The epoch to keep, chosen as the epochs end: by the validation loss,
    /// and by the music among epochs within [`NEAR_BEST_LOSS`] of the
    /// lowest loss so far. An epoch takes over when its loss is the lowest
    /// and the kept one is no longer near it, or when it is near the lowest
    /// and misses fewer of the music goals ([`MusicCheck`]) than the kept one
    /// (at equal goals, a lower loss). Epochs without music figures count as
    /// missing all four. The choice only ever moves to the epoch just ended,
    /// so the best model written then stays the one this names.
    pub fn best_epoch(&self) -> Option<&EpochRecord> {
        let mut lowest = f64::INFINITY;
        let mut best: Option<&EpochRecord> = None;
        for record in &self.log {
            let loss = record.selection_loss();
            lowest = lowest.min(loss);
            let near =
                |r: &EpochRecord| r.selection_loss() <= lowest + NEAR_BEST_LOSS * lowest.abs();
            let takes_over = match best {
                None => true,
                Some(kept) if !near(kept) => loss <= lowest,
                Some(kept) => {
                    near(record)
                        && (record.goals_missed(), loss)
                            < (kept.goals_missed(), kept.selection_loss())
                }
            };
            if takes_over {
                best = Some(record);
            }
        }
        best
    }

    /// The threshold with the best validation F1 at the best epoch: what the
    /// threshold rule uses with this model unless told otherwise.
    pub fn tuned_threshold(&self) -> Option<f32> {
        self.best_epoch()?.best_threshold.map(|t| t as f32)
    }

    /// The loss history as CSV.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from(
            "epoch,train_loss,validation_loss,validation_f1,best_threshold,windows_per_s,seconds,\
             clash_share,data_clash_share,in_key_share,data_in_key_share,on_beat_share,\
             data_on_beat_share,density_ratio,music_goals_missed\n",
        );
        let optional = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.8}"));
        for r in &self.log {
            csv.push_str(&format!(
                "{},{:.8},{},{},{},{:.1},{:.3}",
                r.epoch,
                r.train_loss,
                optional(r.validation_loss),
                optional(r.validation_f1),
                optional(r.best_threshold),
                r.windows_per_s,
                r.seconds
            ));
            match &r.music {
                Some(m) => csv.push_str(&format!(
                    ",{},{},{},{},{},{},{:.8},{}\n",
                    optional(m.clash_share),
                    optional(m.data_clash_share),
                    optional(m.in_key_share),
                    optional(m.data_in_key_share),
                    optional(m.on_beat_share),
                    optional(m.data_on_beat_share),
                    m.density_ratio,
                    m.goals_missed()
                )),
                None => csv.push_str(",,,,,,,,\n"),
            }
        }
        csv
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Continuations that sound like the music: every goal met.
    fn sounding_right() -> MusicCheck {
        MusicCheck {
            clash_share: Some(0.05),
            data_clash_share: Some(0.05),
            in_key_share: Some(0.90),
            data_in_key_share: Some(0.92),
            on_beat_share: Some(0.70),
            data_on_beat_share: Some(0.75),
            density_ratio: 1.0,
        }
    }

    #[test]
    fn each_music_goal_counts_once() {
        let right = sounding_right();
        assert_eq!(right.goals_missed(), 0);
        let wrong = [
            MusicCheck {
                clash_share: Some(0.07),
                ..right
            },
            MusicCheck {
                in_key_share: Some(0.88),
                ..right
            },
            MusicCheck {
                on_beat_share: Some(0.60),
                ..right
            },
            MusicCheck {
                density_ratio: 0.8,
                ..right
            },
        ];
        for check in wrong {
            assert_eq!(check.goals_missed(), 1, "{check:?}");
        }
        let unknown = MusicCheck {
            on_beat_share: None,
            ..right
        };
        assert_eq!(unknown.goals_missed(), 0);
    }

    fn epoch(epoch: usize, loss: f64, missed: usize) -> EpochRecord {
        let right = sounding_right();
        let music = MusicCheck {
            // Miss `missed` goals: density, on beat, in key, clashes.
            density_ratio: if missed >= 1 { 2.0 } else { 1.0 },
            on_beat_share: if missed >= 2 {
                Some(0.1)
            } else {
                right.on_beat_share
            },
            in_key_share: if missed >= 3 {
                Some(0.1)
            } else {
                right.in_key_share
            },
            clash_share: if missed >= 4 {
                Some(0.5)
            } else {
                right.clash_share
            },
            ..right
        };
        EpochRecord {
            epoch,
            train_loss: loss + 1.0,
            validation_loss: Some(loss),
            validation_f1: None,
            best_threshold: None,
            windows_per_s: 1.0,
            seconds: 1.0,
            music: Some(music),
        }
    }

    #[test]
    fn the_best_epoch_weighs_the_music_among_near_losses() {
        let mut record = TrainingRecord {
            settings: TrainSettings::default(),
            data: String::new(),
            windows_train: 0,
            windows_validation: 0,
            log: Vec::new(),
        };
        let mut chosen = Vec::new();
        let epochs = [
            (5.0, 2),
            (4.0, 2),  // lower loss: takes over
            (4.05, 0), // near 4.0 and sounds better: takes over
            (3.0, 3),  // far lower: takes over whatever its music
            (3.05, 1), // near and better
            (3.01, 3), // near, lower loss, but worse music: stays
            (3.2, 0),  // not near: stays
        ];
        for (i, (loss, missed)) in epochs.into_iter().enumerate() {
            record.log.push(epoch(i + 1, loss, missed));
            chosen.push(record.best_epoch().unwrap().epoch);
        }
        assert_eq!(chosen, [1, 2, 3, 4, 5, 5, 5]);
        assert_eq!(record.lowest_loss_epoch().unwrap().epoch, 4);
        // Unmeasured epochs count as missing every goal: epoch 5 no longer
        // sounds better than epoch 4, and epoch 6's loss is not lower.
        record.log[4].music = None;
        assert_eq!(record.best_epoch().unwrap().epoch, 4);
    }
}
