//! Buffered, bounded, timed reads of HTTP heads and bodies over any async stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BufMut;
use clawpatrol_protocols::http::{
    parse_request_head, parse_response_head, BodyDecoder, HttpError, Limits, RequestHead,
    ResponseHead,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Bytes read from a socket per call; also the most a [`Wire`] buffers beyond a head.
pub const READ_CHUNK: usize = 16 * 1024;

/// A bidirectional byte stream the gateway can own as a trait object.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why reading an HTTP message failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The socket failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The peer did not send in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The bytes are not valid HTTP (or exceed a limit).
    #[error("{0}")]
    Http(#[from] HttpError),
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed in the middle of a message")]
    Incomplete,
}

/// A stream with a read buffer of bytes received but not yet consumed.
pub struct Wire<S> {
    /// The stream.
    pub io: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    /// Wraps a stream; `pending` holds bytes already read from it.
    pub fn new(io: S, pending: Vec<u8>) -> Wire<S> {
        Wire { io, buf: pending }
    }

    /// The buffered, unconsumed bytes.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Drops the first `n` buffered bytes.
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// Takes every buffered byte.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Reads up to [`READ_CHUNK`] more bytes within `limit`; `Ok(0)` at end of stream.
    /// Cancel-safe: dropping the future loses no bytes and leaves the buffer unchanged.
    pub async fn read_more(&mut self, limit: Duration) -> Result<usize, ReadError> {
        self.buf.reserve(READ_CHUNK);
        let room = self.buf.capacity() - self.buf.len();
        let mut limited = (&mut self.buf).limit(room.min(READ_CHUNK));
        match tokio::time::timeout(limit, self.io.read_buf(&mut limited)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(ReadError::Io(e)),
            Err(_) => Err(ReadError::Timeout(limit)),
        }
    }

    /// Reads a request head. `Ok(None)`: the peer closed cleanly before a new request.
    /// `idle` bounds the wait for the first byte, `within` the rest of the head.
    pub async fn read_request_head(
        &mut self,
        limits: &Limits,
        idle: Duration,
        within: Duration,
    ) -> Result<Option<RequestHead>, ReadError> {
        self.read_head(limits, idle, within, parse_request_head)
            .await
    }

    /// Reads a response head within `within`.
    pub async fn read_response_head(
        &mut self,
        limits: &Limits,
        within: Duration,
    ) -> Result<ResponseHead, ReadError> {
        self.read_head(limits, within, within, parse_response_head)
            .await?
            .ok_or(ReadError::Incomplete)
    }

    async fn read_head<T: HeadLen>(
        &mut self,
        limits: &Limits,
        idle: Duration,
        within: Duration,
        parse: fn(&[u8], &Limits) -> Result<Option<T>, HttpError>,
    ) -> Result<Option<T>, ReadError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = parse(&self.buf, limits)? {
                    self.consume(head.head_len());
                    return Ok(Some(head));
                }
            }
            let wait = if self.buf.is_empty() {
                idle
            } else {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            };
            if self.read_more(wait).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Incomplete)
                };
            }
        }
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await
    }
}

/// Heads that know their length on the wire.
trait HeadLen {
    fn head_len(&self) -> usize;
}

impl HeadLen for RequestHead {
    fn head_len(&self) -> usize {
        self.head_len
    }
}

impl HeadLen for ResponseHead {
    fn head_len(&self) -> usize {
        self.head_len
    }
}

/// What streaming a body moved.
#[derive(Debug, Default)]
pub struct Streamed {
    /// Raw body bytes forwarded.
    pub bytes: u64,
}

/// Streams the rest of a body from `src` to `dst` as framed by `decoder`, hashing the raw
/// body bytes into `hash`. Bytes after the body stay buffered in `src`.
pub async fn stream_body<A, B>(
    src: &mut Wire<A>,
    dst: &mut B,
    decoder: &mut BodyDecoder,
    hash: &mut Sha256,
    idle: Duration,
) -> Result<Streamed, StreamError>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncWrite + Unpin,
{
    stream_body_after(Vec::new(), src, dst, decoder, hash, idle).await
}

/// [`stream_body`], writing `prefix` (a message head) in the same write as the first body
/// bytes: one TLS record and one syscall instead of two for small messages.
pub async fn stream_body_after<A, B>(
    mut prefix: Vec<u8>,
    src: &mut Wire<A>,
    dst: &mut B,
    decoder: &mut BodyDecoder,
    hash: &mut Sha256,
    idle: Duration,
) -> Result<Streamed, StreamError>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncWrite + Unpin,
{
    let mut out = Streamed::default();
    while !decoder.is_done() {
        if src.buffered().is_empty() {
            if !prefix.is_empty() {
                // Nothing to join yet: let the head go before waiting for the body.
                dst.write_all(&prefix).await.map_err(StreamError::Write)?;
                dst.flush().await.map_err(StreamError::Write)?;
                prefix.clear();
            }
            let n = src.read_more(idle).await.map_err(StreamError::Read)?;
            if n == 0 {
                decoder
                    .finish()
                    .map_err(|e| StreamError::Read(ReadError::Http(e)))?;
                break;
            }
        }
        let progress = decoder
            .feed(src.buffered())
            .map_err(|e| StreamError::Read(ReadError::Http(e)))?;
        let chunk = &src.buffered()[..progress.consumed];
        hash.update(chunk);
        if prefix.is_empty() {
            dst.write_all(chunk).await.map_err(StreamError::Write)?;
        } else {
            prefix.extend_from_slice(chunk);
            dst.write_all(&prefix).await.map_err(StreamError::Write)?;
            prefix.clear();
        }
        out.bytes += progress.consumed as u64;
        src.consume(progress.consumed);
    }
    if !prefix.is_empty() {
        dst.write_all(&prefix).await.map_err(StreamError::Write)?;
    }
    dst.flush().await.map_err(StreamError::Write)?;
    Ok(out)
}

/// Why streaming a body failed, by side.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading from the source failed (or its framing is broken).
    #[error("{0}")]
    Read(ReadError),
    /// Writing to the destination failed.
    #[error("write failed: {0}")]
    Write(io::Error),
}

/// A stream that first yields bytes already read from it (a peeked ClientHello, bytes after
/// a `CONNECT` head), then the stream itself.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// Replays `prefix` before reading from `inner`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawpatrol_protocols::http::BodyFraming;

    #[tokio::test]
    async fn prefixed_replays_then_reads() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"world").await.unwrap();
        drop(a);
        let mut p = Prefixed::new(b"hello ".to_vec(), b);
        let mut s = String::new();
        p.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }

    #[tokio::test]
    async fn reads_pipelined_heads_and_bodies() {
        let (mut a, b) = tokio::io::duplex(1024);
        a.write_all(b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        drop(a);
        let mut w = Wire::new(b, Vec::new());
        let limits = Limits::default();
        let t = Duration::from_secs(1);
        let h = w.read_request_head(&limits, t, t).await.unwrap().unwrap();
        assert_eq!(h.target, "/a");
        let mut dec = BodyDecoder::new(BodyFraming::Length(3), &limits);
        let mut out = Vec::new();
        let mut hash = Sha256::new();
        let s = stream_body(&mut w, &mut out, &mut dec, &mut hash, t)
            .await
            .unwrap();
        assert_eq!((s.bytes, out.as_slice()), (3, &b"abc"[..]));
        let h = w.read_request_head(&limits, t, t).await.unwrap().unwrap();
        assert_eq!(h.target, "/b");
        assert!(w.read_request_head(&limits, t, t).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_head_is_incomplete() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\nHost: x").await.unwrap();
        drop(a);
        let mut w = Wire::new(b, Vec::new());
        let t = Duration::from_secs(1);
        let e = w.read_request_head(&Limits::default(), t, t).await;
        assert!(matches!(e, Err(ReadError::Incomplete)));
    }
}
