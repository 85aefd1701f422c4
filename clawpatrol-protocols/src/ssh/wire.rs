//! SSH wire types (RFC 4251 §5): `byte`, `boolean`, `uint32`, `string`, with length checks.

use super::SshError;

/// A reader over one message payload.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SshError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(SshError::Truncated { what })?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(SshError::Truncated { what })?;
        self.pos = end;
        Ok(s)
    }

    /// Reads a `byte`.
    pub fn byte(&mut self, what: &'static str) -> Result<u8, SshError> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads a `boolean` (any non-zero byte is true, RFC 4251 §5).
    pub fn boolean(&mut self, what: &'static str) -> Result<bool, SshError> {
        Ok(self.byte(what)? != 0)
    }

    /// Reads a `uint32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, SshError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a `string` as bytes.
    pub fn string(&mut self, what: &'static str) -> Result<&'a [u8], SshError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }

    /// Reads a `string` that must be UTF-8 (names, types).
    pub fn utf8(&mut self, what: &'static str) -> Result<String, SshError> {
        let b = self.string(what)?;
        String::from_utf8(b.to_vec()).map_err(|_| SshError::InvalidUtf8 { what })
    }

    /// Fails when bytes remain.
    pub fn finish(&self, msg: &'static str) -> Result<(), SshError> {
        match self.buf.len().saturating_sub(self.pos) {
            0 => Ok(()),
            n => Err(SshError::TrailingBytes { msg, n }),
        }
    }
}

/// Appends a `uint32`.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a `string`; fails when it is longer than a `uint32` length allows.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) -> Result<(), SshError> {
    let n = u32::try_from(s.len()).map_err(|_| SshError::TooLarge {
        len: s.len(),
        max: u32::MAX as usize,
    })?;
    put_u32(out, n);
    out.extend_from_slice(s);
    Ok(())
}

/// Appends a `boolean`.
pub fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(u8::from(b));
}
