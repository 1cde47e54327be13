//! Cadenza: continue piano rolls with a small neural network and hear the result.
//!
//! The pipeline: a MIDI file ([`midi`]) or a midi2img PNG ([`image`]) becomes a
//! binary [`roll::PianoRoll`] of 106 pitches by time steps; 9-step windows of it
//! feed a Conv1D+LSTM network that predicts the next step; generation feeds the
//! predictions back, and the result goes out again as MIDI, PNG and audio.
//!
//! Modules: [`roll`] (the roll, no IO), [`arrangement`] (tempo map, metre,
//! parts, velocities and drums riding along with it), [`midi`] and [`image`] (file formats),
//! [`files`] (pick the format by extension), [`model`] (the networks),
//! [`keras`] (Keras weight import), [`checkpoint`] (model files),
//! [`dataset`] and [`train`] (training on a folder of rolls; on the CPU in
//! plain Rust over [`linalg`]), [`eval`]
//! (held-out figures), [`music`] (scales, keys, musical measures), [`device`] (the
//! one place naming burn backends), [`generate`] (continuation rules),
//! [`audio`] (SoundFonts, rendering, WAV, live playback), [`atomic`] (safe
//! writes),
//! [`assets`] (what the binary ships), [`gm`] (General MIDI names), [`live_midi`] (a keyboard's notes recorded
//! and answered), [`cli`] (the
//! headless command line), `app` (the desktop app, feature `gui`).

#[cfg(feature = "gui")]
pub mod app;
pub mod arrangement;
pub mod assets;
pub mod atomic;
pub mod audio;
pub mod checkpoint;
pub mod cli;
pub mod dataset;
pub mod device;
pub mod eval;
pub mod files;
pub mod generate;
pub mod gm;
pub mod image;
pub mod keras;
pub mod limits;
pub mod linalg;
pub mod live_midi;
pub mod meter;
pub mod midi;
pub mod model;
pub mod music;
pub mod record;
pub mod rng;
pub mod roll;
pub mod train;
