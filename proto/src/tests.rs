//! Tests of the generated API: the descriptor set is complete and documented, messages
//! round-trip through prost, and the denial reasons keep their stable names.

use std::collections::BTreeSet;

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

use crate::v1::{
    consistency, CheckResponse, Consistency, Decision, DecisionReceipt, DenialReason,
    GetStateProofResponse, StateRef,
};
use crate::FILE_DESCRIPTOR_SET;

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("embedded descriptor set decodes")
}

fn gongzhi_files() -> Vec<FileDescriptorProto> {
    descriptor_set()
        .file
        .into_iter()
        .filter(|file| file.package() == "gongzhi.v1")
        .collect()
}

#[test]
fn descriptor_set_contains_all_services_and_methods() {
    let methods: BTreeSet<String> = gongzhi_files()
        .iter()
        .flat_map(|file| &file.service)
        .flat_map(|service| {
            service
                .method
                .iter()
                .map(move |method| format!("{}.{}", service.name(), method.name()))
        })
        .collect();
    let expected = [
        "Authorization.Check",
        "Authorization.BatchCheck",
        "Authorization.ListGrants",
        "Authorization.WatchGrants",
        "Authorization.ExplainDenial",
        "Ledger.SubmitTx",
        "Ledger.SubmitTxs",
        "Ledger.GetTx",
        "Ledger.GetReceipt",
        "Ledger.GetBlock",
        "Ledger.StreamBlocks",
        "Ledger.GetStateProof",
        "Civility.GetBalance",
        "Civility.GetHistory",
        "Registry.ListOrganizations",
        "Registry.GetDataset",
        "Registry.ListDatasets",
        "Registry.ListProposals",
        "Node.Status",
    ];
    let expected: BTreeSet<String> = expected.iter().map(|name| name.to_string()).collect();
    assert_eq!(methods, expected);
}

#[test]
fn only_watch_grants_and_stream_blocks_stream() {
    let streaming: BTreeSet<String> = gongzhi_files()
        .iter()
        .flat_map(|file| &file.service)
        .flat_map(|service| {
            service
                .method
                .iter()
                .filter(|method| method.client_streaming() || method.server_streaming())
                .map(move |method| {
                    assert!(
                        !method.client_streaming(),
                        "{} streams from the client",
                        method.name()
                    );
                    format!("{}.{}", service.name(), method.name())
                })
        })
        .collect();
    let expected: BTreeSet<String> = ["Authorization.WatchGrants", "Ledger.StreamBlocks"]
        .iter()
        .map(|name| name.to_string())
        .collect();
    assert_eq!(streaming, expected);
}

/// Source-info paths (see `descriptor.proto`): which field numbers lead to documented elements.
mod path {
    pub const FILE_MESSAGE: i32 = 4;
    pub const FILE_ENUM: i32 = 5;
    pub const FILE_SERVICE: i32 = 6;
    pub const MESSAGE_FIELD: i32 = 2;
    pub const MESSAGE_NESTED: i32 = 3;
    pub const MESSAGE_ENUM: i32 = 4;
    pub const MESSAGE_ONEOF: i32 = 8;
    pub const ENUM_VALUE: i32 = 2;
    pub const SERVICE_METHOD: i32 = 2;
}

/// Every element that needs a comment: (source-info path, readable name).
fn documentable_elements(file: &FileDescriptorProto) -> Vec<(Vec<i32>, String)> {
    fn enum_elements(
        prefix: Vec<i32>,
        enumeration: &prost_types::EnumDescriptorProto,
        out: &mut Vec<(Vec<i32>, String)>,
    ) {
        out.push((prefix.clone(), format!("enum {}", enumeration.name())));
        for (index, value) in enumeration.value.iter().enumerate() {
            let mut path = prefix.clone();
            path.extend([path::ENUM_VALUE, index as i32]);
            out.push((path, format!("enum value {}", value.name())));
        }
    }
    fn message_elements(
        prefix: Vec<i32>,
        message: &prost_types::DescriptorProto,
        out: &mut Vec<(Vec<i32>, String)>,
    ) {
        out.push((prefix.clone(), format!("message {}", message.name())));
        for (index, field) in message.field.iter().enumerate() {
            let mut path = prefix.clone();
            path.extend([path::MESSAGE_FIELD, index as i32]);
            out.push((path, format!("field {}.{}", message.name(), field.name())));
        }
        for (index, oneof) in message.oneof_decl.iter().enumerate() {
            // proto3 `optional` fields are synthetic oneofs named `_<field>`: nothing to document.
            if oneof.name().starts_with('_') {
                continue;
            }
            let mut path = prefix.clone();
            path.extend([path::MESSAGE_ONEOF, index as i32]);
            out.push((path, format!("oneof {}.{}", message.name(), oneof.name())));
        }
        for (index, nested) in message.nested_type.iter().enumerate() {
            let mut path = prefix.clone();
            path.extend([path::MESSAGE_NESTED, index as i32]);
            message_elements(path, nested, out);
        }
        for (index, enumeration) in message.enum_type.iter().enumerate() {
            let mut path = prefix.clone();
            path.extend([path::MESSAGE_ENUM, index as i32]);
            enum_elements(path, enumeration, out);
        }
    }

    let mut out = Vec::new();
    for (index, message) in file.message_type.iter().enumerate() {
        message_elements(vec![path::FILE_MESSAGE, index as i32], message, &mut out);
    }
    for (index, enumeration) in file.enum_type.iter().enumerate() {
        enum_elements(vec![path::FILE_ENUM, index as i32], enumeration, &mut out);
    }
    for (index, service) in file.service.iter().enumerate() {
        let prefix = vec![path::FILE_SERVICE, index as i32];
        out.push((prefix.clone(), format!("service {}", service.name())));
        for (method_index, method) in service.method.iter().enumerate() {
            let mut path = prefix.clone();
            path.extend([path::SERVICE_METHOD, method_index as i32]);
            out.push((path, format!("rpc {}.{}", service.name(), method.name())));
        }
    }
    out
}

#[test]
fn every_service_rpc_message_field_and_enum_value_is_documented() {
    let mut undocumented = Vec::new();
    for file in gongzhi_files() {
        let locations = &file
            .source_code_info
            .as_ref()
            .expect("build.rs keeps source info")
            .location;
        for (path, name) in documentable_elements(&file) {
            let documented = locations.iter().any(|location| {
                location.path == path && !location.leading_comments().trim().is_empty()
            });
            if !documented {
                undocumented.push(format!("{}: {name}", file.name()));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "add a comment above: {undocumented:#?}"
    );
}

#[test]
fn check_response_round_trips_through_prost() {
    let response = CheckResponse {
        decision: Decision::Deny as i32,
        reason: DenialReason::Expired as i32,
        reason_name: DenialReason::Expired.stable_name().to_owned(),
        message: "grant#17 expired at 2026-03-01T00:00:00Z".to_owned(),
        grant_ids: vec![17],
        evaluated_height: 42,
        evaluated_block_hash: vec![0xab; 32],
        state_root: vec![0xcd; 32],
        evaluation_time_ms: 1_772_323_200_001,
        latest_block_time_ms: 1_772_323_199_000,
        receipt: Some(DecisionReceipt {
            canonical: vec![1, 2, 3, 4],
            receipt_hash: vec![0xef; 32],
            height: 42,
            block_hash: vec![0xab; 32],
            state_root: vec![0xcd; 32],
            evaluation_time_ms: 1_772_323_200_001,
        }),
    };
    let bytes = response.encode_to_vec();
    let decoded = CheckResponse::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(decoded, response);
    assert_eq!(decoded.decision(), Decision::Deny);
    assert_eq!(decoded.reason(), DenialReason::Expired);
}

#[test]
fn consistency_oneof_and_optional_bytes_round_trip() {
    for requirement in [
        None,
        Some(consistency::Requirement::Latest(consistency::Latest {})),
        Some(consistency::Requirement::AtLeastHeight(7)),
        Some(consistency::Requirement::ExactHeight(0)),
    ] {
        let consistency = Consistency { requirement };
        let decoded = Consistency::decode(consistency.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded, consistency);
    }

    // An absent value (a non-membership proof) stays distinct from an empty value.
    for value in [None, Some(Vec::new()), Some(b"grant".to_vec())] {
        let response = GetStateProofResponse {
            key: b"grants/g-17".to_vec(),
            value,
            proof: vec![9; 10],
            state: Some(StateRef {
                height: 3,
                block_hash: vec![1; 32],
                block_time_ms: 1_000,
                state_root: vec![2; 32],
            }),
        };
        let decoded =
            GetStateProofResponse::decode(response.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded, response);
    }
}

/// The numbers and names equal the contract's `DenyReason::code()` and `name()`; a test in
/// the conversions (once they land here) checks that against `DenyReason::ALL`.
#[test]
fn denial_reasons_keep_their_stable_names() {
    let names: Vec<&str> = (0..=15)
        .map(|number| {
            DenialReason::try_from(number)
                .expect("reasons are numbered 0..=15 without gaps")
                .stable_name()
        })
        .collect();
    assert_eq!(
        names,
        [
            "",
            "UNKNOWN_GRANTEE",
            "GRANTEE_SUSPENDED",
            "GRANTEE_REMOVED",
            "UNKNOWN_PURPOSE",
            "UNKNOWN_DATASET",
            "UNKNOWN_FIELD",
            "NO_FIELDS_REQUESTED",
            "NO_GRANT",
            "REVOKED",
            "PURPOSE_NOT_COVERED",
            "FIELD_NOT_COVERED",
            "AWAITING_CO_APPROVAL",
            "NOT_YET_VALID",
            "EXPIRED",
            "USES_EXHAUSTED",
        ]
    );
    assert!(DenialReason::try_from(16).is_err());
}
