//! The wgpu path against the CPU on the parity inputs. Without a GPU this runs
//! on Mesa's software Vulkan (lavapipe), which `.ci/setup` installs; where no
//! adapter exists at all the test says so and passes without checking.

use burn::tensor::{Tensor, TensorData};
use cadenza::device::{self, BackendChoice};
use cadenza::generate::{GenerateOptions, generate};
use cadenza::keras::load_keras_npz;
use cadenza::model::{ArticleNetConfig, Network};

use crate::helpers::data_dir;

#[test]
fn gpu_and_cpu_agree_on_the_parity_inputs() {
    let gpu = match device::select(BackendChoice::Gpu) {
        Ok(gpu) => gpu,
        Err(error) => {
            eprintln!("SKIPPED gpu_and_cpu_agree_on_the_parity_inputs: {error}");
            return;
        }
    };
    eprintln!("GPU test on {} ({})", gpu.label, device::adapters().len());
    let weights = data_dir().join("parity/weights_trained_1ep.npz");
    let config = ArticleNetConfig::article();
    let cpu = device::cpu();
    let on_cpu = load_keras_npz(&weights, &config, &cpu).unwrap();
    let on_gpu = load_keras_npz(&weights, &config, &gpu.device).unwrap();

    let mut archive =
        npyz::npz::NpzArchive::open(data_dir().join("parity/vectors_trained_1ep.npz")).unwrap();
    let x: Vec<f32> = archive
        .by_name("x_batch")
        .unwrap()
        .unwrap()
        .into_vec()
        .unwrap();
    let batch = x.len() / (9 * 106);
    let forward = |model: &cadenza::model::ArticleNet, device| {
        let input = Tensor::<3>::from_data(TensorData::new(x.clone(), [batch, 9, 106]), device);
        model
            .forward(input)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    };
    let (a, b) = (forward(&on_cpu, &cpu), forward(&on_gpu, &gpu.device));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-4, "CPU and GPU differ by {diff}");

    // Generation on the GPU: the same probabilities step by step.
    let window: [u128; 9] = std::array::from_fn(|step| 0b1001_0001u128 << (20 + step));
    let options = GenerateOptions {
        steps: 4,
        ..GenerateOptions::default()
    };
    let a = &generate(&Network::Article(on_cpu.clone()), &cpu, &window, &options).unwrap()[0];
    let b = &generate(
        &Network::Article(on_gpu.clone()),
        &gpu.device,
        &window,
        &options,
    )
    .unwrap()[0];
    let diff = a
        .probabilities
        .iter()
        .zip(&b.probabilities)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-4, "generation differs by {diff}");
}

#[test]
fn the_shipped_roll_lstm_generates_alike_on_gpu_and_cpu() {
    let gpu = match device::select(BackendChoice::Gpu) {
        Ok(gpu) => gpu,
        Err(error) => {
            eprintln!("SKIPPED the_shipped_roll_lstm_generates_alike_on_gpu_and_cpu: {error}");
            return;
        }
    };
    let shipped = cadenza::assets::shipped_model("roll").unwrap();
    let checkpoint = cadenza::checkpoint::Checkpoint::from_bytes(shipped.bytes).unwrap();
    let cpu = device::cpu();
    let on_cpu = checkpoint.model(&cpu).unwrap();
    let on_gpu = checkpoint.model(&gpu.device).unwrap();
    let seed: Vec<u128> = (0..12)
        .map(|step| 0b1000_1001u128 << (30 + step % 5))
        .collect();
    let options = GenerateOptions {
        steps: 8,
        rule: cadenza::generate::Rule::Threshold { threshold: 0.5 },
        variations: 2,
    };
    let a = generate(&on_cpu, &cpu, &seed, &options).unwrap();
    let b = generate(&on_gpu, &gpu.device, &seed, &options).unwrap();
    let diff = a[1]
        .probabilities
        .iter()
        .zip(&b[1].probabilities)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-4, "the roll LSTM's steps differ by {diff}");
}

#[test]
fn the_composer_scores_and_trains_on_the_gpu_as_on_the_cpu() {
    use cadenza::checkpoint::{Checkpoint, CheckpointHeader};
    use cadenza::meter::Meter;
    use rand::SeedableRng as _;

    let gpu = match device::select(BackendChoice::Gpu) {
        Ok(gpu) => gpu,
        Err(error) => {
            eprintln!("SKIPPED the_composer_scores_and_trains_on_the_gpu_as_on_the_cpu: {error}");
            return;
        }
    };
    let config = crate::composer::small_config();
    let file = Checkpoint::new(
        CheckpointHeader::new(config.clone(), "test"),
        &Network::Composer(crate::composer::small_model()),
    )
    .unwrap();
    let steps = crate::composer::random_steps(&mut rand::rngs::StdRng::seed_from_u64(6), 12);
    let nll = |device: &burn::tensor::Device| {
        let Network::Composer(model) = file.model(device).unwrap() else {
            panic!("a composer");
        };
        let input = crate::composer::burn_input(&steps, Meter::default(), Some(8), device);
        model
            .step_nll(&input)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    };
    let (a, b) = (nll(&device::cpu()), nll(&gpu.device));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs() / p.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(
        diff <= 1e-4,
        "CPU and GPU step NLLs differ by {diff} (relative)"
    );

    // Backward through the cumulative sum, the flips and the gather.
    let data = cadenza::dataset::Dataset::from_songs(
        crate::composer::patterned_songs(6),
        cadenza::dataset::Preset::Forward,
        cadenza::dataset::Split::Last(1),
    )
    .unwrap();
    let settings = cadenza::record::TrainSettings {
        batch_size: 4,
        sequence_steps: 8,
        ..cadenza::train::default_settings(cadenza::model::Architecture::Composer)
    };
    let mut trainer =
        cadenza::train::Trainer::new(config, settings, &data, "gpu", &gpu.device).unwrap();
    assert!(trainer.targets_per_second(&data, 2).unwrap() > 0.0);
}
