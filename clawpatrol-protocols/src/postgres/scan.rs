//! Zero-copy boundary scanner of the server → client stream after authentication.
//!
//! The gateway relays upstream bytes unchanged but must know where each ReadyForQuery (`Z`)
//! frame starts and ends (to insert its own answers in order) and the transaction status it
//! carries. The scanner reads only frame headers and the status byte, plus the first
//! [`MAX_STATUS`] bytes of each ParameterStatus (`S`) frame (the gateway watches
//! `client_encoding`); its memory is bounded whatever the frame sizes.

use super::codec::{FrameHeader, PgError};

/// A boundary found by [`FrameScanner::scan`], with offsets into the scanned slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEvent {
    /// A ReadyForQuery frame starts at this offset (its type byte).
    ReadyStart(usize),
    /// A CopyInResponse (`G`) frame starts at this offset: the server now reads COPY data
    /// and ignores any Sync until the client's CopyDone or CopyFail.
    CopyInStart(usize),
    /// A ParseComplete (`1`) frame starts at this offset: the oldest unanswered Parse of the
    /// current batch succeeded.
    ParseComplete(usize),
    /// A CloseComplete (`3`) frame starts at this offset: the oldest unanswered Close of the
    /// current batch succeeded.
    CloseComplete(usize),
    /// A ParameterStatus (`S`) frame ends just before this offset; its name and value are
    /// the next [`FrameScanner::take_status`].
    ParameterStatusEnd(usize),
    /// A ReadyForQuery frame ends just before this offset; it carried `status`.
    ReadyEnd {
        /// Offset one past the frame's last byte.
        end: usize,
        /// The transaction status byte (`I`, `T` or `E`).
        status: u8,
    },
}

/// How many payload bytes of a ParameterStatus frame are kept: a longer name or value is
/// cut there (and then never equals a real parameter's name or value in full).
pub const MAX_STATUS: usize = 256;

/// A ParameterStatus as scanned: name and value, each cut at [`MAX_STATUS`] bytes in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterStatus {
    /// The parameter's name (lossy UTF-8).
    pub name: String,
    /// Its value (lossy UTF-8); `None` when the frame was cut before the value ended.
    pub value: Option<String>,
}

/// Incremental frame-boundary scanner of a typed backend stream.
#[derive(Debug, Clone, Default)]
pub struct FrameScanner {
    header: [u8; FrameHeader::SIZE],
    header_len: usize,
    remaining: usize,
    in_ready: bool,
    /// The payload kept of the ParameterStatus frame being read.
    status: Option<Vec<u8>>,
    /// Scanned ParameterStatus frames not yet taken, oldest first.
    statuses: std::collections::VecDeque<ParameterStatus>,
}

impl FrameScanner {
    /// A scanner positioned at a frame boundary.
    pub fn new() -> FrameScanner {
        FrameScanner::default()
    }

    /// True when the scanner sits between frames.
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.remaining == 0
    }

    /// The oldest scanned ParameterStatus not taken yet (one per
    /// [`ScanEvent::ParameterStatusEnd`], in order).
    pub fn take_status(&mut self) -> Option<ParameterStatus> {
        self.statuses.pop_front()
    }

    /// Ends the ParameterStatus frame being kept at input offset `end`.
    fn end_status(&mut self, end: usize, events: &mut Vec<ScanEvent>) {
        if let Some(bytes) = self.status.take() {
            let mut parts = bytes.splitn(3, |b| *b == 0);
            let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let value = parts
                .next()
                .filter(|_| bytes.iter().filter(|b| **b == 0).count() >= 2)
                .map(|v| String::from_utf8_lossy(v).into_owned());
            self.statuses.push_back(ParameterStatus { name, value });
            events.push(ScanEvent::ParameterStatusEnd(end));
        }
    }

    /// Scans `input`, appending ReadyForQuery boundaries and CopyInResponse starts to `events`. A malformed header
    /// (length below 4, or a ReadyForQuery whose length is not 5) is an error.
    pub fn scan(&mut self, input: &[u8], events: &mut Vec<ScanEvent>) -> Result<(), PgError> {
        let mut i = 0;
        while i < input.len() {
            if self.remaining > 0 {
                let n = self.remaining.min(input.len() - i);
                if self.in_ready {
                    // The single payload byte of a ReadyForQuery is its status.
                    let status = input[i];
                    self.remaining = 0;
                    self.in_ready = false;
                    i += 1;
                    events.push(ScanEvent::ReadyEnd { end: i, status });
                    continue;
                }
                if let Some(kept) = &mut self.status {
                    let room = MAX_STATUS.saturating_sub(kept.len()).min(n);
                    kept.extend_from_slice(&input[i..i + room]);
                }
                self.remaining -= n;
                i += n;
                if self.remaining == 0 {
                    self.end_status(i, events);
                }
                continue;
            }
            if self.header_len == 0 {
                match input[i] {
                    b'Z' => events.push(ScanEvent::ReadyStart(i)),
                    b'G' => events.push(ScanEvent::CopyInStart(i)),
                    b'1' => events.push(ScanEvent::ParseComplete(i)),
                    b'3' => events.push(ScanEvent::CloseComplete(i)),
                    _ => {}
                }
            }
            self.header[self.header_len] = input[i];
            self.header_len += 1;
            i += 1;
            if self.header_len == FrameHeader::SIZE {
                self.header_len = 0;
                let header = FrameHeader::parse(&self.header)?.ok_or(PgError::Poisoned)?;
                let payload = header.payload_len();
                if header.tag == b'Z' {
                    if payload != 1 {
                        return Err(PgError::InvalidValue {
                            msg: "ReadyForQuery",
                            what: "length",
                            value: i64::from(header.len),
                        });
                    }
                    self.in_ready = true;
                }
                self.remaining = payload;
                if header.tag == b'S' {
                    self.status = Some(Vec::with_capacity(payload.min(MAX_STATUS)));
                    if payload == 0 {
                        self.end_status(i, events);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut v = Vec::new();
        // CommandComplete "SELECT 1"
        v.extend_from_slice(b"C\0\0\0\x0dSELECT 1\0");
        v.extend_from_slice(b"Z\0\0\0\x05T");
        v.extend_from_slice(b"D\0\0\0\x06\0\0");
        v.extend_from_slice(b"Z\0\0\0\x05I");
        // CopyInResponse: text format, one text column.
        v.extend_from_slice(b"G\0\0\0\x09\0\0\x01\0\0");
        // ParseComplete, BindComplete, CloseComplete, then a DataRow whose payload holds the
        // bytes '1' and '3' (not frame starts).
        v.extend_from_slice(b"1\0\0\0\x042\0\0\0\x043\0\0\0\x04");
        v.extend_from_slice(b"D\0\0\0\x0613");
        v
    }

    #[test]
    fn finds_ready_frames_in_one_chunk() {
        let s = stream();
        let mut sc = FrameScanner::new();
        let mut ev = Vec::new();
        sc.scan(&s, &mut ev).unwrap();
        assert_eq!(
            ev,
            vec![
                ScanEvent::ReadyStart(14),
                ScanEvent::ReadyEnd {
                    end: 20,
                    status: b'T'
                },
                ScanEvent::ReadyStart(27),
                ScanEvent::ReadyEnd {
                    end: 33,
                    status: b'I'
                },
                ScanEvent::CopyInStart(33),
                ScanEvent::ParseComplete(43),
                ScanEvent::CloseComplete(53),
            ]
        );
        assert!(sc.at_boundary());
    }

    #[test]
    fn same_events_byte_by_byte() {
        let s = stream();
        let mut sc = FrameScanner::new();
        let mut all = Vec::new();
        for (off, b) in s.iter().enumerate() {
            let mut ev = Vec::new();
            sc.scan(std::slice::from_ref(b), &mut ev).unwrap();
            for e in ev {
                all.push(match e {
                    ScanEvent::ReadyStart(_) => ScanEvent::ReadyStart(off),
                    ScanEvent::CopyInStart(_) => ScanEvent::CopyInStart(off),
                    ScanEvent::ParseComplete(_) => ScanEvent::ParseComplete(off),
                    ScanEvent::CloseComplete(_) => ScanEvent::CloseComplete(off),
                    ScanEvent::ParameterStatusEnd(_) => ScanEvent::ParameterStatusEnd(off + 1),
                    ScanEvent::ReadyEnd { status, .. } => ScanEvent::ReadyEnd {
                        end: off + 1,
                        status,
                    },
                });
            }
        }
        let mut whole = Vec::new();
        FrameScanner::new().scan(&s, &mut whole).unwrap();
        assert_eq!(all, whole);
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut ev = Vec::new();
        assert!(FrameScanner::new().scan(b"C\0\0\0\x02", &mut ev).is_err());
        assert!(FrameScanner::new().scan(b"Z\0\0\0\x06II", &mut ev).is_err());
    }

    #[test]
    fn parameter_statuses_are_kept_bounded() {
        let mut v = Vec::new();
        v.extend_from_slice(b"S\0\0\0\x19client_encoding\0SJIS\0");
        v.extend_from_slice(b"Z\0\0\0\x05I");
        let mut long = b"application_name\0".to_vec();
        long.extend(std::iter::repeat_n(b'x', 1000));
        long.push(0);
        v.push(b'S');
        v.extend_from_slice(&u32::try_from(long.len() + 4).unwrap().to_be_bytes());
        v.extend_from_slice(&long);
        // Byte by byte gives the same statuses as one chunk.
        for chunk in [v.len(), 1] {
            let mut sc = FrameScanner::new();
            let mut ev = Vec::new();
            for part in v.chunks(chunk) {
                sc.scan(part, &mut ev).unwrap();
            }
            if chunk > 1 {
                assert_eq!(ev[0], ScanEvent::ParameterStatusEnd(26));
            }
            assert_eq!(
                ev.iter()
                    .filter(|e| matches!(e, ScanEvent::ParameterStatusEnd(_)))
                    .count(),
                2
            );
            assert_eq!(
                sc.take_status(),
                Some(ParameterStatus {
                    name: "client_encoding".into(),
                    value: Some("SJIS".into())
                })
            );
            let cut = sc.take_status().unwrap();
            assert_eq!(cut.name, "application_name");
            assert_eq!(cut.value, None);
            assert_eq!(sc.take_status(), None);
            assert!(sc.at_boundary());
        }
    }

    #[test]
    fn large_frames_cost_no_memory() {
        let mut sc = FrameScanner::new();
        let mut ev = Vec::new();
        sc.scan(b"D\x7f\xff\xff\xff", &mut ev).unwrap();
        sc.scan(&[0u8; 4096], &mut ev).unwrap();
        assert!(ev.is_empty());
        assert!(!sc.at_boundary());
    }
}
