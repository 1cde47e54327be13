//! Sound: SoundFonts, the render core, offline rendering to WAV, the
//! real-time side of live playback, and (with the `gui` feature, which
//! brings cpal) the default output device.

pub mod live;
#[cfg(feature = "gui")]
pub mod output;
pub mod player;
pub mod render;
pub mod soundfont;
