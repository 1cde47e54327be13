//! SoundFonts: the shipped General MIDI bank, a user's SF2 file, and the SF2
//! files found in the usual system folders.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use rustysynth::SoundFont;

/// The General MIDI bank Cadenza ships (public domain, all 128 programs).
pub const SHIPPED_SOUNDFONT: &[u8] = include_bytes!("../../assets/soundfonts/sf_GMbank.sf2");
/// Its name, for messages.
pub const SHIPPED_SOUNDFONT_NAME: &str = "sf_GMbank.sf2 (shipped)";

/// Why a SoundFont could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoundFontError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// SF3 banks compress their samples (Ogg Vorbis), which the synth cannot play.
    #[error("{name} is an SF3 SoundFont (compressed samples); Cadenza needs an SF2 file")]
    Sf3 { name: String },
    #[error("{name} is not a SoundFont ({found}); Cadenza needs an SF2 file")]
    NotSoundFont { name: String, found: String },
    #[error("{name} is a damaged SF2 file: {reason}")]
    Damaged { name: String, reason: String },
}

/// What the first bytes say the file is.
fn sniff(bytes: &[u8], name: &str) -> Result<(), SoundFontError> {
    let not = |found: &str| SoundFontError::NotSoundFont {
        name: name.to_owned(),
        found: found.to_owned(),
    };
    if bytes.len() < 12 {
        return Err(not("too short"));
    }
    if &bytes[..4] != b"RIFF" {
        let found = match &bytes[..4] {
            b"MThd" => "a MIDI file",
            [0x89, b'P', b'N', b'G'] => "a PNG image",
            [0x1f, 0x8b, ..] => "gzip-compressed data",
            b"OggS" => "an Ogg file",
            _ => "no RIFF header",
        };
        return Err(not(found));
    }
    if &bytes[8..12] != b"sfbk" {
        let found = match &bytes[8..12] {
            b"WAVE" => "a WAV file",
            _ => "a RIFF file of another kind",
        };
        return Err(not(found));
    }
    // The INFO list's `ifil` chunk holds the version; SF3 banks say 3.
    let head = &bytes[..bytes.len().min(4096)];
    if let Some(at) = head.windows(4).position(|w| w == b"ifil")
        && let Some(&major) = head.get(at + 8)
        && major >= 3
    {
        return Err(SoundFontError::Sf3 {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Parses SF2 bytes; `name` is what messages call the file.
pub fn parse_soundfont(bytes: &[u8], name: &str) -> Result<Arc<SoundFont>, SoundFontError> {
    sniff(bytes, name)?;
    let damaged = |reason: String| SoundFontError::Damaged {
        name: name.to_owned(),
        reason,
    };
    // rustysynth's reader indexes by the file's own offsets; a damaged file
    // must not take the program down with it.
    let parsed = std::panic::catch_unwind(|| {
        let mut reader = bytes;
        SoundFont::new(&mut reader)
    });
    match parsed {
        Ok(Ok(font)) => Ok(Arc::new(font)),
        Ok(Err(error)) => Err(damaged(error.to_string())),
        Err(_) => Err(damaged(
            "its chunk offsets point outside the file".to_owned(),
        )),
    }
}

/// Loads the SF2 file at `path`, or the shipped bank when `path` is `None`.
pub fn load_soundfont(path: Option<&Path>) -> Result<Arc<SoundFont>, SoundFontError> {
    match path {
        None => parse_soundfont(SHIPPED_SOUNDFONT, SHIPPED_SOUNDFONT_NAME),
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| SoundFontError::Read {
                path: path.to_owned(),
                source,
            })?;
            parse_soundfont(&bytes, &path.display().to_string())
        }
    }
}

/// The folders where systems keep SoundFonts.
fn system_folders() -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = [
        "/usr/share/sounds/sf2",
        "/usr/share/soundfonts",
        "/usr/local/share/soundfonts",
        "/usr/share/sounds/sf3",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        folders.push(home.join(".local/share/soundfonts"));
        folders.push(home.join(".soundfonts"));
        folders.push(home.join("Library/Audio/Sounds/Banks"));
    }
    if let Some(profile) = std::env::var_os("USERPROFILE").map(PathBuf::from) {
        folders.push(profile.join("soundfonts"));
    }
    folders
}

/// SF2 files in the usual system folders (not recursing into links), sorted.
pub fn system_soundfonts() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = system_folders()
        .into_iter()
        .flat_map(|folder| {
            walkdir::WalkDir::new(folder)
                .max_depth(2)
                .into_iter()
                .flatten()
        })
        .filter(|entry| entry.file_type().is_file() || entry.path_is_symlink())
        .map(walkdir::DirEntry::into_path)
        .filter(|path| {
            path.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("sf2"))
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;

    #[test]
    fn the_shipped_bank_parses_and_has_general_midi_presets() {
        let font = load_soundfont(None).unwrap();
        assert!(font.get_presets().len() >= 128);
    }

    #[test]
    fn other_files_are_named_for_what_they_are() {
        let shown = |bytes: &[u8]| parse_soundfont(bytes, "x").unwrap_err().to_string();
        assert!(shown(b"MThd\0\0\0\x06\0\x01\0\x02").contains("a MIDI file"));
        assert!(shown(b"RIFF\0\0\0\0WAVEfmt ").contains("a WAV file"));
        assert!(shown(b"RIFF").contains("too short"));
        let mut sf3 = b"RIFF\0\0\0\0sfbkLIST\0\0\0\0INFOifil\x04\0\0\0\x03\0\x01\0".to_vec();
        sf3.extend([0; 16]);
        assert!(matches!(
            parse_soundfont(&sf3, "x.sf3"),
            Err(SoundFontError::Sf3 { .. })
        ));
        let cut = &SHIPPED_SOUNDFONT[..SHIPPED_SOUNDFONT.len() / 2];
        assert!(matches!(
            parse_soundfont(cut, "half.sf2"),
            Err(SoundFontError::Damaged { .. })
        ));
    }

    #[test]
    fn damaged_banks_are_errors_not_crashes() {
        // Overwrite chunk sizes and headers near the start with junk.
        for (at, junk) in [(4, 0xff), (16, 0x7f), (20, 0x00), (40, 0xee), (300, 0xff)] {
            let mut bytes = SHIPPED_SOUNDFONT[..64 * 1024].to_vec();
            bytes[at..at + 4].fill(junk);
            let _ = parse_soundfont(&bytes, "damaged.sf2");
        }
    }
}
