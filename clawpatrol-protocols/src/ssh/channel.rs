//! `SSH_MSG_CHANNEL_OPEN` (RFC 4254 §5.1, §7.2) and `SSH_MSG_CHANNEL_REQUEST` (§5.4, §6).
//!
//! Known types are decoded strictly (trailing bytes are an error: a gated message is never
//! forwarded with bytes the gate did not read); unknown types keep their bytes raw.

use super::wire::{put_bool, put_string, put_u32, Reader};
use super::{SshError, DEFAULT_MAX_PAYLOAD, MSG_CHANNEL_OPEN, MSG_CHANNEL_REQUEST};

/// A decoded channel-open or channel-request payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelMessage {
    /// `SSH_MSG_CHANNEL_OPEN`.
    Open(ChannelOpen),
    /// `SSH_MSG_CHANNEL_REQUEST`.
    Request(ChannelRequest),
}

/// `SSH_MSG_CHANNEL_OPEN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOpen {
    /// The sender's channel number.
    pub sender_channel: u32,
    /// Initial window size.
    pub initial_window: u32,
    /// Maximum packet size.
    pub max_packet: u32,
    /// Type and type-specific data.
    pub kind: OpenKind,
}

/// The type of a channel open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenKind {
    /// `session`.
    Session,
    /// `direct-tcpip`: a local port forward.
    DirectTcpip {
        /// Host to connect to.
        host: String,
        /// Port to connect to.
        port: u32,
        /// Originator IP address.
        originator: String,
        /// Originator port.
        originator_port: u32,
    },
    /// `x11`.
    X11 {
        /// Originator address.
        originator: String,
        /// Originator port.
        originator_port: u32,
    },
    /// `forwarded-tcpip` (server-originated).
    ForwardedTcpip {
        /// Address that was connected.
        address: String,
        /// Port that was connected.
        port: u32,
        /// Originator IP address.
        originator: String,
        /// Originator port.
        originator_port: u32,
    },
    /// Any other type, its data raw.
    Other {
        /// Channel type name.
        name: String,
        /// Type-specific bytes.
        data: Vec<u8>,
    },
}

impl OpenKind {
    /// The channel type name on the wire.
    pub fn name(&self) -> &str {
        match self {
            OpenKind::Session => "session",
            OpenKind::DirectTcpip { .. } => "direct-tcpip",
            OpenKind::X11 { .. } => "x11",
            OpenKind::ForwardedTcpip { .. } => "forwarded-tcpip",
            OpenKind::Other { name, .. } => name,
        }
    }
}

/// `SSH_MSG_CHANNEL_REQUEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRequest {
    /// The recipient's channel number.
    pub recipient_channel: u32,
    /// The sender wants a success/failure reply.
    pub want_reply: bool,
    /// Type and type-specific data.
    pub kind: RequestKind,
}

/// The terminal fields of a `pty-req`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PtyRequest {
    /// `TERM` value.
    pub term: String,
    /// Width in characters.
    pub cols: u32,
    /// Height in rows.
    pub rows: u32,
    /// Width in pixels.
    pub width_px: u32,
    /// Height in pixels.
    pub height_px: u32,
    /// Encoded terminal modes.
    pub modes: Vec<u8>,
}

/// The type of a channel request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// `pty-req`.
    PtyReq(PtyRequest),
    /// `x11-req`.
    X11Req {
        /// Single connection only.
        single: bool,
        /// Authentication protocol.
        protocol: String,
        /// Authentication cookie.
        cookie: Vec<u8>,
        /// Screen number.
        screen: u32,
    },
    /// `env`.
    Env {
        /// Variable name.
        name: Vec<u8>,
        /// Variable value.
        value: Vec<u8>,
    },
    /// `shell`.
    Shell,
    /// `exec` with its command bytes.
    Exec {
        /// The command line.
        command: Vec<u8>,
    },
    /// `subsystem`.
    Subsystem {
        /// Subsystem name (`sftp`).
        name: String,
    },
    /// `window-change`.
    WindowChange {
        /// Width in characters.
        cols: u32,
        /// Height in rows.
        rows: u32,
        /// Width in pixels.
        width_px: u32,
        /// Height in pixels.
        height_px: u32,
    },
    /// `xon-xoff`.
    XonXoff {
        /// Client can do flow control.
        client_can_do: bool,
    },
    /// `signal` (name without `SIG`).
    Signal {
        /// Signal name.
        name: String,
    },
    /// `exit-status`.
    ExitStatus {
        /// Exit code.
        status: u32,
    },
    /// `exit-signal`.
    ExitSignal {
        /// Signal name.
        name: String,
        /// Core dumped.
        core_dumped: bool,
        /// Error message.
        message: String,
        /// Language tag.
        language: String,
    },
    /// Any other type, its data raw.
    Other {
        /// Request type name.
        name: String,
        /// Type-specific bytes.
        data: Vec<u8>,
    },
}

impl RequestKind {
    /// The request type name on the wire.
    pub fn name(&self) -> &str {
        match self {
            RequestKind::PtyReq(_) => "pty-req",
            RequestKind::X11Req { .. } => "x11-req",
            RequestKind::Env { .. } => "env",
            RequestKind::Shell => "shell",
            RequestKind::Exec { .. } => "exec",
            RequestKind::Subsystem { .. } => "subsystem",
            RequestKind::WindowChange { .. } => "window-change",
            RequestKind::XonXoff { .. } => "xon-xoff",
            RequestKind::Signal { .. } => "signal",
            RequestKind::ExitStatus { .. } => "exit-status",
            RequestKind::ExitSignal { .. } => "exit-signal",
            RequestKind::Other { name, .. } => name,
        }
    }
}

/// Decodes a channel-open or channel-request payload (message number first), refusing
/// payloads over `max` bytes. `Ok(None)` for any other message number (not gated).
pub fn decode_payload(payload: &[u8], max: usize) -> Result<Option<ChannelMessage>, SshError> {
    if payload.len() > max {
        return Err(SshError::TooLarge {
            len: payload.len(),
            max,
        });
    }
    match payload.first() {
        None => Err(SshError::Empty),
        Some(&MSG_CHANNEL_OPEN) => {
            ChannelOpen::decode(payload).map(|o| Some(ChannelMessage::Open(o)))
        }
        Some(&MSG_CHANNEL_REQUEST) => {
            ChannelRequest::decode(payload).map(|r| Some(ChannelMessage::Request(r)))
        }
        Some(_) => Ok(None),
    }
}

impl ChannelMessage {
    /// Decodes with the default maximum; other message numbers are an error.
    pub fn decode(payload: &[u8]) -> Result<ChannelMessage, SshError> {
        match decode_payload(payload, DEFAULT_MAX_PAYLOAD)? {
            Some(m) => Ok(m),
            None => Err(SshError::UnsupportedMessage(
                payload.first().copied().unwrap_or(0),
            )),
        }
    }

    /// Encodes the payload (message number first).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), SshError> {
        match self {
            ChannelMessage::Open(o) => o.encode(out),
            ChannelMessage::Request(r) => r.encode(out),
        }
    }
}

impl ChannelOpen {
    /// Decodes a payload starting with message number 90.
    pub fn decode(payload: &[u8]) -> Result<ChannelOpen, SshError> {
        let mut r = Reader::new(payload);
        let n = r.byte("message number")?;
        if n != MSG_CHANNEL_OPEN {
            return Err(SshError::UnsupportedMessage(n));
        }
        let name = r.utf8("channel type")?;
        let sender_channel = r.u32("sender channel")?;
        let initial_window = r.u32("initial window size")?;
        let max_packet = r.u32("maximum packet size")?;
        let kind = match name.as_str() {
            "session" => OpenKind::Session,
            "direct-tcpip" => OpenKind::DirectTcpip {
                host: r.utf8("host to connect")?,
                port: r.u32("port to connect")?,
                originator: r.utf8("originator address")?,
                originator_port: r.u32("originator port")?,
            },
            "x11" => OpenKind::X11 {
                originator: r.utf8("originator address")?,
                originator_port: r.u32("originator port")?,
            },
            "forwarded-tcpip" => OpenKind::ForwardedTcpip {
                address: r.utf8("address connected")?,
                port: r.u32("port connected")?,
                originator: r.utf8("originator address")?,
                originator_port: r.u32("originator port")?,
            },
            _ => {
                let data = r.rest().to_vec();
                return Ok(ChannelOpen {
                    sender_channel,
                    initial_window,
                    max_packet,
                    kind: OpenKind::Other { name, data },
                });
            }
        };
        r.finish("channel open")?;
        Ok(ChannelOpen {
            sender_channel,
            initial_window,
            max_packet,
            kind,
        })
    }

    /// Encodes the payload (message number first).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), SshError> {
        out.push(MSG_CHANNEL_OPEN);
        put_string(out, self.kind.name().as_bytes())?;
        put_u32(out, self.sender_channel);
        put_u32(out, self.initial_window);
        put_u32(out, self.max_packet);
        match &self.kind {
            OpenKind::Session => {}
            OpenKind::DirectTcpip {
                host,
                port,
                originator,
                originator_port,
            } => {
                put_string(out, host.as_bytes())?;
                put_u32(out, *port);
                put_string(out, originator.as_bytes())?;
                put_u32(out, *originator_port);
            }
            OpenKind::X11 {
                originator,
                originator_port,
            } => {
                put_string(out, originator.as_bytes())?;
                put_u32(out, *originator_port);
            }
            OpenKind::ForwardedTcpip {
                address,
                port,
                originator,
                originator_port,
            } => {
                put_string(out, address.as_bytes())?;
                put_u32(out, *port);
                put_string(out, originator.as_bytes())?;
                put_u32(out, *originator_port);
            }
            OpenKind::Other { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }
}

impl ChannelRequest {
    /// Decodes a payload starting with message number 98.
    pub fn decode(payload: &[u8]) -> Result<ChannelRequest, SshError> {
        let mut r = Reader::new(payload);
        let n = r.byte("message number")?;
        if n != MSG_CHANNEL_REQUEST {
            return Err(SshError::UnsupportedMessage(n));
        }
        let recipient_channel = r.u32("recipient channel")?;
        let name = r.utf8("request type")?;
        let want_reply = r.boolean("want reply")?;
        let kind = match name.as_str() {
            "pty-req" => RequestKind::PtyReq(PtyRequest {
                term: r.utf8("TERM")?,
                cols: r.u32("terminal width")?,
                rows: r.u32("terminal height")?,
                width_px: r.u32("terminal width pixels")?,
                height_px: r.u32("terminal height pixels")?,
                modes: r.string("terminal modes")?.to_vec(),
            }),
            "x11-req" => RequestKind::X11Req {
                single: r.boolean("single connection")?,
                protocol: r.utf8("x11 protocol")?,
                cookie: r.string("x11 cookie")?.to_vec(),
                screen: r.u32("x11 screen")?,
            },
            "env" => RequestKind::Env {
                name: r.string("variable name")?.to_vec(),
                value: r.string("variable value")?.to_vec(),
            },
            "shell" => RequestKind::Shell,
            "exec" => RequestKind::Exec {
                command: r.string("command")?.to_vec(),
            },
            "subsystem" => RequestKind::Subsystem {
                name: r.utf8("subsystem name")?,
            },
            "window-change" => RequestKind::WindowChange {
                cols: r.u32("terminal width")?,
                rows: r.u32("terminal height")?,
                width_px: r.u32("terminal width pixels")?,
                height_px: r.u32("terminal height pixels")?,
            },
            "xon-xoff" => RequestKind::XonXoff {
                client_can_do: r.boolean("client can do")?,
            },
            "signal" => RequestKind::Signal {
                name: r.utf8("signal name")?,
            },
            "exit-status" => RequestKind::ExitStatus {
                status: r.u32("exit status")?,
            },
            "exit-signal" => RequestKind::ExitSignal {
                name: r.utf8("signal name")?,
                core_dumped: r.boolean("core dumped")?,
                message: r.utf8("error message")?,
                language: r.utf8("language tag")?,
            },
            _ => {
                let data = r.rest().to_vec();
                return Ok(ChannelRequest {
                    recipient_channel,
                    want_reply,
                    kind: RequestKind::Other { name, data },
                });
            }
        };
        r.finish("channel request")?;
        Ok(ChannelRequest {
            recipient_channel,
            want_reply,
            kind,
        })
    }

    /// Encodes the payload (message number first).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), SshError> {
        out.push(MSG_CHANNEL_REQUEST);
        put_u32(out, self.recipient_channel);
        put_string(out, self.kind.name().as_bytes())?;
        put_bool(out, self.want_reply);
        match &self.kind {
            RequestKind::PtyReq(p) => {
                put_string(out, p.term.as_bytes())?;
                put_u32(out, p.cols);
                put_u32(out, p.rows);
                put_u32(out, p.width_px);
                put_u32(out, p.height_px);
                put_string(out, &p.modes)?;
            }
            RequestKind::X11Req {
                single,
                protocol,
                cookie,
                screen,
            } => {
                put_bool(out, *single);
                put_string(out, protocol.as_bytes())?;
                put_string(out, cookie)?;
                put_u32(out, *screen);
            }
            RequestKind::Env { name, value } => {
                put_string(out, name)?;
                put_string(out, value)?;
            }
            RequestKind::Shell => {}
            RequestKind::Exec { command } => put_string(out, command)?,
            RequestKind::Subsystem { name } => put_string(out, name.as_bytes())?,
            RequestKind::WindowChange {
                cols,
                rows,
                width_px,
                height_px,
            } => {
                put_u32(out, *cols);
                put_u32(out, *rows);
                put_u32(out, *width_px);
                put_u32(out, *height_px);
            }
            RequestKind::XonXoff { client_can_do } => put_bool(out, *client_can_do),
            RequestKind::Signal { name } => put_string(out, name.as_bytes())?,
            RequestKind::ExitStatus { status } => put_u32(out, *status),
            RequestKind::ExitSignal {
                name,
                core_dumped,
                message,
                language,
            } => {
                put_string(out, name.as_bytes())?;
                put_bool(out, *core_dumped);
                put_string(out, message.as_bytes())?;
                put_string(out, language.as_bytes())?;
            }
            RequestKind::Other { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_by_hand() {
        // Independent construction of the RFC 4254 §6.5 layout.
        let mut p = vec![98, 0, 0, 0, 3];
        p.extend_from_slice(&[0, 0, 0, 4]);
        p.extend_from_slice(b"exec");
        p.push(1);
        p.extend_from_slice(&[0, 0, 0, 5]);
        p.extend_from_slice(b"ls -l");
        let m = ChannelMessage::decode(&p).unwrap();
        assert_eq!(
            m,
            ChannelMessage::Request(ChannelRequest {
                recipient_channel: 3,
                want_reply: true,
                kind: RequestKind::Exec {
                    command: b"ls -l".to_vec()
                }
            })
        );
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        assert_eq!(out, p);
    }

    #[test]
    fn trailing_bytes_and_truncation_are_errors() {
        let mut p = vec![98, 0, 0, 0, 0, 0, 0, 0, 5];
        p.extend_from_slice(b"shell");
        p.push(0);
        assert!(ChannelMessage::decode(&p).is_ok());
        p.push(9);
        assert!(matches!(
            ChannelMessage::decode(&p),
            Err(SshError::TrailingBytes { .. })
        ));
        assert!(matches!(
            ChannelMessage::decode(&p[..7]),
            Err(SshError::Truncated { .. })
        ));
        assert!(matches!(
            decode_payload(&p, 4),
            Err(SshError::TooLarge { .. })
        ));
    }
}
