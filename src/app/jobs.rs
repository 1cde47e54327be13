//! The one way the app works in the background: a [`Worker`] is a thread
//! that sends messages the UI takes each frame, and that always tells the UI
//! how it ended, even when it panicked; a [`Task`] is a worker that computes
//! one [`Command`] for the app to apply.
//!
//! Every thread wakes the UI when it sends and when it ends, so a UI that
//! waits for a worker never polls in vain and never waits for a worker that
//! is gone.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};

use super::Command;

/// Wakes the UI from another thread (asks for a repaint).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// How a worker ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerEnd {
    /// Its work returned.
    Returned,
    /// It panicked (with the panic's message) or could not start.
    Failed(String),
}

enum Envelope<M> {
    Message(M),
    Failed(String),
}

/// The worker's side: sends messages and wakes the UI.
pub struct Outbox<M> {
    sender: Sender<Envelope<M>>,
    wake: Waker,
}

impl<M> std::fmt::Debug for Outbox<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl<M> Outbox<M> {
    /// Sends a message; false once the UI has let go of the worker (time to
    /// stop).
    pub fn send(&self, message: M) -> bool {
        let sent = self.sender.send(Envelope::Message(message)).is_ok();
        (self.wake)();
        sent
    }
}

/// The UI's side of a background thread.
pub struct Worker<M> {
    name: String,
    messages: Receiver<Envelope<M>>,
    ended: Option<WorkerEnd>,
}

impl<M> std::fmt::Debug for Worker<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

impl<M: Send + 'static> Worker<M> {
    /// Runs `work` on a new thread named after `name`.
    pub fn spawn(name: &str, wake: Waker, work: impl FnOnce(&Outbox<M>) + Send + 'static) -> Self {
        let (sender, messages) = channel();
        let outbox = Outbox { sender, wake };
        let spawned = std::thread::Builder::new()
            .name(format!("cadenza {name}"))
            .spawn(move || {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| work(&outbox))) {
                    let message = format!("it panicked: {}", panic_message(payload.as_ref()));
                    let _ = outbox.sender.send(Envelope::Failed(message));
                }
                // The channel closes before the UI is woken, so the UI sees
                // the end in the frame the wake asks for.
                let Outbox { sender, wake } = outbox;
                drop(sender);
                wake();
            });
        let ended = spawned
            .err()
            .map(|error| WorkerEnd::Failed(format!("it could not start: {error}")));
        Self {
            name: name.to_owned(),
            messages,
            ended,
        }
    }

    /// What the worker does, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The messages sent since the last call; afterwards [`ended`](Self::ended)
    /// says whether the worker has stopped.
    pub fn poll(&mut self) -> Vec<M> {
        let mut messages = Vec::new();
        while self.ended.is_none() {
            match self.messages.try_recv() {
                Ok(Envelope::Message(message)) => messages.push(message),
                Ok(Envelope::Failed(reason)) => self.ended = Some(WorkerEnd::Failed(reason)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.ended = Some(WorkerEnd::Returned),
            }
        }
        messages
    }

    /// How the worker ended, once it has and [`poll`](Self::poll) has seen it.
    pub fn ended(&self) -> Option<&WorkerEnd> {
        self.ended.as_ref()
    }
}

/// A worker that computes one command: a file loaded, audio exported, a
/// dialog answered.
#[derive(Debug)]
pub struct Task {
    worker: Worker<Command>,
}

/// What a finished task gives the app.
#[derive(Debug)]
pub enum TaskOutcome {
    Done(Command),
    /// It ended without a result; the text says why, naming the task.
    Failed(String),
}

impl Task {
    /// Runs `work` in the background; `what` names it in messages ("export
    /// take.wav").
    pub fn spawn(what: &str, wake: Waker, work: impl FnOnce() -> Command + Send + 'static) -> Self {
        Self {
            worker: Worker::spawn(what, wake, move |outbox| {
                outbox.send(work());
            }),
        }
    }

    pub fn what(&self) -> &str {
        self.worker.name()
    }

    /// The outcome once there is one.
    pub fn poll(&mut self) -> Option<TaskOutcome> {
        if let Some(command) = self.worker.poll().into_iter().next() {
            return Some(TaskOutcome::Done(command));
        }
        match self.worker.ended()? {
            WorkerEnd::Returned => Some(TaskOutcome::Failed(format!(
                "{} stopped without a result",
                self.what()
            ))),
            WorkerEnd::Failed(reason) => Some(TaskOutcome::Failed(format!(
                "{} failed: {reason}",
                self.what()
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{Worker, WorkerEnd};

    fn until_ended<M: Send + 'static>(worker: &mut Worker<M>) -> Vec<M> {
        let started = Instant::now();
        let mut messages = Vec::new();
        while worker.ended().is_none() && started.elapsed() < Duration::from_secs(10) {
            messages.extend(worker.poll());
            std::thread::sleep(Duration::from_millis(2));
        }
        messages
    }

    #[test]
    fn messages_arrive_and_the_end_is_reported() {
        let mut worker = Worker::spawn("count", Arc::new(|| {}), |outbox| {
            for n in 0..3 {
                outbox.send(n);
            }
        });
        assert_eq!(until_ended(&mut worker), vec![0, 1, 2]);
        assert_eq!(worker.ended(), Some(&WorkerEnd::Returned));
    }

    #[test]
    fn a_panic_is_reported_with_its_message() {
        let mut worker: Worker<()> = Worker::spawn("crash", Arc::new(|| {}), |_| {
            panic!("the model exploded");
        });
        until_ended(&mut worker);
        assert_eq!(
            worker.ended(),
            Some(&WorkerEnd::Failed(
                "it panicked: the model exploded".to_owned()
            ))
        );
    }
}
