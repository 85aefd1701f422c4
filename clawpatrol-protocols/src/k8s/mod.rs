//! Kubernetes API path decomposition (reference §3.2): method + request URI → verb,
//! resource, namespace, name and params, or "not k8s-shaped".

use std::collections::BTreeMap;

use crate::http::{percent_decode_path, query_map, split_target};

/// The Kubernetes reading of one API request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K8sRequest {
    /// `list`/`get`/`watch`/`create`/`update`/`patch`/`delete`/`meta`, or `""`.
    pub verb: String,
    /// `<resource>` or `<resource>/<subresource>`, or `""`.
    pub resource: String,
    /// The namespace, or `""`.
    pub namespace: String,
    /// The object name, or `""`.
    pub name: String,
    /// The query parameters, first value per key.
    pub params: BTreeMap<String, String>,
}

/// Non-resource paths answered with verb `meta`.
const META_PATHS: [&str; 8] = [
    "api", "apis", "healthz", "livez", "readyz", "version", "metrics", "openapi",
];

fn is_meta(p: &str) -> bool {
    if META_PATHS.contains(&p) || p.starts_with("openapi/") {
        return true;
    }
    let segs: Vec<&str> = p.split('/').collect();
    match segs.first() {
        Some(&"api") => segs.len() == 2,
        Some(&"apis") => segs.len() == 2 || segs.len() == 3,
        _ => false,
    }
}

/// Decomposes `method` + `request_uri` (path and query, or an absolute URL); `None` when the
/// request is not k8s-shaped, which makes every k8s condition unevaluable.
pub fn decompose(method: &str, request_uri: &str) -> Option<K8sRequest> {
    let (raw_path, raw_query) = split_target(request_uri);
    let path = percent_decode_path(raw_path);
    let p = path.trim_matches('/');
    if is_meta(p) {
        return Some(K8sRequest {
            verb: "meta".to_string(),
            ..K8sRequest::default()
        });
    }
    let segs: Vec<&str> = p.split('/').collect();
    if segs.len() < 2 {
        return None;
    }
    let mut rest: &[&str] = match segs[0] {
        "api" => &segs[2..],
        "apis" if segs.len() >= 3 => &segs[3..],
        _ => return None,
    };
    let mut out = K8sRequest::default();
    if let [first, ns, tail @ ..] = rest {
        if *first == "namespaces" {
            out.namespace = (*ns).to_string();
            rest = tail;
        }
    }
    let Some((resource, tail)) = rest.split_first() else {
        return Some(out);
    };
    out.resource = (*resource).to_string();
    if let Some((name, tail)) = tail.split_first() {
        out.name = (*name).to_string();
        if let Some(sub) = tail.first() {
            out.resource = format!("{resource}/{sub}");
        }
    }
    out.verb = match method {
        "GET" if out.name.is_empty() => "list",
        "GET" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    }
    .to_string();
    for (k, mut vs) in raw_query.map(query_map).unwrap_or_default() {
        if !vs.is_empty() {
            out.params.insert(k, vs.swap_remove(0));
        }
    }
    if method == "GET"
        && out
            .params
            .get("watch")
            .is_some_and(|w| w.eq_ignore_ascii_case("true"))
    {
        out.verb = "watch".to_string();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        verb: &str,
        resource: &str,
        ns: &str,
        name: &str,
        params: &[(&str, &str)],
    ) -> K8sRequest {
        K8sRequest {
            verb: verb.into(),
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }

    #[test]
    fn reference_table_rows() {
        let cases: Vec<(&str, &str, Option<K8sRequest>)> = vec![
            (
                "GET",
                "/api/v1/pods",
                Some(row("list", "pods", "", "", &[])),
            ),
            (
                "GET",
                "/api/v1/namespaces/dev/pods?watch=1",
                Some(row("list", "pods", "dev", "", &[("watch", "1")])),
            ),
            (
                "GET",
                "/api/v1/namespaces/dev/pods?watch=true",
                Some(row("watch", "pods", "dev", "", &[("watch", "true")])),
            ),
            (
                "GET",
                "/api/v1/namespaces/dev/pods?watch=TRUE",
                Some(row("watch", "pods", "dev", "", &[("watch", "TRUE")])),
            ),
            (
                "GET",
                "/api/v1/namespaces/dev/pods/p1",
                Some(row("get", "pods", "dev", "p1", &[])),
            ),
            (
                "POST",
                "/api/v1/namespaces/dev/pods/p1/exec?command=ls&command=-l&stdin=true",
                Some(row(
                    "create",
                    "pods/exec",
                    "dev",
                    "p1",
                    &[("command", "ls"), ("stdin", "true")],
                )),
            ),
            (
                "GET",
                "/api/v1/namespaces/dev/pods/p1/exec?command=ls&stdin=true",
                Some(row(
                    "get",
                    "pods/exec",
                    "dev",
                    "p1",
                    &[("command", "ls"), ("stdin", "true")],
                )),
            ),
            (
                "DELETE",
                "/apis/apps/v1/namespaces/dev/deployments/web",
                Some(row("delete", "deployments", "dev", "web", &[])),
            ),
            (
                "GET",
                "/api/v1/nodes/n1",
                Some(row("get", "nodes", "", "n1", &[])),
            ),
            (
                "GET",
                "/api/v1/namespaces",
                Some(row("list", "namespaces", "", "", &[])),
            ),
            ("GET", "/apis/apps/v1", Some(row("meta", "", "", "", &[]))),
            ("GET", "/version", Some(row("meta", "", "", "", &[]))),
            ("GET", "/healthz", Some(row("meta", "", "", "", &[]))),
            ("GET", "/healthz/etcd", None),
            ("GET", "/", None),
            ("GET", "/foo", None),
        ];
        for (method, uri, want) in cases {
            assert_eq!(decompose(method, uri), want, "{method} {uri}");
        }
    }

    #[test]
    fn meta_paths() {
        for p in [
            "/api",
            "/apis",
            "/livez",
            "/readyz",
            "/metrics",
            "/openapi",
            "/openapi/v2",
            "/openapi/v3/apis/apps/v1",
            "/api/v1",
            "/apis/apps",
            "/apis/apps/v1/",
            "/version/",
        ] {
            assert_eq!(
                decompose("GET", p).map(|r| r.verb),
                Some("meta".to_string()),
                "{p}"
            );
        }
        // The query of a meta path is not parsed.
        assert_eq!(
            decompose("GET", "/version?x=1"),
            Some(row("meta", "", "", "", &[]))
        );
    }

    #[test]
    fn namespace_only_and_other_shapes() {
        assert_eq!(
            decompose("GET", "/api/v1/namespaces/foo"),
            Some(row("", "", "foo", "", &[]))
        );
        assert_eq!(
            decompose("DELETE", "/api/v1/namespaces/foo/"),
            Some(row("", "", "foo", "", &[]))
        );
        assert_eq!(
            decompose("GET", "/api/v1/namespaces/dev/pods/p/proxy/a/b"),
            Some(row("get", "pods/proxy", "dev", "p", &[]))
        );
        assert_eq!(
            decompose("DELETE", "/api/v1/namespaces/dev/pods"),
            Some(row("delete", "pods", "dev", "", &[]))
        );
        assert_eq!(
            decompose(
                "PUT",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin"
            ),
            Some(row("update", "clusterroles", "", "admin", &[]))
        );
        assert_eq!(
            decompose(
                "PATCH",
                "/apis/apps/v1/namespaces/dev/deployments/web/scale"
            ),
            Some(row("patch", "deployments/scale", "dev", "web", &[]))
        );
        assert_eq!(
            decompose("OPTIONS", "/api/v1/pods"),
            Some(row("", "pods", "", "", &[]))
        );
        // watch=true only turns GET into watch.
        assert_eq!(
            decompose("POST", "/api/v1/namespaces/dev/pods?watch=true"),
            Some(row("create", "pods", "dev", "", &[("watch", "true")]))
        );
        assert_eq!(decompose("GET", "/apix/v1/pods"), None);
        assert_eq!(decompose("GET", ""), None);
        assert_eq!(
            decompose("GET", "https://k8s.example.com:6443/api/v1/pods?limit=5"),
            Some(row("list", "pods", "", "", &[("limit", "5")]))
        );
    }
}
