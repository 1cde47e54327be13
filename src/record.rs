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
    /// A folder whose files validate (a benchmark's own split), instead of
    /// a share of the training folder's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_dir: Option<String>,
    /// The grid the music was read on, in steps per quarter note: what the
    /// network learnt a step to be (files before this field: 4).
    #[serde(default = "default_steps_per_quarter")]
    pub steps_per_quarter: u8,
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
            validation_dir: None,
            steps_per_quarter: default_steps_per_quarter(),
        }
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
    /// validation).
    pub fn best_epoch(&self) -> Option<&EpochRecord> {
        self.log.iter().min_by(|a, b| {
            let key = |r: &EpochRecord| r.validation_loss.unwrap_or(r.train_loss);
            key(a).total_cmp(&key(b))
        })
    }

    /// The threshold with the best validation F1 at the best epoch: what the
    /// threshold rule uses with this model unless told otherwise.
    pub fn tuned_threshold(&self) -> Option<f32> {
        self.best_epoch()?.best_threshold.map(|t| t as f32)
    }

    /// The loss history as CSV.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from(
            "epoch,train_loss,validation_loss,validation_f1,best_threshold,windows_per_s,seconds\n",
        );
        let optional = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.8}"));
        for r in &self.log {
            csv.push_str(&format!(
                "{},{:.8},{},{},{},{:.1},{:.3}\n",
                r.epoch,
                r.train_loss,
                optional(r.validation_loss),
                optional(r.validation_f1),
                optional(r.best_threshold),
                r.windows_per_s,
                r.seconds
            ));
        }
        csv
    }
}
