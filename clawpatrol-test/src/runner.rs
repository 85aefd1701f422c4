//! Replaying many fixtures in parallel, in a stable order.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use clawpatrol_core::Policy;

use crate::replay::{replay_text, Outcome};
use crate::report::Replayed;

/// Replays every file with a pool of worker threads; results keep the files' order.
pub fn replay_files(policy: &Policy, files: &[PathBuf]) -> Vec<Replayed> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Replayed>>> = Mutex::new(vec![None; files.len()]);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    local.push((i, replay_file(policy, path)));
                }
                if let Ok(mut s) = slots.lock() {
                    for (i, r) in local {
                        s[i] = Some(r);
                    }
                }
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_default();
    slots
        .into_iter()
        .zip(files)
        .map(|(r, p)| {
            r.unwrap_or_else(|| Replayed {
                path: p.display().to_string(),
                expect: None,
                outcome: Outcome::Error("internal error: fixture was not replayed".to_string()),
            })
        })
        .collect()
}

/// Reads and replays one fixture file.
pub fn replay_file(policy: &Policy, path: &std::path::Path) -> Replayed {
    let display = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (expect, outcome) = replay_text(policy, &text);
            Replayed {
                path: display,
                expect,
                outcome,
            }
        }
        Err(e) => Replayed {
            path: display,
            expect: None,
            outcome: Outcome::Error(format!("read fixture: {e}")),
        },
    }
}
