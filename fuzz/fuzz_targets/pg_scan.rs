//! Arbitrary server bytes through the Postgres frame scanner (the gateway's view of the
//! upstream stream: ReadyForQuery, CopyInResponse, ParseComplete, CloseComplete), fed in
//! chunks of every size: must not panic, and every event must sit at the start of a frame of
//! its type (ReadyEnd: just after a ReadyForQuery's status byte), as framed by `FrameHeader`.
#![no_main]

use std::collections::HashMap;

use clawpatrol_protocols::postgres::{FrameHeader, FrameScanner, ScanEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control) + 1;
    let mut scanner = FrameScanner::new();
    let mut events = Vec::new();
    let mut found = Vec::new();
    let mut base = 0;
    for part in rest.chunks(chunk) {
        events.clear();
        let failed = scanner.scan(part, &mut events).is_err();
        found.extend(events.iter().map(|e| shift(*e, base)));
        if failed {
            break;
        }
        base += part.len();
    }
    // The frame starts of `rest`, with their type bytes (the last one's header may be cut
    // short or invalid: the scanner reports a start before it reads the length).
    let mut starts = HashMap::new();
    let mut i = 0;
    while let Some(&tag) = rest.get(i) {
        starts.insert(i, tag);
        match rest.get(i..).map(FrameHeader::parse) {
            Some(Ok(Some(h))) => i = i.saturating_add(FrameHeader::SIZE + h.payload_len()),
            _ => break,
        }
    }
    for e in found {
        match e {
            ScanEvent::ReadyStart(at) => assert_eq!(starts.get(&at), Some(&b'Z')),
            ScanEvent::CopyInStart(at) => assert_eq!(starts.get(&at), Some(&b'G')),
            ScanEvent::ParseComplete(at) => assert_eq!(starts.get(&at), Some(&b'1')),
            ScanEvent::CloseComplete(at) => assert_eq!(starts.get(&at), Some(&b'3')),
            ScanEvent::ReadyEnd { end, status } => {
                assert!(end >= FrameHeader::SIZE + 1);
                assert_eq!(starts.get(&(end - FrameHeader::SIZE - 1)), Some(&b'Z'));
                assert_eq!(rest.get(end - 1), Some(&status));
            }
        }
    }
});

/// `e` with its offsets moved from a chunk to the whole input.
fn shift(e: ScanEvent, base: usize) -> ScanEvent {
    match e {
        ScanEvent::ReadyStart(at) => ScanEvent::ReadyStart(base + at),
        ScanEvent::CopyInStart(at) => ScanEvent::CopyInStart(base + at),
        ScanEvent::ParseComplete(at) => ScanEvent::ParseComplete(base + at),
        ScanEvent::CloseComplete(at) => ScanEvent::CloseComplete(base + at),
        ScanEvent::ReadyEnd { end, status } => ScanEvent::ReadyEnd {
            end: base + end,
            status,
        },
    }
}
