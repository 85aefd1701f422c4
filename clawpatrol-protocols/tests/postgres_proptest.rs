//! Property tests of the Postgres wire codec: arbitrary bytes never panic; generated messages
//! survive encode → decode unchanged, however the bytes are split.

use clawpatrol_protocols::postgres::{
    AuthResponseKind, Authentication, BackendDecoder, BackendMessage, BackendMode, CopyFormat,
    Decoded, ErrorFields, FieldDescription, FrontendDecoder, FrontendMessage, FrontendPhase,
    ProtocolVersion, Target, TransactionStatus,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn name() -> impl Strategy<Value = String> {
    "[^\u{0}]{1,12}"
}

fn blob() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..24)
}

fn nullable() -> impl Strategy<Value = Vec<Option<Vec<u8>>>> {
    prop::collection::vec(prop::option::of(blob()), 0..5)
}

fn formats() -> impl Strategy<Value = Vec<i16>> {
    prop::collection::vec(any::<i16>(), 0..4)
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::Statement), Just(Target::Portal)]
}

fn typed_frontend() -> impl Strategy<Value = FrontendMessage> {
    use FrontendMessage as M;
    prop_oneof![
        blob().prop_map(M::AuthResponse),
        text().prop_map(M::Query),
        (text(), text(), prop::collection::vec(any::<u32>(), 0..4)).prop_map(
            |(name, query, param_types)| M::Parse {
                name,
                query,
                param_types
            }
        ),
        (text(), text(), formats(), nullable(), formats()).prop_map(
            |(portal, statement, param_formats, params, result_formats)| M::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats
            }
        ),
        (target(), text()).prop_map(|(target, name)| M::Describe { target, name }),
        (target(), text()).prop_map(|(target, name)| M::Close { target, name }),
        (text(), any::<i32>()).prop_map(|(portal, max_rows)| M::Execute { portal, max_rows }),
        Just(M::Sync),
        Just(M::Flush),
        (any::<u32>(), formats(), nullable(), any::<i16>()).prop_map(
            |(function, arg_formats, args, result_format)| M::FunctionCall {
                function,
                arg_formats,
                args,
                result_format
            }
        ),
        blob().prop_map(M::CopyData),
        Just(M::CopyDone),
        text().prop_map(M::CopyFail),
        Just(M::Terminate),
    ]
}

fn startup_frontend() -> impl Strategy<Value = FrontendMessage> {
    use FrontendMessage as M;
    prop_oneof![
        Just(M::SslRequest),
        Just(M::GssEncRequest),
        (any::<i32>(), prop::collection::vec(any::<u8>(), 4..40)).prop_map(
            |(process_id, secret_key)| M::CancelRequest {
                process_id,
                secret_key
            }
        ),
        (
            prop_oneof![Just(ProtocolVersion::V3_0), Just(ProtocolVersion::V3_2)],
            prop::collection::vec((name(), text()), 0..5)
        )
            .prop_map(|(version, params)| M::Startup { version, params }),
    ]
}

fn copy_format() -> impl Strategy<Value = CopyFormat> {
    (any::<i8>(), formats()).prop_map(|(format, column_formats)| CopyFormat {
        format,
        column_formats,
    })
}

fn fields() -> impl Strategy<Value = ErrorFields> {
    prop::collection::vec((1u8.., text()), 0..5).prop_map(ErrorFields)
}

fn backend() -> impl Strategy<Value = BackendMessage> {
    use BackendMessage as M;
    let auth = prop_oneof![
        Just(Authentication::Ok),
        Just(Authentication::CleartextPassword),
        any::<[u8; 4]>().prop_map(|salt| Authentication::Md5Password { salt }),
        prop::collection::vec(name(), 0..3)
            .prop_map(|mechanisms| Authentication::Sasl { mechanisms }),
        blob().prop_map(Authentication::SaslContinue),
        blob().prop_map(Authentication::SaslFinal),
        (13i32.., blob()).prop_map(|(code, data)| Authentication::Unsupported { code, data }),
    ];
    prop_oneof![
        auth.prop_map(M::Authentication),
        (text(), text()).prop_map(|(name, value)| M::ParameterStatus { name, value }),
        (any::<i32>(), prop::collection::vec(any::<u8>(), 4..40)).prop_map(
            |(process_id, secret_key)| M::BackendKeyData {
                process_id,
                secret_key
            }
        ),
        prop_oneof![
            Just(TransactionStatus::Idle),
            Just(TransactionStatus::InTransaction),
            Just(TransactionStatus::Failed)
        ]
        .prop_map(M::ReadyForQuery),
        fields().prop_map(M::ErrorResponse),
        fields().prop_map(M::NoticeResponse),
        prop::collection::vec(
            (
                text(),
                any::<u32>(),
                any::<i16>(),
                any::<u32>(),
                any::<i16>(),
                any::<i32>(),
                any::<i16>()
            ),
            0..3
        )
        .prop_map(|v| M::RowDescription(
            v.into_iter()
                .map(
                    |(name, table_oid, column_id, type_oid, type_size, type_modifier, format)| {
                        FieldDescription {
                            name,
                            table_oid,
                            column_id,
                            type_oid,
                            type_size,
                            type_modifier,
                            format,
                        }
                    }
                )
                .collect()
        )),
        nullable().prop_map(M::DataRow),
        text().prop_map(M::CommandComplete),
        Just(M::EmptyQueryResponse),
        Just(M::ParseComplete),
        Just(M::BindComplete),
        Just(M::CloseComplete),
        Just(M::NoData),
        prop::collection::vec(any::<u32>(), 0..4).prop_map(M::ParameterDescription),
        Just(M::PortalSuspended),
        copy_format().prop_map(M::CopyInResponse),
        copy_format().prop_map(M::CopyOutResponse),
        copy_format().prop_map(M::CopyBothResponse),
        blob().prop_map(M::CopyData),
        Just(M::CopyDone),
        (any::<i32>(), text(), text()).prop_map(|(process_id, channel, payload)| {
            M::NotificationResponse {
                process_id,
                channel,
                payload,
            }
        }),
        prop::option::of(blob()).prop_map(M::FunctionCallResponse),
        (any::<i32>(), prop::collection::vec(text(), 0..3)).prop_map(
            |(newest_minor, unrecognized)| M::NegotiateProtocolVersion {
                newest_minor,
                unrecognized
            }
        ),
    ]
}

fn collect_frontend(d: &mut FrontendDecoder, out: &mut Vec<FrontendMessage>) {
    while let Some(Decoded::Message(m)) = d.next_frame().expect("valid stream") {
        out.push(m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_frontend(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        split in any::<prop::sample::Index>(),
        typed in any::<bool>(),
        stream in any::<bool>(),
        kind in 0usize..4,
    ) {
        let kinds = [
            AuthResponseKind::Raw,
            AuthResponseKind::Password,
            AuthResponseKind::SaslInitial,
            AuthResponseKind::Sasl,
        ];
        let mut d = FrontendDecoder::with_max_payload(64);
        d.set_stream_oversize(stream);
        d.set_auth_response_kind(kinds[kind]);
        if typed {
            d.set_phase(FrontendPhase::Typed);
        }
        let cut = split.index(bytes.len() + 1);
        for part in [&bytes[..cut], &bytes[cut..]] {
            d.feed(part);
            for _ in 0..bytes.len() + 2 {
                match d.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
                let _ = d.peek_header();
            }
        }
        let _ = FrontendMessage::decode_startup(&bytes);
        if let Some((&tag, rest)) = bytes.split_first() {
            for k in kinds {
                let _ = FrontendMessage::decode_typed(tag, rest, k);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_backend(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        mode in 0usize..3,
        stream in any::<bool>(),
    ) {
        let modes = [BackendMode::Typed, BackendMode::SslAnswer, BackendMode::GssEncAnswer];
        let mut d = BackendDecoder::with_max_payload(64);
        d.set_stream_oversize(stream);
        d.set_mode(modes[mode]);
        d.feed(&bytes);
        for _ in 0..bytes.len() + 2 {
            match d.next_frame() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        if let Some((&tag, rest)) = bytes.split_first() {
            let _ = BackendMessage::decode(tag, rest);
        }
    }

    #[test]
    fn typed_frontend_round_trip(
        msgs in prop::collection::vec(typed_frontend(), 1..6),
        split in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        for m in &msgs {
            m.encode(&mut bytes).unwrap();
        }
        let mut d = FrontendDecoder::new();
        d.set_phase(FrontendPhase::Typed);
        let cut = split.index(bytes.len() + 1);
        let mut got = Vec::new();
        d.feed(&bytes[..cut]);
        collect_frontend(&mut d, &mut got);
        d.feed(&bytes[cut..]);
        collect_frontend(&mut d, &mut got);
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn auth_responses_round_trip(
        password in prop::collection::vec(1u8.., 0..20),
        mechanism in name(),
        data in prop::option::of(blob()),
        sasl in blob(),
    ) {
        let cases = [
            (AuthResponseKind::Password, FrontendMessage::Password(password)),
            (AuthResponseKind::SaslInitial, FrontendMessage::SaslInitialResponse { mechanism, data }),
            (AuthResponseKind::Sasl, FrontendMessage::SaslResponse(sasl)),
        ];
        for (kind, msg) in cases {
            let bytes = msg.to_bytes().unwrap();
            prop_assert_eq!(FrontendMessage::decode_typed(bytes[0], &bytes[5..], kind).unwrap(), msg);
        }
    }

    #[test]
    fn startup_round_trip(msg in startup_frontend()) {
        let bytes = msg.to_bytes().unwrap();
        let mut d = FrontendDecoder::new();
        d.feed(&bytes);
        let mut got = Vec::new();
        collect_frontend(&mut d, &mut got);
        prop_assert_eq!(got, vec![msg]);
    }

    #[test]
    fn backend_round_trip(
        msgs in prop::collection::vec(backend(), 1..6),
        split in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        for m in &msgs {
            m.encode(&mut bytes).unwrap();
        }
        let mut d = BackendDecoder::new();
        let cut = split.index(bytes.len() + 1);
        let mut got = Vec::new();
        for part in [&bytes[..cut], &bytes[cut..]] {
            d.feed(part);
            while let Some(Decoded::Message(m)) = d.next_frame().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Whatever decodes re-encodes to exactly the same bytes (nothing is lost or normalised).
    #[test]
    fn decoded_payloads_re_encode_byte_exact(
        tag in prop::sample::select(b"pQPBDESHCFdcfXRKZENTDCI123nts GHWdcAVv".to_vec()),
        payload in prop::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), Just(b'S'), Just(b'P'), any::<u8>()],
            0..48,
        ),
        kind in 0usize..4,
    ) {
        let kinds = [
            AuthResponseKind::Raw,
            AuthResponseKind::Password,
            AuthResponseKind::SaslInitial,
            AuthResponseKind::Sasl,
        ];
        let mut framed = vec![tag];
        framed.extend_from_slice(&((payload.len() + 4) as u32).to_be_bytes());
        framed.extend_from_slice(&payload);
        if let Ok(m) = FrontendMessage::decode_typed(tag, &payload, kinds[kind]) {
            prop_assert_eq!(m.to_bytes().unwrap(), framed.clone());
        }
        if let Ok(m) = BackendMessage::decode(tag, &payload) {
            prop_assert_eq!(m.to_bytes().unwrap(), framed);
        }
        let mut startup = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        startup.extend_from_slice(&[0, 3, 0, 0]);
        startup.extend_from_slice(&payload);
        if let Ok(m) = FrontendMessage::decode_startup(&startup[4..]) {
            prop_assert_eq!(m.to_bytes().unwrap(), startup);
        }
    }
}
