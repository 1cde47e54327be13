//! Generation off the UI thread: a worker owns the model, takes jobs from a
//! channel, skips jobs a newer one has replaced, and sends results back,
//! waking the UI.

use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::Instant;

use crate::checkpoint::Checkpoint;
use crate::device::SelectedDevice;
use crate::generate::{Continuation, GenerateOptions, generate_on};

/// A generation request; `id` grows with every request.
#[derive(Clone, Debug)]
pub struct GenerateJob {
    pub id: u64,
    pub seed_start: usize,
    /// The seed window and the music before it (see `seed_context`).
    pub seed: Vec<u128>,
    pub options: GenerateOptions,
}

/// What the worker sends back.
#[derive(Debug)]
pub enum JobEvent {
    Generated {
        job: Box<GenerateJob>,
        continuations: Vec<Continuation>,
        millis: f64,
    },
    Failed {
        id: u64,
        error: String,
    },
}

/// The UI's side of the worker.
#[derive(Debug)]
pub struct Jobs {
    jobs: Sender<GenerateJob>,
    events: Receiver<JobEvent>,
}

impl Jobs {
    /// Starts a worker that loads `checkpoint` on `selected` and calls `wake`
    /// after each result.
    pub fn start(
        checkpoint: Checkpoint,
        selected: SelectedDevice,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let (jobs, job_rx) = channel::<GenerateJob>();
        let (event_tx, events) = channel();
        std::thread::spawn(move || {
            let model = match checkpoint.model(&selected.device) {
                Ok(model) => model,
                Err(error) => {
                    let _ = event_tx.send(JobEvent::Failed {
                        id: 0,
                        error: format!("cannot load the model: {error}"),
                    });
                    wake();
                    return;
                }
            };
            while let Ok(mut job) = job_rx.recv() {
                // Only the newest request matters (a slider being dragged).
                loop {
                    match job_rx.try_recv() {
                        Ok(newer) => job = newer,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return,
                    }
                }
                let started = Instant::now();
                let event = match generate_on(&model, &selected, &job.seed, &job.options) {
                    Ok(continuations) => JobEvent::Generated {
                        job: Box::new(job),
                        continuations,
                        millis: started.elapsed().as_secs_f64() * 1e3,
                    },
                    Err(error) => JobEvent::Failed {
                        id: job.id,
                        error: error.to_string(),
                    },
                };
                if event_tx.send(event).is_err() {
                    return;
                }
                wake();
            }
        });
        Self { jobs, events }
    }

    /// Queues a request; false when the worker has stopped.
    pub fn submit(&self, job: GenerateJob) -> bool {
        self.jobs.send(job).is_ok()
    }

    /// Results that arrived since the last call.
    pub fn poll(&self) -> Vec<JobEvent> {
        self.events.try_iter().collect()
    }
}
