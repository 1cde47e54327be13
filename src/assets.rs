//! What the binary carries so that it works with no files at all.

/// A demo piece embedded in the binary.
#[derive(Clone, Copy, Debug)]
pub struct DemoRoll {
    /// Short name users type (`--seed-file demo:<name>` later, listings now).
    pub name: &'static str,
    /// The file name under `assets/demo/`.
    pub file_name: &'static str,
    /// Standard MIDI File bytes.
    pub midi: &'static [u8],
}

/// The shipped demo pieces; the first is the default.
pub const DEMO_ROLLS: [DemoRoll; 3] = [
    DemoRoll {
        name: "prelude",
        file_name: "prelude-c-major-bwv846.mid",
        midi: include_bytes!("../assets/demo/prelude-c-major-bwv846.mid"),
    },
    DemoRoll {
        name: "chorale-bwv1.6",
        file_name: "chorale-bwv1.6.mid",
        midi: include_bytes!("../assets/demo/chorale-bwv1.6.mid"),
    },
    DemoRoll {
        name: "chorale-bwv328",
        file_name: "chorale-bwv328.mid",
        midi: include_bytes!("../assets/demo/chorale-bwv328.mid"),
    },
];

/// The demo the app and the CLI open when given nothing.
pub fn default_demo() -> &'static DemoRoll {
    &DEMO_ROLLS[0]
}

/// The demo of that name.
pub fn demo(name: &str) -> Option<&'static DemoRoll> {
    DEMO_ROLLS.iter().find(|d| d.name == name)
}

/// A trained model embedded in the binary.
#[derive(Clone, Copy, Debug)]
pub struct ShippedModel {
    /// The name users type (`--model article`).
    pub name: &'static str,
    /// Names it went by before, still accepted (settings files keep them).
    pub former_names: &'static [&'static str],
    /// The file name under `assets/models/`.
    pub file_name: &'static str,
    pub description: &'static str,
    /// The model file's bytes (see `checkpoint`).
    pub bytes: &'static [u8],
}

/// The shipped models; [`DEFAULT_MODEL`] is used when the user names none.
pub const SHIPPED_MODELS: &[ShippedModel] = &[
    ShippedModel {
        name: "composer",
        former_names: &[],
        file_name: "composer.cadenza",
        description: "the composer (chords drawn note by note, the beat, filling from both \
                      sides) trained on the corpus",
        bytes: include_bytes!("../assets/models/composer.cadenza"),
    },
    ShippedModel {
        name: "roll",
        former_names: &[],
        file_name: "roll.cadenza",
        description: "Cadenza's own network (an LSTM over the steps) trained on the corpus with \
                      binary cross-entropy: needs no boost",
        bytes: include_bytes!("../assets/models/roll.cadenza"),
    },
    ShippedModel {
        name: "jsb",
        former_names: &[],
        file_name: "jsb.cadenza",
        description: "the composer (chords drawn note by note, the beat, filling from both \
                      sides) trained on the JSB Chorales benchmark's training split, one step \
                      per quarter note",
        bytes: include_bytes!("../assets/models/jsb.cadenza"),
    },
    ShippedModel {
        name: "forward",
        former_names: &[],
        file_name: "forward.cadenza",
        description: "the article's network trained on the corpus to predict the next step",
        bytes: include_bytes!("../assets/models/forward.cadenza"),
    },
    ShippedModel {
        name: "article",
        former_names: &["seed"],
        file_name: "article.cadenza",
        description: "the article's network trained as the article did (reversed time, \
                      target two steps ahead)",
        bytes: include_bytes!("../assets/models/article.cadenza"),
    },
];

/// The model the app and the CLI use when given none.
pub const DEFAULT_MODEL: &str = "composer";

/// The shipped model of that name.
pub fn shipped_model(name: &str) -> Option<&'static ShippedModel> {
    SHIPPED_MODELS
        .iter()
        .find(|m| m.name == name || m.former_names.contains(&name))
}

/// Opens a model by path or shipped name (a file of that name wins); `None`
/// opens [`DEFAULT_MODEL`]. Returns the model file and a name to show.
pub fn open_model(
    spec: Option<&str>,
) -> Result<(crate::checkpoint::Checkpoint, String), crate::checkpoint::CheckpointError> {
    use crate::checkpoint::{Checkpoint, CheckpointError};
    let spec = spec.unwrap_or(DEFAULT_MODEL);
    let path = std::path::Path::new(spec);
    match shipped_model(spec) {
        Some(shipped) if !path.exists() => Ok((
            Checkpoint::from_bytes(shipped.bytes)?,
            format!("{} (shipped)", shipped.name),
        )),
        _ if !path.exists() && !spec.contains(['/', '\\', '.']) => Err(CheckpointError::Read {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no such file, and no shipped model of that name (shipped: {})",
                    SHIPPED_MODELS
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }),
        _ => Ok((Checkpoint::load(path)?, path.display().to_string())),
    }
}
