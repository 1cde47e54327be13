//! `cadenza render` (offline, to WAV) and `cadenza play` (live, `gui` feature).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use super::{MetaArgs, Outcome, ReadArgs};
use crate::audio::player::Song;
use crate::audio::render::{RenderOptions, WavFormat, render_to_wav};
use crate::audio::soundfont::{SHIPPED_SOUNDFONT_NAME, SoundFont, load_soundfont};
use crate::files::load_roll;
use crate::limits;

/// What to play: the file, its grid and the overrides.
#[derive(Debug, Args)]
pub struct SongArgs {
    /// A MIDI file or a midi2img PNG.
    pub input: PathBuf,
    /// An SF2 SoundFont (default: the shipped General MIDI bank).
    #[arg(long, value_name = "SF2")]
    pub soundfont: Option<PathBuf>,
    /// Note-on velocity, 1..=127.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=127))]
    pub velocity: u8,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub meta: MetaArgs,
}

impl SongArgs {
    fn load(&self) -> anyhow::Result<(Song, Arc<SoundFont>, String)> {
        let loaded = load_roll(&self.input, &self.read.load_options(&self.meta))?;
        let roll = &loaded.roll;
        let mut song = Song::from_roll(roll, self.velocity);
        if let Some(tempo) = self.meta.tempo {
            song = song.with_tempo(tempo);
        }
        if let Some(program) = self.meta.program {
            song = song.with_program(program);
        }
        let soundfont = load_soundfont(self.soundfont.as_deref())?;
        let name = self.soundfont.as_deref().map_or_else(
            || SHIPPED_SOUNDFONT_NAME.to_owned(),
            |p: &Path| p.display().to_string(),
        );
        Ok((song, soundfont, name))
    }
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub song: SongArgs,
    /// The WAV file to write.
    pub output: PathBuf,
    /// Frames per second, 16000..=192000.
    #[arg(long, default_value_t = 44_100, value_parser = |s: &str| limits::SAMPLE_RATE.parse(s))]
    pub sample_rate: u32,
    /// Master gain in dB, -60..=24.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true,
          value_parser = |s: &str| limits::GAIN_DB.parse(s))]
    pub gain: f32,
    /// 32-bit float samples instead of 16-bit PCM.
    #[arg(long)]
    pub float: bool,
    /// Seconds rendered after the last note for release tails.
    #[arg(long, default_value_t = 1.5, value_parser = |s: &str| limits::TAIL_SECONDS.parse(s))]
    pub tail: f32,
    /// Leave out the synth's reverb and chorus (a dry render).
    #[arg(long)]
    pub dry: bool,
}

pub fn render(args: &RenderArgs) -> anyhow::Result<Outcome> {
    let (song, soundfont, soundfont_name) = args.song.load()?;
    let options = RenderOptions {
        sample_rate: args.sample_rate,
        gain_db: args.gain,
        tail_seconds: args.tail,
        reverb_and_chorus: !args.dry,
    };
    let format = if args.float {
        WavFormat::Float32
    } else {
        WavFormat::Pcm16
    };
    let started = std::time::Instant::now();
    let seconds = render_to_wav(&soundfont, song, &options, &args.output, format)
        .with_context(|| format!("cannot render {}", args.output.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}: {seconds:.1} s of audio at {} Hz with {soundfont_name}, rendered in {elapsed:.2} s \
         ({:.0}x real time)",
        args.output.display(),
        options.sample_rate,
        seconds / elapsed.max(1e-9)
    );
    Ok(Outcome::Success)
}

#[cfg(feature = "gui")]
pub use live::{PlayArgs, play};

#[cfg(feature = "gui")]
mod live {
    use std::io::Write as _;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use clap::Args;

    use super::super::Outcome;
    use super::SongArgs;
    use crate::audio::output::AudioOutput;
    use crate::audio::player::PlayerCommand;

    #[derive(Debug, Args)]
    pub struct PlayArgs {
        #[command(flatten)]
        pub song: SongArgs,
        /// Start again at the end, until Ctrl+C.
        #[arg(long = "loop")]
        pub looping: bool,
    }

    pub fn play(args: &PlayArgs) -> anyhow::Result<Outcome> {
        let (song, soundfont, soundfont_name) = args.song.load()?;
        let steps = f64::from(song.steps());
        let seconds = song.duration_seconds();
        let mut start = Vec::new();
        if args.looping {
            start.push(PlayerCommand::Loop(Some((0.0, steps))));
        }
        start.push(PlayerCommand::Play);
        let mut output = AudioOutput::open(&soundfont, song, &start).map_err(|e| {
            anyhow::anyhow!("no audio output ({e}); `cadenza render` still writes WAV files")
        })?;
        println!(
            "playing {} on {} ({} Hz, {} channels) with {soundfont_name}",
            args.song.input.display(),
            output.device_name(),
            output.sample_rate(),
            output.channels()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
        let mut stderr = std::io::stderr();
        while !stop.load(Ordering::Relaxed) && !output.status().is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            let position = output.status().position();
            let _ = write!(
                stderr,
                "\r{:6.1} / {:.1} s  step {:.0} / {:.0}",
                position / steps.max(1.0) * seconds,
                seconds,
                position,
                steps
            );
            let _ = stderr.flush();
        }
        let _ = writeln!(stderr);
        let _ = output.send(PlayerCommand::Stop);
        // Let the callback take the stop and ring out briefly before closing.
        std::thread::sleep(Duration::from_millis(150));
        let status = output.status();
        println!(
            "{} frames played, {} underruns, {} stream errors",
            status.frames(),
            status.underruns(),
            status.stream_errors()
        );
        output.close();
        Ok(Outcome::Success)
    }
}

/// `cadenza soundfonts`: the shipped bank and the SF2 files the system has.
pub fn soundfonts() -> anyhow::Result<Outcome> {
    println!("{SHIPPED_SOUNDFONT_NAME} (default)");
    for path in crate::audio::soundfont::system_soundfonts() {
        println!("{}", path.display());
    }
    Ok(Outcome::Success)
}
