//! What survives the app: settings (controls, transport, view, recent files)
//! and an autosave of the working roll, written every few seconds while there
//! are unsaved changes and removed on a clean exit, so the next start after a
//! crash or `kill -9` can offer it back.
//!
//! Files live in `$CADENZA_DATA_DIR`, else `$XDG_DATA_HOME/cadenza`, else
//! `~/.local/share/cadenza` (`%APPDATA%\cadenza` on Windows).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Params, Transport};
use crate::atomic::write_atomically;
use crate::device::BackendChoice;
use crate::midi::{ExportOptions, ImportOptions, export, import};
use crate::roll::PianoRoll;

const SETTINGS_FILE: &str = "settings.json";
const AUTOSAVE_ROLL: &str = "autosave.mid";
const AUTOSAVE_STATE: &str = "autosave.json";
/// Recent files kept.
const RECENT: usize = 10;

/// Settings kept between runs; unknown or missing fields fall back to defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub params: Params,
    /// The model generating: a shipped model's name or a file's path.
    pub model: Option<String>,
    pub transport: Option<Transport>,
    pub zoom: Option<f32>,
    pub backend: Option<BackendChoice>,
    pub recent: Vec<PathBuf>,
}

impl Settings {
    /// Puts `path` first in the recent files.
    pub fn remember(&mut self, path: &Path) {
        self.recent.retain(|p| p != path);
        self.recent.insert(0, path.to_owned());
        self.recent.truncate(RECENT);
    }
}

/// The working state an autosave holds besides the roll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutosaveState {
    pub source_name: String,
    /// The roll's grid, which MIDI does not record.
    pub steps_per_quarter: u8,
    pub seed_start: usize,
    pub params: Params,
    pub transport: Transport,
}

/// A recovered autosave.
#[derive(Clone, Debug, PartialEq)]
pub struct Autosave {
    pub roll: PianoRoll,
    pub state: AutosaveState,
}

/// The folder settings and autosaves go to.
#[derive(Clone, Debug)]
pub struct SessionStore {
    dir: PathBuf,
}

impl SessionStore {
    /// The store in the user's data folder (see the module docs).
    pub fn default_location() -> Option<Self> {
        let dir = std::env::var_os("CADENZA_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("cadenza")))
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/cadenza"))
            })
            .or_else(|| std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join("cadenza")))?;
        Some(Self { dir })
    }

    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomically(&self.dir.join(name), bytes)
    }

    /// The saved settings; defaults when there are none or they are unreadable.
    pub fn load_settings(&self) -> Settings {
        std::fs::read(self.dir.join(SETTINGS_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save_settings(&self, settings: &Settings) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(settings).map_err(std::io::Error::other)?;
        self.write(SETTINGS_FILE, &json)
    }

    /// Writes the working roll and state (the state file last, so a crash
    /// in between leaves the previous pair or a roll without state, which
    /// [`load_autosave`](Self::load_autosave) ignores).
    pub fn autosave(&self, roll: &PianoRoll, state: &AutosaveState) -> std::io::Result<()> {
        self.write(AUTOSAVE_ROLL, &export(roll, &ExportOptions::default()))?;
        let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        self.write(AUTOSAVE_STATE, &json)
    }

    /// The autosave a previous run left behind, if any.
    pub fn load_autosave(&self) -> Option<Autosave> {
        let state: AutosaveState =
            serde_json::from_slice(&std::fs::read(self.dir.join(AUTOSAVE_STATE)).ok()?).ok()?;
        let bytes = std::fs::read(self.dir.join(AUTOSAVE_ROLL)).ok()?;
        let options = ImportOptions {
            steps_per_quarter: state.steps_per_quarter,
            ..ImportOptions::default()
        };
        let (roll, _) = import(&bytes, &options).ok()?;
        Some(Autosave { roll, state })
    }

    /// Forgets the autosave (after a clean exit, a restore or a discard).
    pub fn clear_autosave(&self) {
        let _ = std::fs::remove_file(self.dir.join(AUTOSAVE_STATE));
        let _ = std::fs::remove_file(self.dir.join(AUTOSAVE_ROLL));
    }
}
