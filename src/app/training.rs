//! Training from the app: the custom loop on a worker thread, progress events
//! back over a channel, a cancel flag, and the model file written after every
//! epoch to a working file the user can save or make the active model.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::checkpoint::Checkpoint;
use crate::dataset::{Dataset, Preset};
use crate::device::{self, BackendChoice};
use crate::files::LoadOptions;
use crate::model::Architecture;
use crate::train::{EpochRecord, LossKind, TrainEnd, TrainEvent, TrainSettings, Trainer};

/// What the training panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRequest {
    pub data_dir: PathBuf,
    pub epochs: usize,
    pub arch: Architecture,
    pub preset: Preset,
    pub loss: LossKind,
    pub backend: BackendChoice,
    /// Where the model file goes after every epoch.
    pub out: PathBuf,
}

/// Progress as the panel shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainProgress {
    /// Fraction of all batches done, 0..=1.
    pub fraction: f32,
    pub epoch: usize,
    pub loss: f32,
    pub windows_per_s: f64,
    pub eta_seconds: f64,
    pub epochs: Vec<EpochRecord>,
    /// What the run said last (data found, device, how it ended).
    pub message: String,
    pub finished: bool,
    /// The model file once at least one epoch is done.
    pub model: Option<PathBuf>,
}

enum Update {
    Message(String),
    Event(TrainEvent),
    Done(Result<TrainEnd, String>),
}

/// A training run in the background.
pub struct TrainingRun {
    cancel: Arc<AtomicBool>,
    updates: Receiver<Update>,
    progress: TrainProgress,
    request: TrainRequest,
}

impl std::fmt::Debug for TrainingRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainingRun")
            .field("request", &self.request)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl TrainingRun {
    /// Starts training; `wake` is called when there is news.
    pub fn start(request: TrainRequest, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, updates) = channel();
        let flag = Arc::clone(&cancel);
        let job = request.clone();
        std::thread::spawn(move || {
            let send = |update: Update| {
                let _ = tx.send(update);
                wake();
            };
            let result = (|| -> Result<TrainEnd, String> {
                let selected = device::select(job.backend).map_err(|e| e.to_string())?;
                let settings = TrainSettings {
                    preset: job.preset,
                    loss: job.loss,
                    ..TrainSettings::for_architecture(job.arch)
                };
                let data = Dataset::from_folder(
                    &job.data_dir,
                    &LoadOptions::default(),
                    settings.preset,
                    settings.validation_fraction,
                    settings.seed,
                )
                .map_err(|e| e.to_string())?;
                let report = data.report();
                send(Update::Message(format!(
                    "{} files, {} training and {} validation windows, on {}",
                    report.files_used,
                    report.windows_train,
                    report.windows_validation,
                    selected.label
                )));
                let mut trainer = Trainer::new(
                    job.arch.default_config(),
                    settings,
                    &data,
                    &job.data_dir.display().to_string(),
                    &selected.device,
                )
                .map_err(|e| e.to_string())?;
                // Batch events arrive thousands of times a second: pass on a
                // few per second, and every epoch.
                let mut last = Instant::now();
                trainer
                    .fit(&data, job.epochs, None, &job.out, &flag, &mut |event| {
                        let due = last.elapsed() > Duration::from_millis(100);
                        if matches!(event, TrainEvent::Epoch(_)) || due {
                            last = Instant::now();
                            send(Update::Event(event.clone()));
                        }
                    })
                    .map_err(|e| e.to_string())
            })();
            send(Update::Done(result));
        });
        Self {
            cancel,
            updates,
            progress: TrainProgress::default(),
            request,
        }
    }

    /// Asks the loop to stop after the current batch.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Takes the news and returns the progress so far.
    pub fn poll(&mut self) -> &TrainProgress {
        let epochs = self.request.epochs.max(1);
        while let Ok(update) = self.updates.try_recv() {
            let progress = &mut self.progress;
            match update {
                Update::Message(message) => progress.message = message,
                Update::Event(TrainEvent::Batch {
                    epoch,
                    batch,
                    batches,
                    loss,
                    windows_per_s,
                    eta_seconds,
                }) => {
                    progress.epoch = epoch;
                    progress.loss = loss;
                    progress.windows_per_s = windows_per_s;
                    progress.eta_seconds = eta_seconds;
                    progress.fraction =
                        ((epoch - 1) as f32 + batch as f32 / batches.max(1) as f32) / epochs as f32;
                }
                Update::Event(TrainEvent::Epoch(record)) => {
                    progress.fraction = record.epoch as f32 / epochs as f32;
                    progress.epochs.push(record);
                    progress.model = Some(self.request.out.clone());
                }
                Update::Done(result) => {
                    progress.finished = true;
                    progress.message = match result {
                        Ok(TrainEnd::Finished) => {
                            format!("finished {} epochs", progress.epochs.len())
                        }
                        Ok(TrainEnd::EarlyStopped) => "stopped: no more improvement".to_owned(),
                        Ok(TrainEnd::Cancelled) => {
                            format!("cancelled after {} complete epochs", progress.epochs.len())
                        }
                        Err(error) => format!("training failed: {error}"),
                    };
                }
            }
        }
        &self.progress
    }

    pub fn progress(&self) -> &TrainProgress {
        &self.progress
    }

    /// The trained model, once an epoch has been written.
    pub fn checkpoint(&self) -> Option<Result<Checkpoint, String>> {
        let path = self.progress.model.as_ref()?;
        Some(Checkpoint::load(path).map_err(|e| e.to_string()))
    }
}
