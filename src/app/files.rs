//! Reading what the user opens, off the UI thread: a roll (MIDI, PNG), a
//! model (Cadenza file, Keras .npz) or a SoundFont, by the file's extension.
//! The result comes back as [`Command::Loaded`](super::Command::Loaded).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::audio::soundfont::{SoundFont, load_soundfont};
use crate::checkpoint::{Checkpoint, CheckpointHeader};
use crate::device;
use crate::files::{LoadOptions, load_roll};
use crate::keras::load_keras_npz;
use crate::model::{ArticleNetConfig, Network, WINDOW_STEPS};
use crate::roll::PianoRoll;

/// What a file turned out to hold, or why it could not be read.
#[derive(Debug)]
pub enum Loaded {
    Roll {
        path: PathBuf,
        result: Result<PianoRoll, String>,
    },
    Model {
        path: PathBuf,
        result: Result<Box<Checkpoint>, String>,
    },
    SoundFont {
        path: PathBuf,
        result: Result<Arc<SoundFont>, String>,
    },
}

/// The file's name, for the status bar.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads `path` as what its extension says.
pub fn load(path: PathBuf) -> Loaded {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "cadenza" => {
            let result = Checkpoint::load(&path)
                .map(Box::new)
                .map_err(|e| e.to_string());
            Loaded::Model { path, result }
        }
        "npz" => {
            let result = import_keras(&path).map(Box::new);
            Loaded::Model { path, result }
        }
        "sf2" | "sf3" => {
            let result = load_soundfont(Some(&path)).map_err(|e| e.to_string());
            Loaded::SoundFont { path, result }
        }
        _ => {
            let result = read_roll(&path);
            Loaded::Roll { path, result }
        }
    }
}

/// The article's network from Keras weights, as a model file in memory.
fn import_keras(path: &Path) -> Result<Checkpoint, String> {
    let config = ArticleNetConfig::article();
    let model = load_keras_npz(path, &config, &device::cpu()).map_err(|e| e.to_string())?;
    let origin = format!("imported from Keras weights {}", path.display());
    Checkpoint::new(
        CheckpointHeader::new(config, origin),
        &Network::Article(model),
    )
    .map_err(|e| e.to_string())
}

/// A roll long enough for a seed window.
pub fn read_roll(path: &Path) -> Result<PianoRoll, String> {
    let loaded = load_roll(path, &LoadOptions::default()).map_err(|e| format!("{e}"))?;
    if loaded.roll.steps() < WINDOW_STEPS {
        return Err(format!(
            "it has {} steps; a seed window needs {WINDOW_STEPS}",
            loaded.roll.steps()
        ));
    }
    Ok(loaded.roll)
}
