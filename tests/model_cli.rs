//! `cadenza model`, `import-keras`, `train` and `generate` as a user runs them.

use crate::helpers::{cadenza, data_dir, path, text};

#[test]
fn model_summary_prints_the_keras_table() {
    let out = cadenza(&["model", "summary"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for expected in [
        "lstm (LSTM)",
        "(None, 1, 9, 128)",
        "131,584",
        "Total params: 251,370",
        "Trainable params: 251,242",
        "Non-trainable params: 128",
    ] {
        assert!(shown.contains(expected), "missing {expected:?} in\n{shown}");
    }
}

#[test]
fn import_keras_then_generate_writes_midi_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("keras.cadenza");
    let weights = data_dir().join("parity/weights_trained_1ep.npz");
    let out = cadenza(&["import-keras", path(&weights), "--out", path(&model)]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let info = cadenza(&["model", "info", path(&model)]);
    assert!(text(&info.stdout).contains("imported from Keras weights"));

    let seed = data_dir().join("corpus/keyboard/bach-wtc1-prelude1-bwv846.mid");
    let midi = dir.path().join("song.mid");
    let png = dir.path().join("song.png");
    let out = cadenza(&[
        "generate",
        "--model",
        path(&model),
        "--seed-file",
        path(&seed),
        "--seed-start",
        "16",
        "--backend",
        "cpu",
        "--out",
        path(&midi),
        "--png",
        path(&png),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("notes"));
    let roll = cadenza::files::load_roll(&png, &Default::default())
        .unwrap()
        .roll;
    assert_eq!(roll.steps(), 106, "the PNG holds the generated steps only");
    let midi_roll = cadenza::files::load_roll(&midi, &Default::default())
        .unwrap()
        .roll;
    assert!(midi_roll.note_count() > 0);

    // Three variations with the seed in front: numbered files of 9 + 20 steps.
    let many = dir.path().join("many.png");
    let out = cadenza(&[
        "generate",
        "--model",
        path(&model),
        "--seed-file",
        path(&seed),
        "--steps",
        "20",
        "--rule",
        "sample",
        "--rng-seed",
        "3",
        "--variations",
        "3",
        "--include-seed",
        "--backend",
        "cpu",
        "--out",
        path(&dir.path().join("many.mid")),
        "--png",
        path(&many),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for k in 1..=3 {
        let png = dir.path().join(format!("many-{k}.png"));
        let roll = cadenza::files::load_roll(&png, &Default::default())
            .unwrap()
            .roll;
        assert_eq!(roll.steps(), 29);
        assert!(dir.path().join(format!("many-{k}.mid")).is_file());
    }
}

#[test]
fn bad_model_files_and_parameters_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.cadenza");
    std::fs::write(&junk, b"not a model at all").unwrap();
    let out = cadenza(&[
        "generate",
        "--model",
        path(&junk),
        "--out",
        path(&dir.path().join("x.mid")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a Cadenza model file"),
        "{}",
        text(&out.stderr)
    );

    let weights = data_dir().join("parity/weights_trained_1ep.npz");
    let model = dir.path().join("m.cadenza");
    assert!(
        cadenza(&["import-keras", path(&weights), "--out", path(&model)])
            .status
            .success()
    );
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 3]).unwrap();
    let out = cadenza(&["model", "info", path(&model)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("truncated"),
        "{}",
        text(&out.stderr)
    );

    let out = cadenza(&[
        "import-keras",
        path(&dir.path().join("none.npz")),
        "--out",
        path(&model),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("none.npz"));

    std::fs::write(&model, &bytes).unwrap();
    for bad in [
        ["--steps", "0"],
        ["--vanish-proof", "NaN"],
        ["--seed-start", "100000"],
    ] {
        let mut args = vec!["generate", "--model", path(&model), "--backend", "cpu"];
        args.extend(bad);
        let out_file = dir.path().join("x.mid");
        args.extend(["--out", path(&out_file)]);
        let out = cadenza(&args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert_eq!(
            text(&out.stderr).lines().count(),
            1,
            "{}",
            text(&out.stderr)
        );
    }

    // Rules that decide every note the same way each time refuse
    // variations (they would be one roll repeated) and write nothing; the
    // article's network's own rule is the boost.
    for rule in [None, Some("threshold")] {
        let mut args = vec!["generate", "--model", path(&model), "--backend", "cpu"];
        if let Some(rule) = rule {
            args.extend(["--rule", rule]);
        }
        let out_file = dir.path().join("same.mid");
        args.extend(["--variations", "3", "--out", path(&out_file)]);
        let out = cadenza(&args);
        assert_eq!(out.status.code(), Some(2), "{rule:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("the {} rule", rule.unwrap_or("boost")))
                && stderr.contains("variations need --rule sample"),
            "{stderr}"
        );
        assert!(!dir.path().join("same-1.mid").exists());
    }
}

#[test]
fn train_writes_a_model_and_its_loss_history_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    crate::helpers::copy_demo_chorales(&data);
    std::fs::write(data.join("broken.mid"), b"MThd garbage").unwrap();
    let model = dir.path().join("little.cadenza");
    let out = crate::helpers::train_one_epoch(&data, &model, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("broken.mid"), "{stderr}");
    assert!(
        stderr.contains("training on the CPU with the plain-Rust CPU trainer"),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).contains("val loss"),
        "{}",
        text(&out.stdout)
    );
    assert!(model.is_file());
    let csv = std::fs::read_to_string(dir.path().join("little.loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2);

    let out = cadenza(&[
        "train",
        path(&data),
        "--out",
        path(&model),
        "--epochs",
        "2",
        "--backend",
        "cpu",
        "--resume",
        "--lr",
        "0.0005",
        "--feedback",
        "0",
        "--input-dropout",
        "0.1",
        "--recurrent-dropout",
        "0.25",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("resuming after epoch 1"), "{stderr}");
    // It goes on with the engine that wrote its optimizer state.
    assert!(stderr.contains("plain-Rust CPU trainer"), "{stderr}");
    assert!(
        stderr.contains("continuing at learning rate 0.0005 (was 0.001)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("continuing with feedback 0 (was 0.25)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("continuing with input dropout 0.1 (was 0)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("continuing with recurrent dropout 0.25 (was 0)"),
        "{stderr}"
    );
    let csv = std::fs::read_to_string(dir.path().join("little.loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    let info = cadenza(&["model", "info", path(&model)]);
    let info = text(&info.stdout);
    assert!(info.contains("lr 0.0005"), "{info}");
    assert!(
        info.contains(
            "0% of input steps fed back, 10% of input notes dropped, 25% of hidden units \
             dropped where they feed the next step"
        ),
        "{info}"
    );
    // The grid is the run's: another one is refused.
    let other_grid = cadenza(&[
        "train",
        path(&data),
        "--out",
        path(&model),
        "--epochs",
        "3",
        "--resume",
        "--steps-per-quarter",
        "2",
    ]);
    assert!(!other_grid.status.success());
    assert!(
        text(&other_grid.stderr).contains("reads its music at 4 steps per quarter"),
        "{}",
        text(&other_grid.stderr)
    );
}

#[test]
fn the_shipped_models_load_and_generate_with_no_arguments() {
    for shipped in cadenza::assets::SHIPPED_MODELS {
        let checkpoint = cadenza::checkpoint::Checkpoint::from_bytes(shipped.bytes).unwrap();
        checkpoint.model(&cadenza::device::cpu()).unwrap();
        let training = checkpoint.header.training.as_ref().unwrap();
        // Per cell for networks with independent outputs, per step (106
        // cells) for the composer's chain rule.
        let bound = match checkpoint.header.network.architecture() {
            cadenza::model::Architecture::Composer => 10.0,
            _ => 0.05,
        };
        assert!(training.best_epoch().unwrap().validation_loss.unwrap() < bound);
        assert!(
            checkpoint.optimizer_state().is_none(),
            "{} ships optimizer state",
            shipped.name
        );
    }
    assert!(cadenza::assets::shipped_model(cadenza::assets::DEFAULT_MODEL).is_some());

    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("song.mid");
    let out = cadenza(&["generate", "--out", path(&song)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("composer (shipped)"),
        "{}",
        text(&out.stderr)
    );
    let roll = cadenza::files::load_roll(&song, &Default::default())
        .unwrap()
        .roll;
    assert_eq!(roll.steps(), 106);

    let info = cadenza(&["model", "info", "article"]);
    assert!(info.status.success());
    // The article's network trains on windows.
    let table = text(&info.stdout);
    assert!(
        table.contains("<- best") && table.contains("windows/s"),
        "{table}"
    );
    // Its name until 2026-11 still opens it.
    let former = cadenza(&["model", "info", "seed"]);
    assert_eq!(former.stdout, info.stdout);
}

#[test]
fn eval_scores_a_model_on_a_folder_it_never_saw() {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::copy_demo_chorales(dir.path());
    let out = cadenza(&[
        "eval",
        path(dir.path()),
        "--json",
        "--stride",
        "32",
        "--steps",
        "20",
        "--rule",
        "threshold",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["held_out_files"], 2,
        "another folder: every file is held out"
    );
    let teacher = &report["teacher_forced"];
    for key in ["bce_nats_per_step", "mse"] {
        assert!(teacher[key].as_f64().unwrap() > 0.0, "{key}");
    }
    let f1 = teacher["best"]["f1"].as_f64().unwrap();
    assert!(f1 >= teacher["at_half"]["f1"].as_f64().unwrap() && f1 <= 1.0);
    let free = &report["free_running"];
    assert_eq!(free["vanish_curve"].as_array().unwrap().len(), 20);
    assert!(free["seeds"].as_u64().unwrap() > 0);
    assert!(
        free["copied_stretch_rate"].is_null(),
        "no training songs at hand"
    );
}

/// The shipped composer holds averaged weights and no optimizer state:
/// `model info` says the first and does not promise the optimizer's weights.
#[test]
fn model_info_tells_averaged_weights_without_promising_a_resume() {
    let out = cadenza(&["model", "info", "composer"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("resumable: no"), "{shown}");
    assert!(
        shown.contains("weights: averaged over about the last 10 epochs\n"),
        "{shown}"
    );
    assert!(!shown.contains("--resume"), "{shown}");
}
