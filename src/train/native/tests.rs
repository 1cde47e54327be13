//! The plain-Rust trainer against burn's autodiff (the reference): the same
//! loss and the same gradients on random inputs, chunking that never
//! depends on the number of cores, and an optimizer state that round-trips.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use rand::Rng as _;

use super::NativeTrainer;
use crate::model::{ArticleNetConfig, ComposerConfig, Network, NetworkConfig, RollLstmConfig};
use crate::record::{LossKind, TrainSettings};
use crate::rng::seeded;
use crate::train::scheme::{BatchData, BatchPosition, scheme_for};
use crate::train::training_device;

fn random_batch(n: usize, input_len: usize, target_len: usize, binary: bool) -> BatchData {
    let mut rng = seeded(7);
    let mut draw = |len: usize, binary: bool| -> Vec<f32> {
        (0..len)
            .map(|_| {
                if binary {
                    f32::from(u8::from(rng.random::<f32>() < 0.15))
                } else {
                    rng.random::<f32>()
                }
            })
            .collect()
    };
    BatchData {
        inputs: draw(n * input_len, binary),
        targets: draw(n * target_len, true),
        ..BatchData::default()
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_into_vec::<f32>().unwrap()
}

fn grad_of<const D: usize>(grads: &GradientsParams, param: &Param<Tensor<D>>) -> Vec<f32> {
    values(grads.get::<D>(param.id).unwrap())
}

/// burn's loss and gradients of `model` (on a training device) for `batch`,
/// in the native trainer's tensor order.
fn burn_gradients(
    model: &Network,
    config: &NetworkConfig,
    settings: &TrainSettings,
    batch: &BatchData,
) -> (f32, Vec<Vec<f32>>) {
    let device = training_device(&crate::device::cpu());
    let loss = scheme_for(config)
        .loss(model, settings, batch, &device)
        .unwrap();
    let value = values(loss.clone())[0];
    let grads = GradientsParams::from_grads(loss.backward(), model);
    let tensors = match model {
        Network::RollLstm(m) => vec![
            grad_of(&grads, &m.lstm.kernel),
            grad_of(&grads, &m.lstm.recurrent_kernel),
            grad_of(&grads, &m.lstm.bias),
            grad_of(&grads, &m.output.weight),
            grad_of(&grads, m.output.bias.as_ref().unwrap()),
        ],
        Network::Article(m) => {
            let mut out = Vec::new();
            for conv in [&m.conv0, &m.conv2, &m.conv4, &m.conv6] {
                out.push(grad_of(&grads, &conv.weight));
                out.push(grad_of(&grads, conv.bias.as_ref().unwrap()));
            }
            for lstm in [&m.lstm8, &m.lstm9] {
                // From a zero state the recurrent kernel takes no part.
                out.push(grad_of(&grads, &lstm.kernel));
                out.push(grads.get::<2>(lstm.recurrent_kernel.id).map_or_else(
                    || vec![0.0; lstm.recurrent_kernel.val().dims().iter().product()],
                    values,
                ));
                out.push(grad_of(&grads, &lstm.bias));
            }
            out.push(grad_of(&grads, &m.norm10.gamma));
            out.push(grad_of(&grads, &m.norm10.beta));
            out.push(grad_of(&grads, &m.dense11.weight));
            out.push(grad_of(&grads, m.dense11.bias.as_ref().unwrap()));
            out
        }
        Network::Composer(m) => {
            let mut out = Vec::new();
            for lstm in [&m.past, &m.future] {
                out.push(grad_of(&grads, &lstm.kernel));
                out.push(grad_of(&grads, &lstm.recurrent_kernel));
                out.push(grad_of(&grads, &lstm.bias));
            }
            for layer in [&m.visible_bias, &m.hidden_bias] {
                out.push(grad_of(&grads, &layer.weight));
                out.push(grad_of(&grads, layer.bias.as_ref().unwrap()));
            }
            out.push(grad_of(&grads, &m.nade_in));
            out.push(grad_of(&grads, &m.nade_out));
            out
        }
    };
    (value, tensors)
}

/// Native and burn gradients of a fresh `config` network on `batch` agree
/// to 1e-5 (relative to each tensor's largest gradient when that is above
/// 1); returns the largest difference seen.
fn compare(config: &NetworkConfig, settings: &TrainSettings, batch: &BatchData) -> f32 {
    let device = training_device(&crate::device::cpu());
    device.seed(11);
    let model = config.init(&device);
    let mut native = NativeTrainer::from_network(&model, config)
        .unwrap()
        .unwrap();
    let position = BatchPosition { epoch: 1, batch: 0 };
    let ours = native.gradients(batch, settings, Some(position));
    assert!(native.chunks_used >= 2, "the batch spans several chunks");
    let our_grads = native.summed_gradients();
    let (theirs, their_grads) = burn_gradients(&model, config, settings, batch);
    assert!(
        (ours - theirs).abs() <= 1e-5 * theirs.abs().max(1.0),
        "loss {ours} vs burn's {theirs}"
    );
    assert_eq!(our_grads.len(), their_grads.len());
    let mut worst = 0.0f32;
    for (index, (a, b)) in our_grads.iter().zip(&their_grads).enumerate() {
        assert_eq!(a.len(), b.len(), "tensor {index}");
        let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
            / scale;
        assert!(diff <= 1e-5, "tensor {index} differs from burn's by {diff}");
        worst = worst.max(diff);
    }
    worst
}

fn roll_settings(loss: LossKind) -> TrainSettings {
    TrainSettings {
        loss,
        sequence_steps: 6,
        feedback: 0.0,
        max_transpose: 0,
        ..TrainSettings::default()
    }
}

#[test]
fn roll_lstm_gradients_match_burn() {
    // burn's side of the schemes reads the roll's 106 pitches.
    let config = RollLstmConfig::new().with_units(12).with_dropout(0.0);
    for (loss, binary) in [(LossKind::Bce, true), (LossKind::Mse, false)] {
        let settings = roll_settings(loss);
        let mut batch = random_batch(19, 6 * 106, 6 * 106, binary);
        let worst = compare(&config.clone().into(), &settings, &batch);
        eprintln!("roll LSTM, {loss:?}, binary inputs {binary}: worst {worst:e}");
        // Songs that end inside their stretch: the steps after count 0.
        batch.weights = padding_weights(19, 6);
        let worst = compare(&config.clone().into(), &settings, &batch);
        eprintln!("roll LSTM, {loss:?}, past songs' ends: worst {worst:e}");
    }
    // Recurrent dropout: both engines take the batch's mask.
    let settings = TrainSettings {
        recurrent_dropout: 0.4,
        ..roll_settings(LossKind::Bce)
    };
    let mut batch = random_batch(19, 6 * 106, 6 * 106, true);
    let position = BatchPosition { epoch: 1, batch: 0 };
    batch.recurrent_mask = crate::train::scheme::recurrent_mask(&settings, position, 19, 12);
    let dropped = batch.recurrent_mask.iter().filter(|&&m| m == 0.0).count();
    assert!((50..=130).contains(&dropped), "{dropped} of 228 dropped");
    let unmasked = {
        let mut plain = batch.clone();
        plain.recurrent_mask.clear();
        compare(&config.clone().into(), &settings, &plain)
    };
    let worst = compare(&config.clone().into(), &settings, &batch);
    eprintln!("roll LSTM, recurrent dropout: worst {worst:e} (without: {unmasked:e})");
}

#[test]
fn a_recurrent_mask_changes_the_gradients_and_is_drawn_again_each_batch() {
    let config: NetworkConfig = RollLstmConfig::new().with_units(8).with_dropout(0.0).into();
    let settings = TrainSettings {
        recurrent_dropout: 0.5,
        ..roll_settings(LossKind::Bce)
    };
    let batch = random_batch(4, 6 * 106, 6 * 106, true);
    let first = BatchPosition { epoch: 1, batch: 0 };
    let mask = crate::train::scheme::recurrent_mask(&settings, first, 4, 8);
    assert!(mask.iter().all(|&m| m == 0.0 || m == 2.0));
    assert_eq!(
        mask,
        crate::train::scheme::recurrent_mask(&settings, first, 4, 8)
    );
    let next = BatchPosition { epoch: 1, batch: 1 };
    assert_ne!(
        mask,
        crate::train::scheme::recurrent_mask(&settings, next, 4, 8)
    );
    let device = training_device(&crate::device::cpu());
    device.seed(3);
    let model = config.init(&device);
    let mut native = NativeTrainer::from_network(&model, &config)
        .unwrap()
        .unwrap();
    native.gradients(&batch, &settings, Some(first));
    let plain = native.summed_gradients();
    let masked_batch = BatchData {
        recurrent_mask: mask,
        ..batch
    };
    native.gradients(&masked_batch, &settings, Some(first));
    let masked = native.summed_gradients();
    // Only the LSTM's recurrent kernel and what follows it can change; the
    // recurrent kernel's gradient does.
    assert_ne!(plain[1], masked[1]);
}

/// Step weights of `n` stretches of `length` in which every third song ends
/// early (1 for its steps, 0 after), as short songs' stretches have them.
fn padding_weights(n: usize, length: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|s| {
            let song_steps = if s % 3 == 0 { 1 + s % length } else { length };
            (0..length).map(move |t| f32::from(u8::from(t < song_steps)))
        })
        .collect()
}

#[test]
fn steps_weighted_zero_change_neither_loss_nor_gradients() {
    // Whatever the targets after a song's end hold, they count for nothing.
    let config: NetworkConfig = RollLstmConfig::new().with_units(8).with_dropout(0.0).into();
    let settings = roll_settings(LossKind::Bce);
    let (n, length) = (9, 6);
    let mut batch = random_batch(n, length * 106, length * 106, true);
    batch.weights = padding_weights(n, length);
    let model = config.init(&crate::device::cpu());
    let run = |batch: &BatchData| {
        let mut native = NativeTrainer::from_network(&model, &config)
            .unwrap()
            .unwrap();
        let position = BatchPosition { epoch: 1, batch: 0 };
        let loss = native.gradients(batch, &settings, Some(position));
        (loss, native.summed_gradients())
    };
    let before = run(&batch);
    for (index, &weight) in batch.weights.iter().enumerate() {
        if weight == 0.0 {
            batch.targets[index * 106..(index + 1) * 106].fill(1.0);
        }
    }
    assert_eq!(run(&batch), before);
    // Every weight 1 is the unweighted loss.
    let unweighted = {
        batch.weights.clear();
        run(&batch)
    };
    batch.weights = vec![1.0; n * length];
    assert_eq!(run(&batch), unweighted);
}

#[test]
fn article_gradients_match_burn() {
    let config = ArticleNetConfig::article()
        .with_filters(16)
        .with_lstm_units(12)
        .with_lstm2_units(8);
    for (loss, binary) in [(LossKind::Mse, true), (LossKind::Bce, false)] {
        let settings = TrainSettings {
            loss,
            ..TrainSettings::default()
        };
        let batch = random_batch(21, 9 * 106, 106, binary);
        let worst = compare(&config.clone().into(), &settings, &batch);
        eprintln!("article, {loss:?}, binary inputs {binary}: worst {worst:e}");
    }
}

#[test]
fn composer_gradients_match_burn() {
    let length = 7;
    let n = 19;
    let mut batch = random_batch(n, length * 106, length * 106, true);
    let mut rng = seeded(9);
    let meter = crate::meter::METER_FEATURES;
    batch.meter = (0..n * length * meter)
        .map(|_| f32::from(u8::from(rng.random::<f32>() < 0.2)))
        .collect();
    // Gaps as training draws them: none for some targets, else ending
    // within the stretch.
    batch.gaps = (0..n * length)
        .map(|i| {
            let t = i % length;
            let d = rng.random_range(0..length as u32);
            if t + (d as usize) < length { d } else { 0 }
        })
        .collect();
    assert!(batch.gaps.iter().any(|&d| d > 1) && batch.gaps.contains(&0));
    let settings = TrainSettings {
        loss: LossKind::Nll,
        sequence_steps: length,
        ..TrainSettings::default()
    };
    for (near_after, pitch_profile, key_input) in [
        (Some(true), Some(true), Some(true)),
        (Some(true), Some(true), None),
        (None, None, None),
    ] {
        let config = ComposerConfig::new()
            .with_units(12)
            .with_future_units(8)
            .with_nade_units(10)
            .with_dropout(0.0)
            .with_near_after(near_after)
            .with_pitch_profile(pitch_profile)
            .with_key_input(key_input);
        let worst = compare(&config.into(), &settings, &batch);
        eprintln!(
            "composer, near_after {near_after:?}, profile {pitch_profile:?}, key {key_input:?}: \
             worst {worst:e}"
        );
    }
    let config: NetworkConfig = ComposerConfig::new()
        .with_units(12)
        .with_future_units(8)
        .with_nade_units(10)
        .with_dropout(0.0)
        .into();
    // Songs that end inside their stretch: their steps after count 0.
    batch.weights = padding_weights(n, length);
    compare(&config, &settings, &batch);
    batch.weights.clear();
    // Without gaps (continuing only) too.
    batch.gaps.clear();
    compare(&config, &settings, &batch);
}

#[test]
fn results_do_not_depend_on_the_number_of_cores() {
    let config: NetworkConfig = RollLstmConfig::new().with_pitches(20).with_units(12).into();
    let settings = roll_settings(LossKind::Bce);
    let batch = random_batch(40, 6 * 20, 6 * 20, true);
    let device = crate::device::cpu();
    device.seed(3);
    let model = config.init(&device);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut native = NativeTrainer::from_network(&model, &config)
                .unwrap()
                .unwrap();
            for index in 0..3 {
                let position = BatchPosition {
                    epoch: 1,
                    batch: index,
                };
                native.step(&batch, &settings, position).unwrap();
            }
            (native.params().to_vec(), native.optimizer_bytes())
        })
    };
    let one = run(1);
    assert_eq!(one, run(3));
    assert_ne!(
        one.0,
        NativeTrainer::from_network(&model, &config)
            .unwrap()
            .unwrap()
            .params()
    );
}

#[test]
fn the_optimizer_state_round_trips_and_refuses_damage() {
    let config: NetworkConfig = RollLstmConfig::new().with_pitches(10).with_units(4).into();
    let model = config.init(&crate::device::cpu());
    let mut native = NativeTrainer::from_network(&model, &config)
        .unwrap()
        .unwrap();
    let settings = TrainSettings {
        sequence_steps: 3,
        ..roll_settings(LossKind::Bce)
    };
    let batch = random_batch(2, 30, 30, true);
    native
        .step(&batch, &settings, BatchPosition { epoch: 1, batch: 0 })
        .unwrap();
    let bytes = native.optimizer_bytes();
    assert!(NativeTrainer::wrote(&bytes));
    let mut other = NativeTrainer::from_network(&model, &config)
        .unwrap()
        .unwrap();
    other.restore_optimizer(&bytes).unwrap();
    assert_eq!(other.optimizer_bytes(), bytes);
    assert_eq!(other.steps_taken(), 1);
    for cut in [bytes.len() - 1, bytes.len() / 2, 30] {
        assert!(
            other.restore_optimizer(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // A batch that does not fit is an error, not a panic.
    let mut short = random_batch(2, 30, 30, true);
    short.inputs.pop();
    assert!(
        other
            .step(&short, &settings, BatchPosition { epoch: 1, batch: 1 })
            .is_err()
    );
    assert!(other.loss(&BatchData::default(), &settings).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(other.restore_optimizer(&longer).is_err());
    assert!(other.restore_optimizer(b"burnpack").is_err());
}
