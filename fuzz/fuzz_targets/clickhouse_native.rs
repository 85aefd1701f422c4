//! Arbitrary client bytes through the ClickHouse native decoder (before and after the
//! handshake, small and default limits, any chunking): must not panic; complete Queries must
//! re-encode and decode to themselves (strings are decoded lossily, so bytes may differ).
//! Also the server Hello and Exception decoders.
#![no_main]

use clawpatrol_protocols::clickhouse::native::{
    ClientDecoder, ClientHello, ClientItem, ClientPacket, Exception, HelloAddendum, ServerHello,
};
use libfuzzer_sys::fuzz_target;

const REV: u64 = 54477;

fn handshaken(max: usize) -> ClientDecoder {
    let mut d = ClientDecoder::new(max);
    let mut b = Vec::new();
    ClientHello {
        revision: REV,
        ..ClientHello::default()
    }
    .encode(&mut b);
    HelloAddendum::default().encode(REV, &mut b);
    d.feed(&b);
    let _ = d.next_item();
    d.set_server_revision(REV);
    let _ = d.next_item();
    d
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let _ = ServerHello::decode(rest, REV, 4096);
    let _ = Exception::decode(rest, 4096);
    let max = if control & 1 != 0 { 128 } else { 1 << 16 };
    let mut d = if control & 2 != 0 {
        handshaken(max)
    } else {
        ClientDecoder::new(max)
    };
    let chunk = usize::from(control >> 2) + 1;
    for part in rest.chunks(chunk) {
        d.feed(part);
        loop {
            match d.next_item() {
                Ok(Some(ClientItem::Packet {
                    packet: ClientPacket::Query(q),
                    raw,
                })) => {
                    let mut out = Vec::new();
                    q.encode(d.revision(), &mut out).expect("decoded query re-encodes");
                    assert!(out.len() <= raw.len() * 3);
                    let mut again = handshaken(1 << 20);
                    again.feed(&out);
                    match again.next_item() {
                        Ok(Some(ClientItem::Packet {
                            packet: ClientPacket::Query(q2),
                            ..
                        })) => assert_eq!(q2, q),
                        other => panic!("re-encoded query did not decode: {other:?}"),
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
