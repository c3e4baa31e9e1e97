//! Card and reader changes from pcscd, without polling: a thread blocks in
//! `SCardGetStatusChange` on every reader plus `\\?PnP?\Notification`. Only while pcscd is
//! not running at all does it retry, once a second, to reconnect.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use pcsc::{Context, PNP_NOTIFICATION, ReaderState, Scope, State};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

/// What the monitor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcscEvent {
    /// A card is present in this reader (also reported for cards present at start).
    CardInserted(String),
    /// The card left this reader, or the reader itself went away.
    CardRemoved(String),
}

const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Start the monitor thread. It stops when `events` is closed.
pub fn spawn_monitor(events: UnboundedSender<PcscEvent>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("pcsc-monitor".into())
        .spawn(move || {
            let mut present = BTreeSet::new();
            loop {
                match Context::establish(Scope::User) {
                    Ok(context) => {
                        if watch(&context, &events, &mut present).is_err() {
                            return; // receiver gone: daemon shutting down
                        }
                    }
                    Err(error) => debug!(%error, "pcscd unavailable"),
                }
                // pcscd went away: every card it served is gone too.
                for reader in std::mem::take(&mut present) {
                    if events.send(PcscEvent::CardRemoved(reader)).is_err() {
                        return;
                    }
                }
                if events.is_closed() {
                    return;
                }
                std::thread::sleep(RECONNECT_DELAY);
            }
        })
        .map(|_| ())
}

struct Closed;

/// Watch until pcscd fails; `Err` only when nobody listens any more.
fn watch(
    context: &Context,
    events: &UnboundedSender<PcscEvent>,
    present: &mut BTreeSet<String>,
) -> Result<(), Closed> {
    info!("watching pcscd for keys");
    let mut states = vec![ReaderState::new(PNP_NOTIFICATION(), State::UNAWARE)];
    // pcsc-lite's per-reader event counter at the last look: a card still present with
    // another count was pulled and plugged back while we did not look (a frozen daemon).
    let mut counts: HashMap<String, u32> = HashMap::new();
    let send = |event: PcscEvent| events.send(event).map_err(|_| Closed);
    loop {
        // Readers that went away take their cards with them.
        for state in &states {
            let gone = state
                .event_state()
                .intersects(State::UNKNOWN | State::IGNORE);
            let name = state.name().to_string_lossy().into_owned();
            if gone && present.remove(&name) {
                send(PcscEvent::CardRemoved(name))?;
            }
        }
        states.retain(|s| !s.event_state().intersects(State::UNKNOWN | State::IGNORE));
        let names = match context.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(error) => {
                warn!(%error, "pcscd stopped answering");
                return Ok(());
            }
        };
        for name in names {
            if !states.iter().any(|s| s.name() == name.as_c_str()) {
                states.push(ReaderState::new(name, State::UNAWARE));
            }
        }
        for state in &mut states {
            state.sync_current_state();
        }
        match context.get_status_change(None, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => continue,
            Err(error) => {
                warn!(%error, "lost pcscd");
                return Ok(());
            }
        }
        for state in states.iter().skip(1) {
            let name = state.name().to_string_lossy().into_owned();
            let event = state.event_state();
            let has_card = event.contains(State::PRESENT) && !event.contains(State::MUTE);
            let count = state.event_count();
            let replugged = has_card
                && present.contains(&name)
                && counts.get(&name).is_some_and(|last| *last != count);
            counts.insert(name.clone(), count);
            if replugged {
                info!(reader = name, "card pulled and plugged back unseen");
                send(PcscEvent::CardRemoved(name.clone()))?;
                send(PcscEvent::CardInserted(name))?;
            } else if has_card && present.insert(name.clone()) {
                send(PcscEvent::CardInserted(name))?;
            } else if !has_card && present.remove(&name) {
                send(PcscEvent::CardRemoved(name))?;
            }
        }
    }
}
