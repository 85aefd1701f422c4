//! Bytes recorded from real clients (`tests/vectors/README.md` says how) through the
//! gateway's parsers: the protocol-level facts they yield.

use clawpatrol_protocols::http::{
    request_framing, BodyDecoder, HeadProgress, InspectedBody, Limits, RequestHead,
    RequestHeadParser, RequestParts,
};
use clawpatrol_protocols::k8s;
use clawpatrol_protocols::postgres::{
    Authentication, BackendDecoder, BackendMessage, CopyFormat, Decoded, FrameScanner,
    FrontendDecoder, FrontendMessage, FrontendPhase, ProtocolVersion, ScanEvent, Target,
    TransactionStatus,
};
use clawpatrol_protocols::sql::{analyze_postgres, postgres_database, SqlStatement};

fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Parses one request (head and body) fed in `step`-byte pieces; returns the head, the
/// inspection view, the raw body bytes forwarded and the bytes left over.
fn request(raw: &[u8], step: usize) -> (RequestHead, InspectedBody, Vec<u8>, usize) {
    let limits = Limits::default();
    let mut parser = RequestHeadParser::new(limits);
    let mut head = None;
    let mut decoder: Option<BodyDecoder> = None;
    let mut forwarded = Vec::new();
    let mut left = 0;
    for piece in raw.chunks(step) {
        let mut piece = piece;
        if head.is_none() {
            match parser.feed(piece).expect("head parses") {
                HeadProgress::NeedMore => continue,
                HeadProgress::Complete { head: h, consumed } => {
                    decoder = Some(BodyDecoder::new(
                        request_framing(&h).expect("framing"),
                        &limits,
                    ));
                    head = Some(h);
                    piece = &piece[consumed..];
                }
            }
        }
        let d = decoder.as_mut().expect("decoder after head");
        if d.is_done() {
            left += piece.len();
            continue;
        }
        let p = d.feed(piece).expect("body decodes");
        forwarded.extend_from_slice(&piece[..p.consumed]);
        left += piece.len() - p.consumed;
    }
    let mut d = decoder.expect("complete head");
    assert!(d.is_done(), "body complete");
    (head.expect("head"), d.take_inspected(), forwarded, left)
}

#[test]
fn curl_get_with_headers() {
    let raw = vector("curl_get.bin");
    for step in [1, 7, raw.len()] {
        let (head, body, fwd, left) = request(&raw, step);
        assert_eq!(head.method, "GET");
        assert_eq!(head.head_len, raw.len());
        assert!(fwd.is_empty() && body.bytes().is_empty() && left == 0);
        let parts = RequestParts::from_head(&head);
        assert_eq!(parts.path, "/repos/acme/app/issues");
        assert_eq!(parts.query["state"], vec!["open"]);
        assert_eq!(parts.query["per_page"], vec!["5"]);
        assert_eq!(parts.headers["authorization"], vec!["Bearer ph_token_123"]);
        assert_eq!(parts.headers["user-agent"], vec!["curl/7.88.1"]);
        assert_eq!(parts.headers["x-request-id"], vec!["42"]);
    }
}

#[test]
fn curl_post_json_body() {
    let raw = vector("curl_post_json.bin");
    let (head, body, fwd, left) = request(&raw, 5);
    assert_eq!(head.method, "POST");
    assert!(head.body_is_inspected());
    assert_eq!(body.bytes(), br#"{"name":"agent","tags":["a","b"]}"#);
    assert!(!body.truncated());
    assert_eq!(fwd, body.bytes());
    assert_eq!(left, 0);
    let parts = RequestParts::from_head(&head);
    assert_eq!(parts.path, "/v1/items");
    assert_eq!(parts.headers["content-type"], vec!["application/json"]);
}

#[test]
fn curl_chunked_upload() {
    let raw = vector("curl_chunked_upload.bin");
    for step in [1, 13, raw.len()] {
        let (head, body, fwd, left) = request(&raw, step);
        assert_eq!(head.method, "POST");
        assert_eq!(
            head.header_values("transfer-encoding").next(),
            Some(&b"chunked"[..])
        );
        // curl's file is 4000 base64 bytes; the decoder forwards the chunked framing
        // byte-exact and inspects the de-chunked payload.
        assert_eq!(body.bytes().len(), 4000);
        assert!(body
            .bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)));
        assert_eq!(head.head_len + fwd.len(), raw.len());
        assert_eq!(left, 0);
    }
}

/// Decodes a client stream the way the gateway does: startup-phase packets until the
/// StartupMessage (an SSLRequest the listener refused keeps the client there), typed
/// messages after it. Fed in `step`-byte pieces; no partial frame may be left over.
fn pg_client(raw: &[u8], step: usize) -> Vec<FrontendMessage> {
    let mut d = FrontendDecoder::new();
    let mut out = Vec::new();
    for piece in raw.chunks(step) {
        d.feed(piece);
        while let Some(m) = d.next_frame().expect("frontend decodes") {
            match m {
                Decoded::Message(m) => {
                    if matches!(m, FrontendMessage::Startup { .. }) {
                        d.set_phase(FrontendPhase::Typed);
                    }
                    out.push(m);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(d.buffered_len(), 0, "a partial frame was left");
    out
}

/// The client messages of a recording: the same at every piece size, and the encoder
/// gives back the recorded bytes exactly.
fn pg_messages(raw: &[u8]) -> Vec<FrontendMessage> {
    let msgs = pg_client(raw, 1);
    for step in [2, 7, 64, raw.len()] {
        assert_eq!(pg_client(raw, step), msgs, "fed in {step}-byte pieces");
    }
    let mut again = Vec::new();
    for m in &msgs {
        m.encode(&mut again).expect("re-encodes");
    }
    assert_eq!(again, raw, "re-encoding gives back the recorded bytes");
    msgs
}

/// The server messages of a recording (typed from the first byte: no SSLRequest was sent),
/// with the same re-encoding check. The boundary scanner the gateway runs on upstream
/// bytes must find exactly the decoder's ReadyForQuery frames, at every piece size.
fn pg_server(raw: &[u8]) -> Vec<BackendMessage> {
    let mut d = BackendDecoder::new();
    d.feed(raw);
    let mut msgs = Vec::new();
    while let Some(m) = d.next_frame().expect("backend decodes") {
        match m {
            Decoded::Message(m) => msgs.push(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(d.buffered_len(), 0, "a partial frame was left");

    let mut again = Vec::new();
    let mut ready = Vec::new();
    let mut copy_in = Vec::new();
    let mut completes = Vec::new();
    let mut statuses = Vec::new();
    for m in &msgs {
        let at = again.len();
        m.encode(&mut again).expect("re-encodes");
        if let BackendMessage::ReadyForQuery(s) = m {
            ready.push((at, again.len(), s.byte()));
        }
        if matches!(m, BackendMessage::CopyInResponse(_)) {
            copy_in.push(at);
        }
        if let BackendMessage::ParameterStatus { name, value } = m {
            statuses.push((again.len(), name.clone(), value.clone()));
        }
        match m {
            BackendMessage::ParseComplete => completes.push(ScanEvent::ParseComplete(at)),
            BackendMessage::CloseComplete => completes.push(ScanEvent::CloseComplete(at)),
            _ => {}
        }
    }
    assert_eq!(again, raw, "re-encoding gives back the recorded bytes");

    for step in [1, 3, 64, raw.len()] {
        let mut scanner = FrameScanner::new();
        let mut found = Vec::new();
        let mut found_copy_in = Vec::new();
        let mut found_completes = Vec::new();
        let mut found_statuses = Vec::new();
        let mut start = None;
        for (i, piece) in raw.chunks(step).enumerate() {
            let base = i * step;
            let mut events = Vec::new();
            scanner.scan(piece, &mut events).expect("scans");
            for e in events {
                match e {
                    ScanEvent::ReadyStart(off) => start = Some(base + off),
                    ScanEvent::CopyInStart(off) => found_copy_in.push(base + off),
                    ScanEvent::ParseComplete(off) => {
                        found_completes.push(ScanEvent::ParseComplete(base + off))
                    }
                    ScanEvent::CloseComplete(off) => {
                        found_completes.push(ScanEvent::CloseComplete(base + off))
                    }
                    ScanEvent::ParameterStatusEnd(end) => {
                        let p = scanner.take_status().expect("a status per event");
                        found_statuses.push((
                            base + end,
                            p.name,
                            p.value.expect("real statuses are short"),
                        ));
                    }
                    ScanEvent::ReadyEnd { end, status } => {
                        found.push((start.take().expect("start first"), base + end, status))
                    }
                }
            }
        }
        assert!(scanner.at_boundary());
        assert_eq!(found, ready, "scanner at {step}-byte pieces");
        assert_eq!(
            found_copy_in, copy_in,
            "CopyInResponse starts at {step}-byte pieces"
        );
        assert_eq!(
            found_completes, completes,
            "ParseComplete/CloseComplete starts at {step}-byte pieces"
        );
        assert_eq!(
            found_statuses, statuses,
            "ParameterStatus ends at {step}-byte pieces"
        );
    }
    msgs
}

fn startup_params(m: &FrontendMessage) -> Vec<(&str, &str)> {
    match m {
        FrontendMessage::Startup { version, params } => {
            assert_eq!(*version, ProtocolVersion::V3_0);
            params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        }
        other => panic!("not a StartupMessage: {other:?}"),
    }
}

/// `(statement, verb, tables, functions)` of one statement.
type Fact = (String, String, Vec<String>, Vec<String>);

/// The facts of every statement `analyze_postgres` finds in a text.
fn sql_facts(text: &str) -> Vec<Fact> {
    analyze_postgres(text)
        .into_iter()
        .map(|s: SqlStatement| {
            assert!(!s.unparseable && !s.shadow, "{s:?}");
            (s.statement, s.verb, s.tables, s.functions)
        })
        .collect()
}

fn fact(statement: &str, verb: &str, tables: &[&str], functions: &[&str]) -> Fact {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    (statement.into(), verb.into(), v(tables), v(functions))
}

/// The connection preamble every recording's server sent under trust auth.
fn assert_server_preamble(msgs: &[BackendMessage], application_name: &str) -> usize {
    assert_eq!(msgs[0], BackendMessage::Authentication(Authentication::Ok));
    let mut i = 1;
    let mut status = Vec::new();
    while let BackendMessage::ParameterStatus { name, value } = &msgs[i] {
        status.push((name.as_str(), value.as_str()));
        i += 1;
    }
    assert_eq!(status.len(), 13);
    assert!(status.contains(&("server_version", "15.18 (Debian 15.18-0+deb12u1)")));
    assert!(status.contains(&("application_name", application_name)));
    assert!(status.contains(&("session_authorization", "agent")));
    assert!(status.contains(&("client_encoding", "UTF8")));
    assert!(matches!(
        &msgs[i],
        BackendMessage::BackendKeyData { secret_key, .. } if secret_key.len() == 4
    ));
    assert_eq!(
        msgs[i + 1],
        BackendMessage::ReadyForQuery(TransactionStatus::Idle)
    );
    i + 2
}

#[test]
fn psql_startup_sslmode_disable() {
    let raw = vector("psql_startup_disable.bin");
    let msgs = pg_messages(&raw);
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert!(matches!(m, FrontendMessage::Startup { .. }));
    assert_eq!(m.startup_param("user"), Some("agent"));
    assert_eq!(m.startup_param("database"), Some("app"));
    assert_eq!(m.startup_param("application_name"), Some("psql"));
}

#[test]
fn psql_sslrequest_then_startup_sslmode_prefer() {
    let raw = vector("psql_sslrequest_prefer.bin");
    let msgs = pg_messages(&raw);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0], FrontendMessage::SslRequest);
    assert_eq!(msgs[1].startup_param("user"), Some("agent"));
    assert_eq!(msgs[1].startup_param("database"), Some("app"));
}

#[test]
fn psql_multi_statement_simple_query() {
    use FrontendMessage as F;
    let msgs = pg_messages(&vector("psql_query_multi.bin"));
    assert_eq!(msgs.len(), 3);
    let params = startup_params(&msgs[0]);
    assert_eq!(
        params,
        [
            ("user", "agent"),
            ("database", "app"),
            ("application_name", "psql")
        ]
    );
    assert_eq!(postgres_database(params), "app");
    // psql -c sends the whole string as one simple Query, then Terminate.
    assert_eq!(
        msgs[1..],
        [
            F::Query("select 1; select count(*) from t".into()),
            F::Terminate
        ]
    );
    let F::Query(q) = &msgs[1] else {
        unreachable!()
    };
    assert_eq!(
        sql_facts(q),
        [
            fact("select 1", "select", &[], &[]),
            fact("select count(*) from t", "select", &["t"], &["count"]),
        ]
    );

    let server = pg_server(&vector("psql_query_multi.server.bin"));
    let i = assert_server_preamble(&server, "psql");
    use BackendMessage as B;
    let rest: Vec<_> = server[i..]
        .iter()
        .map(|m| match m {
            B::RowDescription(f) => format!("T {}", f[0].name),
            B::DataRow(r) => format!("D {}", String::from_utf8_lossy(r[0].as_deref().unwrap())),
            B::CommandComplete(t) => format!("C {t}"),
            B::ReadyForQuery(s) => format!("Z {}", s.byte() as char),
            other => format!("{other:?}"),
        })
        .collect();
    // Both statements answer before the one ReadyForQuery that ends the Query.
    assert_eq!(
        rest,
        [
            "T ?column?",
            "D 1",
            "C SELECT 1",
            "T count",
            "D 3",
            "C SELECT 1",
            "Z I"
        ]
    );
}

#[test]
fn psql_copy_from_stdin() {
    use FrontendMessage as F;
    let msgs = pg_messages(&vector("psql_copy_from_stdin.bin"));
    assert_eq!(
        startup_params(&msgs[0]),
        [
            ("user", "agent"),
            ("database", "app"),
            ("application_name", "psql")
        ]
    );
    // The three rows of the piped file arrive in a single CopyData, byte for byte.
    assert_eq!(
        msgs[1..],
        [
            F::Query("COPY t (id, name) FROM STDIN".into()),
            F::CopyData(b"4\tdelta\n5\t\\N\n6\tit's \"quoted\"\n".to_vec()),
            F::CopyDone,
            F::Terminate,
        ]
    );
    assert_eq!(
        sql_facts("COPY t (id, name) FROM STDIN"),
        [fact("COPY t (id, name) FROM STDIN", "copy", &["t"], &[])]
    );

    let server = pg_server(&vector("psql_copy_from_stdin.server.bin"));
    let i = assert_server_preamble(&server, "psql");
    assert_eq!(
        server[i..],
        [
            BackendMessage::CopyInResponse(CopyFormat {
                format: 0,
                column_formats: vec![0, 0],
            }),
            BackendMessage::CommandComplete("COPY 3".into()),
            BackendMessage::ReadyForQuery(TransactionStatus::Idle),
        ]
    );
}

fn parse(name: &str, query: &str, param_types: &[u32]) -> FrontendMessage {
    FrontendMessage::Parse {
        name: name.into(),
        query: query.into(),
        param_types: param_types.to_vec(),
    }
}

fn describe(statement: &str) -> FrontendMessage {
    FrontendMessage::Describe {
        target: Target::Statement,
        name: statement.into(),
    }
}

fn close(statement: &str) -> FrontendMessage {
    FrontendMessage::Close {
        target: Target::Statement,
        name: statement.into(),
    }
}

/// Bind to the unnamed portal, binary parameters and binary results (tokio-postgres' choice).
fn bind(statement: &str, params: Vec<Option<Vec<u8>>>) -> FrontendMessage {
    FrontendMessage::Bind {
        portal: String::new(),
        statement: statement.into(),
        param_formats: vec![1; params.len()],
        params,
        result_formats: vec![1],
    }
}

fn int4(v: i32) -> Option<Vec<u8>> {
    Some(v.to_be_bytes().to_vec())
}

#[test]
fn tokio_postgres_extended_protocol() {
    use FrontendMessage as F;
    let msgs = pg_messages(&vector("tokio_postgres_extended.bin"));
    let params = startup_params(&msgs[0]);
    assert_eq!(
        params,
        [
            ("client_encoding", "UTF8"),
            ("user", "agent"),
            ("database", "app")
        ]
    );
    assert_eq!(postgres_database(params), "app");

    let exec = || F::Execute {
        portal: String::new(),
        max_rows: 0,
    };
    let select_by_id = "select * from t where id = $1";
    let update = "update t set name = $1 where id = $2";
    let pipelined = ["select name from t where id = $1", "select count(*) from t"];
    let copy = "COPY t (id, name) FROM STDIN";
    let want = vec![
        // client.prepare: named statement, parameter types left to the server.
        parse("s0", select_by_id, &[]),
        describe("s0"),
        F::Sync,
        // The prepared statement reused with two parameter values (binary int4).
        bind("s0", vec![int4(1)]),
        exec(),
        F::Sync,
        bind("s0", vec![int4(2)]),
        exec(),
        F::Sync,
        // prepare_typed(text, int4), executed with a NULL first parameter.
        parse("s1", update, &[25, 23]),
        describe("s1"),
        F::Sync,
        bind("s1", vec![None, int4(3)]),
        exec(),
        F::Sync,
        // Two queries joined: both statements are parsed before either is bound.
        parse("s2", pipelined[0], &[]),
        describe("s2"),
        F::Sync,
        parse("s3", pipelined[1], &[]),
        describe("s3"),
        F::Sync,
        bind("s2", vec![int4(1)]),
        exec(),
        F::Sync,
        F::Bind {
            portal: String::new(),
            statement: "s3".into(),
            param_formats: vec![],
            params: vec![],
            result_formats: vec![1],
        },
        exec(),
        F::Sync,
        // The one-shot statements are closed when dropped.
        close("s3"),
        F::Sync,
        close("s2"),
        F::Sync,
        // copy_in: the statement runs, then the rows follow; a Sync sits between them.
        parse("s4", copy, &[]),
        describe("s4"),
        F::Sync,
        F::Bind {
            portal: String::new(),
            statement: "s4".into(),
            param_formats: vec![],
            params: vec![],
            result_formats: vec![1],
        },
        exec(),
        F::Sync,
        F::CopyData(b"7\tzeta\n8\teta\n".to_vec()),
        F::CopyDone,
        F::Sync,
        close("s4"),
        F::Sync,
        F::Terminate,
    ];
    assert_eq!(msgs[1..], want[..]);

    // The facts the gateway decides on come from the Parse texts (Bind carries no SQL).
    assert_eq!(
        sql_facts(select_by_id),
        [fact(select_by_id, "select", &["t"], &[])]
    );
    assert_eq!(sql_facts(update), [fact(update, "update", &["t"], &[])]);
    assert_eq!(
        sql_facts(pipelined[0]),
        [fact(pipelined[0], "select", &["t"], &[])]
    );
    assert_eq!(
        sql_facts(pipelined[1]),
        [fact(pipelined[1], "select", &["t"], &["count"])]
    );
    assert_eq!(sql_facts(copy), [fact(copy, "copy", &["t"], &[])]);

    let server = pg_server(&vector("tokio_postgres_extended.server.bin"));
    let i = assert_server_preamble(&server, "");
    use BackendMessage as B;
    let server = &server[i..];
    let described: Vec<&Vec<u32>> = server
        .iter()
        .filter_map(|m| match m {
            B::ParameterDescription(t) => Some(t),
            _ => None,
        })
        .collect();
    // The server inferred int4 for s0 and s2, echoed s1's types, none for s3 and s4.
    assert_eq!(
        described,
        [&vec![23], &vec![25, 23], &vec![23], &vec![], &vec![]]
    );
    let tags: Vec<&str> = server
        .iter()
        .filter_map(|m| match m {
            B::CommandComplete(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        tags,
        ["SELECT 1", "SELECT 1", "UPDATE 1", "SELECT 1", "SELECT 1", "COPY 2"]
    );
    let rows: Vec<&Vec<Option<Vec<u8>>>> = server
        .iter()
        .filter_map(|m| match m {
            B::DataRow(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(*rows[0], vec![int4(1), Some(b"alpha".to_vec())]);
    assert_eq!(*rows[1], vec![int4(2), Some(b"beta".to_vec())]);
    assert_eq!(*rows[2], vec![Some(b"alpha".to_vec())]);
    assert!(server.contains(&B::CopyInResponse(CopyFormat {
        format: 0,
        column_formats: vec![0, 0],
    })));

    // PostgreSQL ignores a Sync that arrives in copy-in mode: the Sync tokio-postgres sends
    // after Execute of the COPY gets no ReadyForQuery of its own, so this client sends one
    // Sync more than the server sends ReadyForQuery after the startup.
    let syncs = msgs.iter().filter(|m| **m == F::Sync).count();
    let ready = server
        .iter()
        .filter(|m| matches!(m, B::ReadyForQuery(_)))
        .count();
    assert_eq!((syncs, ready), (15, 14));
    let copy_done = server
        .iter()
        .position(|m| *m == B::CommandComplete("COPY 2".into()))
        .unwrap();
    assert_eq!(
        server[copy_done..],
        [
            B::CommandComplete("COPY 2".into()),
            B::ReadyForQuery(TransactionStatus::Idle),
            B::CloseComplete,
            B::ReadyForQuery(TransactionStatus::Idle),
        ]
    );
}

fn k8s_of(name: &str) -> (RequestHead, k8s::K8sRequest) {
    let raw = vector(name);
    let (head, _, _, left) = request(&raw, raw.len());
    assert_eq!(left, 0);
    let k = k8s::decompose(&head.method, &head.target).expect("k8s-shaped");
    (head, k)
}

#[test]
fn kubectl_get_pods_in_namespace() {
    let (head, k) = k8s_of("kubectl_get_pods.bin");
    assert!(head
        .header_values("user-agent")
        .next()
        .is_some_and(|v| v.starts_with(b"kubectl/v1.32.4")));
    assert_eq!(
        (k.verb.as_str(), k.resource.as_str(), k.namespace.as_str()),
        ("list", "pods", "dev")
    );
    assert_eq!(k.name, "");
    assert_eq!(k.params.get("limit").map(String::as_str), Some("500"));
}

#[test]
fn kubectl_exec_reads_the_pod_then_execs() {
    let (_, k) = k8s_of("kubectl_get_pod.bin");
    assert_eq!((k.verb.as_str(), k.resource.as_str()), ("get", "pods"));
    assert_eq!((k.namespace.as_str(), k.name.as_str()), ("dev", "web-0"));

    // kubectl 1.32 first tries a WebSocket upgrade (GET), then falls back to SPDY (POST).
    let (ws, k) = k8s_of("kubectl_exec_websocket.bin");
    assert!(ws.is_websocket_upgrade());
    assert_eq!(k.resource, "pods/exec");
    assert_eq!((k.namespace.as_str(), k.name.as_str()), ("dev", "web-0"));
    assert_eq!(k.params.get("command").map(String::as_str), Some("ls"));
    assert_eq!(k.params.get("container").map(String::as_str), Some("web"));
    let ws_verb = k.verb;

    let (spdy, k) = k8s_of("kubectl_exec_spdy.bin");
    assert_eq!(spdy.method, "POST");
    assert_eq!(spdy.header_values("upgrade").next(), Some(&b"SPDY/3.1"[..]));
    assert_eq!(k.resource, "pods/exec");
    assert_eq!(k.verb, "create");
    assert_eq!(ws_verb, "get");
}
