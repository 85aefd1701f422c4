//! Zero-copy boundary scanner of the server → client stream after authentication.
//!
//! The gateway relays upstream bytes unchanged but must know where each ReadyForQuery (`Z`)
//! frame starts and ends (to insert its own answers in order) and the transaction status it
//! carries. The scanner reads only frame headers and the status byte; it never buffers a
//! payload, so its memory is constant whatever the frame sizes.

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
    /// A ReadyForQuery frame ends just before this offset; it carried `status`.
    ReadyEnd {
        /// Offset one past the frame's last byte.
        end: usize,
        /// The transaction status byte (`I`, `T` or `E`).
        status: u8,
    },
}

/// Incremental frame-boundary scanner of a typed backend stream.
#[derive(Debug, Clone, Default)]
pub struct FrameScanner {
    header: [u8; FrameHeader::SIZE],
    header_len: usize,
    remaining: usize,
    in_ready: bool,
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
                self.remaining -= n;
                i += n;
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
    fn large_frames_cost_no_memory() {
        let mut sc = FrameScanner::new();
        let mut ev = Vec::new();
        sc.scan(b"D\x7f\xff\xff\xff", &mut ev).unwrap();
        sc.scan(&[0u8; 4096], &mut ev).unwrap();
        assert!(ev.is_empty());
        assert!(!sc.at_boundary());
    }
}
