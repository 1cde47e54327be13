//! Rolls on disk, whatever the format: the file extension picks MIDI or PNG.

use std::path::{Path, PathBuf};

use crate::image::{ImageFileError, export_png_chunks, export_png_file, import_png_file};
use crate::midi::{
    ExportOptions, ImportOptions, ImportReport, MidiFileError, export_file, import_file,
};
use crate::roll::{PianoRoll, RollMeta};

/// A file format Cadenza reads and writes rolls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RollFormat {
    /// Standard MIDI File (`.mid`, `.midi`).
    Midi,
    /// midi2img piano-roll PNG (`.png`).
    Png,
}

impl RollFormat {
    /// The format a path's extension names, case-insensitively.
    pub fn of_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "mid" | "midi" | "smf" | "kar" | "rmi" => Some(Self::Midi),
            "png" => Some(Self::Png),
            _ => None,
        }
    }

    /// The extension Cadenza writes for this format.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Midi => "mid",
            Self::Png => "png",
        }
    }
}

/// A failure to load or save a roll file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RollFileError {
    #[error("{}: unknown file type; use .mid/.midi for MIDI or .png for a midi2img roll", .0.display())]
    UnknownFormat(PathBuf),
    #[error(transparent)]
    Midi(#[from] MidiFileError),
    #[error(transparent)]
    Image(#[from] ImageFileError),
}

/// How to read rolls: MIDI import options, and the metadata a PNG lacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    pub midi: ImportOptions,
    /// Tempo, program and metre for PNG input, which has none of them; the
    /// grid is `midi.steps_per_quarter`.
    pub png_meta: RollMeta,
}

/// A roll read from a file, with the MIDI import report when there is one.
#[derive(Clone, Debug)]
pub struct LoadedRoll {
    pub roll: PianoRoll,
    pub format: RollFormat,
    pub report: Option<ImportReport>,
}

/// Reads a roll from a MIDI or PNG file.
pub fn load_roll(path: &Path, options: &LoadOptions) -> Result<LoadedRoll, RollFileError> {
    match RollFormat::of_path(path) {
        Some(RollFormat::Midi) => {
            let (roll, report) = import_file(path, &options.midi)?;
            Ok(LoadedRoll {
                roll,
                format: RollFormat::Midi,
                report: Some(report),
            })
        }
        Some(RollFormat::Png) => {
            let meta = RollMeta {
                steps_per_quarter: options.midi.steps_per_quarter,
                ..options.png_meta
            };
            Ok(LoadedRoll {
                roll: import_png_file(path, meta)?,
                format: RollFormat::Png,
                report: None,
            })
        }
        None => Err(RollFileError::UnknownFormat(path.to_owned())),
    }
}

/// How to write rolls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveOptions {
    pub midi: ExportOptions,
    /// PNG only: split into images of this many columns, `<stem>_<k>.png`.
    pub png_chunk_columns: Option<usize>,
}

/// Writes a roll as MIDI or PNG, by `path`'s extension; returns the files written.
pub fn save_roll(
    roll: &PianoRoll,
    path: &Path,
    options: &SaveOptions,
) -> Result<Vec<PathBuf>, RollFileError> {
    match RollFormat::of_path(path) {
        Some(RollFormat::Midi) => {
            export_file(roll, path, &options.midi)?;
            Ok(vec![path.to_owned()])
        }
        Some(RollFormat::Png) => match options.png_chunk_columns {
            Some(columns) => Ok(export_png_chunks(roll, path, columns)?),
            None => {
                export_png_file(roll, path)?;
                Ok(vec![path.to_owned()])
            }
        },
        None => Err(RollFileError::UnknownFormat(path.to_owned())),
    }
}

/// The MIDI and PNG files under a folder, found recursively.
#[derive(Clone, Debug, Default)]
pub struct FoundFiles {
    /// Roll files in file-name order, with the format their extension names.
    pub rolls: Vec<(PathBuf, RollFormat)>,
    /// Entries that could not be read while walking, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Other files, not MIDI or PNG.
    pub ignored: usize,
}

/// Walks `dir` for MIDI and PNG files; `skip` leaves out paths (and, for a
/// folder, everything under it) it returns true for.
pub fn find_roll_files(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> FoundFiles {
    let mut found = FoundFiles::default();
    let walk = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.path() == dir || !skip(entry.path()));
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                let path = error.path().unwrap_or(dir).to_owned();
                found.unreadable.push((path, error.to_string()));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        match RollFormat::of_path(entry.path()) {
            Some(format) => found.rolls.push((entry.into_path(), format)),
            None => found.ignored += 1,
        }
    }
    found
}
