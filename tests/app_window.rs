//! The real window: `cadenza` with no arguments under Xvfb, captured with
//! ImageMagick's `import`, and killed with SIGKILL after an edit to see the
//! work come back. The picture is kept as an artifact in the target folder
//! (`tmp/screenshots/cadenza.png`). `.ci/setup` installs Xvfb, ImageMagick
//! and xdotool; where they are missing the tests say so and pass.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// Kills a child process when the test ends, however it ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Colours in a PNG: a blank or black screen has one or two.
fn colours(png: &Path) -> usize {
    let Ok(image) = image::open(png) else {
        return 0;
    };
    let mut seen: Vec<[u8; 3]> = image.to_rgb8().pixels().step_by(37).map(|p| p.0).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// A virtual screen: the server and its display name.
struct Screen {
    _server: Reaper,
    display: String,
    import: PathBuf,
}

impl Screen {
    /// None (with a note) where Xvfb or ImageMagick is missing.
    fn start(test: &str) -> Option<Self> {
        let (Some(xvfb), Some(import)) = (on_path("Xvfb"), on_path("import")) else {
            eprintln!("SKIPPED {test}: Xvfb or ImageMagick's import is not installed");
            return None;
        };
        // -displayfd: Xvfb picks a free display itself and prints its number
        // once it accepts connections.
        let mut server = Reaper(
            Command::new(xvfb)
                .args([
                    "-displayfd",
                    "1",
                    "-screen",
                    "0",
                    "1280x800x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut number = String::new();
        let stdout = server.0.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut number).unwrap();
        let display = format!(":{}", number.trim());
        assert!(display.len() > 1, "Xvfb did not say which display it took");
        Some(Self {
            _server: server,
            display,
            import,
        })
    }

    /// Starts the app on this screen with its own HOME and data folder.
    fn app(&self, home: &Path, data: &Path) -> Reaper {
        let runtime = home.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        Reaper(
            Command::new(env!("CARGO_BIN_EXE_cadenza"))
                .env("DISPLAY", &self.display)
                .env("HOME", home)
                .env("XDG_RUNTIME_DIR", &runtime)
                .env("CADENZA_DATA_DIR", data)
                .env_remove("WAYLAND_DISPLAY")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(home.join("app.err")).unwrap())
                .spawn()
                .unwrap(),
        )
    }

    /// Captures the screen to `shot` until the app has drawn itself;
    /// returns the colours seen.
    fn wait_drawn(&self, app: &mut Reaper, home: &Path, shot: &Path) -> usize {
        let started = Instant::now();
        let mut seen = 0;
        while started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_secs(1));
            if let Some(status) = app.0.try_wait().unwrap() {
                let errors = std::fs::read_to_string(home.join("app.err")).unwrap_or_default();
                panic!("the app exited ({status}) before it could be captured:\n{errors}");
            }
            let captured = Command::new(&self.import)
                .args(["-display", self.display.as_str(), "-window", "root"])
                .arg(shot)
                .status()
                .unwrap();
            seen = if captured.success() { colours(shot) } else { 0 };
            // The roll, the plot and the panels give hundreds of colours.
            if seen > 50 {
                break;
            }
        }
        seen
    }
}

/// Pixels of `png` within 12 of `colour` on every channel (the renderer
/// dithers).
fn pixels_like(png: &Path, colour: [u8; 3]) -> usize {
    let Ok(image) = image::open(png) else {
        return 0;
    };
    image
        .to_rgb8()
        .pixels()
        .filter(|p| p.0.iter().zip(colour).all(|(&a, b)| a.abs_diff(b) <= 12))
        .count()
}

/// Runs xdotool on the screen; false when it failed.
fn xdotool(xdotool: &Path, screen: &Screen, args: &[&str]) -> bool {
    Command::new(xdotool)
        .env("DISPLAY", &screen.display)
        .args(args)
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn the_app_window_opens_under_xvfb_and_is_captured() {
    let Some(screen) = Screen::start("the window test") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let mut app = screen.app(home.path(), &home.path().join("data"));
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("cadenza.png");
    let seen = screen.wait_drawn(&mut app, home.path(), &shot);
    eprintln!("window screenshot: {} ({seen} colours)", shot.display());
    assert!(seen > 50, "the screen stayed blank ({seen} colours)");
    // The scale's rows are shaded from the start (the prelude is heard in C).
    assert!(
        pixels_like(&shot, [34, 39, 49]) > 1000,
        "no shaded scale rows"
    );

    // Compose as a user does: Shift+drag over notes and lock them (L), drag
    // a span on the ruler and fill it (F).
    let Some(xdo) = on_path("xdotool") else {
        eprintln!("SKIPPED the fill screenshot: xdotool is not installed");
        return;
    };
    let x: Vec<String> = [20, 32, 44, 12, 30, 51]
        .iter()
        .map(|step| (260 + 34 + step * 6 + 3).to_string())
        .collect();
    // Without a window manager nothing gives the window the keyboard.
    assert!(
        xdotool(
            &xdo,
            &screen,
            &["search", "--name", "Cadenza", "windowfocus"]
        ),
        "xdotool found no Cadenza window"
    );
    let steps = [
        vec!["mousemove", "--sync", "600", "300"],
        vec!["keydown", "shift"],
        vec!["mousemove", "--sync", &x[0], "120"],
        vec!["mousedown", "1"],
        vec!["mousemove", "--sync", &x[1], "300"],
        vec!["mousemove", "--sync", &x[2], "520"],
        vec!["mouseup", "1"],
        vec!["keyup", "shift"],
        vec!["key", "l"],
        vec!["mousemove", "--sync", &x[3], "39"],
        vec!["mousedown", "1"],
        vec!["mousemove", "--sync", &x[4], "39"],
        vec!["mousemove", "--sync", &x[5], "39"],
        vec!["mouseup", "1"],
        vec!["key", "f"],
        vec!["mousemove", "--sync", "1200", "790"],
    ];
    // Each event gets time for a frame of its own even on a loaded machine
    // (the software renderer can take over 150 ms a frame there): a press,
    // the moves and the release in one frame would make a click, not a drag.
    for args in &steps {
        assert!(xdotool(&xdo, &screen, args), "xdotool {args:?}");
        std::thread::sleep(Duration::from_millis(400));
    }
    let filled = artifacts.join("cadenza-fill.png");
    let started = Instant::now();
    let (mut locked, mut generated) = (0, 0);
    while started.elapsed() < Duration::from_secs(30) && (locked < 50 || generated < 50) {
        std::thread::sleep(Duration::from_secs(1));
        let captured = Command::new(&screen.import)
            .args(["-display", screen.display.as_str(), "-window", "root"])
            .arg(&filled)
            .status()
            .unwrap();
        if captured.success() {
            locked = pixels_like(&filled, [190, 240, 255]);
            generated = pixels_like(&filled, [255, 168, 64]);
        }
    }
    eprintln!("fill screenshot: {}", filled.display());
    let said = std::fs::read_to_string(home.path().join("app.err")).unwrap_or_default();
    assert!(
        locked >= 50,
        "no locked notes on screen ({locked} pixels): {said}"
    );
    assert!(
        generated >= 50,
        "no filled notes on screen ({generated} pixels): {said}"
    );
    assert!(
        pixels_like(&filled, [34, 39, 49]) > 1000,
        "no shaded scale rows"
    );
}

#[test]
fn work_survives_kill_9_and_is_offered_back() {
    let Some(screen) = Screen::start("the kill -9 test") else {
        return;
    };
    let Some(xdotool) = on_path("xdotool") else {
        eprintln!("SKIPPED the kill -9 test: xdotool is not installed");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let shot = home.path().join("shot.png");
    let mut app = screen.app(home.path(), &data);
    assert!(screen.wait_drawn(&mut app, home.path(), &shot) > 50);
    let demo = cadenza::midi::import(
        cadenza::assets::default_demo().midi,
        &cadenza::midi::ImportOptions::default(),
    )
    .unwrap()
    .0
    .note_count();

    // Click an empty cell just under the ruler (step 30): the view fits the
    // music with a few empty rows above it, so one new note.
    let xdo = |args: &[&str]| {
        let ok = Command::new(&xdotool)
            .env("DISPLAY", &screen.display)
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "xdotool {args:?}");
    };
    xdo(&["mousemove", "--sync", "477", "52"]);
    std::thread::sleep(Duration::from_millis(300));
    xdo(&["click", "1"]);
    let store = cadenza::app::SessionStore::at(data.clone());
    let started = Instant::now();
    let mut saved = None;
    while saved.is_none() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(250));
        saved = store.load_autosave(&mut Vec::new());
    }
    let saved = saved.expect("the edit was autosaved");
    assert_eq!(saved.roll.note_count(), demo + 1);

    // SIGKILL: no clean exit, no chance to tidy up.
    app.0.kill().unwrap();
    app.0.wait().unwrap();
    assert!(
        store.load_autosave(&mut Vec::new()).is_some(),
        "the autosave outlived the process"
    );

    let mut again = screen.app(home.path(), &data);
    assert!(screen.wait_drawn(&mut again, home.path(), &shot) > 50);
    let said = std::fs::read_to_string(home.path().join("app.err")).unwrap();
    assert!(
        said.contains(&format!("{} notes", demo + 1)) && said.contains("offering its autosave"),
        "{said}"
    );
}

/// The peak resident memory of a process, in bytes (Linux's VmHWM).
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn absurd_settings_and_autosave_still_give_a_working_window() {
    let Some(screen) = Screen::start("the absurd-settings window test") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("settings.json"),
        r#"{"params": {"steps": 4000000000000, "variations": 100000000},
            "transport": {"bpm": 1e300, "volume": 1e30}, "zoom": 1e30,
            "pitch_zoom": 1e30, "recent": []}"#,
    )
    .unwrap();
    std::fs::write(
        data.join("autosave.json"),
        r#"{"source_name": "absurd", "steps_per_quarter": 255,
            "seed_start": 18446744073709551615,
            "params": {"steps": 4000000000000, "variations": 100000000},
            "transport": {"bpm": -1, "volume": -1}}"#,
    )
    .unwrap();
    std::fs::write(
        data.join("autosave.mid"),
        cadenza::assets::default_demo().midi,
    )
    .unwrap();
    let shot = home.path().join("shot.png");
    let started = Instant::now();
    let mut app = screen.app(home.path(), &data);
    let seen = screen.wait_drawn(&mut app, home.path(), &shot);
    let shown_after = started.elapsed();
    assert!(seen > 50, "the screen stayed blank ({seen} colours)");
    assert!(
        shown_after < Duration::from_secs(10),
        "the window took {shown_after:?}"
    );
    // The clamped generation (16,384 steps x 32 variations) runs on its
    // worker meanwhile; memory stays bounded.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        app.0.try_wait().unwrap().is_none(),
        "the app is still running"
    );
    let peak = peak_memory(app.0.id());
    assert!(peak < 1_500 << 20, "peak memory {} MB", peak >> 20);
    let said = std::fs::read_to_string(home.path().join("app.err")).unwrap();
    assert!(
        said.contains("settings: steps 4000000000000 is outside the allowed 1..=16384"),
        "{said}"
    );
    assert!(said.contains("autosave: 255 steps per quarter"), "{said}");
    eprintln!(
        "absurd settings: window after {shown_after:?}, peak memory {} MB",
        peak >> 20
    );
}
