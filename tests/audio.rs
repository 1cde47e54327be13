//! Sound: offline rendering against the roll, WAV files, the player's
//! transport, SoundFont errors, and live playback through cpal into an ALSA
//! file sink compared with an offline render of the same roll.

use std::path::Path;
use std::process::Command;

use cadenza::arrangement::{Arrangement, Part, PlayedNote};
use cadenza::audio::live::live_pair;
use cadenza::audio::player::{Player, PlayerCommand, Song};
use cadenza::audio::render::{
    RenderOptions, WavFormat, encode_wav, render_song, render_to_wav, write_wav,
};
use cadenza::audio::soundfont::load_soundfont;
use cadenza::live_midi::LiveMessage;
use cadenza::roll::{PianoRoll, Pitch, RollMeta, RollNote, Tempo};

/// Two steps per quarter at 60 BPM: half a second per step.
fn slow_meta() -> RollMeta {
    RollMeta {
        steps_per_quarter: 2,
        tempo: Tempo::from_bpm(60.0).unwrap(),
        ..RollMeta::default()
    }
}

/// A chord on steps 0..2 and a note on steps 8..10 of a 14-step roll.
fn gapped_roll() -> PianoRoll {
    let note = |start, midi, len| RollNote {
        start,
        pitch: Pitch::from_midi(midi).unwrap(),
        len,
    };
    PianoRoll::from_notes(
        14,
        [
            note(0, 60, 2),
            note(0, 64, 2),
            note(0, 67, 2),
            note(8, 72, 2),
        ],
        slow_meta(),
    )
    .unwrap()
}

/// Renders one buffer and checks where the playhead ends up.
fn render_to(player: &mut Player, left: &mut [f32], right: &mut [f32], expected: f64) {
    player.render(left, right);
    assert!(
        (player.position() - expected).abs() < 1e-6,
        "{} vs {expected}",
        player.position()
    );
}

fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

#[test]
fn a_render_sounds_where_the_roll_has_notes_and_is_silent_elsewhere() {
    let font = load_soundfont(None).unwrap();
    let options = RenderOptions {
        reverb_and_chorus: false,
        ..RenderOptions::default()
    };
    let audio = render_song(&font, Song::from_roll(&gapped_roll(), 100), &options).unwrap();
    let step = audio.sample_rate as usize / 2;
    assert_eq!(audio.frames(), 14 * step + (1.5 * 44_100.0) as usize);
    let window =
        |steps: std::ops::Range<usize>| rms(&audio.left[steps.start * step..steps.end * step]);
    let (chord, gap, note, after) = (window(0..2), window(5..8), window(8..10), window(13..14));
    assert!(chord > 0.01, "chord rms {chord}");
    assert!(note > 0.005, "note rms {note}");
    assert!(gap < chord / 100.0, "gap rms {gap} vs {chord}");
    assert!(after < note / 100.0, "after rms {after} vs {note}");
    // The first step sounds from its first frames.
    assert!(rms(&audio.left[..step / 10]) > 0.001);

    let again = render_song(&font, Song::from_roll(&gapped_roll(), 100), &options).unwrap();
    assert_eq!(audio, again, "rendering is deterministic");

    let quieter = render_song(
        &font,
        Song::from_roll(&gapped_roll(), 100),
        &RenderOptions {
            gain_db: -20.0,
            ..options
        },
    )
    .unwrap();
    let ratio = rms(&quieter.left) / rms(&audio.left);
    assert!((ratio - 0.1).abs() < 0.01, "-20 dB gave a ratio of {ratio}");
}

#[test]
fn wav_files_read_back_with_their_length_and_format() {
    let font = load_soundfont(None).unwrap();
    let options = RenderOptions {
        sample_rate: 48_000,
        ..RenderOptions::default()
    };
    let audio = render_song(&font, Song::from_roll(&gapped_roll(), 90), &options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (format, bits, sample_format) in [
        (WavFormat::Pcm16, 16, hound::SampleFormat::Int),
        (WavFormat::Float32, 32, hound::SampleFormat::Float),
    ] {
        let path = dir.path().join(format!("out{bits}.wav"));
        write_wav(&audio, &path, format).unwrap();
        let reader = hound::WavReader::open(&path).unwrap();
        let spec = reader.spec();
        assert_eq!(
            (
                spec.channels,
                spec.sample_rate,
                spec.bits_per_sample,
                spec.sample_format
            ),
            (2, 48_000, bits, sample_format)
        );
        assert_eq!(reader.duration() as usize, audio.frames());
    }
    let floats: Vec<f32> = hound::WavReader::new(std::io::Cursor::new(
        encode_wav(&audio, WavFormat::Float32).unwrap(),
    ))
    .unwrap()
    .into_samples::<f32>()
    .step_by(2)
    .map(Result::unwrap)
    .collect();
    assert_eq!(floats, audio.left);

    // Streaming to the file gives the same samples as rendering in memory.
    let streamed = dir.path().join("streamed.wav");
    let song = Song::from_roll(&gapped_roll(), 90);
    let seconds = render_to_wav(&font, song, &options, &streamed, WavFormat::Float32).unwrap();
    assert!((seconds - audio.seconds()).abs() < 1e-9);
    let samples: Vec<f32> = hound::WavReader::open(&streamed)
        .unwrap()
        .into_samples::<f32>()
        .map(Result::unwrap)
        .collect();
    let interleaved: Vec<f32> = audio
        .left
        .iter()
        .zip(&audio.right)
        .flat_map(|(&l, &r)| [l, r])
        .collect();
    assert_eq!(samples, interleaved);
    // A song too long for a WAV file is refused before anything is written.
    let endless = Song::from_roll(
        &PianoRoll::new(
            1_000_000,
            RollMeta {
                tempo: Tempo::from_bpm(4.0).unwrap(),
                ..RollMeta::default()
            },
        )
        .unwrap(),
        90,
    );
    let too_long = dir.path().join("too-long.wav");
    let error = render_to_wav(&font, endless, &options, &too_long, WavFormat::Pcm16).unwrap_err();
    assert!(
        error.to_string().contains("more than a WAV file holds"),
        "{error}"
    );
    assert!(!too_long.exists());
}

/// A song of `steps` silent steps, told apart by its length.
fn silent_song(steps: usize) -> Song {
    Song::from_roll(&PianoRoll::new(steps, slow_meta()).unwrap(), 90)
}

#[test]
fn the_audio_thread_plays_the_newest_of_several_queued_songs() {
    let font = load_soundfont(None).unwrap();
    let player = Player::new(&font, 48_000, Box::new(silent_song(10)), false).unwrap();
    let (mut control, mut renderer) = live_pair(player);
    for steps in [20, 30, 40] {
        control.replace_song(silent_song(steps)).unwrap();
    }
    let mut buffer = vec![0.0f32; 2 * 256];
    renderer.fill(&mut buffer, 2, |sample| sample);
    assert_eq!(renderer.song().steps(), 40, "the newest song plays");
    assert_eq!(control.status().songs_skipped(), 2);
    // The two skipped songs and the first one come back to be freed here.
    assert_eq!(control.collect_retired(), 3);
    assert_eq!(control.status().frames(), 256);

    // An audio thread that stops taking songs: the queue fills, and the
    // song that does not fit is handed back, not lost.
    let mut refused = None;
    for steps in 50..200 {
        if let Err(back) = control.replace_song(silent_song(steps)) {
            refused = Some((steps, back.into_song()));
            break;
        }
    }
    let (steps, song) = refused.expect("a full queue refuses");
    assert_eq!(song.steps() as usize, steps);
    renderer.fill(&mut buffer, 2, |sample| sample);
    assert_eq!(renderer.song().steps() as usize, steps - 1);
    assert!(control.replace_song(song).is_ok(), "room again");
}

#[test]
fn the_player_seeks_loops_and_swaps_songs_keeping_the_playhead() {
    let font = load_soundfont(None).unwrap();
    let mut player = Player::new(
        &font,
        22_050,
        Box::new(Song::from_roll(&gapped_roll(), 100)),
        false,
    )
    .unwrap();
    let (mut left, mut right) = (vec![0.0; 11_025], vec![0.0; 11_025]);
    // Paused: nothing moves and nothing sounds.
    player.render(&mut left, &mut right);
    assert_eq!(player.position(), 0.0);
    assert_eq!(rms(&left), 0.0);

    player.apply(PlayerCommand::Play);
    player.render(&mut left, &mut right); // half a second = one step
    assert!(
        (player.position() - 1.0).abs() < 1e-6,
        "{}",
        player.position()
    );
    assert!(rms(&left) > 0.01);

    player.apply(PlayerCommand::Loop(Some((8.0, 10.0))));
    player.apply(PlayerCommand::Seek(8.0));
    for _ in 0..9 {
        player.render(&mut left, &mut right);
        let position = player.position();
        assert!((8.0..10.0).contains(&position), "left the loop: {position}");
    }
    player.apply(PlayerCommand::Loop(None));

    // A new song at the same playhead; a shorter one clamps it.
    let position = player.position();
    let longer = PianoRoll::from_notes(40, [], slow_meta()).unwrap();
    player.replace_song(Box::new(Song::from_roll(&longer, 100)));
    assert!((player.position() - position).abs() < 1e-9);
    let short = PianoRoll::from_notes(4, [], slow_meta()).unwrap();
    let old = player.replace_song(Box::new(Song::from_roll(&short, 100)));
    assert_eq!(old.steps(), 40);
    assert_eq!(player.position(), 4.0);

    // Tempo doubles the pace.
    player.apply(PlayerCommand::Seek(0.0));
    player.apply(PlayerCommand::Tempo(120.0));
    render_to(&mut player, &mut left, &mut right, 2.0);
    player.apply(PlayerCommand::Play);
    for _ in 0..4 {
        player.render(&mut left, &mut right);
    }
    assert!(player.is_finished() && !player.is_playing());
}

/// A roll of parts: a soft and a loud piano note, a drum hit on channel 10,
/// and a tempo map (60 BPM, then 120 from step 4).
fn arranged_roll() -> PianoRoll {
    let meta = slow_meta();
    let c4 = Pitch::from_midi(60).unwrap();
    let mut roll = PianoRoll::from_notes(
        12,
        [0, 8].map(|start| RollNote {
            start,
            pitch: c4,
            len: 2,
        }),
        meta,
    )
    .unwrap();
    let parts = vec![
        Part {
            name: "Piano".into(),
            channel: 0,
        },
        Part {
            name: "Drums".into(),
            channel: 9,
        },
    ];
    let notes = vec![
        PlayedNote::on_grid(0, 2, 60, 0, 20, 0),
        PlayedNote::on_grid(8, 2, 60, 0, 127, 0),
        PlayedNote {
            in_roll: false,
            ..PlayedNote::on_grid(4, 1, 38, 1, 120, 0)
        },
    ];
    let faster = vec![(4, Tempo::from_bpm(120.0).unwrap())];
    roll.set_arrangement(Arrangement::new(parts, notes, faster, vec![], &meta).unwrap());
    roll
}

#[test]
fn the_player_follows_the_tempo_map_velocities_and_drums() {
    let font = load_soundfont(None).unwrap();
    let roll = arranged_roll();
    let song = Song::from_roll(&roll, 100);
    // 4 steps at half a second, 8 at a quarter.
    assert!((song.duration_seconds() - 4.0).abs() < 1e-9);
    let mut player = Player::new(&font, 22_050, Box::new(song.clone()), false).unwrap();
    player.apply(PlayerCommand::Play);
    let (mut left, mut right) = (vec![0.0; 11_025], vec![0.0; 11_025]);
    let mut loudness = Vec::new();
    for _ in 0..8 {
        player.render(&mut left, &mut right);
        loudness.push(rms(&left));
    }
    assert!(player.is_finished());
    // The drum (step 4 = 2 s) sounds on channel 10; the loud note (step 8
    // = 3 s) is louder than the soft one (step 0).
    assert!(loudness[4] > 0.005, "{loudness:?}");
    assert!(loudness[6] > 2.0 * loudness[0], "{loudness:?}");

    // The same through seeking: the playhead is where the map puts it.
    let mut player = Player::new(&font, 22_050, Box::new(song), false).unwrap();
    player.apply(PlayerCommand::Play);
    for expected in [1.0, 2.0, 3.0, 4.0, 6.0, 8.0] {
        render_to(&mut player, &mut left, &mut right, expected);
    }
    // Seeking into the fast part and playing half a second: two steps.
    player.apply(PlayerCommand::Seek(5.0));
    render_to(&mut player, &mut left, &mut right, 7.0);
    // The listener's tempo scales the whole map: 120 at the start, 240 after.
    player.apply(PlayerCommand::Seek(0.0));
    player.apply(PlayerCommand::Tempo(120.0));
    render_to(&mut player, &mut left, &mut right, 2.0);
    render_to(&mut player, &mut left, &mut right, 4.0);
    render_to(&mut player, &mut left, &mut right, 8.0);
}

fn cadenza(args: &[&str], home: Option<&Path>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cadenza"));
    command.args(args);
    if let Some(home) = home {
        command.env("HOME", home);
    }
    command.output().unwrap()
}

#[test]
fn render_command_writes_wav_and_names_bad_soundfonts() {
    let dir = tempfile::tempdir().unwrap();
    let midi = dir.path().join("gap.mid");
    cadenza::midi::export_file(&gapped_roll(), &midi, &Default::default()).unwrap();
    let wav = dir.path().join("gap.wav");
    let out = cadenza(
        &[
            "render",
            midi.to_str().unwrap(),
            wav.to_str().unwrap(),
            "--sample-rate",
            "22050",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        hound::WavReader::open(&wav).unwrap().spec().sample_rate,
        22_050
    );

    let fake = dir.path().join("fake.sf2");
    std::fs::write(&fake, b"MThd\0\0\0\x06\0\x01\0\x01\0\x60").unwrap();
    for (soundfont, expected) in [
        (fake.to_str().unwrap(), "a MIDI file"),
        ("/nonexistent/bank.sf2", "cannot read"),
    ] {
        let out = cadenza(
            &[
                "render",
                midi.to_str().unwrap(),
                wav.to_str().unwrap(),
                "--soundfont",
                soundfont,
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected) && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
}

/// Plays a roll through cpal into ALSA's file plugin (the default device of
/// a private `.asoundrc`) and compares what reached the file with an offline
/// render at the stream's rate.
#[cfg(all(feature = "gui", target_os = "linux"))]
#[test]
fn live_playback_reaches_the_device_sample_for_sample() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("out.raw");
    std::fs::write(
        dir.path().join(".asoundrc"),
        format!(
            "pcm.!default {{ type file; slave.pcm \"null\"; file \"{}\"; format \"raw\" }}\n",
            raw.display()
        ),
    )
    .unwrap();
    let roll = PianoRoll::from_notes(
        8,
        [RollNote {
            start: 1,
            pitch: Pitch::from_midi(62).unwrap(),
            len: 3,
        }],
        RollMeta {
            steps_per_quarter: 4,
            tempo: Tempo::from_bpm(120.0).unwrap(),
            ..RollMeta::default()
        },
    )
    .unwrap();
    let midi = dir.path().join("short.mid");
    cadenza::midi::export_file(&roll, &midi, &Default::default()).unwrap();
    let out = cadenza(&["play", midi.to_str().unwrap()], Some(dir.path()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "playing ... (48000 Hz, 2 channels) ..."
    let rate: u32 = stdout
        .split(" Hz")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample rate in {stdout}"));
    assert!(stdout.contains("2 channels"), "{stdout}");

    let bytes = std::fs::read(&raw).unwrap();
    let played: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .step_by(2)
        .collect();
    let font = load_soundfont(None).unwrap();
    let offline = render_song(
        &font,
        Song::from_roll(&roll, 100),
        &RenderOptions {
            sample_rate: rate,
            tail_seconds: 0.0,
            ..RenderOptions::default()
        },
    )
    .unwrap();
    let first = |s: &[f32]| s.iter().position(|v| v.abs() > 1e-4);
    let (a, b) = (
        first(&played).expect("the sink got sound"),
        first(&offline.left).unwrap(),
    );
    let n = offline.frames() - b;
    assert!(
        played.len() >= a + n,
        "the sink got {} frames, wanted {}",
        played.len(),
        a + n
    );
    let worst = played[a..a + n]
        .iter()
        .zip(&offline.left[b..])
        .map(|(p, o)| (p - o).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "live and offline differ by {worst}");
}

#[test]
fn a_live_keyboard_sounds_at_once_and_playback_reaches_the_event_tap() {
    let font = load_soundfont(None).unwrap();
    let mut player = Player::new(&font, 22_050, Box::new(silent_song(10)), false).unwrap();
    let (mut left, mut right) = (vec![0.0; 2_205], vec![0.0; 2_205]);
    player.render(&mut left, &mut right);
    assert_eq!(rms(&left), 0.0);
    // A key played while the song is stopped sounds in the next block.
    player.apply(PlayerCommand::LiveProgram(0));
    player.play_live(LiveMessage::NoteOn {
        channel: 0,
        key: 60,
        velocity: 100,
    });
    player.render(&mut left, &mut right);
    assert!(rms(&left) > 0.01, "{}", rms(&left));
    // With the internal synth off it does not.
    player.apply(PlayerCommand::InternalSynth(false));
    for _ in 0..20 {
        player.render(&mut left, &mut right); // the release dies away
    }
    player.play_live(LiveMessage::NoteOn {
        channel: 0,
        key: 64,
        velocity: 100,
    });
    player.render(&mut left, &mut right);
    assert!(rms(&left) < 1e-4, "{}", rms(&left));

    // Playback goes to the tap as MIDI bytes: programs, notes, and every
    // note off when it stops.
    let (tap, mut tapped) = rtrb::RingBuffer::new(1024);
    let mut player = Player::new(
        &font,
        22_050,
        Box::new(Song::from_roll(&arranged_roll(), 100)),
        false,
    )
    .unwrap();
    player.set_tap(tap);
    player.apply(PlayerCommand::InternalSynth(false));
    player.apply(PlayerCommand::Play);
    let (mut left, mut right) = (vec![0.0; 11_025], vec![0.0; 11_025]);
    for _ in 0..8 {
        player.render(&mut left, &mut right);
    }
    assert!(rms(&left) < 1e-4, "the internal synth is off");
    let mut bytes = Vec::new();
    while let Ok(message) = tapped.pop() {
        bytes.push(message);
    }
    assert!(bytes.contains(&[0xC0, 0, 0]), "{bytes:?}");
    assert!(
        bytes.contains(&[0x90, 60, 20]) && bytes.contains(&[0x90, 60, 127]),
        "{bytes:?}"
    );
    assert!(
        bytes.contains(&[0x99, 38, 120]),
        "the drum on channel 10: {bytes:?}"
    );
    assert!(bytes.contains(&[0x80, 60, 64]), "{bytes:?}");
    assert!(
        bytes.contains(&[0xB9, 123, 0]),
        "all notes off at the end: {bytes:?}"
    );
}

#[test]
fn a_new_instrument_never_changes_the_drum_kit() {
    let meta = slow_meta();
    let mut roll = PianoRoll::new(4, meta).unwrap();
    let drums = vec![Part {
        name: "Drums".into(),
        channel: 9,
    }];
    let hit = PlayedNote {
        in_roll: false,
        ..PlayedNote::on_grid(0, 1, 38, 0, 100, 0)
    };
    roll.set_arrangement(Arrangement::new(drums, vec![hit], vec![], vec![], &meta).unwrap());
    let song = Song::from_roll(&roll, 100).with_program(40);
    let programs: Vec<(u8, u8)> = song
        .events()
        .iter()
        .filter(|e| e.kind == cadenza::audio::player::EventKind::Program)
        .map(|e| (e.channel, e.value))
        .collect();
    assert_eq!(programs, vec![(9, 0)]);
}
