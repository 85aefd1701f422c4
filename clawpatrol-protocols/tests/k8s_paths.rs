//! Kubernetes path decomposition: arbitrary URIs never panic, and shaped results are
//! consistent with the reference's rules.

use clawpatrol_protocols::k8s::decompose;
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_uris_never_panic(method in "[A-Z]{0,7}", uri in "\\PC{0,60}") {
        let _ = decompose(&method, &uri);
    }

    #[test]
    fn namespaced_resources_decompose(
        ns in "[a-z0-9-]{1,10}",
        resource in "[a-z]{1,10}",
        name in prop::option::of("[a-z0-9-]{1,10}"),
        sub in prop::option::of("[a-z]{1,6}"),
    ) {
        prop_assume!(resource != "namespaces");
        let mut uri = format!("/api/v1/namespaces/{ns}/{resource}");
        if let Some(n) = &name {
            uri.push('/');
            uri.push_str(n);
            if let Some(s) = &sub {
                uri.push('/');
                uri.push_str(s);
            }
        }
        let k = decompose("GET", &uri).unwrap();
        prop_assert_eq!(&k.namespace, &ns);
        prop_assert_eq!(k.name, name.clone().unwrap_or_default());
        let want_resource = match (&name, &sub) {
            (Some(_), Some(s)) => format!("{resource}/{s}"),
            _ => resource.clone(),
        };
        prop_assert_eq!(k.resource, want_resource);
        prop_assert_eq!(k.verb, if name.is_some() { "get" } else { "list" });
    }
}

#[test]
fn percent_encoded_paths_are_decoded() {
    let k = decompose("GET", "/api/v1/namespaces/dev/pods/my%2Dpod").unwrap();
    assert_eq!(k.name, "my-pod");
}
