//! Offline rendering of a roll to stereo samples, and WAV files (hound).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustysynth::SoundFont;

use super::player::{Player, PlayerCommand, PlayerError, Song};
use crate::atomic::write_atomically;

/// How to render.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderOptions {
    /// Frames per second.
    pub sample_rate: u32,
    /// Master gain in decibels (0 = the synth's level).
    pub gain_db: f32,
    /// Seconds rendered after the last note ends, for release tails and reverb.
    pub tail_seconds: f32,
    pub reverb_and_chorus: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            sample_rate: 44_100,
            gain_db: 0.0,
            tail_seconds: 1.5,
            reverb_and_chorus: true,
        }
    }
}

/// Rendered audio: two channels of equal length.
#[derive(Clone, Debug, PartialEq)]
pub struct StereoAudio {
    pub sample_rate: u32,
    pub left: Vec<f32>,
    pub right: Vec<f32>,
}

impl StereoAudio {
    /// Length in frames.
    pub fn frames(&self) -> usize {
        self.left.len()
    }

    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }
}

/// Why rendering or writing audio failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    #[error(transparent)]
    Synth(#[from] PlayerError),
    #[error("the sample rate {0} Hz is outside 16000..=192000")]
    SampleRate(u32),
    #[error("the gain {0} dB is not a finite number")]
    Gain(f32),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode WAV: {0}")]
    Wav(#[from] hound::Error),
}

/// Frames rendered per call: what a sound card asks for at a time.
const BLOCK_FRAMES: usize = 512;

/// Renders `song` from its start to its end plus the tail.
pub fn render_song(
    soundfont: &Arc<SoundFont>,
    song: Song,
    options: &RenderOptions,
) -> Result<StereoAudio, RenderError> {
    if !(16_000..=192_000).contains(&options.sample_rate) {
        return Err(RenderError::SampleRate(options.sample_rate));
    }
    if !options.gain_db.is_finite() {
        return Err(RenderError::Gain(options.gain_db));
    }
    let rate = f64::from(options.sample_rate);
    let body = (song.duration_seconds() * rate).ceil() as usize;
    let tail = (f64::from(options.tail_seconds.max(0.0)) * rate).ceil() as usize;
    let frames = body + tail;
    let mut player = Player::new(
        soundfont,
        options.sample_rate,
        Box::new(song),
        options.reverb_and_chorus,
    )?;
    player.apply(PlayerCommand::Volume(10f32.powf(options.gain_db / 20.0)));
    player.apply(PlayerCommand::Play);
    let mut left = vec![0.0f32; frames];
    let mut right = vec![0.0f32; frames];
    for (l, r) in left
        .chunks_mut(BLOCK_FRAMES)
        .zip(right.chunks_mut(BLOCK_FRAMES))
    {
        player.render(l, r);
    }
    Ok(StereoAudio {
        sample_rate: options.sample_rate,
        left,
        right,
    })
}

/// WAV sample formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WavFormat {
    /// 16-bit integer PCM, dithered by rounding.
    #[default]
    Pcm16,
    /// 32-bit IEEE float.
    Float32,
}

/// The WAV file's bytes.
pub fn encode_wav(audio: &StereoAudio, format: WavFormat) -> Result<Vec<u8>, RenderError> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: audio.sample_rate,
        bits_per_sample: match format {
            WavFormat::Pcm16 => 16,
            WavFormat::Float32 => 32,
        },
        sample_format: match format {
            WavFormat::Pcm16 => hound::SampleFormat::Int,
            WavFormat::Float32 => hound::SampleFormat::Float,
        },
    };
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(audio.frames() * 8 + 44));
    {
        let mut writer = hound::WavWriter::new(&mut cursor, spec)?;
        for (&l, &r) in audio.left.iter().zip(&audio.right) {
            match format {
                WavFormat::Pcm16 => {
                    for s in [l, r] {
                        writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
                    }
                }
                WavFormat::Float32 => {
                    writer.write_sample(l)?;
                    writer.write_sample(r)?;
                }
            }
        }
        writer.finalize()?;
    }
    Ok(cursor.into_inner())
}

/// Writes `audio` as a WAV file, atomically.
pub fn write_wav(audio: &StereoAudio, path: &Path, format: WavFormat) -> Result<(), RenderError> {
    let bytes = encode_wav(audio, format)?;
    write_atomically(path, &bytes).map_err(|source| RenderError::Write {
        path: path.to_owned(),
        source,
    })
}
