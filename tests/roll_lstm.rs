//! The roll LSTM: its CPU copy and its burn model agree, stepping equals a
//! whole-sequence pass, its files round-trip, and it trains, generates and is
//! evaluated from the command line.

use cadenza::checkpoint::{Checkpoint, CheckpointHeader};
use cadenza::dataset::{Dataset, Preset};
use cadenza::device;
use cadenza::generate::{
    BurnRollPredictor, GenerateOptions, NativeRollPredictor, Predictor, Rule, generate_with,
};
use cadenza::model::native::NativeRollNet;
use cadenza::model::{Architecture, Network, RollLstm, RollLstmConfig};
use cadenza::record::TrainSettings;
use cadenza::roll::PITCH_COUNT;
use cadenza::train::{TrainError, Trainer};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::helpers::{cadenza, path, text};

/// A small roll LSTM with non-trivial weights (the default init, seeded).
fn small_model(units: usize) -> RollLstm {
    let device = device::cpu();
    device.seed(7);
    RollLstmConfig::new().with_units(units).init(&device)
}

fn random_steps(rng: &mut StdRng, steps: usize) -> Vec<u128> {
    (0..steps)
        .map(|_| (0..4).fold(0u128, |m, _| m | 1u128 << rng.random_range(20..80)))
        .collect()
}

#[test]
fn the_cpu_copy_steps_like_burn_and_like_one_whole_pass() {
    let model = small_model(32);
    let net = NativeRollNet::from_model(&model).unwrap();
    let cpu = device::cpu();
    let mut rng = StdRng::seed_from_u64(3);
    let seeds: Vec<Vec<u128>> = vec![random_steps(&mut rng, 12), random_steps(&mut rng, 9)];
    let seed_refs: Vec<&[u128]> = seeds.iter().map(Vec::as_slice).collect();
    let mut burn = BurnRollPredictor::new(&model, &cpu);
    let mut native = NativeRollPredictor::new(&net);
    burn.start(&seed_refs).unwrap();
    native.start(&seed_refs).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..6 {
        burn.predict(&mut a).unwrap();
        native.predict(&mut b).unwrap();
        assert_eq!(a.len(), 2 * PITCH_COUNT);
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-5, "burn and the CPU copy differ by {worst}");
        let next = random_steps(&mut rng, 2);
        burn.advance(&next).unwrap();
        native.advance(&next).unwrap();
    }

    // The second seed is three steps shorter: it is led in by silence, so it
    // equals a whole pass over three silent steps and the seed.
    let mut padded = vec![0u128; 3];
    padded.extend(&seeds[1]);
    let mut floats = vec![0.0f32; padded.len() * PITCH_COUNT];
    for (mask, row) in padded.iter().zip(floats.chunks_exact_mut(PITCH_COUNT)) {
        cadenza::roll::mask_to_floats(*mask, row);
    }
    let x = burn::tensor::Tensor::<3>::from_data(
        burn::tensor::TensorData::new(floats, [1, padded.len(), PITCH_COUNT]),
        &cpu,
    );
    let whole: Vec<f32> = model.forward(x).into_data().try_into_vec().unwrap();
    let last = &whole[(padded.len() - 1) * PITCH_COUNT..];
    native.start(&seed_refs).unwrap();
    native.predict(&mut b).unwrap();
    let worst = last
        .iter()
        .zip(&b[PITCH_COUNT..])
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "stepping and one pass differ by {worst}");
}

#[test]
fn a_roll_lstm_file_round_trips_and_generates_the_same_everywhere() {
    let model = small_model(48);
    let config = RollLstmConfig::new().with_units(48);
    let checkpoint = Checkpoint::new(
        CheckpointHeader::new(config.clone(), "test"),
        &Network::RollLstm(model),
    )
    .unwrap();
    let bytes = checkpoint.to_bytes().unwrap();
    let json = String::from_utf8_lossy(&bytes[20..400]).into_owned();
    assert!(json.contains("\"architecture\": \"roll-lstm\""), "{json}");
    let back = Checkpoint::from_bytes(&bytes).unwrap();
    assert_eq!(back.header.network.architecture(), Architecture::RollLstm);
    let network = back.model(&device::cpu()).unwrap();
    assert_eq!(network.architecture(), Architecture::RollLstm);

    // The same continuation through burn and through the CPU copy.
    let seed = random_steps(&mut StdRng::seed_from_u64(5), 9);
    let options = GenerateOptions {
        steps: 24,
        rule: Rule::Threshold { threshold: 0.5 },
        variations: 2,
    };
    let through_burn =
        cadenza::generate::generate(&network, &device::cpu(), &seed, &options).unwrap();
    let Network::RollLstm(roll) = &network else {
        panic!("a roll LSTM");
    };
    let net = NativeRollNet::from_model(roll).unwrap();
    let native = generate_with(&mut NativeRollPredictor::new(&net), &seed, &options).unwrap();
    assert_eq!(through_burn.len(), 2);
    for (a, b) in through_burn.iter().zip(&native) {
        assert_eq!(a.steps, b.steps);
        let worst = a
            .probabilities
            .iter()
            .zip(&b.probabilities)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "{worst}");
    }
    // A bad dropout in a header is a typed error, not a panic in burn.
    let mut bad = back.clone();
    bad.header.network = RollLstmConfig::new().with_dropout(1.5).into();
    assert!(bad.model(&device::cpu()).is_err());
}

#[test]
fn transposed_stretches_stay_in_the_roll_and_training_lowers_the_loss() {
    let mut rng = StdRng::seed_from_u64(11);
    let songs: Vec<Vec<u128>> = (0..6).map(|i| random_steps(&mut rng, 40 + 7 * i)).collect();
    let data = Dataset::from_rolls(songs, Preset::Forward, 0.2, 1).unwrap();
    let length = 16;
    // Every training stretch: targets are the inputs one step on.
    let stretches = data.stretch_order(0, 0, length, 6);
    assert!(stretches.iter().any(|s| s.transpose != 0));
    let (mut inputs, mut targets) = (Vec::new(), Vec::new());
    data.fill_stretches(&stretches, length, &mut inputs, &mut targets);
    assert_eq!(inputs.len(), stretches.len() * length * PITCH_COUNT);
    for (x, y) in inputs
        .chunks_exact(length * PITCH_COUNT)
        .zip(targets.chunks_exact(length * PITCH_COUNT))
    {
        assert_eq!(&x[PITCH_COUNT..], &y[..(length - 1) * PITCH_COUNT]);
    }
    // Notes were drawn from rows 20..80 and moved by at most 6.
    let sounding_rows = |floats: &[f32]| {
        floats
            .chunks_exact(PITCH_COUNT)
            .flat_map(|row| {
                row.iter()
                    .enumerate()
                    .filter(|(_, v)| **v == 1.0)
                    .map(|(r, _)| r)
            })
            .collect::<Vec<_>>()
    };
    assert!(
        sounding_rows(&inputs)
            .iter()
            .all(|&r| (14..86).contains(&r))
    );
    // A song shorter than a stretch gives one, led in by one silent step,
    // its first step the first target, and silence after its end that no
    // loss counts.
    let long = data.stretches(true, 200);
    assert_eq!(long.len(), data.report().files_validation);
    let (mut long_inputs, mut long_targets, mut weights) = (Vec::new(), Vec::new(), Vec::new());
    data.fill_stretches(&long, 200, &mut long_inputs, &mut long_targets);
    data.fill_target_weights(&long, 200, &mut weights);
    assert_eq!(weights.len(), long.len() * 200);
    for (((song, x), y), w) in data
        .songs(true)
        .zip(long_inputs.chunks_exact(200 * PITCH_COUNT))
        .zip(long_targets.chunks_exact(200 * PITCH_COUNT))
        .zip(weights.chunks_exact(200))
    {
        assert!(x[..PITCH_COUNT].iter().all(|&v| v == 0.0));
        assert_eq!(w.iter().filter(|&&w| w == 1.0).count(), song.len());
        assert!(w[..song.len()].iter().all(|&w| w == 1.0));
        for (t, &step) in song.iter().enumerate() {
            let row = &y[t * PITCH_COUNT..(t + 1) * PITCH_COUNT];
            for (pitch, &target) in row.iter().enumerate() {
                assert_eq!(target == 1.0, step >> pitch & 1 == 1, "step {t}, {pitch}");
            }
        }
        assert!(y[song.len() * PITCH_COUNT..].iter().all(|&v| v == 0.0));
    }
    // Where every stretch lies within its song, every step counts: no weights.
    data.fill_target_weights(&data.stretches(false, length), length, &mut weights);
    assert!(weights.is_empty());
    // Every song's first step is a target, predicted from a silent input:
    // the first stretch of each song begins one step before it (these
    // songs have notes at every step, so only a lead-in is silent).
    let in_order = data.stretches(false, length);
    data.fill_stretches(&in_order, length, &mut inputs, &mut targets);
    let led_in = inputs
        .chunks_exact(length * PITCH_COUNT)
        .filter(|stretch| stretch[..PITCH_COUNT].iter().all(|&v| v == 0.0))
        .count();
    assert_eq!(led_in, data.songs(false).count());
    assert!(inputs[..PITCH_COUNT].iter().all(|&v| v == 0.0));
    let first_step = data.songs(false).next().unwrap()[0];
    assert_ne!(first_step, 0);
    for (pitch, &target) in targets[..PITCH_COUNT].iter().enumerate() {
        assert_eq!(target == 1.0, first_step >> pitch & 1 == 1, "{pitch}");
    }

    let settings = TrainSettings {
        sequence_steps: length,
        max_transpose: 2,
        feedback: 0.25,
        input_dropout: 0.1,
        recurrent_dropout: 0.2,
        batch_size: 4,
        loss: cadenza::record::LossKind::Bce,
        ..TrainSettings::default()
    };
    let mut trainer = Trainer::new(
        RollLstmConfig::new().with_units(32),
        settings,
        &data,
        "random",
        &device::cpu(),
    )
    .unwrap();
    let first = trainer.validation_loss(&data).unwrap().unwrap();
    // With binary cross-entropy it scores the validation songs whole, as
    // `cadenza eval` and the benchmark do, per cell like the training loss.
    let whole = cadenza::eval::song_likelihood(&trainer.model(), &data).unwrap();
    assert!(
        (first - whole.nll_per_step / PITCH_COUNT as f64).abs() < 1e-9,
        "{first} vs {whole:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("roll.cadenza");
    let never = std::sync::atomic::AtomicBool::new(false);
    trainer
        .fit(&data, 3, None, &out, &never, &mut |_| {})
        .unwrap();
    let last = trainer
        .record()
        .log
        .last()
        .unwrap()
        .validation_loss
        .unwrap();
    assert!(last < first, "validation loss {first} -> {last}");
    // Each epoch records its validation F1 and the threshold that gave it;
    // the model's threshold rule uses the best epoch's.
    let last = trainer.record().log.last().unwrap();
    let (f1, threshold) = (last.validation_f1.unwrap(), last.best_threshold.unwrap());
    assert!((0.0..=1.0).contains(&f1) && (0.0..1.0).contains(&threshold));
    let saved = Checkpoint::load(&out).unwrap();
    assert!(saved.header.tuned_threshold().is_some());
    let saved_settings = saved.header.training.unwrap().settings;
    assert_eq!(
        (
            saved_settings.feedback,
            saved_settings.input_dropout,
            saved_settings.recurrent_dropout
        ),
        (0.25, 0.1, 0.2)
    );
    // Input dropout of every note, or of the article's fixed windows, is refused.
    let roll_settings = TrainSettings {
        loss: cadenza::record::LossKind::Bce,
        sequence_steps: length,
        input_dropout: 1.0,
        ..TrainSettings::default()
    };
    let all_dropped = Trainer::new(
        RollLstmConfig::new().with_units(8),
        roll_settings.clone(),
        &data,
        "x",
        &device::cpu(),
    );
    assert!(
        matches!(&all_dropped, Err(TrainError::BadDropout("input dropout", share)) if *share == 1.0),
        "{:?}",
        all_dropped.err()
    );
    let all_units = Trainer::new(
        RollLstmConfig::new().with_units(8),
        TrainSettings {
            input_dropout: 0.0,
            recurrent_dropout: 1.0,
            ..roll_settings
        },
        &data,
        "x",
        &device::cpu(),
    );
    assert!(
        matches!(&all_units, Err(TrainError::BadDropout("recurrent dropout", share)) if *share == 1.0),
        "{:?}",
        all_units.err()
    );
    let article = Trainer::new(
        Architecture::Article.default_config(),
        TrainSettings {
            input_dropout: 0.1,
            ..TrainSettings::default()
        },
        &data,
        "x",
        &device::cpu(),
    );
    assert!(
        matches!(&article, Err(TrainError::OnlyForRollLstm("input dropout"))),
        "{:?}",
        article.err()
    );
    let composer = Trainer::new(
        Architecture::Composer.default_config(),
        TrainSettings {
            recurrent_dropout: 0.1,
            ..cadenza::train::default_settings(Architecture::Composer)
        },
        &data,
        "x",
        &device::cpu(),
    );
    assert!(
        matches!(
            &composer,
            Err(TrainError::OnlyForRollLstm("recurrent dropout"))
        ),
        "{:?}",
        composer.err()
    );

    // The seed preset is for window networks.
    let seed_preset =
        Dataset::from_rolls(vec![random_steps(&mut rng, 40)], Preset::Article, 0.0, 0).unwrap();
    let refused = Trainer::new(
        RollLstmConfig::new().with_units(8),
        TrainSettings {
            preset: Preset::Article,
            ..TrainSettings::default()
        },
        &seed_preset,
        "x",
        &device::cpu(),
    );
    assert!(refused.is_err());
}

#[test]
fn the_cli_trains_generates_with_and_compares_both_networks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    crate::helpers::copy_demo_chorales(&data);
    let model = dir.path().join("roll.cadenza");
    let out = crate::helpers::train_one_epoch(&data, &model, &["--sequence-steps", "32"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Its throughput counts every predicted step of the stretches, not windows.
    for said in [text(&out.stderr), text(&out.stdout)] {
        assert!(
            said.contains("predicted steps/s") && !said.contains("windows/s"),
            "{said}"
        );
    }
    let info = cadenza(&["model", "info", path(&model)]);
    assert!(
        text(&info.stdout).contains("roll-lstm network"),
        "{}",
        text(&info.stdout)
    );
    let summary = cadenza(&["model", "summary", "--model", path(&model)]);
    assert!(
        text(&summary.stdout).contains("roll-lstm"),
        "{}",
        text(&summary.stdout)
    );

    let song = dir.path().join("song.mid");
    let out = cadenza(&[
        "generate",
        "--model",
        path(&model),
        "--out",
        path(&song),
        "--steps",
        "30",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let roll = cadenza::files::load_roll(&song, &Default::default())
        .unwrap()
        .roll;
    assert!(roll.steps() >= 30);

    let plot = dir.path().join("curves.svg");
    let out = cadenza(&[
        "eval",
        path(&data),
        "--model",
        path(&model),
        "--model",
        "article",
        "--stride",
        "64",
        "--steps",
        "20",
        "--json",
        "--plot",
        path(&plot),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["architecture"], "roll-lstm");
    assert!(
        reports[0]["rule"].as_str().unwrap().starts_with("Sample"),
        "{}",
        reports[0]["rule"]
    );
    assert_eq!(reports[1]["architecture"], "seed-conv1d-lstm");
    assert!(reports[1]["rule"].as_str().unwrap().starts_with("Boost"));
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 2);
}

#[test]
fn a_resumed_roll_lstm_run_equals_a_straight_one() {
    // Transposition, feedback and both dropouts draw from generators seeded by the run's
    // seed, the epoch and the batch; dropout 0 keeps burn's process-wide
    // generator (shared with tests running beside this one) out of it.
    let mut rng = StdRng::seed_from_u64(21);
    let songs: Vec<Vec<u128>> = (0..5).map(|i| random_steps(&mut rng, 30 + 5 * i)).collect();
    let data = Dataset::from_rolls(songs, Preset::Forward, 0.2, 4).unwrap();
    let config = RollLstmConfig::new().with_units(16).with_dropout(0.0);
    let settings = TrainSettings {
        sequence_steps: 12,
        max_transpose: 3,
        feedback: 0.5,
        input_dropout: 0.2,
        recurrent_dropout: 0.3,
        batch_size: 4,
        loss: cadenza::record::LossKind::Bce,
        ..TrainSettings::default()
    };
    let cpu = device::cpu();
    let training = cadenza::train::training_device(&cpu);
    let start = Checkpoint::new(
        CheckpointHeader::new(config.clone(), "start"),
        &Network::RollLstm(small_model(16)),
    )
    .unwrap();
    let fresh = || {
        Trainer::with_model(
            start.model(&training).unwrap(),
            config.clone(),
            settings.clone(),
            &data,
            "random",
            &training,
        )
        .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let never = std::sync::atomic::AtomicBool::new(false);
    let straight = dir.path().join("straight.cadenza");
    fresh()
        .fit(&data, 2, None, &straight, &never, &mut |_| {})
        .unwrap();
    let halves = dir.path().join("halves.cadenza");
    fresh()
        .fit(&data, 1, None, &halves, &never, &mut |_| {})
        .unwrap();
    let mut resumed = Trainer::resume(&Checkpoint::load(&halves).unwrap(), &cpu).unwrap();
    resumed
        .fit(&data, 2, None, &halves, &never, &mut |_| {})
        .unwrap();

    let losses = |path: &std::path::Path| {
        let log = Checkpoint::load(path).unwrap().header.training.unwrap().log;
        log.iter()
            .map(|r| (r.train_loss, r.validation_loss.unwrap()))
            .collect::<Vec<_>>()
    };
    let (a, b) = (losses(&straight), losses(&halves));
    assert_eq!(a.len(), 2);
    for ((ta, va), (tb, vb)) in a.iter().zip(&b) {
        assert!(
            (ta - tb).abs() < 1e-6 && (va - vb).abs() < 1e-6,
            "{a:?} vs {b:?}"
        );
    }
}

#[test]
fn a_manual_step_applies_the_runs_feedback_and_dropouts() {
    // `Trainer::step` trains as an epoch does: the same batch gives another
    // loss once feedback, input or recurrent dropout is set. Dropout 0 keeps
    // burn's process-wide generator out of it.
    let mut rng = StdRng::seed_from_u64(5);
    let songs: Vec<Vec<u128>> = (0..3).map(|_| random_steps(&mut rng, 40)).collect();
    let data = Dataset::from_rolls(songs, Preset::Forward, 0.0, 4).unwrap();
    let length = 12;
    let cells = 4 * length * PITCH_COUNT;
    let inputs: Vec<f32> = (0..cells)
        .map(|_| f32::from(u8::from(rng.random::<f32>() < 0.1)))
        .collect();
    let targets: Vec<f32> = (0..cells)
        .map(|_| f32::from(u8::from(rng.random::<f32>() < 0.1)))
        .collect();
    let plain = TrainSettings {
        sequence_steps: length,
        max_transpose: 0,
        feedback: 0.0,
        batch_size: 4,
        loss: cadenza::record::LossKind::Bce,
        ..TrainSettings::default()
    };
    let loss_with = |settings: TrainSettings| {
        Trainer::new(
            RollLstmConfig::new().with_units(16).with_dropout(0.0),
            settings,
            &data,
            "random",
            &device::cpu(),
        )
        .unwrap()
        .step(&inputs, &targets)
        .unwrap()
    };
    let reference = loss_with(plain.clone());
    assert_eq!(reference, loss_with(plain.clone()));
    for (what, settings) in [
        (
            "feedback",
            TrainSettings {
                feedback: 0.5,
                ..plain.clone()
            },
        ),
        (
            "input dropout",
            TrainSettings {
                input_dropout: 0.5,
                ..plain.clone()
            },
        ),
        (
            "recurrent dropout",
            TrainSettings {
                recurrent_dropout: 0.5,
                ..plain.clone()
            },
        ),
    ] {
        let loss = loss_with(settings);
        assert!(
            (loss - reference).abs() > 1e-6,
            "{what}: {loss} vs {reference}"
        );
    }
}
