//! The real window: `cadenza` with no arguments under Xvfb, captured with
//! ImageMagick's `import`. The picture is kept as an artifact in the target
//! folder (`tmp/screenshots/cadenza.png`). `.ci/setup` installs Xvfb and
//! ImageMagick; where they are missing the test says so and passes.

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

#[test]
fn the_app_window_opens_under_xvfb_and_is_captured() {
    let (Some(xvfb), Some(import)) = (on_path("Xvfb"), on_path("import")) else {
        eprintln!("SKIPPED the window test: Xvfb or ImageMagick's import is not installed");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    // -displayfd: Xvfb picks a free display itself and prints its number.
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
    let log = home.path().join("app.log");
    let mut app = Reaper(
        Command::new(env!("CARGO_BIN_EXE_cadenza"))
            .env("DISPLAY", &display)
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("CADENZA_DATA_DIR", home.path().join("data"))
            .env_remove("WAYLAND_DISPLAY")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(home.path().join("app.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("cadenza.png");
    let started = Instant::now();
    let mut seen = 0;
    while started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(2));
        if let Some(status) = app.0.try_wait().unwrap() {
            let errors = std::fs::read_to_string(home.path().join("app.err")).unwrap_or_default();
            panic!("the app exited ({status}) before it could be captured:\n{errors}");
        }
        let captured = Command::new(&import)
            .args(["-display", display.as_str(), "-window", "root"])
            .arg(&shot)
            .status()
            .unwrap();
        seen = if captured.success() {
            colours(&shot)
        } else {
            0
        };
        // The roll, the plot and the panels give hundreds of colours.
        if seen > 50 {
            break;
        }
    }
    eprintln!("window screenshot: {} ({seen} colours)", shot.display());
    assert!(seen > 50, "the screen stayed blank ({seen} colours)");
}
