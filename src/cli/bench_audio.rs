//! `cadenza bench audio`: offline render speed, SoundFont load time and, where
//! an output device opens, play-to-sound latency and underruns under load.

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

use crate::assets::demo;
use crate::audio::player::Song;
use crate::audio::render::{RenderOptions, render_song};
use crate::audio::soundfont::{SHIPPED_SOUNDFONT, SHIPPED_SOUNDFONT_NAME, parse_soundfont};
use crate::midi::{ImportOptions, import};

/// The figures, also printed as JSON.
#[derive(Debug, Serialize)]
pub struct AudioFigures {
    /// Seconds of audio rendered per second of wall time (44.1 kHz, reverb
    /// and chorus on, as `cadenza render` does by default).
    pub render_realtime_factor: f64,
    /// The same without reverb and chorus (`cadenza render --dry`).
    pub render_realtime_factor_dry: f64,
    pub rendered_seconds: f64,
    pub soundfont_load_ms: f64,
    /// From the play command to the first audible sample leaving the callback.
    pub play_to_sound_ms: Option<f64>,
    /// From the start of the first audio block after a keyboard note-on was
    /// queued (the most it waits is one buffer) to its first audible sample.
    pub keyboard_beyond_buffer_ms: f64,
    /// Underruns reported by the device during the loaded playback.
    pub underruns: Option<u64>,
    pub stream_errors: Option<u64>,
    pub playback_seconds: Option<f64>,
    pub output_device: Option<String>,
    pub soundfont: String,
}

impl AudioFigures {
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "offline render with {}: {:.0}x real time ({:.1} s of a chorale); SoundFont load {:.0} ms",
            self.soundfont,
            self.render_realtime_factor,
            self.rendered_seconds,
            self.soundfont_load_ms
        );
        let _ = writeln!(
            text,
            "a keyboard note sounds {:.2} ms into the first audio block after it arrives",
            self.keyboard_beyond_buffer_ms
        );
        match (&self.output_device, self.play_to_sound_ms, self.underruns) {
            (Some(device), Some(latency), Some(underruns)) => {
                let _ = writeln!(
                    text,
                    "live on {device}: play to sound {latency:.2} ms, {underruns} underruns and {} \
                     stream errors over {:.0} s with a generation loop on the other core",
                    self.stream_errors.unwrap_or_default(),
                    self.playback_seconds.unwrap_or_default()
                );
            }
            _ => {
                let _ = writeln!(text, "live: no audio output to measure");
            }
        }
        text
    }
}

/// The first 30 seconds of the demo chorale BWV 1.6.
fn chorale_excerpt() -> anyhow::Result<Song> {
    let chorale =
        demo("chorale-bwv1.6").ok_or_else(|| anyhow::anyhow!("the demo chorale is missing"))?;
    let (roll, _) = import(chorale.midi, &ImportOptions::default())?;
    let steps = roll.tempo_map().step_at(30.0).round() as usize;
    Ok(Song::from_roll(
        &roll.slice(0, steps.min(roll.steps())),
        100,
    ))
}

pub fn bench_audio(playback_seconds: f64) -> anyhow::Result<AudioFigures> {
    let started = Instant::now();
    let soundfont = parse_soundfont(SHIPPED_SOUNDFONT, SHIPPED_SOUNDFONT_NAME)?;
    let soundfont_load_ms = started.elapsed().as_secs_f64() * 1e3;

    let song = chorale_excerpt()?;
    // The best of five runs: the figure the machine allows, not its noise.
    let time_render = |options: &RenderOptions| -> anyhow::Result<(f64, f64)> {
        let mut best = f64::INFINITY;
        let mut seconds = 0.0;
        for _ in 0..5 {
            let started = Instant::now();
            let audio = render_song(&soundfont, song.clone(), options)?;
            best = best.min(started.elapsed().as_secs_f64());
            seconds = audio.seconds();
        }
        Ok((seconds / best, seconds))
    };
    let (render_realtime_factor, rendered_seconds) = time_render(&RenderOptions::default())?;
    let (render_realtime_factor_dry, _) = time_render(&RenderOptions {
        reverb_and_chorus: false,
        ..RenderOptions::default()
    })?;
    let keyboard_beyond_buffer_ms = keyboard_latency(&soundfont)?;
    let live = live::measure(&soundfont, song, playback_seconds);
    Ok(AudioFigures {
        render_realtime_factor,
        render_realtime_factor_dry,
        rendered_seconds,
        soundfont_load_ms,
        keyboard_beyond_buffer_ms,
        play_to_sound_ms: live.as_ref().map(|l| l.play_to_sound_ms),
        underruns: live.as_ref().map(|l| l.underruns),
        stream_errors: live.as_ref().map(|l| l.stream_errors),
        playback_seconds: live.as_ref().map(|_| playback_seconds),
        output_device: live.map(|l| l.device),
        soundfont: SHIPPED_SOUNDFONT_NAME.to_owned(),
    })
}

/// How far into the next 256-frame block at 48 kHz a keyboard note-on
/// queued between two blocks first sounds (the audio thread's own path,
/// without a device).
fn keyboard_latency(
    soundfont: &std::sync::Arc<crate::audio::soundfont::SoundFont>,
) -> anyhow::Result<f64> {
    use crate::audio::live::live_pair;
    use crate::audio::player::Player;
    use crate::live_midi::LiveMessage;
    const RATE: u32 = 48_000;
    const BLOCK: usize = 256;
    let silent = Song::from_roll(&crate::roll::PianoRoll::default(), 100);
    let player = Player::new(soundfont, RATE, Box::new(silent), true)?;
    let (mut control, mut renderer) = live_pair(player);
    let mut keyboard = control
        .take_keyboard()
        .ok_or_else(|| anyhow::anyhow!("no keyboard queue"))?;
    let mut block = vec![0.0f32; BLOCK * 2];
    renderer.fill(&mut block, 2, |s| s);
    let _ = keyboard.push(LiveMessage::NoteOn {
        channel: 0,
        key: 60,
        velocity: 100,
    });
    let mut frames = 0usize;
    for _ in 0..100 {
        renderer.fill(&mut block, 2, |s| s);
        if let Some(at) = block
            .chunks_exact(2)
            .position(|f| f[0].abs() + f[1].abs() > 1e-4)
        {
            frames += at;
            return Ok(frames as f64 / f64::from(RATE) * 1e3);
        }
        frames += BLOCK;
    }
    anyhow::bail!("the keyboard note never sounded")
}

struct LiveFigures {
    play_to_sound_ms: f64,
    underruns: u64,
    stream_errors: u64,
    device: String,
}

#[cfg(feature = "gui")]
mod live {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use std::time::{Duration, Instant};

    use super::{LiveFigures, Song};
    use crate::audio::output::AudioOutput;
    use crate::audio::player::PlayerCommand;
    use crate::audio::soundfont::SoundFont;
    use crate::generate::{GenerateOptions, NativePredictor, generate_with};
    use crate::model::ArticleNetConfig;
    use crate::model::native::NativeArticleNet;

    pub(super) fn measure(
        soundfont: &Arc<SoundFont>,
        song: Song,
        seconds: f64,
    ) -> Option<LiveFigures> {
        let steps = f64::from(song.steps());
        let mut output = match AudioOutput::open(soundfont, song, &[]) {
            Ok(output) => output,
            Err(error) => {
                eprintln!("note: no live figures: {error}");
                return None;
            }
        };
        // Let the stream settle, then time a play command.
        std::thread::sleep(Duration::from_millis(200));
        let sent = Instant::now();
        // A fresh queue takes two commands.
        let _ = output.send(PlayerCommand::Loop(Some((0.0, steps))));
        let _ = output.send(PlayerCommand::Play);
        while output.status().first_sound_frame().is_none()
            && sent.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_micros(100));
        }
        let play_to_sound_ms = sent.elapsed().as_secs_f64() * 1e3;

        // Load the other core with generation while the music plays.
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let load = std::thread::spawn(move || {
            let model = ArticleNetConfig::article().init(&crate::device::cpu());
            let Ok(net) = NativeArticleNet::from_model(&model) else {
                return;
            };
            let window = [0b1001_0001u128 << 40; 9];
            while !flag.load(Ordering::Relaxed) {
                let _ = generate_with(
                    &mut NativePredictor::new(&net),
                    &window,
                    &GenerateOptions::default(),
                );
            }
        });
        let before = output.status().underruns();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        let _ = load.join();
        let status = output.status();
        let figures = LiveFigures {
            play_to_sound_ms,
            underruns: status.underruns() - before,
            stream_errors: status.stream_errors(),
            device: output.device_name().to_owned(),
        };
        output.close();
        Some(figures)
    }
}

#[cfg(not(feature = "gui"))]
mod live {
    use std::sync::Arc;

    use super::{LiveFigures, Song};
    use crate::audio::soundfont::SoundFont;

    pub(super) fn measure(_: &Arc<SoundFont>, _: Song, _: f64) -> Option<LiveFigures> {
        eprintln!("note: no live figures: built without the `gui` feature (no audio output)");
        None
    }
}
