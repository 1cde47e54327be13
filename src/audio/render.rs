//! Offline rendering of a roll to stereo samples, and WAV files (hound).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustysynth::SoundFont;

use super::player::{Player, PlayerCommand, PlayerError, Song};
use crate::atomic::{write_atomically, write_atomically_with};
use crate::limits::{self, OutOfRange};

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
    /// A sample rate, gain or tail out of range.
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
    #[error(
        "{seconds:.0} s of audio at {sample_rate} Hz is {bytes} bytes, more than a WAV file \
         holds ({} bytes); lower the sample rate or use 16-bit samples",
        limits::WAV_DATA_BYTES.max
    )]
    TooLongForWav {
        seconds: f64,
        sample_rate: u32,
        bytes: u64,
    },
    #[error(
        "{seconds:.0} s of audio is more than the {IN_MEMORY_SECONDS} s rendered in memory; \
         render it to a WAV file"
    )]
    TooLongForMemory { seconds: f64 },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode WAV: {0}")]
    Wav(#[from] hound::Error),
}

impl From<std::io::Error> for RenderError {
    fn from(error: std::io::Error) -> Self {
        Self::Wav(hound::Error::IoError(error))
    }
}

/// Frames rendered per call: what a sound card asks for at a time.
const BLOCK_FRAMES: usize = 512;

/// Longest audio [`render_song`] keeps in memory (10 minutes: 212 MB of f32
/// at 44.1 kHz); longer pieces stream to a file with [`render_to_wav`].
pub const IN_MEMORY_SECONDS: f64 = 600.0;

/// A song being rendered block by block from its start to its end plus the
/// tail.
struct Rendering {
    player: Player,
    frames_left: usize,
    sample_rate: u32,
}

impl Rendering {
    fn start(
        soundfont: &Arc<SoundFont>,
        song: Song,
        options: &RenderOptions,
    ) -> Result<Self, RenderError> {
        limits::SAMPLE_RATE.check(options.sample_rate)?;
        limits::GAIN_DB.check(options.gain_db)?;
        limits::TAIL_SECONDS.check(options.tail_seconds)?;
        let rate = f64::from(options.sample_rate);
        let body = (song.duration_seconds() * rate).ceil() as usize;
        let tail = (f64::from(options.tail_seconds) * rate).ceil() as usize;
        let mut player = Player::new(
            soundfont,
            options.sample_rate,
            Box::new(song),
            options.reverb_and_chorus,
        )?;
        player.apply(PlayerCommand::Volume(10f32.powf(options.gain_db / 20.0)));
        player.apply(PlayerCommand::Play);
        Ok(Self {
            player,
            frames_left: body.saturating_add(tail),
            sample_rate: options.sample_rate,
        })
    }

    fn seconds(&self) -> f64 {
        self.frames_left as f64 / f64::from(self.sample_rate)
    }

    /// Renders the next block into `left`/`right` (at most their length);
    /// returns the frames written, 0 at the end.
    fn next_block(&mut self, left: &mut [f32], right: &mut [f32]) -> usize {
        let count = self.frames_left.min(left.len()).min(right.len());
        self.player.render(&mut left[..count], &mut right[..count]);
        self.frames_left -= count;
        count
    }
}

/// Renders `song` from its start to its end plus the tail, in memory (for
/// pieces up to [`IN_MEMORY_SECONDS`]).
pub fn render_song(
    soundfont: &Arc<SoundFont>,
    song: Song,
    options: &RenderOptions,
) -> Result<StereoAudio, RenderError> {
    let mut rendering = Rendering::start(soundfont, song, options)?;
    let seconds = rendering.seconds();
    if seconds > IN_MEMORY_SECONDS {
        return Err(RenderError::TooLongForMemory { seconds });
    }
    let frames = rendering.frames_left;
    let mut left = vec![0.0f32; frames];
    let mut right = vec![0.0f32; frames];
    for (l, r) in left
        .chunks_mut(BLOCK_FRAMES)
        .zip(right.chunks_mut(BLOCK_FRAMES))
    {
        rendering.next_block(l, r);
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

impl WavFormat {
    fn spec(self, sample_rate: u32) -> hound::WavSpec {
        hound::WavSpec {
            channels: 2,
            sample_rate,
            bits_per_sample: self.bytes_per_sample() as u16 * 8,
            sample_format: match self {
                Self::Pcm16 => hound::SampleFormat::Int,
                Self::Float32 => hound::SampleFormat::Float,
            },
        }
    }

    fn bytes_per_sample(self) -> u64 {
        match self {
            Self::Pcm16 => 2,
            Self::Float32 => 4,
        }
    }
}

/// Writes stereo frames as samples of `format`.
fn write_frames<W: std::io::Write + std::io::Seek>(
    writer: &mut hound::WavWriter<W>,
    format: WavFormat,
    left: &[f32],
    right: &[f32],
) -> Result<(), hound::Error> {
    for (&l, &r) in left.iter().zip(right) {
        for sample in [l, r] {
            match format {
                WavFormat::Pcm16 => {
                    writer.write_sample((sample.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
                }
                WavFormat::Float32 => writer.write_sample(sample)?,
            }
        }
    }
    Ok(())
}

/// The WAV file's bytes.
pub fn encode_wav(audio: &StereoAudio, format: WavFormat) -> Result<Vec<u8>, RenderError> {
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(audio.frames() * 8 + 44));
    let mut writer = hound::WavWriter::new(&mut cursor, format.spec(audio.sample_rate))?;
    write_frames(&mut writer, format, &audio.left, &audio.right)?;
    writer.finalize()?;
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

/// Renders `song` straight into a WAV file a block at a time, so memory stays
/// at one block however long the piece; the file appears (atomically) only
/// when complete. Returns the seconds of audio written.
pub fn render_to_wav(
    soundfont: &Arc<SoundFont>,
    song: Song,
    options: &RenderOptions,
    path: &Path,
    format: WavFormat,
) -> Result<f64, RenderError> {
    let mut rendering = Rendering::start(soundfont, song, options)?;
    let seconds = rendering.seconds();
    let bytes = (rendering.frames_left as u64).saturating_mul(2 * format.bytes_per_sample());
    if limits::WAV_DATA_BYTES.check(bytes).is_err() {
        return Err(RenderError::TooLongForWav {
            seconds,
            sample_rate: options.sample_rate,
            bytes,
        });
    }
    let (mut left, mut right) = ([0.0f32; BLOCK_FRAMES], [0.0f32; BLOCK_FRAMES]);
    let written = write_atomically_with(path, |file| -> Result<(), RenderError> {
        let mut writer = hound::WavWriter::new(file, format.spec(options.sample_rate))?;
        loop {
            let count = rendering.next_block(&mut left, &mut right);
            if count == 0 {
                break;
            }
            write_frames(&mut writer, format, &left[..count], &right[..count])?;
        }
        writer.finalize()?;
        Ok(())
    });
    written.map_err(|error| match error {
        RenderError::Wav(hound::Error::IoError(source)) => RenderError::Write {
            path: path.to_owned(),
            source,
        },
        other => other,
    })?;
    Ok(seconds)
}
