//! Sound: SoundFonts, the render core, offline rendering to WAV, and (with the
//! `gui` feature, which brings cpal) live playback on the default output.

#[cfg(feature = "gui")]
pub mod output;
pub mod player;
pub mod render;
pub mod soundfont;
