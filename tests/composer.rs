//! The composer: its chain rule sums to one, its CPU copy agrees with burn
//! (with and without music after a gap), it trains, and generation obeys
//! scales, ranges, locks and density, and fills a passage leaving every
//! other cell alone — from the library and from the command line.

use burn::tensor::{Int, Tensor, TensorData};
use cadenza::checkpoint::{Checkpoint, CheckpointHeader};
use cadenza::dataset::{Dataset, Preset, SongRoll, Split};
use cadenza::device;
use cadenza::generate::{
    After, Constraints, Fill, GenerateError, GenerateOptions, NativeComposerPredictor, Placement,
    Predictor, Rule, compose, fill,
};
use cadenza::meter::{METER_FEATURES, Meter, TimeSignature};
use cadenza::model::composer::{ComposerInput, GAP_FEATURES, gap_features};
use cadenza::model::native::NativeComposer;
use cadenza::model::{Composer, ComposerConfig, Network, RollLstmConfig};
use cadenza::music::{PitchRange, Scale};
use cadenza::record::TrainSettings;
use cadenza::roll::{PITCH_COUNT, PianoRoll, RollMeta};
use cadenza::train::Trainer;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::helpers::{cadenza, path, text};

pub fn small_config() -> ComposerConfig {
    ComposerConfig::new()
        .with_units(24)
        .with_future_units(12)
        .with_nade_units(16)
        .with_near_after(Some(true))
        .with_pitch_profile(Some(true))
        .with_key_input(Some(true))
}

/// A small composer with non-trivial weights (the default init, seeded).
pub fn small_model() -> Composer {
    let device = device::cpu();
    device.seed(11);
    small_config().init(&device)
}

pub fn random_steps(rng: &mut StdRng, steps: usize) -> Vec<u128> {
    (0..steps)
        .map(|_| (0..4).fold(0u128, |m, _| m | 1u128 << rng.random_range(20..80)))
        .collect()
}

fn floats(masks: &[u128]) -> Vec<f32> {
    let mut out = vec![0.0f32; masks.len() * PITCH_COUNT];
    for (mask, row) in masks.iter().zip(out.chunks_exact_mut(PITCH_COUNT)) {
        cadenza::roll::mask_to_floats(*mask, row);
    }
    out
}

/// The whole-stretch burn input for `steps` led in by silence, every step
/// before `gap_end` seeing the music from `gap_end` on, on `cpu` (any device).
pub fn burn_input(
    steps: &[u128],
    meter: Meter,
    gap_end: Option<usize>,
    cpu: &burn::tensor::Device,
) -> ComposerInput {
    let time = steps.len();
    let mut previous = vec![0u128];
    previous.extend(&steps[..time - 1]);
    let mut meter_features = vec![0.0f32; time * METER_FEATURES];
    for (t, row) in meter_features.chunks_exact_mut(METER_FEATURES).enumerate() {
        meter.features(t, row);
    }
    let mut gap = vec![0.0f32; time * GAP_FEATURES];
    let mut ends = Vec::new();
    for (t, row) in gap.chunks_exact_mut(GAP_FEATURES).enumerate() {
        let distance = gap_end.filter(|&end| end > t).map(|end| end - t);
        gap_features(distance, row);
        ends.push(gap_end.filter(|&end| end > t).unwrap_or(t) as i64);
    }
    let tensor = |values: Vec<f32>, width: usize| {
        Tensor::<3>::from_data(TensorData::new(values, [1, time, width]), cpu)
    };
    ComposerInput {
        previous: tensor(floats(&previous), PITCH_COUNT),
        meter: tensor(meter_features, METER_FEATURES),
        targets: tensor(floats(steps), PITCH_COUNT),
        gap_end: Tensor::<2, Int>::from_data(TensorData::new(ends, [1, time]), cpu),
        gap: tensor(gap, GAP_FEATURES),
    }
}

#[test]
fn the_chain_rule_gives_a_distribution_over_whole_steps() {
    // Three pitches: the eight possible steps' probabilities sum to one.
    let device = device::cpu();
    device.seed(5);
    let model = small_config().with_pitches(3).init(&device);
    // Each of the eight possible steps in its own batch row, all from the
    // zero state with the same meter and no gap: one shared context.
    let mut all = Vec::new();
    for code in 0..8 {
        all.extend((0..3).map(|bit| ((code >> bit) & 1) as f32));
    }
    let batch = |values: Vec<f32>, width: usize| {
        Tensor::<3>::from_data(TensorData::new(values, [8, 1, width]), &device)
    };
    let mut meter = vec![0.0f32; 8 * METER_FEATURES];
    for row in meter.chunks_exact_mut(METER_FEATURES) {
        row[0] = 1.0;
    }
    let input = ComposerInput {
        previous: batch(vec![0.0; 8 * 3], 3),
        meter: batch(meter, METER_FEATURES),
        targets: batch(all, 3),
        gap_end: Tensor::<2, Int>::from_data(TensorData::new(vec![0i64; 8], [8, 1]), &device),
        gap: batch(vec![0.0; 8 * GAP_FEATURES], GAP_FEATURES),
    };
    let nll: Vec<f32> = model.step_nll(&input).into_data().try_into_vec().unwrap();
    let total: f32 = nll.iter().map(|n| (-n).exp()).sum();
    assert!((total - 1.0).abs() < 1e-5, "the 8 steps sum to {total}");
    assert!(nll.iter().all(|&n| n > 0.0));
}

#[test]
fn the_cpu_copy_scores_like_burn_with_and_without_music_after() {
    let model = small_model();
    let net = NativeComposer::from_model(&model).unwrap();
    let meter = Meter::new(TimeSignature::new(3, 4).unwrap(), 2);
    // Long enough for the pitch-class profile to decay.
    let steps = random_steps(&mut StdRng::seed_from_u64(3), 80);
    for gap_end in [None, Some(9)] {
        let expected: Vec<f32> = burn::tensor::activation::sigmoid(
            model.conditional_logits(&burn_input(&steps, meter, gap_end, &device::cpu())),
        )
        .into_data()
        .try_into_vec()
        .unwrap();
        let mut predictor = NativeComposerPredictor::new(&net);
        let after = gap_end.map(|at| After {
            steps: &steps[at..],
            at,
        });
        predictor
            .place(&Placement {
                meter,
                first_step: 0,
                after,
            })
            .unwrap();
        predictor.start(&[&[0u128]]).unwrap();
        let mut got = Vec::new();
        for (t, &step) in steps.iter().enumerate() {
            predictor.conditionals(&[step], &mut got).unwrap();
            let want = &expected[t * PITCH_COUNT..(t + 1) * PITCH_COUNT];
            let worst = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                worst < 1e-5,
                "step {t} (gap end {gap_end:?}): burn and the CPU copy differ by {worst}"
            );
            predictor.advance(&[step]).unwrap();
        }
    }
}

/// Songs of repeated four-step chord patterns in 4/4 on quarters, varied
/// by transposition, so a little training learns a lot.
pub fn patterned_songs(count: usize) -> Vec<SongRoll> {
    let mut rng = StdRng::seed_from_u64(9);
    (0..count)
        .map(|_| {
            let shift = rng.random_range(0..12);
            let chords = [[39, 43, 46], [44, 48, 51], [46, 50, 53], [39, 43, 46]];
            let steps = (0..48)
                .map(|t| {
                    chords[t % 4]
                        .iter()
                        .fold(0u128, |m, &row| m | 1u128 << (row + shift))
                })
                .collect();
            SongRoll {
                steps,
                meter: Meter::new(TimeSignature::COMMON, 1),
            }
        })
        .collect()
}

/// A small composer without dropout, on 16-step stretches in batches of 8.
fn small_trainer(data: &Dataset, learning_rate: f64) -> Trainer {
    let settings = TrainSettings {
        batch_size: 8,
        sequence_steps: 16,
        learning_rate,
        ..cadenza::train::default_settings(cadenza::model::Architecture::Composer)
    };
    Trainer::new(
        small_config().with_dropout(0.0),
        settings,
        data,
        "test songs",
        &device::cpu(),
    )
    .unwrap()
}

#[test]
fn the_composer_trains_and_validates_whole_songs() {
    let data = Dataset::from_songs(patterned_songs(24), Preset::Forward, Split::Last(4)).unwrap();
    assert_eq!(data.report().files_validation, 4);
    let mut trainer = small_trainer(&data, 3e-3);
    let before = trainer.validation_loss(&data).unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("composer.cadenza");
    let never = std::sync::atomic::AtomicBool::new(false);
    trainer
        .fit(&data, 6, None, &out, &never, &mut |_| {})
        .unwrap();
    let after = trainer.validation_loss(&data).unwrap().unwrap();
    assert!(
        after < 0.6 * before,
        "validation nats per step {before} -> {after}"
    );
    // The file loads back as a composer that scores the same.
    let back = Checkpoint::load(&out)
        .unwrap()
        .model(&device::cpu())
        .unwrap();
    let figures = cadenza::eval::song_likelihood(&back, &data).unwrap();
    assert!((figures.nll_per_step - after).abs() < 1e-3 * after.max(1.0));
    assert_eq!(figures.frames, 4 * 48);
    assert!(figures.frame_nll_88 <= figures.nll_per_step + 1e-9);
}

fn generate_with_constraints(
    net: &NativeComposer,
    constraints: &Constraints,
    steps: usize,
) -> Vec<Vec<u128>> {
    let seed = random_steps(&mut StdRng::seed_from_u64(1), 12);
    let options = GenerateOptions {
        steps,
        rule: Rule::Sample {
            temperature: 1.0,
            rng_seed: 4,
        },
        variations: 3,
    };
    let placement = Placement {
        first_step: 12,
        ..Placement::default()
    };
    compose(
        &mut NativeComposerPredictor::new(net),
        &seed,
        &placement,
        constraints,
        &options,
        &|| false,
    )
    .unwrap()
    .into_iter()
    .map(|c| c.steps)
    .collect()
}

#[test]
fn generation_keeps_the_scale_the_range_and_the_locks_exactly() {
    let model = small_model();
    let net = NativeComposer::from_model(&model).unwrap();
    let scale: Scale = "D:dorian".parse().unwrap();
    let range: PitchRange = "C3..C6".parse().unwrap();
    let allowed = scale.row_mask() & range.row_mask();
    let c_sharp_4 = 1u128 << (61 - 21);
    let e_4 = 1u128 << (64 - 21);
    let mut constraints = Constraints {
        allowed: Some(allowed),
        ..Constraints::default()
    };
    // Locked outside the scale, and a scale note locked silent everywhere.
    for step in [12, 15, 20] {
        constraints.sounding.insert(step, c_sharp_4);
    }
    for step in 12..60 {
        constraints.silent.insert(step, e_4);
    }
    let free = generate_with_constraints(&net, &Constraints::default(), 48);
    let bound = generate_with_constraints(&net, &constraints, 48);
    assert!(
        free.iter().flatten().any(|&m| m & !allowed != 0),
        "the unconstrained model strays from the scale, so the test means something"
    );
    for steps in &bound {
        for (k, &mask) in steps.iter().enumerate() {
            let step = 12 + k;
            let locked = if [12, 15, 20].contains(&step) {
                c_sharp_4
            } else {
                0
            };
            assert_eq!(mask & locked, locked, "locked note missing at step {step}");
            assert_eq!(
                mask & !allowed & !locked,
                0,
                "a note outside at step {step}"
            );
            assert_eq!(mask & e_4, 0, "a silenced cell sounds at step {step}");
        }
    }
}

#[test]
fn density_steers_the_notes_per_step() {
    let model = small_model();
    let net = NativeComposer::from_model(&model).unwrap();
    let mean = |runs: &[Vec<u128>]| {
        let (notes, steps) = runs
            .iter()
            .flatten()
            .fold((0u32, 0u32), |(n, s), m| (n + m.count_ones(), s + 1));
        f64::from(notes) / f64::from(steps)
    };
    let free = mean(&generate_with_constraints(
        &net,
        &Constraints::default(),
        160,
    ));
    for target in [2.0f32, 9.0] {
        let constraints = Constraints {
            density: Some(target),
            ..Constraints::default()
        };
        let steered = mean(&generate_with_constraints(&net, &constraints, 160));
        assert!(
            (steered - f64::from(target)).abs() <= 0.15 * f64::from(target),
            "density {target}: {steered} notes per step (free: {free})"
        );
    }
}

/// Variations are split over the cores, each share stepped together from
/// one fed seed: every variation must still be exactly its lone run
/// (variation `i` draws with `rng_seed + i`), for a fill with music after
/// and density control, and for the roll LSTM.
#[test]
fn variations_on_several_cores_are_their_lone_runs() {
    let selected = device::cpu_selected(None);
    let steps = random_steps(&mut StdRng::seed_from_u64(21), 48);
    let roll = PianoRoll::from_sounding(steps, RollMeta::default()).unwrap();
    let request = |rng_seed: u64, variations: usize| Fill {
        range: 12..30,
        meter: Meter::default(),
        constraints: Constraints {
            density: Some(3.0),
            ..Constraints::default()
        },
        options: GenerateOptions {
            steps: 18,
            rule: Rule::Sample {
                temperature: 1.0,
                rng_seed,
            },
            variations,
        },
    };
    let composer = Network::Composer(small_model());
    let roll_lstm = Network::RollLstm(RollLstmConfig::new().with_units(24).init(&device::cpu()));
    // The roll LSTM continues (a fill to the roll's end); the composer fills.
    for (network, range) in [(&composer, 12..30), (&roll_lstm, 30..48)] {
        let at_once = |rng_seed, variations| {
            let mut fill_request = request(rng_seed, variations);
            fill_request.range = range.clone();
            fill(network, &selected, &roll, &fill_request, &|| false).unwrap()
        };
        let together = at_once(40, 5);
        assert_eq!(together.len(), 5);
        for (i, variation) in together.iter().enumerate() {
            let alone = at_once(40 + i as u64, 1);
            assert_eq!(
                &alone[0],
                variation,
                "variation {i} of {:?}",
                network.architecture()
            );
        }
        assert_ne!(together[0].steps, together[1].steps);
    }
}

#[test]
fn a_fill_rewrites_only_its_passage_and_needs_the_composer() {
    let composer = Network::Composer(small_model());
    let steps = random_steps(&mut StdRng::seed_from_u64(8), 40);
    let roll = PianoRoll::from_sounding(steps.clone(), RollMeta::default()).unwrap();
    let selected = device::cpu_selected(None);
    let request = Fill {
        range: 10..26,
        meter: Meter::default(),
        constraints: Constraints::default(),
        options: GenerateOptions {
            steps: 16,
            rule: Rule::Sample {
                temperature: 1.0,
                rng_seed: 2,
            },
            variations: 2,
        },
    };
    let filled = fill(&composer, &selected, &roll, &request, &|| false).unwrap();
    assert_eq!(filled.len(), 2);
    for variation in &filled {
        assert_eq!(variation.steps.len(), 16);
        let written = variation.written_into(&roll, 10).unwrap();
        assert_eq!(written.steps(), 40);
        for (t, (&new, &old)) in written.sounding_masks().iter().zip(&steps).enumerate() {
            if !(10..26).contains(&t) {
                assert_eq!(new, old, "step {t} outside the passage changed");
            } else {
                assert_eq!(new, variation.steps[t - 10]);
            }
        }
    }
    // A network that only continues refuses a gap, but may fill to the end.
    let device = device::cpu();
    let roll_lstm = Network::RollLstm(RollLstmConfig::new().with_units(16).init(&device));
    assert_eq!(
        fill(&roll_lstm, &selected, &roll, &request, &|| false).unwrap_err(),
        GenerateError::CannotFill("roll LSTM")
    );
    let to_the_end = Fill {
        range: 30..40,
        ..request.clone()
    };
    assert_eq!(
        fill(&roll_lstm, &selected, &roll, &to_the_end, &|| false).unwrap()[0]
            .steps
            .len(),
        10
    );
    let outside = Fill {
        range: 30..41,
        ..request
    };
    assert!(matches!(
        fill(&composer, &selected, &roll, &outside, &|| false),
        Err(GenerateError::BadFillRange { .. })
    ));
}

/// [`small_model`] written as a model file in `dir`.
fn saved_small_model(dir: &std::path::Path) -> std::path::PathBuf {
    let model = dir.join("composer.cadenza");
    Checkpoint::new(
        CheckpointHeader::new(small_config(), "test"),
        &Network::Composer(small_model()),
    )
    .unwrap()
    .save(&model)
    .unwrap();
    model
}

#[test]
fn the_command_line_fills_in_a_scale_and_refuses_what_a_model_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let model = saved_small_model(dir.path());
    let seed = dir.path().join("seed.mid");
    let steps = random_steps(&mut StdRng::seed_from_u64(2), 48);
    let roll = PianoRoll::from_sounding(steps, RollMeta::default()).unwrap();
    cadenza::files::save_roll(&roll, &seed, &cadenza::files::SaveOptions::default()).unwrap();
    let out = dir.path().join("filled.mid");
    let run = cadenza(&[
        "generate",
        "--model",
        path(&model),
        "--seed-file",
        path(&seed),
        "--fill",
        "16..32",
        "--scale",
        "C:major",
        "--pitch-range",
        "C3..C6",
        "--out",
        path(&out),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let (filled, _) =
        cadenza::midi::import_file(&out, &cadenza::midi::ImportOptions::default()).unwrap();
    assert_eq!(filled.steps(), 48);
    let allowed = "C:major".parse::<Scale>().unwrap().row_mask()
        & "C3..C6".parse::<PitchRange>().unwrap().row_mask();
    for t in 0..48 {
        let (new, old) = (filled.sounding_mask(t), roll.sounding_mask(t));
        if (16..32).contains(&t) {
            assert_eq!(new & !allowed, 0, "step {t} left the scale or range");
        } else {
            assert_eq!(new, old, "step {t} outside the fill changed");
        }
    }
    // The roll LSTM cannot fill; a bad scale is one line naming the modes.
    let refused = cadenza(&[
        "generate",
        "--model",
        "roll",
        "--seed-file",
        path(&seed),
        "--fill",
        "16..32",
        "--out",
        path(&out),
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("needs the composer"),
        "{}",
        text(&refused.stderr)
    );
    let bad = cadenza(&["generate", "--scale", "C:lydianish", "--out", path(&out)]);
    assert_eq!(bad.status.code(), Some(2));
    let message = text(&bad.stderr);
    assert!(
        message.contains("mixolydian") && message.lines().count() == 1,
        "{message}"
    );
}

#[test]
fn eval_reports_the_benchmark_figure_gaps_and_the_music() {
    let dir = tempfile::tempdir().unwrap();
    let model = saved_small_model(dir.path());
    let songs = dir.path().join("songs");
    std::fs::create_dir(&songs).unwrap();
    for file in crate::helpers::corpus_files().iter().take(3) {
        std::fs::copy(file, songs.join(file.file_name().unwrap())).unwrap();
    }
    let run = cadenza(&[
        "eval",
        path(&songs),
        "--model",
        path(&model),
        "--fill",
        "8",
        "--stride",
        "64",
        "--steps",
        "16",
        "--json",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let likelihood = &report["likelihood"];
    let (nll_88, nll_all) = (
        likelihood["frame_nll_88"].as_f64().unwrap(),
        likelihood["nll_per_step"].as_f64().unwrap(),
    );
    // An untrained network: about ln 2 per cell, the 88 keys a part of all.
    assert!(nll_88 > 10.0 && nll_88 < nll_all, "{likelihood}");
    let fill = &report["fill"];
    assert!(fill["gaps"].as_u64().unwrap() > 0, "{fill}");
    assert!(fill["fill_nll_per_frame"].as_f64().unwrap() > 0.0);
    assert!(fill["continue_nll_per_frame"].as_f64().unwrap() > 0.0);
    // Gaps start at every place in the bar, some of them on a beat (the
    // chorales are read at four steps a beat).
    let (gaps, on_beat) = (
        fill["gaps"].as_u64().unwrap(),
        fill["on_beat_gaps"].as_u64().unwrap(),
    );
    assert!(on_beat > 0 && 2 * on_beat < gaps, "{fill}");
    assert!(fill["on_beat_fill_nll_per_frame"].as_f64().unwrap() > 0.0);
    let free = &report["free_running"];
    for figures in [&free["music"], &free["data_music"]] {
        for share in ["clash_share", "in_key_share", "on_beat_share"] {
            let value = figures[share].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&value), "{share}: {figures}");
        }
    }
    // Real chorales in 4/4 on sixteenths: most onsets on a beat.
    assert!(free["data_music"]["on_beat_share"].as_f64().unwrap() > 0.5);
    // The roll LSTM cannot hear the music after a gap: --fill says so.
    let refused = cadenza(&["eval", path(&songs), "--model", "roll", "--fill", "8"]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("needs the composer"));
}

/// Songs of random chords, each held for two steps from step 1 on: the past
/// cannot tell the first step of a pair (steps 1, 3, 5 ...: every other
/// 1-step gap `fill_likelihood` cuts), the music after can.
fn held_random_chords(count: usize, seed: u64) -> Vec<SongRoll> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let mut steps = vec![1u128 << rng.random_range(30..50)];
            for _ in 0..24 {
                let chord = (0..3).fold(0u128, |m, _| m | 1u128 << rng.random_range(30..50));
                steps.extend([chord, chord]);
            }
            SongRoll {
                steps,
                meter: Meter::new(TimeSignature::COMMON, 1),
            }
        })
        .collect()
}

#[test]
fn a_trained_composer_fills_from_the_music_after() {
    let mut songs = held_random_chords(40, 1);
    songs.extend(held_random_chords(6, 2));
    let data = Dataset::from_songs(songs, Preset::Forward, Split::Last(6)).unwrap();
    let mut trainer = small_trainer(&data, 5e-3);
    let dir = tempfile::tempdir().unwrap();
    let never = std::sync::atomic::AtomicBool::new(false);
    trainer
        .fit(
            &data,
            12,
            None,
            &dir.path().join("m.cadenza"),
            &never,
            &mut |_| {},
        )
        .unwrap();
    let model = trainer.model();
    let runner = cadenza::generate::Runner::new(&model, &device::cpu_selected(None)).unwrap();
    let figures = cadenza::eval::fill_likelihood(runner.predictor().as_mut(), &data, 1).unwrap();
    assert!(
        figures.fill_nll_per_frame < 0.85 * figures.continue_nll_per_frame,
        "{figures:?}"
    );
}

#[test]
fn the_shipped_jsb_model_fills_on_its_own_grid() {
    let dir = tempfile::tempdir().unwrap();
    let chorale = crate::helpers::corpus_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains("chorales"))
        .unwrap();
    let out = dir.path().join("filled.mid");
    let run = cadenza(&[
        "generate",
        "--model",
        "jsb",
        "--seed-file",
        path(&chorale),
        "--fill",
        "8..16",
        "--scale",
        "C:major",
        "--out",
        path(&out),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    // The model learnt on quarter notes, so the chorale is read on quarters.
    let options = cadenza::files::LoadOptions {
        midi: cadenza::midi::ImportOptions {
            steps_per_quarter: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let original = cadenza::files::load_roll(&chorale, &options).unwrap().roll;
    let filled = cadenza::files::load_roll(&out, &options).unwrap().roll;
    assert_eq!(filled.steps(), original.steps());
    let allowed = "C:major".parse::<Scale>().unwrap().row_mask();
    for t in 0..original.steps() {
        if (8..16).contains(&t) {
            assert_eq!(filled.sounding_mask(t) & !allowed, 0);
        } else {
            assert_eq!(
                filled.sounding_mask(t),
                original.sounding_mask(t),
                "step {t}"
            );
        }
    }
}

#[test]
fn the_pitch_profile_weighs_recent_notes_more() {
    use cadenza::model::composer::{PROFILE_DECAY, PROFILE_FEATURES, pitch_profiles};
    // Row 39 is MIDI 60 (C), 43 E, 46 G; a C major triad, then one D (41).
    let c_major = floats(&[1u128 << 39 | 1 << 43 | 1 << 46]);
    let d = floats(&[1u128 << 41]);
    let silence = floats(&[0]);
    let mut steps = Vec::new();
    steps.extend(&silence);
    steps.extend(&c_major);
    steps.extend(&d);
    for _ in 0..200 {
        steps.extend(&silence);
    }
    steps.extend(&d);
    let mut out = vec![0.0f32; steps.len() / PITCH_COUNT * PROFILE_FEATURES];
    pitch_profiles(&steps, PITCH_COUNT, false, &mut out);
    let profile = |t: usize| &out[t * PROFILE_FEATURES..(t + 1) * PROFILE_FEATURES];
    assert_eq!(profile(0), &[0.0; 12], "nothing heard yet");
    let after_chord = profile(1);
    for class in [0, 4, 7] {
        assert!((after_chord[class] - 1.0 / 3.0).abs() < 1e-6);
    }
    // The D is newer: it weighs 1, each chord note PROFILE_DECAY.
    let after_d = profile(2);
    let total = 1.0 + 3.0 * PROFILE_DECAY;
    assert!((after_d[2] - 1.0 / total).abs() < 1e-6);
    assert!((after_d[0] - PROFILE_DECAY / total).abs() < 1e-6);
    assert!((after_d.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    // Silence changes no share; a note long after outweighs the old ones
    // by the decay over the gap.
    let last = steps.len() / PITCH_COUNT - 1;
    for (a, b) in profile(last - 1).iter().zip(after_d) {
        assert!((a - b).abs() < 1e-5, "{a} against {b}");
    }
    let old = PROFILE_DECAY.powi(201);
    let total = 1.0 + old * total;
    assert!((profile(last)[2] - (1.0 + old) / total).abs() < 1e-4);
    assert!((profile(last)[0] - old * PROFILE_DECAY / total).abs() < 1e-4);
}

#[test]
fn the_key_input_picks_the_key_the_eval_estimate_picks() {
    use cadenza::model::composer::{
        KEY_FEATURES, PROFILE_FEATURES, key_weights, pitch_profiles, profile_width,
    };
    use cadenza::music::estimate_key;
    let width = profile_width(true, true);
    assert_eq!(width, PROFILE_FEATURES + KEY_FEATURES);
    let features_of = |steps: &[u128]| {
        let mut out = vec![0.0f32; steps.len() * width];
        pitch_profiles(&floats(steps), PITCH_COUNT, true, &mut out);
        out[(steps.len() - 1) * width..].to_vec()
    };
    let key_of = |weights: &[f32]| {
        let best = (0..KEY_FEATURES)
            .max_by(|&a, &b| weights[a].total_cmp(&weights[b]))
            .unwrap();
        (best % 12, best >= 12)
    };
    // Nothing heard, and every pitch class alike: no key.
    assert_eq!(&features_of(&[0])[PROFILE_FEATURES..], &[0.0; KEY_FEATURES]);
    let chromatic = (0..12).fold(0u128, |mask, row| mask | 1 << (39 + row));
    assert_eq!(
        &features_of(&[chromatic])[PROFILE_FEATURES..],
        &[0.0; KEY_FEATURES]
    );
    // Random chords (one step, so the shares are plain counts): the key
    // weighed most is the key `estimate_key` finds, and the weights sum to 1.
    let mut rng = StdRng::seed_from_u64(5);
    let mut compared = 0;
    for _ in 0..300 {
        let notes = rng.random_range(3..10);
        let chord = (0..notes).fold(0u128, |m, _| m | 1u128 << rng.random_range(10..90));
        let features = features_of(&[chord]);
        let weights = &features[PROFILE_FEATURES..];
        assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let mut sorted = weights.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        // A near tie could go either way in f32 and f64.
        if sorted[0] < 1.01 * sorted[1] {
            continue;
        }
        let key = estimate_key(&[chord]).unwrap();
        assert_eq!(key_of(weights), (usize::from(key.tonic), key.minor));
        compared += 1;
    }
    assert!(compared > 200, "{compared}");
    // A scale with its tonic triad held longer: C major, then A minor with
    // its leading tone; a clear key takes most of the weight.
    let row = |midi: usize| midi - 21;
    let steps_of = |scale: &[usize], triad: &[usize]| {
        let scale = scale.iter().fold(0u128, |m, &p| m | 1 << row(p));
        let triad = triad.iter().fold(0u128, |m, &p| m | 1 << row(p));
        let mut steps = vec![scale];
        steps.extend([triad; 4]);
        steps
    };
    let mut weights = [0.0f32; KEY_FEATURES];
    let c_major = features_of(&steps_of(&[60, 62, 64, 65, 67, 69, 71], &[60, 64, 67]));
    key_weights(&c_major[..PROFILE_FEATURES], &mut weights);
    assert_eq!(&weights[..], &c_major[PROFILE_FEATURES..]);
    assert_eq!(key_of(&weights), (0, false));
    assert!(weights[0] > 0.5, "{weights:?}");
    let a_minor = features_of(&steps_of(&[57, 59, 60, 62, 64, 65, 68], &[57, 60, 64]));
    assert_eq!(key_of(&a_minor[PROFILE_FEATURES..]), (9, true));
    // The key input is read from the profile: it needs one.
    let problem = ComposerConfig::new().with_key_input(Some(true)).problem();
    assert!(problem.unwrap().contains("pitch-class profile"));
}
