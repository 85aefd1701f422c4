//! Postgres wire codec: round trips, split feeding, oversize frames, malformed input.

use clawpatrol_protocols::postgres::{
    deny_statement, fatal_auth_error, AuthResponseKind, Authentication, BackendDecoder,
    BackendMessage, BackendMode, CopyFormat, Decoded, ErrorFields, FieldDescription, FrameHeader,
    FrontendDecoder, FrontendMessage, FrontendPhase, PgError, ProtocolVersion, Target,
    TransactionStatus, FUNCTION_CALL_DENY_REASON,
};

fn startup_messages() -> Vec<FrontendMessage> {
    vec![
        FrontendMessage::SslRequest,
        FrontendMessage::GssEncRequest,
        FrontendMessage::CancelRequest {
            process_id: 4242,
            secret_key: vec![1, 2, 3, 4],
        },
        FrontendMessage::Startup {
            version: ProtocolVersion::V3_0,
            params: vec![
                ("user".into(), "agent".into()),
                ("database".into(), "app".into()),
                ("application_name".into(), "psql".into()),
            ],
        },
        FrontendMessage::Startup {
            version: ProtocolVersion::V3_2,
            params: vec![],
        },
    ]
}

/// Typed frontend messages paired with the auth-response kind that decodes them.
fn typed_messages() -> Vec<(AuthResponseKind, FrontendMessage)> {
    use AuthResponseKind::*;
    use FrontendMessage as M;
    vec![
        (Raw, M::AuthResponse(b"anything\0goes".to_vec())),
        (Password, M::Password(b"md5abcdef".to_vec())),
        (
            SaslInitial,
            M::SaslInitialResponse {
                mechanism: "SCRAM-SHA-256".into(),
                data: Some(b"n,,n=,r=abc".to_vec()),
            },
        ),
        (
            SaslInitial,
            M::SaslInitialResponse {
                mechanism: "SCRAM-SHA-256".into(),
                data: None,
            },
        ),
        (Sasl, M::SaslResponse(b"c=biws,r=abc,p=xyz".to_vec())),
        (Raw, M::Query("SELECT 1; SELECT 'é'".into())),
        (
            Raw,
            M::Parse {
                name: "s1".into(),
                query: "SELECT $1::int".into(),
                param_types: vec![23, 0],
            },
        ),
        (
            Raw,
            M::Bind {
                portal: "".into(),
                statement: "s1".into(),
                param_formats: vec![0, 1],
                params: vec![Some(b"42".to_vec()), None, Some(vec![])],
                result_formats: vec![1],
            },
        ),
        (
            Raw,
            M::Describe {
                target: Target::Statement,
                name: "s1".into(),
            },
        ),
        (
            Raw,
            M::Describe {
                target: Target::Portal,
                name: "".into(),
            },
        ),
        (
            Raw,
            M::Execute {
                portal: "".into(),
                max_rows: 0,
            },
        ),
        (Raw, M::Sync),
        (Raw, M::Flush),
        (
            Raw,
            M::Close {
                target: Target::Portal,
                name: "p".into(),
            },
        ),
        (
            Raw,
            M::FunctionCall {
                function: 764,
                arg_formats: vec![1],
                args: vec![Some(vec![0, 0, 0, 1]), None],
                result_format: 1,
            },
        ),
        (Raw, M::CopyData(b"1\tfoo\n".to_vec())),
        (Raw, M::CopyDone),
        (Raw, M::CopyFail("aborted".into())),
        (Raw, M::Terminate),
    ]
}

fn backend_messages() -> Vec<BackendMessage> {
    use BackendMessage as M;
    vec![
        M::Authentication(Authentication::Ok),
        M::Authentication(Authentication::CleartextPassword),
        M::Authentication(Authentication::Md5Password { salt: [9, 8, 7, 6] }),
        M::Authentication(Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
        }),
        M::Authentication(Authentication::SaslContinue(
            b"r=abc,s=c2FsdA==,i=4096".to_vec(),
        )),
        M::Authentication(Authentication::SaslFinal(b"v=xyz".to_vec())),
        M::Authentication(Authentication::Unsupported {
            code: 7,
            data: vec![],
        }),
        M::Authentication(Authentication::Unsupported {
            code: 8,
            data: vec![1, 2, 3],
        }),
        M::ParameterStatus {
            name: "server_version".into(),
            value: "17.2".into(),
        },
        M::BackendKeyData {
            process_id: 77,
            secret_key: vec![0xde, 0xad, 0xbe, 0xef],
        },
        M::BackendKeyData {
            process_id: 78,
            secret_key: vec![7; 32],
        },
        M::ReadyForQuery(TransactionStatus::Idle),
        M::ReadyForQuery(TransactionStatus::InTransaction),
        M::ReadyForQuery(TransactionStatus::Failed),
        M::ErrorResponse(ErrorFields(vec![
            (b'S', "ERROR".into()),
            (b'C', "42P01".into()),
            (b'M', "relation \"x\" does not exist".into()),
        ])),
        M::NoticeResponse(ErrorFields(vec![(b'S', "NOTICE".into())])),
        M::RowDescription(vec![FieldDescription {
            name: "id".into(),
            table_oid: 16384,
            column_id: 1,
            type_oid: 23,
            type_size: 4,
            type_modifier: -1,
            format: 0,
        }]),
        M::DataRow(vec![Some(b"1".to_vec()), None, Some(vec![])]),
        M::CommandComplete("SELECT 1".into()),
        M::EmptyQueryResponse,
        M::ParseComplete,
        M::BindComplete,
        M::CloseComplete,
        M::NoData,
        M::ParameterDescription(vec![23, 25]),
        M::PortalSuspended,
        M::CopyInResponse(CopyFormat {
            format: 0,
            column_formats: vec![0, 0],
        }),
        M::CopyOutResponse(CopyFormat {
            format: 1,
            column_formats: vec![1],
        }),
        M::CopyBothResponse(CopyFormat {
            format: 0,
            column_formats: vec![],
        }),
        M::CopyData(b"row\n".to_vec()),
        M::CopyDone,
        M::NotificationResponse {
            process_id: 1,
            channel: "chan".into(),
            payload: "hi".into(),
        },
        M::FunctionCallResponse(Some(vec![0, 0, 0, 1])),
        M::FunctionCallResponse(None),
        M::NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized: vec!["_pq_.foo".into()],
        },
    ]
}

fn drain_frontend(d: &mut FrontendDecoder) -> Vec<FrontendMessage> {
    let mut out = Vec::new();
    while let Some(item) = d.next_frame().expect("valid stream") {
        match item {
            Decoded::Message(m) => out.push(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

fn drain_backend(d: &mut BackendDecoder) -> Vec<BackendMessage> {
    let mut out = Vec::new();
    while let Some(item) = d.next_frame().expect("valid stream") {
        match item {
            Decoded::Message(m) => out.push(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

#[test]
fn startup_messages_round_trip() {
    for msg in startup_messages() {
        let bytes = msg.to_bytes().unwrap();
        assert_eq!(msg.tag(), None);
        let mut d = FrontendDecoder::new();
        d.feed(&bytes);
        assert_eq!(drain_frontend(&mut d), vec![msg.clone()]);
        assert_eq!(d.buffered_len(), 0);
        assert_eq!(
            FrontendMessage::decode_startup(&bytes[4..]).unwrap(),
            msg,
            "stateless decode"
        );
    }
}

#[test]
fn typed_frontend_messages_round_trip() {
    for (kind, msg) in typed_messages() {
        let bytes = msg.to_bytes().unwrap();
        assert_eq!(Some(bytes[0]), msg.tag());
        let mut d = FrontendDecoder::new();
        d.set_phase(FrontendPhase::Typed);
        d.set_auth_response_kind(kind);
        d.feed(&bytes);
        assert_eq!(drain_frontend(&mut d), vec![msg.clone()], "{msg:?}");
        assert_eq!(d.buffered_len(), 0);
    }
}

#[test]
fn backend_messages_round_trip() {
    for msg in backend_messages() {
        let bytes = msg.to_bytes().unwrap();
        assert_eq!(bytes[0], msg.tag());
        let mut d = BackendDecoder::new();
        d.feed(&bytes);
        assert_eq!(drain_backend(&mut d), vec![msg.clone()], "{msg:?}");
        assert_eq!(BackendMessage::decode(bytes[0], &bytes[5..]).unwrap(), msg);
    }
}

#[test]
fn encryption_answers() {
    for (mode, byte, msg) in [
        (
            BackendMode::SslAnswer,
            b'S',
            BackendMessage::SslResponse { accepted: true },
        ),
        (
            BackendMode::SslAnswer,
            b'N',
            BackendMessage::SslResponse { accepted: false },
        ),
        (
            BackendMode::GssEncAnswer,
            b'G',
            BackendMessage::GssEncResponse { accepted: true },
        ),
        (
            BackendMode::GssEncAnswer,
            b'N',
            BackendMessage::GssEncResponse { accepted: false },
        ),
    ] {
        assert_eq!(msg.to_bytes().unwrap(), vec![byte]);
        let mut d = BackendDecoder::new();
        d.set_mode(mode);
        assert!(d.next_frame().unwrap().is_none());
        d.feed(&[byte]);
        assert_eq!(drain_backend(&mut d), vec![msg]);
        assert_eq!(d.mode(), BackendMode::Typed);
    }
    // Refused: the plaintext stream continues with typed messages.
    let mut d = BackendDecoder::new();
    d.set_mode(BackendMode::SslAnswer);
    let mut bytes = vec![b'N'];
    BackendMessage::Authentication(Authentication::Ok)
        .encode(&mut bytes)
        .unwrap();
    d.feed(&bytes);
    assert_eq!(drain_backend(&mut d).len(), 2);
    // Accepted, but plaintext bytes already follow: buffer-stuffing, refused.
    let mut d = BackendDecoder::new();
    d.set_mode(BackendMode::SslAnswer);
    d.feed(b"Sxyz");
    assert_eq!(d.next_frame(), Err(PgError::DataAfterEncryptionAnswer(3)));
    assert_eq!(d.next_frame(), Err(PgError::Poisoned));
    // An old server answering with an ErrorResponse.
    let mut d = BackendDecoder::new();
    d.set_mode(BackendMode::SslAnswer);
    d.feed(&fatal_auth_error("no ssl"));
    assert!(matches!(
        drain_backend(&mut d).as_slice(),
        [BackendMessage::ErrorResponse(_)]
    ));
    let mut d = BackendDecoder::new();
    d.set_mode(BackendMode::GssEncAnswer);
    d.feed(b"S");
    assert_eq!(d.next_frame(), Err(PgError::BadEncryptionAnswer(b'S')));
}

fn frontend_stream() -> (Vec<u8>, Vec<FrontendMessage>) {
    let mut bytes = Vec::new();
    let mut msgs = Vec::new();
    for (kind, m) in typed_messages() {
        if kind == AuthResponseKind::Raw {
            m.encode(&mut bytes).unwrap();
            msgs.push(m);
        }
    }
    (bytes, msgs)
}

#[test]
fn split_at_every_boundary_gives_same_frames() {
    let (bytes, msgs) = frontend_stream();
    for cut in 0..=bytes.len() {
        let mut d = FrontendDecoder::new();
        d.set_phase(FrontendPhase::Typed);
        d.feed(&bytes[..cut]);
        let mut got = drain_frontend(&mut d);
        d.feed(&bytes[cut..]);
        got.extend(drain_frontend(&mut d));
        assert_eq!(got, msgs, "cut at {cut}");
    }
    // One byte at a time.
    let mut d = FrontendDecoder::new();
    d.set_phase(FrontendPhase::Typed);
    let mut got = Vec::new();
    for b in &bytes {
        d.feed(std::slice::from_ref(b));
        got.extend(drain_frontend(&mut d));
    }
    assert_eq!(got, msgs);

    let mut bytes = Vec::new();
    let msgs = backend_messages();
    for m in &msgs {
        m.encode(&mut bytes).unwrap();
    }
    for cut in 0..=bytes.len() {
        let mut d = BackendDecoder::new();
        d.feed(&bytes[..cut]);
        let mut got = drain_backend(&mut d);
        d.feed(&bytes[cut..]);
        got.extend(drain_backend(&mut d));
        assert_eq!(got, msgs, "cut at {cut}");
    }
}

#[test]
fn startup_then_typed_in_one_feed() {
    let mut bytes = FrontendMessage::SslRequest.to_bytes().unwrap();
    startup_messages()[3].encode(&mut bytes).unwrap();
    FrontendMessage::Query("SELECT 1".into())
        .encode(&mut bytes)
        .unwrap();
    let mut d = FrontendDecoder::new();
    d.feed(&bytes);
    assert!(matches!(
        d.next_frame(),
        Ok(Some(Decoded::Message(FrontendMessage::SslRequest)))
    ));
    let Ok(Some(Decoded::Message(startup))) = d.next_frame() else {
        panic!("startup expected")
    };
    assert_eq!(startup.startup_param("user"), Some("agent"));
    assert_eq!(startup.startup_param("database"), Some("app"));
    assert_eq!(startup.startup_param("nope"), None);
    d.set_phase(FrontendPhase::Typed);
    assert_eq!(
        d.peek_header().unwrap(),
        Some(FrameHeader { tag: b'Q', len: 13 })
    );
    assert_eq!(
        drain_frontend(&mut d),
        vec![FrontendMessage::Query("SELECT 1".into())]
    );
}

#[test]
fn oversize_frame_errors_without_buffering() {
    let mut d = FrontendDecoder::with_max_payload(16);
    d.set_phase(FrontendPhase::Typed);
    // Declares 1 GiB; only the header is fed.
    let mut head = vec![b'Q'];
    head.extend_from_slice(&(1i32 << 30).to_be_bytes());
    d.feed(&head);
    assert_eq!(
        d.peek_header().unwrap(),
        Some(FrameHeader {
            tag: b'Q',
            len: 1 << 30
        })
    );
    assert_eq!(
        d.next_frame(),
        Err(PgError::FrameTooLarge {
            tag: b'Q',
            len: (1 << 30) - 4,
            max: 16
        })
    );
    assert_eq!(d.next_frame(), Err(PgError::Poisoned));
    assert_eq!(d.buffered_len(), 5);

    let mut d = BackendDecoder::with_max_payload(16);
    d.feed(&head);
    assert!(matches!(d.next_frame(), Err(PgError::FrameTooLarge { .. })));

    // Startup packets larger than the limit are refused too.
    let mut d = FrontendDecoder::with_max_payload(16);
    d.feed(&100i32.to_be_bytes());
    assert!(matches!(
        d.next_frame(),
        Err(PgError::BadStartupLength { len: 100, .. })
    ));
}

#[test]
fn oversize_frame_streams_when_enabled() {
    let big = "x".repeat(100);
    let mut bytes = FrontendMessage::Query(big.clone()).to_bytes().unwrap();
    FrontendMessage::Sync.encode(&mut bytes).unwrap();
    for step in [1usize, 7, 1000] {
        let mut d = FrontendDecoder::with_max_payload(32);
        d.set_phase(FrontendPhase::Typed);
        d.set_stream_oversize(true);
        let mut events = Vec::new();
        let mut body = Vec::new();
        for chunk in bytes.chunks(step) {
            d.feed(chunk);
            while let Some(ev) = d.next_frame().unwrap() {
                // The decoder never holds more than what was fed.
                assert!(d.buffered_len() <= step);
                match ev {
                    Decoded::OversizeChunk(c) => body.extend(c),
                    other => events.push(other),
                }
            }
        }
        assert_eq!(
            events,
            vec![
                Decoded::OversizeStart(FrameHeader {
                    tag: b'Q',
                    len: 105
                }),
                Decoded::OversizeEnd,
                Decoded::Message(FrontendMessage::Sync),
            ],
            "step {step}"
        );
        let mut want = big.clone().into_bytes();
        want.push(0);
        assert_eq!(body, want);
    }
}

/// Input bytes and a check of the error they must give.
type Case = (Vec<u8>, fn(&PgError) -> bool);

#[test]
fn malformed_frames_are_errors() {
    fn typed(tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((payload.len() + 4) as i32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }
    let cases: Vec<Case> = vec![
        (vec![b'Q', 0, 0, 0, 3], |e| {
            matches!(e, PgError::BadLength { len: 3, .. })
        }),
        (vec![b'Q', 0xff, 0xff, 0xff, 0xfe], |e| {
            matches!(e, PgError::BadLength { len: -2, .. })
        }),
        (typed(b'Q', b"SELECT 1"), |e| {
            matches!(e, PgError::MissingNul { .. })
        }),
        (typed(b'Q', b"SELECT 1\0x"), |e| {
            matches!(e, PgError::TrailingBytes { n: 1, .. })
        }),
        (typed(b'Q', b"\xff\xfe\0"), |e| {
            matches!(e, PgError::InvalidUtf8 { .. })
        }),
        (typed(b'P', b"s\0SELECT 1\0\0\x02\0\0\0\x17"), |e| {
            matches!(e, PgError::Truncated { .. })
        }),
        (typed(b'P', b"s\0SELECT 1\0\xff\xff"), |e| {
            matches!(e, PgError::InvalidValue { value: -1, .. })
        }),
        (typed(b'B', b"\0\0\0\0\0\x01\xff\xff\xff\xfe\0\0"), |e| {
            matches!(e, PgError::InvalidValue { value: -2, .. })
        }),
        (typed(b'B', b"\0\0\0\0\0\x01\0\0\0\x09ab\0\0"), |e| {
            matches!(e, PgError::Truncated { .. })
        }),
        (typed(b'D', b"Xname\0"), |e| {
            matches!(e, PgError::InvalidValue { .. })
        }),
        (typed(b'E', b"\0\0\0"), |e| {
            matches!(e, PgError::Truncated { .. })
        }),
        (typed(b'S', b"x"), |e| {
            matches!(e, PgError::TrailingBytes { .. })
        }),
        (typed(b'z', b""), |e| {
            matches!(
                e,
                PgError::UnknownTag {
                    direction: "frontend",
                    tag: b'z'
                }
            )
        }),
    ];
    for (bytes, check) in cases {
        let mut d = FrontendDecoder::new();
        d.set_phase(FrontendPhase::Typed);
        d.feed(&bytes);
        let err = d.next_frame().unwrap_err();
        assert!(check(&err), "{bytes:?} gave {err}");
        assert_eq!(d.next_frame(), Err(PgError::Poisoned));
    }

    let startup_cases: Vec<Case> = vec![
        (vec![0, 0, 0, 4], |e| {
            matches!(e, PgError::BadStartupLength { len: 4, .. })
        }),
        (vec![0xff, 0xff, 0xff, 0xff], |e| {
            matches!(e, PgError::BadStartupLength { len: -1, .. })
        }),
        (vec![0, 0, 0, 8, 0, 2, 0, 0], |e| {
            matches!(e, PgError::UnsupportedProtocol { major: 2, minor: 0 })
        }),
        (vec![0, 0, 0, 8, 0, 3, 0, 1], |e| {
            matches!(e, PgError::UnsupportedProtocol { major: 3, minor: 1 })
        }),
        (b"\0\0\0\x0c\0\x03\0\0user".to_vec(), |e| {
            matches!(e, PgError::MissingNul { .. })
        }),
        (b"\0\0\0\x0d\0\x03\0\0user\0".to_vec(), |e| {
            matches!(e, PgError::MissingNul { .. })
        }),
        (vec![0, 0, 0, 12, 4, 210, 22, 46, 0, 0, 0, 1], |e| {
            matches!(e, PgError::InvalidValue { .. })
        }),
        (vec![0, 0, 0, 9, 4, 210, 22, 47, 0], |e| {
            matches!(e, PgError::TrailingBytes { .. })
        }),
    ];
    for (bytes, check) in startup_cases {
        let mut d = FrontendDecoder::new();
        d.feed(&bytes);
        let err = d.next_frame().unwrap_err();
        assert!(check(&err), "{bytes:?} gave {err}");
    }

    let backend_cases: Vec<Vec<u8>> = vec![
        typed(b'Z', b"X"),
        typed(b'Z', b""),
        typed(b'R', b"\0\0\0\x05\x01\x02"),
        typed(b'R', b"\0\0\0\x0aSCRAM"),
        typed(b'K', b"\0\0\0\x01\0\0"),
        typed(b'E', b"SERROR\0"),
        typed(b'T', b"\0\x01id\0\0\0"),
        typed(b'D', b"\0\x01\0\0\0\x05ab"),
        typed(b'v', b"\0\0\0\0\xff\xff\xff\xff"),
        typed(b'?', b""),
    ];
    for bytes in backend_cases {
        let mut d = BackendDecoder::new();
        d.feed(&bytes);
        assert!(d.next_frame().is_err(), "{bytes:?}");
    }
}

#[test]
fn encoder_refuses_ambiguous_frames() {
    let nul = FrontendMessage::Startup {
        version: ProtocolVersion::V3_0,
        params: vec![("user".into(), "a\0database".into())],
    };
    assert!(matches!(nul.to_bytes(), Err(PgError::NulInString { .. })));
    let empty_key = FrontendMessage::Startup {
        version: ProtocolVersion::V3_0,
        params: vec![("".into(), "x".into())],
    };
    assert!(empty_key.to_bytes().is_err());
    let many = FrontendMessage::Parse {
        name: "".into(),
        query: "".into(),
        param_types: vec![0; 40_000],
    };
    assert!(matches!(many.to_bytes(), Err(PgError::TooMany { .. })));
    let mut out = vec![1, 2, 3];
    assert!(FrontendMessage::Query("a\0b".into())
        .encode(&mut out)
        .is_err());
    assert_eq!(
        out,
        vec![1, 2, 3],
        "failed encode leaves the buffer unchanged"
    );
    assert!(
        BackendMessage::ErrorResponse(ErrorFields(vec![(0, "x".into())]))
            .to_bytes()
            .is_err()
    );
    assert!(BackendMessage::Authentication(Authentication::Unsupported {
        code: 0,
        data: vec![]
    })
    .to_bytes()
    .is_err());
}

#[test]
fn deny_frames_match_the_reference() {
    let bytes = deny_statement("blocked by rule `no-drop`");
    let mut want = vec![b'E'];
    let body = b"SERROR\0VERROR\0C42501\0Mblocked by rule `no-drop`\0\0";
    want.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    want.extend_from_slice(body);
    want.extend_from_slice(&[b'Z', 0, 0, 0, 5, b'I']);
    assert_eq!(bytes, want);

    let mut d = BackendDecoder::new();
    d.feed(&fatal_auth_error("postgres credential has no user"));
    let msgs = drain_backend(&mut d);
    let [BackendMessage::ErrorResponse(f)] = msgs.as_slice() else {
        panic!("{msgs:?}")
    };
    assert_eq!(f.severity(), Some("FATAL"));
    assert_eq!(f.get(b'V'), Some("FATAL"));
    assert_eq!(f.code(), Some("28000"));
    assert_eq!(f.message(), Some("postgres credential has no user"));

    // A reason with a NUL still yields well-formed frames.
    let mut d = BackendDecoder::new();
    d.feed(&deny_statement(FUNCTION_CALL_DENY_REASON));
    d.feed(&deny_statement("a\0b"));
    let msgs = drain_backend(&mut d);
    assert_eq!(msgs.len(), 4);
    let BackendMessage::ErrorResponse(f) = &msgs[2] else {
        panic!()
    };
    assert_eq!(f.message(), Some("ab"));
    let BackendMessage::ErrorResponse(f) = &msgs[0] else {
        panic!()
    };
    assert_eq!(
        f.message(),
        Some("FunctionCall (legacy fast-path) blocked — no SQL text to inspect")
    );
}

#[test]
fn upstream_startup_omits_database_equal_to_user() {
    let m = FrontendMessage::upstream_startup("alice", "alice");
    assert_eq!(
        m.to_bytes().unwrap(),
        b"\0\0\0\x14\0\x03\0\0user\0alice\0\0".to_vec()
    );
    let m = FrontendMessage::upstream_startup("alice", "app");
    assert_eq!(m.startup_param("database"), Some("app"));
    // A NUL smuggled into the user cannot add parameters: encoding refuses it.
    assert!(FrontendMessage::upstream_startup("a\0database", "x")
        .to_bytes()
        .is_err());
}
