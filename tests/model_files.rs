//! Model files, Keras imports, generation rules and the training loop: bad
//! input gets a typed error, and a resumed run continues exactly.

use std::sync::atomic::AtomicBool;

use burn::tensor::Tensor;
use cadenza::checkpoint::{Checkpoint, CheckpointError, CheckpointHeader};
use cadenza::dataset::{Dataset, Preset};
use cadenza::device;
use cadenza::generate::{GenerateError, GenerateOptions, Rule, generate, seed_window};
use cadenza::keras::{KerasImportError, read_keras_npz};
use cadenza::model::{ArticleNet, ArticleNetConfig, Network};
use cadenza::record::TrainSettings;
use cadenza::roll::{PianoRoll, RollMeta};
use cadenza::train::{TrainEnd, TrainError, Trainer, TrainingEngine, csv_path};

use crate::helpers::{data_dir, with_header};

fn all_weights(model: &ArticleNet) -> Vec<f32> {
    let mut out = Vec::new();
    let mut push = |t: Tensor<2>| out.extend(t.into_data().try_into_vec::<f32>().unwrap());
    for layer in [
        &model.conv0,
        &model.conv2,
        &model.conv4,
        &model.conv6,
        &model.dense11,
    ] {
        push(layer.weight.val());
        push(layer.bias.as_ref().unwrap().val().unsqueeze());
    }
    for lstm in [&model.lstm8, &model.lstm9] {
        push(lstm.kernel.val());
        push(lstm.recurrent_kernel.val());
        push(lstm.bias.val().unsqueeze());
    }
    push(model.norm10.gamma.val().unsqueeze());
    push(model.norm10.running_mean.value().unsqueeze());
    push(model.norm10.running_var.value().unsqueeze());
    out
}

fn keras_model() -> ArticleNet {
    cadenza::keras::load_keras_npz(
        &data_dir().join("parity/weights_trained_1ep.npz"),
        &ArticleNetConfig::article(),
        &device::cpu(),
    )
    .unwrap()
}

#[test]
fn a_model_file_round_trips_and_bad_files_get_typed_errors() {
    let model = keras_model();
    let checkpoint = Checkpoint::new(
        CheckpointHeader::new(ArticleNetConfig::article(), "test"),
        &Network::Article(model.clone()),
    )
    .unwrap();
    let bytes = checkpoint.to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&bytes)
        .unwrap()
        .model(&device::cpu())
        .unwrap();
    assert_eq!(
        all_weights(&back.into_article().unwrap()),
        all_weights(&model)
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.cadenza");
    checkpoint.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    assert!(matches!(
        Checkpoint::from_bytes(b"MThd\0\0\0\x06"),
        Err(CheckpointError::NotACheckpoint)
    ));
    for cut in [10, 30, bytes.len() / 2, bytes.len() - 1] {
        let error = Checkpoint::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(error, CheckpointError::Truncated { .. }),
            "{cut}: {error}"
        );
        assert!(error.to_string().contains("truncated"));
    }
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    assert!(matches!(
        Checkpoint::from_bytes(&flipped),
        Err(CheckpointError::Corrupt)
    ));

    // Another architecture's name in the header.
    let renamed = with_header(&checkpoint.to_bytes().unwrap(), |header| {
        header["architecture"] = "transformer".into();
    });
    let error = Checkpoint::from_bytes(&renamed).unwrap_err();
    assert!(matches!(error, CheckpointError::OtherArchitecture { .. }));
    assert!(error.to_string().contains("transformer"));

    // Same architecture name, different shape: the weights do not fit.
    let mut wider = checkpoint;
    let cadenza::model::NetworkConfig::Article(config) = &mut wider.header.network else {
        panic!("a seed checkpoint");
    };
    config.filters = 64;
    let error = Checkpoint::from_bytes(&wider.to_bytes().unwrap())
        .unwrap()
        .model(&device::cpu())
        .unwrap_err();
    assert!(matches!(error, CheckpointError::Weights(_)), "{error}");

    assert!(matches!(
        Checkpoint::load(&dir.path().join("missing.cadenza")),
        Err(CheckpointError::Read { .. })
    ));
}

/// An npz in memory with the given arrays.
fn npz(arrays: &[(&str, Vec<u64>, Vec<f32>)]) -> std::io::Cursor<Vec<u8>> {
    use npyz::WriterBuilder as _;
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut writer = npyz::npz::NpzWriter::new(&mut cursor);
        for (name, shape, values) in arrays {
            let mut array = writer
                .array::<f32>(name, Default::default())
                .unwrap()
                .default_dtype()
                .shape(shape)
                .begin_nd()
                .unwrap();
            array.extend(values.iter().copied()).unwrap();
            array.finish().unwrap();
        }
    }
    cursor.set_position(0);
    cursor
}

#[test]
fn keras_archives_with_missing_keys_or_wrong_shapes_name_the_key_and_shapes() {
    let config = ArticleNetConfig::article();
    let missing = read_keras_npz(npz(&[]), &config, &device::cpu()).unwrap_err();
    assert!(matches!(missing, KerasImportError::MissingKey { .. }));
    assert!(missing.to_string().contains("kernel"), "{missing}");

    let wrong = npz(&[(
        "00.time_distributed.kernel",
        vec![1, 100, 128],
        vec![0.0; 12_800],
    )]);
    let error = read_keras_npz(wrong, &config, &device::cpu()).unwrap_err();
    let shown = error.to_string();
    assert!(matches!(error, KerasImportError::Shape { .. }));
    assert!(
        shown.contains("00.time_distributed.kernel")
            && shown.contains("[1, 100, 128]")
            && shown.contains("[1, 106, 128]"),
        "{shown}"
    );

    let not_zip = read_keras_npz(
        std::io::Cursor::new(b"hello".to_vec()),
        &config,
        &device::cpu(),
    );
    assert!(matches!(not_zip, Err(KerasImportError::NotNpz(_))));
}

#[test]
fn generation_refuses_bad_parameters_and_is_deterministic() {
    let model = keras_model();
    let cpu = device::cpu();
    let roll = PianoRoll::from_sounding(vec![0b1010; 12], RollMeta::default()).unwrap();
    assert!(matches!(
        seed_window(&roll, 4),
        Err(GenerateError::SeedPastEnd {
            start: 4,
            needed: 13,
            steps: 12
        })
    ));
    let window = seed_window(&roll, 3).unwrap();

    let bad = [
        GenerateOptions {
            steps: 0,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            variations: 0,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            rule: Rule::Boost {
                vanish_proof: f64::NAN,
                vanish_inc: 1.001,
            },
            ..GenerateOptions::default()
        },
        GenerateOptions {
            rule: Rule::Boost {
                vanish_proof: 0.65,
                vanish_inc: f64::INFINITY,
            },
            ..GenerateOptions::default()
        },
        GenerateOptions {
            rule: Rule::Threshold {
                threshold: f32::NAN,
            },
            ..GenerateOptions::default()
        },
        GenerateOptions {
            rule: Rule::Sample {
                temperature: 0.0,
                rng_seed: 1,
            },
            ..GenerateOptions::default()
        },
    ];
    for options in bad {
        assert!(
            generate(&Network::Article(model.clone()), &cpu, &window, &options).is_err(),
            "{options:?}"
        );
    }

    let sample = GenerateOptions {
        steps: 20,
        rule: Rule::Sample {
            temperature: 1.0,
            rng_seed: 42,
        },
        variations: 3,
    };
    let first = generate(&Network::Article(model.clone()), &cpu, &window, &sample).unwrap();
    let again = generate(&Network::Article(model.clone()), &cpu, &window, &sample).unwrap();
    assert_eq!(first, again);
    assert_eq!(first.len(), 3);
    assert!(
        first
            .iter()
            .all(|c| c.steps.len() == 20 && c.probabilities.len() == 20 * 106)
    );
    // Variations are batched but independent: the first equals a lone run.
    let alone = generate(
        &Network::Article(model.clone()),
        &cpu,
        &window,
        &GenerateOptions {
            variations: 1,
            ..sample
        },
    )
    .unwrap();
    assert_eq!(alone[0].steps, first[0].steps);
    let drift = alone[0]
        .probabilities
        .iter()
        .zip(&first[0].probabilities)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(drift <= 1e-5, "{drift}");
    assert_ne!(first[0].steps, first[1].steps);
}

/// Three small songs of pseudo-random chords.
fn little_dataset() -> Dataset {
    let mut state = 12_345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        state >> 33
    };
    let rolls = (0..3)
        .map(|_| {
            (0..48)
                .map(|_| (0..3).fold(0u128, |mask, _| mask | 1u128 << (30 + next() % 40)))
                .collect()
        })
        .collect();
    Dataset::from_rolls(rolls, Preset::Forward, 0.34, 1).unwrap()
}

/// Trainers of the article's network on `data` that all start from the
/// same concrete weights: burn seeds a process-wide generator and draws
/// weights lazily, so two runs seeded alike can still differ while other
/// tests draw from it in parallel.
fn one_start(data: &Dataset) -> impl Fn(&TrainSettings) -> Trainer + '_ {
    let cpu = device::cpu();
    let training = cadenza::train::training_device(&cpu);
    let start = Trainer::new(
        ArticleNetConfig::article(),
        TrainSettings::default(),
        data,
        "little",
        &cpu,
    )
    .unwrap()
    .model();
    let start = Checkpoint::new(
        CheckpointHeader::new(ArticleNetConfig::article(), "start"),
        &start,
    )
    .unwrap();
    move |settings| {
        Trainer::with_model(
            start.model(&training).unwrap(),
            ArticleNetConfig::article(),
            settings.clone(),
            data,
            "little",
            &training,
        )
        .unwrap()
    }
}

#[test]
fn training_checkpoints_each_epoch_and_resumes_exactly() {
    let data = little_dataset();
    assert_eq!(data.report().files_validation, 1);
    let settings = TrainSettings {
        batch_size: 16,
        ..TrainSettings::default()
    };
    let cpu = device::cpu();
    let dir = tempfile::tempdir().unwrap();
    let never = AtomicBool::new(false);
    let from_start = one_start(&data);
    let fresh = || from_start(&settings);

    let straight = dir.path().join("straight.cadenza");
    let mut trainer = fresh();
    let mut epochs_seen = Vec::new();
    let end = trainer
        .fit(&data, 2, None, &straight, &never, &mut |event| {
            if let cadenza::train::TrainEvent::Epoch(record) = event {
                epochs_seen.push(record.epoch);
            }
        })
        .unwrap();
    assert_eq!(end, TrainEnd::Finished);
    assert_eq!(epochs_seen, [1, 2]);
    let log = &trainer.record().log;
    assert!(
        log.iter()
            .all(|r| r.train_loss.is_finite() && r.validation_loss.is_some())
    );
    let csv = std::fs::read_to_string(csv_path(&straight)).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");

    let halves = dir.path().join("halves.cadenza");
    let mut first = fresh();
    first
        .fit(&data, 1, None, &halves, &never, &mut |_| {})
        .unwrap();
    let mut resumed = Trainer::resume(&Checkpoint::load(&halves).unwrap(), &cpu).unwrap();
    assert_eq!(resumed.record().epochs_done(), 1);
    resumed
        .fit(&data, 2, None, &halves, &never, &mut |_| {})
        .unwrap();

    let a = all_weights(
        &Checkpoint::load(&straight)
            .unwrap()
            .model(&cpu)
            .unwrap()
            .into_article()
            .unwrap(),
    );
    let b = all_weights(
        &Checkpoint::load(&halves)
            .unwrap()
            .model(&cpu)
            .unwrap()
            .into_article()
            .unwrap(),
    );
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-6, "resumed run drifted by {worst}");
    assert_eq!(trainer.record().log.len(), resumed.record().log.len());

    // A raised cancel flag stops before the next batch, keeping the saved epoch.
    let cancelled = AtomicBool::new(true);
    let before = std::fs::read(&halves).unwrap();
    let mut again = Trainer::resume(&Checkpoint::load(&halves).unwrap(), &cpu).unwrap();
    assert_eq!(
        again
            .fit(&data, 3, None, &halves, &cancelled, &mut |_| {})
            .unwrap(),
        TrainEnd::Cancelled
    );
    assert_eq!(std::fs::read(&halves).unwrap(), before);

    // An imported model has no optimizer state to resume from.
    let imported = Checkpoint::new(
        CheckpointHeader::new(ArticleNetConfig::article(), "x"),
        &Network::Article(keras_model()),
    )
    .unwrap();
    assert!(matches!(
        Trainer::resume(&imported, &cpu),
        Err(TrainError::NoTrainingRecord | TrainError::NothingToResume)
    ));
}

#[test]
fn an_averaging_run_saves_the_mean_of_its_epochs_and_resumes_exactly() {
    let data = little_dataset();
    // Over 5 epochs: the first three come in at 1, 1/2 and 1/3, a plain mean.
    let settings = TrainSettings {
        batch_size: 16,
        average_epochs: 5,
        ..TrainSettings::default()
    };
    let cpu = device::cpu();
    let training = cadenza::train::training_device(&cpu);
    let dir = tempfile::tempdir().unwrap();
    let never = AtomicBool::new(false);
    let fresh = one_start(&data);
    let weights = |network: Network| all_weights(&network.into_article().unwrap());
    let saved =
        |path: &std::path::Path| weights(Checkpoint::load(path).unwrap().model(&cpu).unwrap());
    let close = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
            .fold(0.0f32, f32::max)
    };

    for on_burn in [false, true] {
        let straight = dir.path().join(format!("straight-{on_burn}.cadenza"));
        let mut trainer = fresh(&settings);
        if on_burn {
            trainer = trainer.on_burn().unwrap();
        }
        let mut own = Vec::new();
        for epochs in 1..=3 {
            trainer
                .fit(&data, epochs, None, &straight, &never, &mut |_| {})
                .unwrap();
            own.push(weights(trainer.optimizer_model()));
        }
        let mean: Vec<f32> = (0..own[0].len())
            .map(|i| (own[0][i] + own[1][i] + own[2][i]) / 3.0)
            .collect();
        assert!(close(&own[2], &mean) > 1e-3, "the epochs moved the weights");
        assert!(
            close(&saved(&straight), &mean) <= 1e-5,
            "on burn: {on_burn}"
        );
        assert!(close(&weights(trainer.model()), &mean) <= 1e-5);

        // The epoch was validated on the average.
        let averaged = Checkpoint::load(&straight)
            .unwrap()
            .model(&training)
            .unwrap();
        let mut plain = Trainer::with_model(
            averaged,
            ArticleNetConfig::article(),
            TrainSettings {
                average_epochs: 0,
                ..settings.clone()
            },
            &data,
            "little",
            &training,
        )
        .unwrap();
        let validated = trainer.record().log[2].validation_loss.unwrap();
        let on_average = plain.validation_loss(&data).unwrap().unwrap();
        assert!(
            (validated - on_average).abs() <= 1e-6 * on_average,
            "{validated} against {on_average}"
        );

        // Resumed after two epochs, the run goes on with the optimizer's own
        // weights and the average as a straight one does.
        let halves = dir.path().join(format!("halves-{on_burn}.cadenza"));
        let mut first = fresh(&settings);
        if on_burn {
            first = first.on_burn().unwrap();
        }
        first
            .fit(&data, 2, None, &halves, &never, &mut |_| {})
            .unwrap();
        let mut resumed = Trainer::resume(&Checkpoint::load(&halves).unwrap(), &cpu).unwrap();
        assert_eq!(resumed.engine(), trainer.engine());
        assert!(close(&weights(resumed.optimizer_model()), &own[1]) <= 1e-6);
        resumed
            .fit(&data, 3, None, &halves, &never, &mut |_| {})
            .unwrap();
        assert!(close(&saved(&halves), &saved(&straight)) <= 1e-6);
    }

    // Averaging switched off on resuming: the saved model is the optimizer's.
    let out = dir.path().join("off.cadenza");
    let mut trainer = fresh(&settings);
    trainer
        .fit(&data, 2, None, &out, &never, &mut |_| {})
        .unwrap();
    let mut resumed = Trainer::resume(&Checkpoint::load(&out).unwrap(), &cpu).unwrap();
    resumed.set_average_epochs(0).unwrap();
    resumed
        .fit(&data, 3, None, &out, &never, &mut |_| {})
        .unwrap();
    assert_eq!(saved(&out), weights(resumed.optimizer_model()));
    assert!(matches!(
        resumed.set_average_epochs(1_000_000),
        Err(TrainError::OutOfRange(_))
    ));
}

#[test]
fn each_run_resumes_on_the_engine_that_wrote_its_optimizer_state() {
    let data = little_dataset();
    let settings = TrainSettings {
        batch_size: 16,
        ..TrainSettings::default()
    };
    let cpu = device::cpu();
    let dir = tempfile::tempdir().unwrap();
    let never = AtomicBool::new(false);
    for on_burn in [false, true] {
        let out = dir.path().join(format!("run-{on_burn}.cadenza"));
        let mut trainer = Trainer::new(
            ArticleNetConfig::article(),
            settings.clone(),
            &data,
            "little",
            &cpu,
        )
        .unwrap();
        assert_eq!(trainer.engine(), TrainingEngine::PlainRust);
        if on_burn {
            trainer = trainer.on_burn().unwrap();
        }
        let engine = trainer.engine();
        trainer
            .fit(&data, 1, None, &out, &never, &mut |_| {})
            .unwrap();
        // Once a step is taken, the run stays where it is.
        if !on_burn {
            assert!(trainer.on_burn().is_err());
        }
        let mut resumed = Trainer::resume(&Checkpoint::load(&out).unwrap(), &cpu).unwrap();
        assert_eq!(resumed.engine(), engine);
        resumed
            .fit(&data, 2, None, &out, &never, &mut |_| {})
            .unwrap();
        assert_eq!(resumed.record().epochs_done(), 2);
    }
}

#[test]
fn a_non_finite_loss_stops_training_and_keeps_the_last_checkpoint() {
    let data = little_dataset();
    let cpu = device::cpu();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.cadenza");
    let never = AtomicBool::new(false);
    let settings = TrainSettings {
        batch_size: 16,
        ..TrainSettings::default()
    };
    let mut trainer = Trainer::new(
        ArticleNetConfig::article(),
        settings.clone(),
        &data,
        "little",
        &cpu,
    )
    .unwrap();
    trainer
        .fit(&data, 1, None, &out, &never, &mut |_| {})
        .unwrap();
    let saved = std::fs::read(&out).unwrap();

    // A model whose dense bias is NaN gives a NaN loss at the first batch.
    let training = cadenza::train::training_device(&cpu);
    let mut broken = Checkpoint::from_bytes(&saved)
        .unwrap()
        .model(&training)
        .unwrap()
        .into_article()
        .unwrap();
    let [n] = broken.dense11.bias.as_ref().unwrap().dims();
    broken.dense11.bias = Some(burn::module::Param::from_tensor(Tensor::full(
        [n],
        f32::NAN,
        &training,
    )));
    let mut trainer = Trainer::with_model(
        broken,
        ArticleNetConfig::article(),
        settings,
        &data,
        "little",
        &training,
    )
    .unwrap();
    let error = trainer
        .fit(&data, 2, None, &out, &never, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(
            error,
            TrainError::NonFiniteLoss {
                epoch: 1,
                batch: 1,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), saved);
}
