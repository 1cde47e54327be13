//! Cadenza's integration tests: one binary, one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

#[cfg(feature = "gui")]
mod app_compose;
#[cfg(feature = "gui")]
mod app_ui;
#[cfg(all(feature = "gui", target_os = "linux"))]
mod app_window;
mod audio;
mod bounds;
mod cli;
mod composer;
mod corpus;
mod determinism;
mod gpu;
mod helpers;
mod image_png;
mod midi_import;
mod midi_metre;
mod model_cli;
mod model_files;
mod model_parity;
mod roll_lstm;
mod roll_trips;
mod studio;
