//! What panels, background tasks and keyboard shortcuts ask of the app:
//! [`Command`]s, carried out in one place ([`CadenzaApp::apply`]).
//!
//! [`CadenzaApp::apply`]: super::CadenzaApp::apply

use std::path::PathBuf;

use super::generation::Params;
use super::midi::OutputChoice;
use super::parts::PartToggle;
use super::roll_view::Selection;
use super::training::TrainForm;
use super::transport::TransportSettings;
use crate::device::BackendChoice;
use crate::live_midi::LiveMessage;
use crate::roll::RollNote;

/// Something the user asked for, or a background task finished.
#[derive(Debug)]
pub enum Command {
    // The roll being composed.
    /// Put the seed window at this step.
    SetSeed(usize),
    /// Draw a note on pitch row `row` over steps `start..end` of the roll.
    DrawNote {
        row: usize,
        start: usize,
        end: usize,
    },
    /// Erase the note sounding at this cell of the roll.
    EraseAt {
        row: usize,
        step: usize,
    },
    Undo,
    Redo,
    /// Write the shown continuation or fill into the roll.
    Keep,
    /// Drop the fill being auditioned and go back to continuing.
    DiscardFill,
    /// Select a rectangle of notes, or nothing.
    Select(Option<Selection>),
    /// Select every note.
    SelectAll,
    /// Delete the notes that start inside the selection.
    DeleteSelection,
    /// Move these notes by `steps` and `rows` (as far as the roll allows).
    MoveNotes {
        notes: Vec<RollNote>,
        steps: isize,
        rows: isize,
    },
    /// Give the note at this cell a new length.
    ResizeNote {
        row: usize,
        start: usize,
        len: usize,
    },
    /// Move the selection's notes by `steps` (whole snap lengths) and
    /// `rows` (semitones): the arrow keys.
    NudgeSelection {
        steps: isize,
        rows: isize,
    },
    /// Copy the selection's notes (and cut them, when true).
    Copy {
        cut: bool,
    },
    /// Paste what was copied at the step under the mouse, else after the
    /// selection, else at the playhead or the roll's start.
    Paste,
    /// Paste a copy of the selection right after it.
    Duplicate,
    /// Lock (or unlock) the note at this cell.
    LockAt {
        row: usize,
        step: usize,
        lock: bool,
    },
    /// Lock the selection's notes, or unlock them when all are locked.
    ToggleLockSelection,
    /// Regenerate the selection from the music on both sides.
    Fill,
    /// Lock the selection's notes and fill the rest of its span around them.
    Harmonise,
    /// Accept the ghost notes into the roll.
    AcceptGhost,
    /// The part new notes go to (`None`: the one with the most notes).
    SetTargetPart(Option<u16>),
    /// Set the velocity of the notes that start at `step` on rows
    /// `rows.0..rows.1`.
    SetVelocity {
        step: usize,
        rows: (usize, usize),
        velocity: u8,
    },

    // Parts (view state: what sounds and what shows).
    /// Mute, solo or hide a part.
    TogglePart {
        part: u16,
        toggle: PartToggle,
    },
    /// Show or hide the velocity lane under the roll.
    ShowVelocityLane(bool),
    /// The pitch range generated notes may use (rows, both included).
    SetRange((usize, usize)),
    /// Ghost notes on or off.
    ShowGhosts(bool),
    /// The surprise lens on or off.
    ShowLens(bool),
    /// Snap for drawn, moved and resized notes.
    SetSnap(super::Snap),
    /// Draw or the lock brush.
    SetTool(super::Tool),
    /// Zoom the pitches to the music.
    FitPitches,

    // Generation.
    /// The controls changed (regenerates when live).
    ParamsChanged(Params),
    Generate,
    ChooseVariation(usize),
    SetBackend(BackendChoice),
    /// Generate with a model shipped in the binary, by name.
    UseShippedModel(String),

    // Sound.
    Play,
    Pause,
    Stop,
    /// Move the playhead (steps).
    Seek(f64),
    TransportChanged(TransportSettings),

    // MIDI.
    /// Listen to this MIDI input port (none: stop listening).
    MidiInput(Option<String>),
    /// Send playback to this output too (none: the internal synth only).
    MidiOutput(Option<OutputChoice>),
    /// Whether the song and the keyboard sound through the internal synth.
    InternalSynth(bool),
    /// List the MIDI ports again.
    RefreshMidiPorts,
    /// Start (true) or end recording the keyboard into the roll.
    Record(bool),
    /// Answer mode: the model continues each phrase played.
    Answer(bool),
    /// A keyboard message and when it came.
    MidiIn(std::time::Instant, LiveMessage),

    // Files.
    /// Open a roll, a model or a SoundFont, by its extension.
    Open(PathBuf),
    /// Save the shown roll as MIDI or PNG, by the extension.
    SaveRoll(PathBuf),
    ExportWav(PathBuf),
    /// Ask the user for a file or folder (a dialog, or a typed path where
    /// there is no dialog).
    Ask(FileQuestion),
    /// The answer to a question: a path, or `None` when the user cancelled.
    Answered(FileQuestion, Option<PathBuf>),
    /// The typed path of the path prompt changed.
    PromptChanged(String),
    /// Take the typed path (true) or close the prompt (false).
    AnswerPrompt(bool),
    /// What a file task read, to take in on the UI thread.
    Loaded(Box<super::files::Loaded>),
    /// A background task's message for the status line.
    Report(String),

    // Training and measuring.
    TrainFormChanged(TrainForm),
    StartTraining,
    CancelTraining,
    /// Generate with the model the last training run wrote.
    UseTrainedModel,
    SaveTrainedModel(PathBuf),
    MeasureFolderChanged(String),
    /// Score the model in use on a folder, with the controls' rule.
    Measure,

    // The session.
    /// Take back the autosave of a run that did not exit cleanly.
    RestoreAutosave,
    DiscardAutosave,
    /// Hide the notices (settings that were adjusted on loading).
    DismissNotices,

    // The view.
    /// The step under the mouse, for the probability plot and pasting.
    Hover(Option<usize>),
    /// Pixels per step and the vertical zoom.
    Zoom {
        steps: f32,
        pitches: f32,
    },
}

/// What a file dialog (or the typed-path prompt) is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileQuestion {
    /// A roll, a model or a SoundFont to open.
    Open,
    /// A model file to generate with.
    OpenModel,
    /// Where to save the shown roll (MIDI or PNG).
    SaveRoll,
    /// Where to write the shown roll's audio.
    ExportWav,
    /// A folder of music to train on.
    TrainingFolder,
    /// A folder of music to measure the model on.
    MeasureFolder,
    /// Where to save the model the training run made.
    SaveTrainedModel,
}

impl FileQuestion {
    /// The question as the prompt words it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Open => "Open a roll (MIDI, PNG), a model or a SoundFont",
            Self::OpenModel => "Open a model file (.cadenza or Keras .npz)",
            Self::SaveRoll => "Save the roll as MIDI (.mid) or PNG (.png)",
            Self::ExportWav => "Export the audio as WAV",
            Self::TrainingFolder => "A folder of MIDI/PNG files to train on",
            Self::MeasureFolder => "A folder of MIDI/PNG files to measure on",
            Self::SaveTrainedModel => "Save the trained model (.cadenza)",
        }
    }

    /// Whether the answer is a folder.
    pub fn wants_folder(self) -> bool {
        matches!(self, Self::TrainingFolder | Self::MeasureFolder)
    }

    /// Whether the answer is a file to write.
    pub fn saves(self) -> bool {
        matches!(
            self,
            Self::SaveRoll | Self::ExportWav | Self::SaveTrainedModel
        )
    }
}
