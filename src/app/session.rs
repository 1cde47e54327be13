//! What survives the app: settings (controls, transport, view, model, recent
//! files) and an autosave of the working roll, written every few seconds
//! while there are unsaved changes and removed on a clean exit, so the next
//! start after a crash or `kill -9` can offer it back.
//!
//! Files live in `$CADENZA_DATA_DIR`, else the platform's data folder for
//! the app (the `directories` crate: `$XDG_DATA_HOME/cadenza` or
//! `~/.local/share/cadenza` on Linux, `~/Library/Application Support/Cadenza`
//! on macOS, `%APPDATA%\Cadenza\data` on Windows). Whatever they hold is
//! clamped to the ranges the app offers on the way in, with a note for each
//! value that was not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::generation::Params;
use super::transport::TransportSettings;
use crate::atomic::write_atomically;
use crate::device::BackendChoice;
use crate::limits;
use crate::midi::{ExportOptions, ImportOptions, export, import};
use crate::roll::{PianoRoll, STEPS_PER_QUARTER_RANGE};

const SETTINGS_FILE: &str = "settings.json";
const AUTOSAVE_ROLL: &str = "autosave.mid";
const AUTOSAVE_STATE: &str = "autosave.json";
/// Recent files kept.
pub const RECENT: usize = 10;
/// Settings files are a few kilobytes; anything far larger is not one.
const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// Settings kept between runs; unknown or missing fields fall back to
/// defaults. Assembled from the app's parts when saved and handed back to
/// them when loaded, so no part keeps a second copy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub params: Params,
    /// The model generating: a shipped model's name or a file's path.
    pub model: Option<String>,
    pub transport: Option<TransportSettings>,
    pub zoom: Option<f32>,
    pub pitch_zoom: Option<f32>,
    pub backend: Option<BackendChoice>,
    pub recent: Vec<PathBuf>,
    /// The MIDI input and output of last time, opened again where they are.
    pub midi_input: Option<String>,
    pub midi_output: Option<super::midi::OutputChoice>,
    pub internal_synth: Option<bool>,
    pub velocity_lane: Option<bool>,
    /// What notes snap to when drawn, moved or resized.
    pub snap: Option<super::Snap>,
    /// Whether faint suggested notes follow each edit.
    pub ghost_notes: Option<bool>,
    /// Whether notes are shaded by how unlikely the model finds them.
    pub surprise_lens: Option<bool>,
}

impl Settings {
    /// These settings inside the ranges the app offers; a note for each
    /// value that was not.
    pub fn clamped(mut self, notes: &mut Vec<String>) -> Self {
        self.params = self.params.clamped(notes);
        self.transport = self.transport.map(|t| t.clamped(notes));
        if let Some(zoom) = &mut self.zoom {
            limits::ZOOM.clamp_noting(zoom, notes);
        }
        if let Some(zoom) = &mut self.pitch_zoom {
            limits::PITCH_ZOOM.clamp_noting(zoom, notes);
        }
        if self.recent.len() > RECENT {
            notes.push(format!(
                "{} recent files; keeping {RECENT}",
                self.recent.len()
            ));
            self.recent.truncate(RECENT);
        }
        self
    }
}

/// Puts `path` first in `recent`.
pub fn remember(recent: &mut Vec<PathBuf>, path: &Path) {
    recent.retain(|p| p != path);
    recent.insert(0, path.to_owned());
    recent.truncate(RECENT);
}

/// The working state an autosave holds besides the roll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutosaveState {
    pub source_name: String,
    /// The roll's grid, which MIDI does not record.
    pub steps_per_quarter: u8,
    pub seed_start: usize,
    pub params: Params,
    pub transport: TransportSettings,
    /// The locked cells, which MIDI does not record either (absent in
    /// autosaves from before locks).
    #[serde(default)]
    pub locked: Vec<LockedStep>,
}

/// One step's locked cells, as an autosave keeps them: rows 0..64 and
/// 64..106 as two numbers (JSON numbers stop short of 128 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedStep {
    pub step: usize,
    pub low_rows: u64,
    pub high_rows: u64,
}

impl LockedStep {
    pub fn all(locked: &super::Locks) -> Vec<Self> {
        locked
            .iter()
            .map(|(&step, &mask)| Self {
                step,
                low_rows: mask as u64,
                high_rows: (mask >> 64) as u64,
            })
            .collect()
    }

    pub fn mask(self) -> u128 {
        u128::from(self.high_rows) << 64 | u128::from(self.low_rows)
    }
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

/// Reads a small file, or nothing when it is missing, unreadable or larger
/// than `limit` bytes.
fn read_small(path: &Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
}

impl SessionStore {
    /// The store in the user's data folder (see the module docs).
    pub fn default_location() -> Option<Self> {
        let dir = match std::env::var_os("CADENZA_DATA_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => directories::ProjectDirs::from("", "", "Cadenza")?
                .data_dir()
                .to_owned(),
        };
        Some(Self { dir })
    }

    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Where the files go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomically(&self.dir.join(name), bytes)
    }

    /// The saved settings, clamped; defaults when there are none. `notes`
    /// gets a line for each value changed and for an unreadable file.
    pub fn load_settings(&self, notes: &mut Vec<String>) -> Settings {
        let path = self.dir.join(SETTINGS_FILE);
        if !path.exists() {
            return Settings::default();
        }
        let parsed = read_small(&path, MAX_SETTINGS_BYTES)
            .ok_or_else(|| "unreadable or too large".to_owned())
            .and_then(|bytes| {
                serde_json::from_slice::<Settings>(&bytes).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(settings) => {
                let mut changed = Vec::new();
                let settings = settings.clamped(&mut changed);
                notes.extend(changed.into_iter().map(|n| format!("settings: {n}")));
                settings
            }
            Err(error) => {
                notes.push(format!(
                    "settings: {} was ignored ({error}); using the defaults",
                    path.display()
                ));
                Settings::default()
            }
        }
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

    /// The autosave a previous run left behind, if any, its state clamped
    /// (with notes) and its seed window inside its roll.
    pub fn load_autosave(&self, notes: &mut Vec<String>) -> Option<Autosave> {
        let bytes = read_small(&self.dir.join(AUTOSAVE_STATE), MAX_SETTINGS_BYTES)?;
        let mut state: AutosaveState = serde_json::from_slice(&bytes).ok()?;
        let mut changed = Vec::new();
        if !STEPS_PER_QUARTER_RANGE.contains(&state.steps_per_quarter) {
            changed.push(format!(
                "{} steps per quarter is not a grid; using 4",
                state.steps_per_quarter
            ));
            state.steps_per_quarter = 4;
        }
        state.params = state.params.clamped(&mut changed);
        state.transport = state.transport.clamped(&mut changed);
        // The roll file is bounded by the importer (at most ROLL_STEPS steps).
        let midi = std::fs::read(self.dir.join(AUTOSAVE_ROLL)).ok()?;
        let options = ImportOptions {
            steps_per_quarter: state.steps_per_quarter,
            ..ImportOptions::default()
        };
        let (roll, _) = import(&midi, &options).ok()?;
        let latest = roll.steps().saturating_sub(crate::model::WINDOW_STEPS);
        if state.seed_start > latest {
            changed.push(format!(
                "seed window at step {} is past the roll's end; using step {latest}",
                state.seed_start
            ));
            state.seed_start = latest;
        }
        notes.extend(changed.into_iter().map(|n| format!("autosave: {n}")));
        Some(Autosave { roll, state })
    }

    /// Forgets the autosave (after a clean exit, a restore or a discard).
    pub fn clear_autosave(&self) {
        let _ = std::fs::remove_file(self.dir.join(AUTOSAVE_STATE));
        let _ = std::fs::remove_file(self.dir.join(AUTOSAVE_ROLL));
    }
}

/// The session's state: where it is kept, the recent files and the model to
/// reopen, an earlier run's autosave on offer, and notes about what loading
/// adjusted.
#[derive(Debug)]
pub struct Session {
    store: Option<SessionStore>,
    recent: Vec<PathBuf>,
    /// The model to reopen next time: a shipped name or a path.
    model: Option<String>,
    restore_offer: Option<Autosave>,
    last_autosave: Instant,
    /// Shown until dismissed: settings or an autosave that were adjusted.
    pub notices: Vec<String>,
}

impl Session {
    /// Seconds between autosaves while there are unsaved edits.
    pub const AUTOSAVE_EVERY: Duration = Duration::from_secs(3);

    /// The session kept in `store` (none: nothing is kept), and the settings
    /// it held for the other parts; `notes` says what was adjusted.
    pub fn open(store: Option<SessionStore>, notes: &mut Vec<String>) -> (Self, Settings) {
        let settings = store
            .as_ref()
            .map(|store| store.load_settings(notes))
            .unwrap_or_default();
        let restore_offer = store.as_ref().and_then(|store| store.load_autosave(notes));
        let session = Self {
            store,
            recent: settings.recent.clone(),
            model: settings.model.clone(),
            restore_offer,
            last_autosave: Instant::now(),
            notices: Vec::new(),
        };
        (session, settings)
    }

    pub fn recent(&self) -> &[PathBuf] {
        &self.recent
    }

    /// Puts `path` first in the recent files.
    pub fn remember(&mut self, path: &Path) {
        remember(&mut self.recent, path);
    }

    /// The model to reopen next time.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn remember_model(&mut self, spec: &str) {
        self.model = Some(spec.to_owned());
    }

    pub fn restore_offer(&self) -> Option<&Autosave> {
        self.restore_offer.as_ref()
    }

    /// Takes the offered autosave to restore it; the files stay until the
    /// next autosave replaces them.
    pub fn take_restore_offer(&mut self) -> Option<Autosave> {
        self.restore_offer.take()
    }

    /// Forgets the offered autosave for good.
    pub fn discard_autosave(&mut self) {
        self.restore_offer = None;
        if let Some(store) = &self.store {
            store.clear_autosave();
        }
    }

    /// Whether it is time to autosave. While an earlier run's autosave
    /// waits for an answer, it is not overwritten.
    pub fn autosave_due(&self) -> bool {
        self.restore_offer.is_none() && self.last_autosave.elapsed() > Self::AUTOSAVE_EVERY
    }

    /// Writes the autosave and the settings; false when there is nowhere to
    /// keep them.
    pub fn autosave(
        &mut self,
        roll: &PianoRoll,
        state: &AutosaveState,
        settings: &Settings,
    ) -> std::io::Result<bool> {
        self.last_autosave = Instant::now();
        let Some(store) = &self.store else {
            return Ok(false);
        };
        store.autosave(roll, state)?;
        store.save_settings(settings)?;
        Ok(true)
    }

    /// A clean exit: keeps the settings and drops the autosave, unless an
    /// earlier run's autosave is still waiting for an answer.
    pub fn close(&self, settings: &Settings) {
        if let Some(store) = &self.store {
            if let Err(error) = store.save_settings(settings) {
                eprintln!("cadenza: cannot save the settings: {error}");
            }
            if self.restore_offer.is_none() {
                store.clear_autosave();
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::{SessionStore, Settings};

    #[test]
    fn absurd_settings_are_clamped_with_a_note_each() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("settings.json"),
            r#"{"params": {"steps": 4000000000000, "variations": 100000000,
                "rule": {"temperature": -3.0, "vanish_inc": 1e300}},
                "transport": {"bpm": 1e9, "volume": 80.0}, "zoom": 1e30}"#,
        )
        .unwrap();
        let mut notes = Vec::new();
        let settings = SessionStore::at(dir.path().to_owned()).load_settings(&mut notes);
        assert_eq!(settings.params.steps, 16_384);
        assert_eq!(settings.params.variations, 32);
        assert_eq!(settings.params.rule.temperature, 0.05);
        assert_eq!(settings.transport.unwrap().bpm, 1_000.0);
        assert_eq!(settings.zoom, Some(24.0));
        assert_eq!(notes.len(), 7, "{notes:?}");
        assert!(notes[0].starts_with("settings: steps 4000000000000 is outside"));

        std::fs::write(dir.path().join("settings.json"), b"{ not json").unwrap();
        let mut notes = Vec::new();
        let settings = SessionStore::at(dir.path().to_owned()).load_settings(&mut notes);
        assert_eq!(settings, Settings::default());
        assert!(notes[0].contains("was ignored"), "{notes:?}");
    }
}
