//! Arbitrary server bytes through the Postgres frame scanner (the gateway's view of the
//! upstream stream: ReadyForQuery, CopyInResponse, ParseComplete, CloseComplete,
//! ParameterStatus), fed in chunks of every size: must not panic, and every event must sit at
//! the start of a frame of its type (ReadyEnd: just after a ReadyForQuery's status byte;
//! ParameterStatusEnd: just after an `S` frame, whose kept name and value match its payload),
//! as framed by `FrameHeader`.
#![no_main]

use std::collections::HashMap;

use clawpatrol_protocols::postgres::{FrameHeader, FrameScanner, ScanEvent, MAX_STATUS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control) + 1;
    let mut scanner = FrameScanner::new();
    let mut events = Vec::new();
    let mut found = Vec::new();
    let mut statuses = Vec::new();
    let mut base = 0;
    for part in rest.chunks(chunk) {
        events.clear();
        let failed = scanner.scan(part, &mut events).is_err();
        for e in &events {
            if matches!(e, ScanEvent::ParameterStatusEnd(_)) {
                statuses.push(scanner.take_status().expect("a status per event"));
            }
        }
        found.extend(events.iter().map(|e| shift(*e, base)));
        if failed {
            break;
        }
        base += part.len();
    }
    // The frame starts of `rest`, with their type bytes (the last one's header may be cut
    // short or invalid: the scanner reports a start before it reads the length).
    let mut starts = HashMap::new();
    let mut ends = HashMap::new();
    let mut i = 0;
    while let Some(&tag) = rest.get(i) {
        starts.insert(i, tag);
        match rest.get(i..).map(FrameHeader::parse) {
            Some(Ok(Some(h))) => {
                let end = i.saturating_add(FrameHeader::SIZE + h.payload_len());
                ends.insert(end, i);
                i = end;
            }
            _ => break,
        }
    }
    let mut statuses = statuses.into_iter();
    for e in found {
        match e {
            ScanEvent::ReadyStart(at) => assert_eq!(starts.get(&at), Some(&b'Z')),
            ScanEvent::CopyInStart(at) => assert_eq!(starts.get(&at), Some(&b'G')),
            ScanEvent::ParseComplete(at) => assert_eq!(starts.get(&at), Some(&b'1')),
            ScanEvent::CloseComplete(at) => assert_eq!(starts.get(&at), Some(&b'3')),
            ScanEvent::ParameterStatusEnd(end) => {
                let start = *ends.get(&end).expect("ends a frame");
                assert_eq!(starts.get(&start), Some(&b'S'));
                let payload = &rest[start + FrameHeader::SIZE..end];
                let kept = &payload[..payload.len().min(MAX_STATUS)];
                let s = statuses.next().expect("one status per event");
                let mut parts = kept.split(|b| *b == 0);
                let name = parts.next().unwrap_or_default();
                assert_eq!(s.name, String::from_utf8_lossy(name));
                if let Some(v) = &s.value {
                    let value = parts.next().expect("a terminated value");
                    assert_eq!(*v, String::from_utf8_lossy(value));
                }
            }
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
        ScanEvent::ParameterStatusEnd(at) => ScanEvent::ParameterStatusEnd(base + at),
        ScanEvent::ReadyEnd { end, status } => ScanEvent::ReadyEnd {
            end: base + end,
            status,
        },
    }
}
