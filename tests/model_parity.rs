//! The burn port against the Keras reference in `tests/data/parity/`: every layer's
//! activations, batched calls, a full boosted generation and one Adam step.

use std::collections::HashMap;
use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use cadenza::dataset::Dataset;
use cadenza::device;
use cadenza::generate::{GenerateOptions, Rule, generate};
use cadenza::keras::load_keras_npz;
use cadenza::model::summary::summarize;
use cadenza::model::{ArticleNet, ArticleNetConfig, Network};
use cadenza::record::TrainSettings;
use cadenza::train::{Trainer, training_device};

use crate::helpers::data_dir;

fn parity(file: &str) -> PathBuf {
    data_dir().join("parity").join(file)
}

/// Every array of an `.npz`, as f32 values with their shape.
fn read_npz(file: &str) -> HashMap<String, (Vec<u64>, Vec<f32>)> {
    let mut archive = npyz::npz::NpzArchive::open(parity(file)).unwrap();
    let names: Vec<String> = archive.array_names().map(str::to_owned).collect();
    names
        .into_iter()
        .map(|name| {
            let array = archive.by_name(&name).unwrap().unwrap();
            let shape = array.shape().to_vec();
            let values: Vec<f32> = match array.dtype() {
                npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Uint => array
                    .into_vec::<u8>()
                    .unwrap()
                    .into_iter()
                    .map(f32::from)
                    .collect(),
                _ => array.into_vec::<f32>().unwrap(),
            };
            (name, (shape, values))
        })
        .collect()
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_into_vec::<f32>().unwrap()
}

/// The largest absolute difference, asserting equal lengths.
fn max_diff(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn input(values: &[f32], batch: usize) -> Tensor<3> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [batch, 9, 106]),
        &device::cpu(),
    )
}

fn load(weights: &str) -> ArticleNet {
    load_keras_npz(
        &parity(weights),
        &ArticleNetConfig::article(),
        &device::cpu(),
    )
    .unwrap()
}

#[test]
fn summary_counts_match_the_article() {
    let config = ArticleNetConfig::article();
    let summary = summarize(&config.init(&device::cpu()), &config);
    assert_eq!(
        (summary.total, summary.trainable, summary.non_trainable),
        (251_370, 251_242, 128)
    );
    let params: Vec<usize> = summary.rows.iter().map(|r| r.params).collect();
    assert_eq!(
        params,
        [
            13_696, 0, 16_512, 0, 16_512, 0, 16_512, 0, 131_584, 49_408, 256, 6_890
        ]
    );
    let text = summary.to_text();
    for line in [
        "Total params: 251,370",
        "Trainable params: 251,242",
        "Non-trainable params: 128",
    ] {
        assert!(text.contains(line), "{text}");
    }
}

#[test]
fn every_activation_and_batched_call_matches_keras() {
    for (weights, vectors) in [
        ("weights_init_seed0.npz", "vectors_init_seed0.npz"),
        ("weights_trained_1ep.npz", "vectors_trained_1ep.npz"),
    ] {
        let model = load(weights);
        let reference = read_npz(vectors);
        let (x_single, x_batch) = (&reference["x_single"].1, &reference["x_batch"].1);

        let (output, activations) = model.forward_with_activations(input(x_single, 1));
        assert_eq!(activations.layers.len(), 12);
        for (name, ours) in activations.layers {
            let (_, theirs) = &reference[&format!("act{name}")];
            let diff = max_diff(&values(ours), theirs);
            assert!(diff <= 1e-5, "{vectors} act{name}: off by {diff}");
        }
        let diff = max_diff(&values(output), &reference["y_single_call"].1);
        assert!(diff <= 1e-5, "{vectors} y_single_call: off by {diff}");

        let batch = x_batch.len() / (9 * 106);
        let diff = max_diff(
            &values(model.forward(input(x_batch, batch))),
            &reference["y_batch_call"].1,
        );
        assert!(diff <= 1e-5, "{vectors} y_batch_call: off by {diff}");
    }
}

#[test]
fn boosted_generation_reproduces_the_keras_song_bit_for_bit() {
    let model = load("weights_trained_1ep.npz");
    let reference = read_npz("vectors_trained_1ep.npz");
    let start = &reference["gen_start_window"].1;
    let mut window = [0u128; 9];
    for (step, row) in start.chunks_exact(106).enumerate() {
        for (pitch, &v) in row.iter().enumerate() {
            if v > 0.5 {
                window[step] |= 1 << pitch;
            }
        }
    }
    let options = GenerateOptions {
        steps: 106,
        rule: Rule::ARTICLE,
        variations: 1,
    };
    let song = &generate(
        &Network::Article(model.clone()),
        &device::cpu(),
        &window,
        &options,
    )
    .unwrap()[0];
    let diff = max_diff(&song.probabilities, &reference["gen_raw_sigmoid"].1);
    assert!(diff <= 1e-5, "raw sigmoid off by {diff}");
    let expected = &reference["gen_song_uint8"].1;
    for (step, &mask) in song.steps.iter().enumerate() {
        for pitch in 0..106 {
            let theirs = expected[step * 106 + pitch] >= 1.0;
            assert_eq!(
                mask >> pitch & 1 == 1,
                theirs,
                "step {step} pitch row {pitch}"
            );
        }
    }
    assert!(
        song.steps.iter().any(|&m| m != 0),
        "the reference song is not silent"
    );
}

/// Every trained tensor and batch-norm statistic, by Keras key.
fn parameters(model: &ArticleNet) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for (index, layer) in [
        (0, &model.conv0),
        (2, &model.conv2),
        (4, &model.conv4),
        (6, &model.conv6),
        (11, &model.dense11),
    ] {
        out.push((format!("{index:02}.kernel"), values(layer.weight.val())));
        out.push((
            format!("{index:02}.bias"),
            values(layer.bias.as_ref().unwrap().val()),
        ));
    }
    for (index, lstm) in [(8, &model.lstm8), (9, &model.lstm9)] {
        out.push((format!("{index:02}.kernel"), values(lstm.kernel.val())));
        out.push((
            format!("{index:02}.recurrent_kernel"),
            values(lstm.recurrent_kernel.val()),
        ));
        out.push((format!("{index:02}.bias"), values(lstm.bias.val())));
    }
    let norm = &model.norm10;
    out.push(("10.gamma".into(), values(norm.gamma.val())));
    out.push(("10.beta".into(), values(norm.beta.val())));
    out.push(("10.moving_mean".into(), values(norm.running_mean.value())));
    out.push((
        "10.moving_variance".into(),
        values(norm.running_var.value()),
    ));
    out
}

#[test]
fn one_adam_step_matches_keras() {
    let reference = read_npz("train_step_seed0.npz");
    let trainer_device = training_device(&device::cpu());
    let model = load_keras_npz(
        &parity("weights_init_seed0.npz"),
        &ArticleNetConfig::article(),
        &trainer_device,
    )
    .unwrap();
    let (x, y) = (&reference["x"].1, &reference["y"].1);

    // The loss before the step, in inference mode.
    let frozen = load("weights_init_seed0.npz");
    let predicted = frozen.forward(input(x, y.len() / 106));
    let target = Tensor::<2>::from_data(
        TensorData::new(y.clone(), [y.len() / 106, 106]),
        &device::cpu(),
    );
    let inference_loss = values((predicted - target).square().mean())[0];
    let expected = reference["loss_before_inference_mode"].1[0];
    assert!(
        (inference_loss - expected).abs() <= 1e-5,
        "{inference_loss} vs {expected}"
    );

    let data =
        Dataset::from_rolls(vec![vec![0; 20]], cadenza::dataset::Preset::Forward, 0.0, 0).unwrap();
    let mut trainer = Trainer::with_model(
        model,
        ArticleNetConfig::article(),
        TrainSettings::default(),
        &data,
        "parity",
        &trainer_device,
    )
    .unwrap();
    let loss = trainer.step(x, y).unwrap();
    let expected = reference["loss_returned_by_train_on_batch"].1[0];
    assert!(
        (loss - expected).abs() <= 1e-5,
        "train loss {loss} vs {expected}"
    );

    let after = parameters(&trainer.model().into_article().unwrap());
    let mut worst = (String::new(), 0.0f32);
    for (key, ours) in &after {
        let (index, variable) = key.split_once('.').unwrap();
        let theirs = reference
            .iter()
            .find(|(name, _)| {
                name.starts_with(&format!("{index}.")) && name.ends_with(&format!(".{variable}"))
            })
            .map(|(_, (_, v))| v)
            .unwrap_or_else(|| panic!("no reference for {key}"));
        let diff = max_diff(ours, theirs);
        if diff > worst.1 {
            worst = (key.clone(), diff);
        }
    }
    eprintln!(
        "Adam step: largest weight deviation {} in {}",
        worst.1, worst.0
    );
    assert!(worst.1 <= 1e-4, "{} off by {}", worst.0, worst.1);
}

#[test]
fn the_native_cpu_copy_matches_keras_too() {
    use cadenza::generate::{NativePredictor, generate_with};
    use cadenza::model::native::{NativeArticleNet, Scratch};

    let model = load("weights_trained_1ep.npz");
    let net = NativeArticleNet::from_model(&model).unwrap();
    let reference = read_npz("vectors_trained_1ep.npz");
    let x_batch = &reference["x_batch"].1;
    let mut scratch = Scratch::default();
    let mut ours = Vec::new();
    for window in x_batch.chunks_exact(9 * 106) {
        let masks: [u128; 9] = std::array::from_fn(|step| {
            (0..106).fold(0u128, |m, p| {
                if window[step * 106 + p] > 0.5 {
                    m | 1 << p
                } else {
                    m
                }
            })
        });
        // The batch holds one random (non-binary) window: compare only 0/1 ones.
        if window.iter().any(|&v| v != 0.0 && v != 1.0) {
            ours.extend(std::iter::repeat_n(f32::NAN, 106));
            continue;
        }
        let mut out = vec![0.0; 106];
        net.forward(&[masks], &mut scratch, &mut out);
        ours.extend(out);
    }
    let theirs = &reference["y_batch_call"].1;
    let mut compared = 0;
    for (a, b) in ours.iter().zip(theirs) {
        if !a.is_nan() {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
            compared += 1;
        }
    }
    assert!(compared >= 3 * 106, "only {compared} outputs compared");

    // A batch gives what the windows give one by one.
    let binary: Vec<[u128; 9]> = x_batch
        .chunks_exact(9 * 106)
        .filter(|w| w.iter().all(|&v| v == 0.0 || v == 1.0))
        .map(|w| {
            std::array::from_fn(|step| {
                (0..106).fold(0u128, |m, p| {
                    if w[step * 106 + p] > 0.5 {
                        m | 1 << p
                    } else {
                        m
                    }
                })
            })
        })
        .collect();
    let mut batched = vec![0.0; binary.len() * 106];
    net.forward(&binary, &mut scratch, &mut batched);
    let singles: Vec<f32> = ours.iter().copied().filter(|v| !v.is_nan()).collect();
    assert!(max_diff(&batched, &singles) <= 1e-6);

    let start = &reference["gen_start_window"].1;
    let window: [u128; 9] = std::array::from_fn(|step| {
        (0..106).fold(0u128, |m, p| {
            if start[step * 106 + p] > 0.5 {
                m | 1 << p
            } else {
                m
            }
        })
    });
    let song = &generate_with(
        &mut NativePredictor::new(&net),
        &window,
        &GenerateOptions {
            steps: 106,
            rule: Rule::ARTICLE,
            variations: 1,
        },
    )
    .unwrap()[0];
    let diff = max_diff(&song.probabilities, &reference["gen_raw_sigmoid"].1);
    assert!(diff <= 1e-5, "raw sigmoid off by {diff}");
    let expected = &reference["gen_song_uint8"].1;
    for (step, &mask) in song.steps.iter().enumerate() {
        for pitch in 0..106 {
            assert_eq!(
                mask >> pitch & 1 == 1,
                expected[step * 106 + pitch] >= 1.0,
                "step {step} row {pitch}"
            );
        }
    }

    // A scratch keeps each window's convolved rows for the window one step
    // on: sliding two windows through the song (one of them restarting
    // half way) gives the bits a fresh scratch gives.
    let steps: Vec<u128> = window.iter().chain(&song.steps).copied().collect();
    let mut kept = Scratch::default();
    for t in 0..steps.len() - 9 {
        let restarted = if t < 40 { t } else { t - 40 };
        let windows = [
            std::array::from_fn(|i| steps[t + i]),
            std::array::from_fn(|i| steps[restarted + i]),
        ];
        let mut reused = vec![0.0; 2 * 106];
        net.forward(&windows, &mut kept, &mut reused);
        let mut fresh = vec![0.0; 2 * 106];
        net.forward(&windows, &mut Scratch::default(), &mut fresh);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&reused), bits(&fresh), "step {t}");
    }
}
