//! ClientHello peeking against real ClientHello bytes produced by rustls.

use std::sync::Arc;

use clawpatrol_protocols::tls::{peek_client_hello, ClientHello, Peek, TlsError};
use proptest::prelude::*;
use rustls::pki_types::ServerName;

/// The first bytes a rustls client sends for `server_name` with `alpn`.
fn client_hello_bytes(
    server_name: &str,
    alpn: &[&[u8]],
    max_fragment: Option<usize>,
    sni: bool,
) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.max_fragment_size = max_fragment;
    config.enable_sni = sni;
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

#[test]
fn sni_and_alpn_from_rustls_hello() {
    let bytes = client_hello_bytes("api.github.com", &[b"h2", b"http/1.1"], None, true);
    assert_eq!(
        peek_client_hello(&bytes),
        Ok(Peek::Complete(ClientHello {
            server_name: Some("api.github.com".into()),
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }))
    );
}

#[test]
fn no_alpn_and_no_sni() {
    let bytes = client_hello_bytes("example.com", &[], None, true);
    assert_eq!(
        peek_client_hello(&bytes),
        Ok(Peek::Complete(ClientHello {
            server_name: Some("example.com".into()),
            alpn: vec![],
        }))
    );
    // An IP address is never sent as SNI (kubectl to an IP).
    let bytes = client_hello_bytes("10.0.0.1", &[b"http/1.1"], None, true);
    assert_eq!(
        peek_client_hello(&bytes),
        Ok(Peek::Complete(ClientHello {
            server_name: None,
            alpn: vec![b"http/1.1".to_vec()],
        }))
    );
    let bytes = client_hello_bytes("example.com", &[], None, false);
    assert!(matches!(
        peek_client_hello(&bytes),
        Ok(Peek::Complete(ClientHello {
            server_name: None,
            ..
        }))
    ));
}

#[test]
fn hello_split_across_records() {
    let whole = client_hello_bytes("k8s.example.com", &[b"http/1.1"], None, true);
    let split = client_hello_bytes("k8s.example.com", &[b"http/1.1"], Some(64), true);
    // Several records: the record headers add bytes.
    assert!(split.len() > whole.len() + 5);
    let want = Peek::Complete(ClientHello {
        server_name: Some("k8s.example.com".into()),
        alpn: vec![b"http/1.1".to_vec()],
    });
    assert_eq!(peek_client_hello(&split), Ok(want.clone()));
    for cut in 0..split.len() {
        assert_eq!(
            peek_client_hello(&split[..cut]),
            Ok(Peek::NeedMore),
            "{cut}"
        );
    }
    // Bytes after the hello (the caller's buffer may hold more) do not matter.
    let mut more = split.clone();
    more.extend_from_slice(b"\x17\x03\x03\x00\x01x");
    assert_eq!(peek_client_hello(&more), Ok(want));
}

#[test]
fn every_truncated_prefix_needs_more() {
    let bytes = client_hello_bytes("example.com", &[b"h2"], None, true);
    for cut in 0..bytes.len() {
        assert_eq!(
            peek_client_hello(&bytes[..cut]),
            Ok(Peek::NeedMore),
            "{cut}"
        );
    }
}

#[test]
fn not_tls_is_refused() {
    assert_eq!(
        peek_client_hello(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        Err(TlsError::NotTls)
    );
    assert_eq!(
        peek_client_hello(b"SSH-2.0-OpenSSH_9.6\r\n"),
        Err(TlsError::NotTls)
    );
}

#[test]
fn corrupted_hello_is_refused_not_panicking() {
    let bytes = client_hello_bytes("example.com", &[b"h2"], None, true);
    // Corrupt the handshake length so that it disagrees with the content.
    let mut bad = bytes.clone();
    bad[8] ^= 0x01;
    assert!(peek_client_hello(&bad).is_err() || peek_client_hello(&bad) == Ok(Peek::NeedMore));
    // Corrupt the message type.
    let mut bad = bytes.clone();
    bad[5] = 2;
    assert_eq!(peek_client_hello(&bad), Err(TlsError::NotClientHello));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = peek_client_hello(&bytes);
        let mut tls = vec![0x16, 0x03, 0x01];
        tls.extend_from_slice(&bytes);
        let _ = peek_client_hello(&tls);
    }

    #[test]
    fn mutated_real_hello_never_panics(pos in 0usize..4096, val in any::<u8>()) {
        let mut bytes = client_hello_bytes("example.com", &[b"h2"], Some(100), true);
        let i = pos % bytes.len();
        bytes[i] = val;
        let _ = peek_client_hello(&bytes);
    }
}
