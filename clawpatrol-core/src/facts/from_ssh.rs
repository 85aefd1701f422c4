//! SSH channel actions (reference §3.6): a decoded channel open or request plus the SSH
//! user name → the [`Action`] to decide, or `None` when the message is not gated.

use clawpatrol_protocols::ssh::{
    ChannelMessage, ChannelOpen, ChannelRequest, OpenKind, RequestKind,
};

use super::action::{Action, Facts};
use super::ssh::SshFacts;

/// The action of a channel message sent by the agent, `None` when it is not gated
/// (`session` opens, `env`, `window-change`, `signal`, unknown requests, …).
pub fn ssh_action(msg: &ChannelMessage, user: &str) -> Option<Action> {
    match msg {
        ChannelMessage::Open(o) => open_action(o, user),
        ChannelMessage::Request(r) => request_action(r, user),
    }
}

/// The action of a channel open: `forward` for `direct-tcpip`, else `None`.
pub fn open_action(open: &ChannelOpen, user: &str) -> Option<Action> {
    match &open.kind {
        OpenKind::DirectTcpip { host, port, .. } => Some(Action::new(Facts::Ssh(SshFacts {
            verb: "forward".into(),
            forward_host: host.clone(),
            forward_port: i64::from(*port),
            user: user.to_string(),
            ..SshFacts::default()
        }))),
        _ => None,
    }
}

/// The action of a channel request: `pty`, `exec` (+ command), `shell`, `subsystem`
/// (+ name), else `None`. A command that is not UTF-8 is matched lossily and marks the
/// action unparseable (fail closed).
pub fn request_action(req: &ChannelRequest, user: &str) -> Option<Action> {
    let base = SshFacts {
        user: user.to_string(),
        ..SshFacts::default()
    };
    let mut unparseable = false;
    let facts = match &req.kind {
        RequestKind::PtyReq(_) => SshFacts {
            verb: "pty".into(),
            ..base
        },
        RequestKind::Shell => SshFacts {
            verb: "shell".into(),
            ..base
        },
        RequestKind::Exec { command } => {
            let command = match std::str::from_utf8(command) {
                Ok(c) => c.to_string(),
                Err(_) => {
                    unparseable = true;
                    String::from_utf8_lossy(command).into_owned()
                }
            };
            SshFacts {
                verb: "exec".into(),
                command,
                ..base
            }
        }
        RequestKind::Subsystem { name } => SshFacts {
            verb: "subsystem".into(),
            subsystem: name.clone(),
            ..base
        },
        _ => return None,
    };
    let mut a = Action::new(Facts::Ssh(facts));
    a.unparseable = unparseable;
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent encoder of RFC 4254 payloads (not the protocols crate's).
    fn s(out: &mut Vec<u8>, v: &[u8]) {
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v);
    }

    fn request(kind: &str, want_reply: bool, data: &[u8]) -> Vec<u8> {
        let mut p = vec![98, 0, 0, 0, 0];
        s(&mut p, kind.as_bytes());
        p.push(u8::from(want_reply));
        p.extend_from_slice(data);
        p
    }

    fn act(payload: &[u8]) -> Option<Action> {
        ssh_action(&ChannelMessage::decode(payload).expect("decodes"), "deploy")
    }

    fn facts(a: Option<Action>) -> SshFacts {
        match a.map(|a| a.facts) {
            Some(Facts::Ssh(f)) => f,
            other => panic!("expected ssh facts, got {other:?}"),
        }
    }

    #[test]
    fn direct_tcpip_is_forward() {
        let mut p = vec![90];
        s(&mut p, b"direct-tcpip");
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0x20, 0, 0, 0, 0, 0x80, 0]);
        s(&mut p, b"db.internal");
        p.extend_from_slice(&5432u32.to_be_bytes());
        s(&mut p, b"127.0.0.1");
        p.extend_from_slice(&40000u32.to_be_bytes());
        let f = facts(act(&p));
        assert_eq!(f.verb, "forward");
        assert_eq!(
            (f.forward_host.as_str(), f.forward_port),
            ("db.internal", 5432)
        );
        assert_eq!(f.user, "deploy");
    }

    #[test]
    fn session_open_is_not_gated() {
        let mut p = vec![90];
        s(&mut p, b"session");
        p.extend_from_slice(&[0; 12]);
        assert!(act(&p).is_none());
    }

    #[test]
    fn gated_requests() {
        let mut pty = Vec::new();
        s(&mut pty, b"xterm-256color");
        pty.extend_from_slice(&[0, 0, 0, 80, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0]);
        s(&mut pty, &[0]);
        assert_eq!(facts(act(&request("pty-req", true, &pty))).verb, "pty");
        assert_eq!(facts(act(&request("shell", true, &[]))).verb, "shell");
        let mut cmd = Vec::new();
        s(&mut cmd, b"rm -rf /tmp/x");
        let f = facts(act(&request("exec", true, &cmd)));
        assert_eq!(
            (f.verb.as_str(), f.command.as_str()),
            ("exec", "rm -rf /tmp/x")
        );
        let mut sub = Vec::new();
        s(&mut sub, b"sftp");
        let f = facts(act(&request("subsystem", true, &sub)));
        assert_eq!(
            (f.verb.as_str(), f.subsystem.as_str()),
            ("subsystem", "sftp")
        );
    }

    #[test]
    fn ungated_requests() {
        let mut env = Vec::new();
        s(&mut env, b"LANG");
        s(&mut env, b"C.UTF-8");
        assert!(act(&request("env", false, &env)).is_none());
        assert!(act(&request("window-change", false, &[0; 16])).is_none());
        let mut sig = Vec::new();
        s(&mut sig, b"INT");
        assert!(act(&request("signal", false, &sig)).is_none());
        assert!(act(&request("keepalive@openssh.com", true, &[])).is_none());
    }

    #[test]
    fn non_utf8_command_is_unparseable() {
        let mut cmd = Vec::new();
        s(&mut cmd, b"ls \xff");
        let a = act(&request("exec", true, &cmd)).expect("gated");
        assert!(a.unparseable);
    }
}
