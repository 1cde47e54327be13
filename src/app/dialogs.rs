//! File dialogs that never freeze the UI: the native dialog is opened from
//! the UI thread (as macOS requires) and awaited on a [`Task`], whose answer
//! comes back as [`Command::Answered`]. Where no dialog can open (a Linux
//! desktop without D-Bus, so no desktop portal, and no zenity), the app says
//! so and asks for a typed path instead, pointing to drag-and-drop.

use std::path::PathBuf;
use std::pin::Pin;

use super::command::{Command, FileQuestion};
use super::jobs::{Task, Waker};

/// Whether native dialogs can open here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialogSupport {
    Native,
    /// Why not, as the app tells the user.
    Unavailable(String),
}

impl DialogSupport {
    /// What this machine offers. Linux and the BSDs open dialogs through the
    /// desktop portal (over the D-Bus session bus) or, failing that, zenity;
    /// Windows and macOS always have theirs.
    pub fn probe() -> Self {
        if cfg!(any(target_os = "windows", target_os = "macos")) || has_portal_or_zenity() {
            Self::Native
        } else {
            Self::Unavailable(
                "no file dialog on this desktop: there is no D-Bus session (so no desktop \
                 portal) and no zenity. Drag files onto the window, or type a path here."
                    .to_owned(),
            )
        }
    }

    /// Tests and headless runs never open native dialogs.
    pub fn headless() -> Self {
        Self::Unavailable(
            "file dialogs are off in this mode: drag files onto the window, or type a path."
                .to_owned(),
        )
    }

    /// Why there are no dialogs, if there are none.
    pub fn problem(&self) -> Option<&str> {
        match self {
            Self::Native => None,
            Self::Unavailable(reason) => Some(reason),
        }
    }
}

fn has_portal_or_zenity() -> bool {
    let session_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|dir| PathBuf::from(dir).join("bus").exists());
    let zenity = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("zenity").is_file()));
    session_bus || zenity
}

/// The native dialog for `question`, with its filters and a suggested name.
fn dialog(question: FileQuestion) -> rfd::AsyncFileDialog {
    let dialog = rfd::AsyncFileDialog::new().set_title(question.title());
    match question {
        FileQuestion::Open => dialog
            .add_filter(
                "Everything Cadenza opens",
                &["mid", "midi", "png", "cadenza", "npz", "sf2"],
            )
            .add_filter("MIDI or roll PNG", &["mid", "midi", "png"])
            .add_filter("Model (Cadenza or Keras .npz)", &["cadenza", "npz"])
            .add_filter("SoundFont", &["sf2"]),
        FileQuestion::OpenModel => {
            dialog.add_filter("Model (Cadenza or Keras .npz)", &["cadenza", "npz"])
        }
        FileQuestion::SaveRoll => dialog
            .add_filter("MIDI", &["mid"])
            .add_filter("Roll PNG (midi2img)", &["png"])
            .set_file_name("cadenza.mid"),
        FileQuestion::ExportWav => dialog
            .add_filter("WAV", &["wav"])
            .set_file_name("cadenza.wav"),
        FileQuestion::SaveTrainedModel => dialog
            .add_filter("Cadenza model", &["cadenza"])
            .set_file_name("model.cadenza"),
        FileQuestion::TrainingFolder | FileQuestion::MeasureFolder => dialog,
    }
}

/// Opens the native dialog for `question`; its answer (or `None` when the
/// user cancels) arrives as [`Command::Answered`].
pub fn ask(question: FileQuestion, wake: Waker) -> Task {
    let dialog = dialog(question);
    let answer: Pin<Box<dyn Future<Output = Option<rfd::FileHandle>> + Send>> =
        if question.wants_folder() {
            Box::pin(dialog.pick_folder())
        } else if question.saves() {
            Box::pin(dialog.save_file())
        } else {
            Box::pin(dialog.pick_file())
        };
    Task::spawn("file dialog", wake, move || {
        let path = pollster::block_on(answer).map(|handle| handle.path().to_owned());
        Command::Answered(question, path)
    })
}
