//! A hand-built byte transcript of a psql session behind the gateway (SSL refused, SCRAM auth
//! offload, simple and extended queries, a deny), decoded in both directions in small chunks.
//! No network: the bytes are written out here, independently of the encoder.

use clawpatrol_protocols::postgres::{
    deny_statement, AuthResponseKind, Authentication, BackendDecoder, BackendMessage, BackendMode,
    Decoded, FrontendDecoder, FrontendMessage, FrontendPhase, ScramClient, Target,
    TransactionStatus,
};

/// A typed frame from raw parts.
fn frame(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend(body);
    v
}

const CLIENT_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
const SERVER_FIRST: &str = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
// Computed independently with Python's hashlib/hmac for password `pencil`.
const CLIENT_FINAL: &str = "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=9hgDaaRNgghHML8AKTfqgIFwz2JgZ8l17PWfMFKKrpA=";
const SERVER_FINAL: &str = "v=RtPBsgQaXSAXXNUyPB2iIsLgh9hdNjdnRei/FBZtl0M=";

#[test]
fn psql_session_transcript() {
    // Agent → gateway: SSLRequest, StartupMessage, Query, extended batch, FunctionCall, Terminate.
    let mut agent = vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let startup_body: &[u8] =
        b"\x00\x03\x00\x00user\0agent\0database\0app\0application_name\0psql\0client_encoding\0UTF8\0\0";
    agent.extend_from_slice(&((startup_body.len() + 4) as u32).to_be_bytes());
    agent.extend_from_slice(startup_body);
    agent.extend(frame(b'Q', &[b"SELECT 1;\0"]));
    agent.extend(frame(
        b'P',
        &[b"\0", b"SELECT $1::int4\0", &[0, 1], &[0, 0, 0, 23]],
    ));
    agent.extend(frame(
        b'B',
        &[b"\0\0", &[0, 0], &[0, 1], &[0, 0, 0, 1], b"7", &[0, 0]],
    ));
    agent.extend(frame(b'D', &[b"P\0"]));
    agent.extend(frame(b'E', &[b"\0", &[0, 0, 0, 0]]));
    agent.extend(frame(b'S', &[]));
    agent.extend(frame(
        b'F',
        &[
            &[0, 0, 0x03, 0xbd],
            &[0, 0],
            &[0, 1],
            &[0, 0, 0, 4],
            &[0, 0, 0, 1],
            &[0, 0],
        ],
    ));
    agent.extend(frame(b'X', &[]));

    let mut d = FrontendDecoder::new();
    let mut got = Vec::new();
    for chunk in agent.chunks(3) {
        d.feed(chunk);
        while let Some(Decoded::Message(m)) = d.next_frame().unwrap() {
            if matches!(m, FrontendMessage::Startup { .. }) {
                d.set_phase(FrontendPhase::Typed);
            }
            got.push(m);
        }
    }
    assert_eq!(got.len(), 10, "{got:#?}");
    assert_eq!(got[0], FrontendMessage::SslRequest);
    assert_eq!(got[1].startup_param("user"), Some("agent"));
    assert_eq!(got[1].startup_param("database"), Some("app"));
    assert_eq!(got[2], FrontendMessage::Query("SELECT 1;".into()));
    assert_eq!(
        got[3],
        FrontendMessage::Parse {
            name: "".into(),
            query: "SELECT $1::int4".into(),
            param_types: vec![23]
        }
    );
    assert_eq!(
        got[4],
        FrontendMessage::Bind {
            portal: "".into(),
            statement: "".into(),
            param_formats: vec![],
            params: vec![Some(b"7".to_vec())],
            result_formats: vec![],
        }
    );
    assert_eq!(
        got[5],
        FrontendMessage::Describe {
            target: Target::Portal,
            name: "".into()
        }
    );
    assert!(matches!(
        got[8],
        FrontendMessage::FunctionCall { function: 957, .. }
    ));
    assert_eq!(got[9], FrontendMessage::Terminate);

    // Gateway → upstream: rewritten StartupMessage, then the SCRAM exchange.
    let rewritten = FrontendMessage::Startup {
        version: clawpatrol_protocols::postgres::ProtocolVersion::V3_0,
        params: vec![
            ("user".into(), "real_user".into()),
            ("database".into(), "app".into()),
        ],
    };
    let mut want = Vec::new();
    let body: &[u8] = b"\x00\x03\x00\x00user\0real_user\0database\0app\0\0";
    want.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    want.extend_from_slice(body);
    assert_eq!(rewritten.to_bytes().unwrap(), want);

    // Upstream → gateway: SSL refused, SASL, continue, final, ok, parameters, key, ready.
    let mut upstream = vec![b'N'];
    upstream.extend(frame(b'R', &[&[0, 0, 0, 10], b"SCRAM-SHA-256\0\0"]));
    upstream.extend(frame(b'R', &[&[0, 0, 0, 11], SERVER_FIRST.as_bytes()]));
    upstream.extend(frame(b'R', &[&[0, 0, 0, 12], SERVER_FINAL.as_bytes()]));
    upstream.extend(frame(b'R', &[&[0, 0, 0, 0]]));
    upstream.extend(frame(b'S', &[b"server_version\0", b"15.18\0"]));
    upstream.extend(frame(b'K', &[&[0, 0, 0x30, 0x39], &[1, 2, 3, 4]]));
    upstream.extend(frame(b'Z', &[b"I"]));
    upstream.extend(frame(
        b'T',
        &[
            &[0, 1],
            b"?column?\0",
            &[
                0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0,
            ],
        ],
    ));
    upstream.extend(frame(b'D', &[&[0, 1, 0, 0, 0, 1], b"1"]));
    upstream.extend(frame(b'C', &[b"SELECT 1\0"]));
    upstream.extend(frame(b'Z', &[b"I"]));

    let mut d = BackendDecoder::new();
    d.set_mode(BackendMode::SslAnswer);
    let mut msgs = Vec::new();
    for chunk in upstream.chunks(5) {
        d.feed(chunk);
        while let Some(Decoded::Message(m)) = d.next_frame().unwrap() {
            msgs.push(m);
        }
    }
    assert_eq!(msgs.len(), 12, "{msgs:#?}");
    assert_eq!(msgs[0], BackendMessage::SslResponse { accepted: false });

    // Drive SCRAM with the decoded server messages.
    let BackendMessage::Authentication(Authentication::Sasl { mechanisms }) = &msgs[1] else {
        panic!("{:?}", msgs[1])
    };
    assert_eq!(mechanisms, &["SCRAM-SHA-256"]);
    let client = ScramClient::new("", "pencil", CLIENT_NONCE).unwrap();
    let initial = FrontendMessage::SaslInitialResponse {
        mechanism: "SCRAM-SHA-256".into(),
        data: Some(client.client_first().into_bytes()),
    };
    let mut want = frame(
        b'p',
        &[
            b"SCRAM-SHA-256\0",
            &[0, 0, 0, 32],
            b"n,,n=,r=fyko+d2lbbFgONRv9qkxdawL",
        ],
    );
    assert_eq!(initial.to_bytes().unwrap(), want);
    let BackendMessage::Authentication(Authentication::SaslContinue(first)) = &msgs[2] else {
        panic!("{:?}", msgs[2])
    };
    let fin = client.handle_server_first(first).unwrap();
    assert_eq!(fin.client_final(), CLIENT_FINAL);
    let response = FrontendMessage::SaslResponse(fin.client_final().as_bytes().to_vec());
    want = frame(b'p', &[CLIENT_FINAL.as_bytes()]);
    assert_eq!(response.to_bytes().unwrap(), want);
    let mut check = FrontendDecoder::new();
    check.set_phase(FrontendPhase::Typed);
    check.set_auth_response_kind(AuthResponseKind::Sasl);
    check.feed(&want);
    assert_eq!(
        check.next_frame().unwrap(),
        Some(Decoded::Message(response))
    );
    let BackendMessage::Authentication(Authentication::SaslFinal(last)) = &msgs[3] else {
        panic!("{:?}", msgs[3])
    };
    fin.verify_server_final(last).unwrap();
    assert_eq!(msgs[4], BackendMessage::Authentication(Authentication::Ok));
    assert_eq!(
        msgs[6],
        BackendMessage::BackendKeyData {
            process_id: 12345,
            secret_key: vec![1, 2, 3, 4]
        }
    );
    assert_eq!(
        msgs[7],
        BackendMessage::ReadyForQuery(TransactionStatus::Idle)
    );
    assert_eq!(msgs[9], BackendMessage::DataRow(vec![Some(b"1".to_vec())]));
    assert_eq!(msgs[10], BackendMessage::CommandComplete("SELECT 1".into()));

    // Gateway → agent: the deny pair for the FunctionCall.
    let mut want = frame(
        b'E',
        &[
            b"SERROR\0VERROR\0C42501\0M",
            "FunctionCall (legacy fast-path) blocked — no SQL text to inspect".as_bytes(),
            b"\0\0",
        ],
    );
    want.extend(frame(b'Z', &[b"I"]));
    assert_eq!(
        deny_statement(clawpatrol_protocols::postgres::FUNCTION_CALL_DENY_REASON),
        want
    );
}
