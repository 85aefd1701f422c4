//! Property tests of the ClickHouse native and SSH payload codecs: arbitrary bytes never
//! panic, encode → decode round-trips, and any split of the input decodes the same.

use clawpatrol_protocols::clickhouse::native::{
    ClientDecoder, ClientHello, ClientItem, ClientPacket, Exception, HelloAddendum, Query,
    ServerHello, Setting,
};
use clawpatrol_protocols::ssh::{
    decode_payload, ChannelMessage, ChannelOpen, ChannelRequest, OpenKind, PtyRequest, RequestKind,
};
use proptest::prelude::*;

const REV: u64 = 54477;

fn handshaken(max: usize) -> ClientDecoder {
    let mut d = ClientDecoder::new(max);
    let mut b = Vec::new();
    ClientHello {
        revision: REV,
        ..ClientHello::default()
    }
    .encode(&mut b);
    d.feed(&b);
    assert!(matches!(d.next_item(), Ok(Some(_))));
    d.set_server_revision(REV);
    let mut a = Vec::new();
    HelloAddendum::default().encode(REV, &mut a);
    d.feed(&a);
    assert!(matches!(d.next_item(), Ok(Some(_))));
    d
}

fn drain(d: &mut ClientDecoder) -> Result<Vec<ClientItem>, ()> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match d.next_item() {
            Ok(Some(i)) => out.push(i),
            Ok(None) => return Ok(out),
            Err(_) => return Err(()),
        }
    }
    Ok(out)
}

fn setting() -> impl Strategy<Value = Setting> {
    ("[a-z_]{1,12}", 0u64..4, ".{0,12}").prop_map(|(name, flags, value)| Setting {
        name,
        flags,
        value,
    })
}

fn query() -> impl Strategy<Value = Query> {
    (
        ".{0,20}",
        prop::collection::vec(setting(), 0..4),
        0u64..3,
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(setting(), 0..3),
    )
        .prop_map(
            |(query_id, settings, stage, compression, query, parameters)| Query {
                query_id,
                client_info: None,
                settings,
                external_roles: Vec::new(),
                interserver_secret: Vec::new(),
                stage,
                compression,
                query,
                truncated: false,
                parameters,
            },
        )
}

fn ssh_message() -> impl Strategy<Value = ChannelMessage> {
    let open = (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        prop_oneof![
            Just(OpenKind::Session),
            ("[a-z.]{0,20}", any::<u32>(), "[0-9.]{0,15}", any::<u32>()).prop_map(
                |(host, port, originator, originator_port)| OpenKind::DirectTcpip {
                    host,
                    port,
                    originator,
                    originator_port
                }
            ),
            ("[a-z@.]{1,20}", prop::collection::vec(any::<u8>(), 0..20))
                .prop_filter("not a known type", |(n, _)| !matches!(
                    n.as_str(),
                    "session" | "direct-tcpip" | "x11" | "forwarded-tcpip"
                ))
                .prop_map(|(name, data)| OpenKind::Other { name, data }),
        ],
    )
        .prop_map(|(sender_channel, initial_window, max_packet, kind)| {
            ChannelMessage::Open(ChannelOpen {
                sender_channel,
                initial_window,
                max_packet,
                kind,
            })
        });
    let kind = prop_oneof![
        Just(RequestKind::Shell),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|command| RequestKind::Exec { command }),
        "[a-z-]{0,10}".prop_map(|name| RequestKind::Subsystem { name }),
        (
            "[a-z-]{0,12}",
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(term, cols, rows, modes)| RequestKind::PtyReq(PtyRequest {
                term,
                cols,
                rows,
                width_px: 0,
                height_px: 0,
                modes
            })),
        any::<u32>().prop_map(|status| RequestKind::ExitStatus { status }),
        "[A-Z]{0,5}".prop_map(|name| RequestKind::Signal { name }),
    ];
    let req =
        (any::<u32>(), any::<bool>(), kind).prop_map(|(recipient_channel, want_reply, kind)| {
            ChannelMessage::Request(ChannelRequest {
                recipient_channel,
                want_reply,
                kind,
            })
        });
    prop_oneof![open, req]
}

proptest! {
    #[test]
    fn client_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
        for mut d in [ClientDecoder::new(256), handshaken(256)] {
            let cut = cut.min(bytes.len());
            d.feed(&bytes[..cut]);
            if drain(&mut d).is_ok() {
                d.feed(&bytes[cut..]);
                let _ = drain(&mut d);
            }
        }
    }

    #[test]
    fn server_side_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = ServerHello::decode(&bytes, REV, 256);
        let _ = Exception::decode(&bytes, 256);
    }

    #[test]
    fn query_round_trips_in_any_split(q in query(), cut in 0usize..2000) {
        let mut b = Vec::new();
        q.encode(REV, &mut b).unwrap();
        let mut d = handshaken(1 << 16);
        let cut = cut.min(b.len());
        d.feed(&b[..cut]);
        let mut items = drain(&mut d).unwrap();
        d.feed(&b[cut..]);
        items.extend(drain(&mut d).unwrap());
        prop_assert_eq!(items.len(), 1);
        let ClientItem::Packet { packet: ClientPacket::Query(got), raw } = &items[0] else {
            panic!("not a query: {:?}", items[0]);
        };
        prop_assert_eq!(got, &q);
        prop_assert_eq!(raw, &b);
    }

    #[test]
    fn hello_round_trips(user in ".{0,20}", password in ".{0,20}", database in ".{0,20}", rev in 54000u64..55000) {
        let h = ClientHello { client_name: "c".into(), version_major: 1, version_minor: 2, revision: rev, database, user, password };
        let mut b = Vec::new();
        h.encode(&mut b);
        let mut d = ClientDecoder::default();
        d.feed(&b);
        let item = d.next_item().unwrap();
        prop_assert_eq!(item, Some(ClientItem::Packet { packet: ClientPacket::Hello(h), raw: b }));
    }

    #[test]
    fn exception_round_trips(code in any::<i32>(), msg in ".{0,40}", depth in 0usize..4) {
        let mut e = Exception::access_denied(&msg);
        e.code = code;
        for _ in 0..depth {
            let inner = e.clone();
            e.nested = Some(Box::new(inner));
        }
        let mut b = Vec::new();
        e.encode(&mut b);
        prop_assert_eq!(Exception::decode(&b, 1 << 16).unwrap(), Some((e, b.len())));
    }

    #[test]
    fn ssh_payload_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_payload(&bytes, 128);
        let mut p = vec![98];
        p.extend_from_slice(&bytes);
        let _ = decode_payload(&p, 1024);
        p[0] = 90;
        let _ = decode_payload(&p, 1024);
    }

    #[test]
    fn ssh_round_trips(m in ssh_message()) {
        let mut b = Vec::new();
        m.encode(&mut b).unwrap();
        prop_assert_eq!(ChannelMessage::decode(&b).unwrap(), m);
    }
}
