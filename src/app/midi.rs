//! MIDI ports (midir): a keyboard in, playback out.
//!
//! A keyboard's messages go two ways from midir's thread: straight into the
//! audio thread's keyboard queue, so they sound in the next block, and to the
//! UI with the moment they came, to record and to answer. Playback goes out
//! through the player's event tap, drained by a small sender thread every
//! millisecond, to a chosen port or to a virtual port named "Cadenza" that a
//! DAW can record from. Ports that vanish are reported and let go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use midir::{Ignore, MidiInput, MidiInputConnection, MidiOutput, MidiOutputConnection};

use super::jobs::Waker;
use crate::audio::live::LiveControl;
use crate::live_midi::LiveMessage;

/// The client names other MIDI software sees: one per connection, since a
/// router (JACK) renames a second client of one name ("Cadenza-01"), and
/// the virtual port should read "Cadenza:Cadenza".
const VIRTUAL_CLIENT: &str = "Cadenza";
const LISTING_CLIENT: &str = "Cadenza ports";
const INPUT_CLIENT: &str = "Cadenza keyboard";
const OUTPUT_CLIENT: &str = "Cadenza out";
/// The virtual output port's name.
pub const VIRTUAL_PORT_NAME: &str = "Cadenza";
/// How often the chosen ports are looked for, to notice one going away.
const PORT_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where playback goes out.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutputChoice {
    /// A port of another program or device, by name.
    Port(String),
    /// A port Cadenza makes, for a DAW to record from (Linux and macOS).
    Virtual,
}

/// The queue into the audio thread that keyboard messages go to; replaced
/// whenever the audio output opens anew.
type KeyboardSlot = Arc<Mutex<Option<rtrb::Producer<LiveMessage>>>>;
/// The player's event tap, for the sender thread; replaced likewise.
type TapSlot = Arc<Mutex<Option<rtrb::Consumer<[u8; 3]>>>>;

/// An open input and what it is called.
struct InputLink {
    name: String,
    _connection: MidiInputConnection<()>,
}

/// An open output and its sender thread.
struct OutputLink {
    choice: OutputChoice,
    stop: Arc<AtomicBool>,
    failed: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for OutputLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The app's MIDI: the chosen input and output and the queues between them
/// and the audio thread.
pub struct MidiIo {
    input: Option<InputLink>,
    output: Option<OutputLink>,
    keyboard: KeyboardSlot,
    tap: TapSlot,
    received_tx: mpsc::Sender<(Instant, LiveMessage)>,
    received: mpsc::Receiver<(Instant, LiveMessage)>,
    last_check: Instant,
}

impl std::fmt::Debug for MidiIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MidiIo")
            .field("input", &self.input_name())
            .field("output", &self.output_choice())
            .finish_non_exhaustive()
    }
}

impl Default for MidiIo {
    fn default() -> Self {
        let (received_tx, received) = mpsc::channel();
        Self {
            input: None,
            output: None,
            keyboard: Arc::default(),
            tap: Arc::default(),
            received_tx,
            received,
            last_check: Instant::now(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The input ports there are now, or why none can be listed.
pub fn input_ports() -> Result<Vec<String>, String> {
    let input = MidiInput::new(LISTING_CLIENT).map_err(|e| no_midi(&e))?;
    Ok(input
        .ports()
        .iter()
        .filter_map(|port| input.port_name(port).ok())
        .collect())
}

/// The output ports there are now (Cadenza's own virtual port left out).
pub fn output_ports() -> Result<Vec<String>, String> {
    let output = MidiOutput::new(LISTING_CLIENT).map_err(|e| no_midi(&e))?;
    Ok(output
        .ports()
        .iter()
        .filter_map(|port| output.port_name(port).ok())
        .filter(|name| !name.starts_with(&format!("{VIRTUAL_CLIENT}:")))
        .collect())
}

fn no_midi(error: &dyn std::fmt::Display) -> String {
    format!("no MIDI on this machine ({error})")
}

/// Whether this platform can make a virtual port.
pub const HAS_VIRTUAL_PORTS: bool = cfg!(unix);

impl MidiIo {
    pub fn input_name(&self) -> Option<&str> {
        self.input.as_ref().map(|link| link.name.as_str())
    }

    pub fn output_choice(&self) -> Option<&OutputChoice> {
        self.output.as_ref().map(|link| &link.choice)
    }

    /// Takes the keyboard queue and the event tap of a newly opened audio
    /// output, so the keyboard sounds through it and playback goes out.
    pub fn attach(&mut self, control: &mut LiveControl) {
        if let Some(keyboard) = control.take_keyboard() {
            *lock(&self.keyboard) = Some(keyboard);
        }
        if let Some(tap) = control.take_tap() {
            *lock(&self.tap) = Some(tap);
        }
    }

    /// Listens to the input port `name` (none: stops listening). `wake`
    /// wakes the UI when a message comes.
    pub fn connect_input(&mut self, name: Option<&str>, wake: &Waker) -> Result<(), String> {
        self.input = None;
        let Some(name) = name else {
            return Ok(());
        };
        let mut input = MidiInput::new(INPUT_CLIENT).map_err(|e| no_midi(&e))?;
        input.ignore(Ignore::All);
        let port = input
            .ports()
            .into_iter()
            .find(|port| input.port_name(port).is_ok_and(|n| n == name))
            .ok_or_else(|| format!("the MIDI input {name} is not there any more"))?;
        let keyboard = Arc::clone(&self.keyboard);
        let to_ui = self.received_tx.clone();
        let wake = Arc::clone(wake);
        let connection = input
            .connect(
                &port,
                "Cadenza in",
                move |_micros, bytes, ()| {
                    let Some(message) = LiveMessage::parse(bytes) else {
                        return;
                    };
                    if let Some(queue) = lock(&keyboard).as_mut() {
                        // A full queue (no audio running) drops the sound,
                        // never the recording.
                        let _ = queue.push(message);
                    }
                    let _ = to_ui.send((Instant::now(), message));
                    wake();
                },
                (),
            )
            .map_err(|e| format!("cannot listen to {name}: {e}"))?;
        self.input = Some(InputLink {
            name: name.to_owned(),
            _connection: connection,
        });
        Ok(())
    }

    /// Sends playback to `choice` (none: nowhere but the internal synth).
    pub fn connect_output(&mut self, choice: Option<OutputChoice>) -> Result<(), String> {
        self.output = None;
        let Some(choice) = choice else {
            return Ok(());
        };
        let connection = open_output(&choice)?;
        // What the player fired while nothing listened is old news.
        if let Some(queue) = lock(&self.tap).as_mut() {
            while queue.pop().is_ok() {}
        }
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(Mutex::new(None));
        let thread = {
            let (stop, failed, tap) = (
                Arc::clone(&stop),
                Arc::clone(&failed),
                Arc::clone(&self.tap),
            );
            std::thread::Builder::new()
                .name("cadenza-midi-out".to_owned())
                .spawn(move || send_tapped(connection, &tap, &stop, &failed))
                .map_err(|e| format!("cannot start the MIDI output thread: {e}"))?
        };
        self.output = Some(OutputLink {
            choice,
            stop,
            failed,
            thread: Some(thread),
        });
        Ok(())
    }

    /// The messages that came since the last call, with when each came.
    pub fn received(&mut self) -> Vec<(Instant, LiveMessage)> {
        self.received.try_iter().collect()
    }

    /// Every second: lets go of a chosen port that went away or failed, and
    /// says so.
    pub fn check_ports(&mut self) -> Option<String> {
        let mut news = None;
        if let Some(error) = self
            .output
            .as_ref()
            .and_then(|link| lock(&link.failed).take())
        {
            self.output = None;
            news = Some(error);
        }
        if self.last_check.elapsed() < PORT_CHECK_EVERY {
            return news;
        }
        self.last_check = Instant::now();
        if let Some(name) = self.input_name().map(str::to_owned)
            && !input_ports().is_ok_and(|ports| ports.contains(&name))
        {
            self.input = None;
            news = Some(format!("the MIDI input {name} went away"));
        }
        if let Some(OutputChoice::Port(name)) = self.output_choice().cloned()
            && !output_ports().is_ok_and(|ports| ports.contains(&name))
        {
            self.output = None;
            news = Some(format!("the MIDI output {name} went away"));
        }
        news
    }
}

fn open_output(choice: &OutputChoice) -> Result<MidiOutputConnection, String> {
    let client = match choice {
        OutputChoice::Port(_) => OUTPUT_CLIENT,
        OutputChoice::Virtual => VIRTUAL_CLIENT,
    };
    let output = MidiOutput::new(client).map_err(|e| no_midi(&e))?;
    match choice {
        OutputChoice::Port(name) => {
            let port = output
                .ports()
                .into_iter()
                .find(|port| output.port_name(port).is_ok_and(|n| &n == name))
                .ok_or_else(|| format!("the MIDI output {name} is not there any more"))?;
            output
                .connect(&port, "Cadenza out")
                .map_err(|e| format!("cannot send to {name}: {e}"))
        }
        OutputChoice::Virtual => virtual_output(output),
    }
}

#[cfg(unix)]
fn virtual_output(output: MidiOutput) -> Result<MidiOutputConnection, String> {
    use midir::os::unix::VirtualOutput as _;
    output
        .create_virtual(VIRTUAL_PORT_NAME)
        .map_err(|e| format!("cannot make the virtual port {VIRTUAL_PORT_NAME}: {e}"))
}

#[cfg(not(unix))]
fn virtual_output(_output: MidiOutput) -> Result<MidiOutputConnection, String> {
    Err("this system has no virtual MIDI ports; choose a port (e.g. loopMIDI's)".to_owned())
}

/// The sender thread: every millisecond, what the player fired goes out.
fn send_tapped(
    mut connection: MidiOutputConnection,
    tap: &TapSlot,
    stop: &AtomicBool,
    failed: &Mutex<Option<String>>,
) {
    let mut bytes = Vec::with_capacity(256);
    while !stop.load(Ordering::Relaxed) {
        bytes.clear();
        if let Some(queue) = lock(tap).as_mut() {
            while let Ok(message) = queue.pop() {
                bytes.push(message);
            }
        }
        for message in &bytes {
            let length = if message[0] & 0xF0 == 0xC0 { 2 } else { 3 };
            if let Err(error) = connection.send(&message[..length]) {
                *lock(failed) = Some(format!("the MIDI output stopped taking notes: {error}"));
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Nothing left hanging on the other side.
    for channel in 0..16u8 {
        let _ = connection.send(&[0xB0 | channel, 123, 0]);
    }
    connection.close();
}
