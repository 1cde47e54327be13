//! Training from the app: the custom loop on a worker, progress back over its
//! channel, a cancel flag, and the model file written after every epoch to a
//! working file the user can save or make the active model. A worker that
//! fails (or panics) ends the run with the reason shown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::jobs::{Outbox, Waker, Worker, WorkerEnd};
use crate::checkpoint::Checkpoint;
use crate::dataset::{Dataset, Preset};
use crate::device::{self, BackendChoice};
use crate::files::LoadOptions;
use crate::limits;
use crate::model::Architecture;
use crate::record::{EpochRecord, LossKind, TrainSettings};
use crate::train::{self, TrainEnd, TrainEvent, Trainer};

/// The training panel's fields.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainForm {
    pub data_dir: String,
    pub epochs: usize,
    pub arch: Architecture,
    pub preset: Preset,
    pub loss: LossKind,
    /// Epochs the saved weights are averaged over (0: none), see
    /// [`TrainSettings::average_epochs`].
    pub average_epochs: usize,
}

impl Default for TrainForm {
    fn default() -> Self {
        let arch = Architecture::RollLstm;
        Self {
            data_dir: String::new(),
            epochs: 10,
            arch,
            preset: Preset::Forward,
            loss: train::default_settings(arch).loss,
            average_epochs: 0,
        }
    }
}

impl TrainForm {
    /// The form for network `arch`, with the loss (and windows) it is meant for.
    pub fn with_arch(self, arch: Architecture) -> Self {
        Self {
            arch,
            preset: Preset::Forward,
            loss: train::default_settings(arch).loss,
            ..self
        }
    }
}

/// What a run needs besides the form.
#[derive(Clone, Debug, PartialEq)]
struct TrainRequest {
    form: TrainForm,
    data_dir: PathBuf,
    backend: BackendChoice,
    /// Where the model file goes after every epoch.
    out: PathBuf,
}

/// Progress as the panel shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainProgress {
    /// Fraction of all batches done, 0..=1.
    pub fraction: f32,
    pub epoch: usize,
    pub loss: f32,
    /// Training throughput, in `throughput_unit`.
    pub windows_per_s: f64,
    /// What the throughput counts: windows or predicted steps, by network.
    pub throughput_unit: &'static str,
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
struct TrainingRun {
    cancel: Arc<AtomicBool>,
    worker: Worker<Update>,
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

/// The whole run, on the worker.
fn train(
    job: &TrainRequest,
    cancel: &AtomicBool,
    outbox: &Outbox<Update>,
) -> Result<TrainEnd, String> {
    let selected = device::select_for_training(job.backend).map_err(|e| e.to_string())?;
    let form = &job.form;
    let settings = TrainSettings {
        preset: form.preset,
        loss: form.loss,
        average_epochs: form.average_epochs,
        ..train::default_settings(form.arch)
    };
    let data = Dataset::from_folder(
        &job.data_dir,
        &LoadOptions::default(),
        settings.preset,
        settings.validation_fraction,
        settings.rng_seed,
    )
    .map_err(|e| e.to_string())?;
    let report = data.report();
    let mut trainer = Trainer::new(
        form.arch.default_config(),
        settings,
        &data,
        &job.data_dir.display().to_string(),
        &selected.device,
    )
    .map_err(|e| e.to_string())?;
    outbox.send(Update::Message(format!(
        "{} files, {} training and {} validation windows, on {} with the {}",
        report.files_used,
        report.windows_train,
        report.windows_validation,
        selected.label,
        trainer.engine().label()
    )));
    // Batch events arrive thousands of times a second: pass on a few per
    // second, and every epoch.
    let mut last = Instant::now();
    trainer
        .fit(&data, form.epochs, None, &job.out, cancel, &mut |event| {
            let due = last.elapsed() > Duration::from_millis(100);
            if matches!(event, TrainEvent::Epoch(_)) || due {
                last = Instant::now();
                outbox.send(Update::Event(event.clone()));
            }
        })
        .map_err(|e| e.to_string())
}

impl TrainingRun {
    fn start(request: TrainRequest, wake: Waker) -> Self {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let job = request.clone();
        let worker = Worker::spawn("training", wake, move |outbox| {
            let result = train(&job, &flag, outbox);
            outbox.send(Update::Done(result));
        });
        Self {
            cancel,
            worker,
            progress: TrainProgress {
                throughput_unit: request.form.arch.training_unit(),
                ..TrainProgress::default()
            },
            request,
        }
    }

    /// Takes the news; the progress says when the run has ended and how.
    fn poll(&mut self) {
        let epochs = self.request.form.epochs.max(1);
        for update in self.worker.poll() {
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
        if !self.progress.finished
            && let Some(end) = self.worker.ended()
        {
            self.progress.finished = true;
            self.progress.message = match end {
                WorkerEnd::Returned => "training stopped without saying why".to_owned(),
                WorkerEnd::Failed(reason) => format!("training failed: {reason}"),
            };
        }
    }
}

/// Training's state: the form and the last run.
#[derive(Debug, Default)]
pub struct Training {
    pub form: TrainForm,
    run: Option<TrainingRun>,
}

impl Training {
    /// The run's progress, if one was started.
    pub fn progress(&self) -> Option<&TrainProgress> {
        self.run.as_ref().map(|run| &run.progress)
    }

    pub fn is_running(&self) -> bool {
        self.progress().is_some_and(|p| !p.finished)
    }

    /// Starts a run of the form on `backend`, writing to a working file in
    /// the temporary folder; an error says why it cannot start.
    pub fn start(&mut self, backend: BackendChoice, wake: Waker) -> Result<(), String> {
        if self.is_running() {
            return Err("a training run is going on".to_owned());
        }
        let data_dir = PathBuf::from(self.form.data_dir.trim());
        if !data_dir.is_dir() {
            return Err(format!(
                "choose a folder of MIDI or PNG files to train on ({} is not one)",
                data_dir.display()
            ));
        }
        let mut form = self.form.clone();
        form.epochs = limits::EPOCHS.clamp(form.epochs);
        let request = TrainRequest {
            form,
            data_dir,
            backend,
            out: std::env::temp_dir()
                .join(format!("cadenza-training-{}.cadenza", std::process::id())),
        };
        self.run = Some(TrainingRun::start(request, wake));
        Ok(())
    }

    /// Asks the loop to stop after the current batch.
    pub fn cancel(&self) {
        if let Some(run) = &self.run {
            run.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Takes the worker's news; returns the message of a run that just ended.
    pub fn poll(&mut self) -> Option<String> {
        let run = self.run.as_mut()?;
        let was_running = !run.progress.finished;
        run.poll();
        (was_running && run.progress.finished).then(|| run.progress.message.clone())
    }

    /// The trained model, once an epoch has been written.
    pub fn checkpoint(&self) -> Option<Result<Checkpoint, String>> {
        let path = self.progress()?.model.as_ref()?;
        Some(Checkpoint::load(path).map_err(|e| e.to_string()))
    }

    /// Saves the trained model to `path`.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let checkpoint = self
            .checkpoint()
            .ok_or_else(|| "no trained model yet".to_owned())??;
        checkpoint.save(path).map_err(|e| e.to_string())
    }
}
