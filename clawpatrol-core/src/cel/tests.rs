use serde_json::json;

use super::*;
use crate::facts::{Action, FieldValue};

fn http_action() -> Action {
    Action::from_json(&json!({"http": {
        "method": "GET", "path": "/repos/acme/widgets",
        "query": {"page": ["2"], "tag": ["a", "b"]},
        "headers": {"content-type": ["application/json"], "x-api-key": ["k1"]},
        "body": "{\"name\":\"x\",\"n\":1,\"tags\":[\"a\",\"b\"],\"nested\":{\"ok\":true},\"nul\":null}"
    }}))
    .unwrap()
}

fn sql_action() -> Action {
    Action::from_json(
        &json!({"sql": {"statement": "SELECT * FROM users", "verb": "select",
        "tables": ["users", "orders"], "functions": ["count"], "database": "app"}}),
    )
    .unwrap()
}

fn ssh_action() -> Action {
    Action::from_json(
        &json!({"ssh": {"verb": "exec", "command": "ls -la", "user": "deploy",
        "forward_port": 22, "forward_host": "db"}}),
    )
    .unwrap()
}

fn k8s_action() -> Action {
    Action::from_json(&json!({"k8s": {"verb": "get", "resource": "pods", "namespace": "default",
        "name": "web", "params": {"watch": "true"}}, "http": {"method": "GET", "path": "/api/v1/pods"}}))
    .unwrap()
}

fn ev(text: &str, family: Family, act: &Action) -> Tri {
    match compile(text, family) {
        Ok(c) => c.eval(act),
        Err(e) => panic!("{text}: {e:?}"),
    }
}

fn http(text: &str) -> Tri {
    ev(text, Family::Http, &http_action())
}

fn is_true(text: &str) {
    assert_eq!(http(text), Tri::True, "{text}");
}

fn is_false(text: &str) {
    assert_eq!(http(text), Tri::False, "{text}");
}

fn is_error(text: &str) {
    assert!(
        matches!(http(text), Tri::Error(_)),
        "{text}: {:?}",
        http(text)
    );
}

fn kind(text: &str, family: Family) -> CompileErrorKind {
    match compile(text, family) {
        Ok(_) => panic!("{text} compiled"),
        Err(e) => e.kind,
    }
}

#[test]
fn literals_and_operators() {
    for t in [
        "true",
        "!false",
        "1 == 1",
        "1u == 1u",
        "1.5 == 1.5",
        "'a' == \"a\"",
        "b'ab' == b'ab'",
        "null == null",
        "-1 < 0",
        "1 + 2 * 3 == 7",
        "7 / 2 == 3",
        "7 % 3 == 1",
        "-7 % 3 == -1",
        "2.0 * 1.5 == 3.0",
        "'ab' + 'cd' == 'abcd'",
        "[1, 2] + [3] == [1, 2, 3]",
        "'a' < 'b'",
        "1 < 1.5",
        "2u > 1",
        "1 == 1.0",
        "1 <= 1u && 1u >= 1.0",
        "{'a': 1}['a'] == 1",
        "{'a': 1}.a == 1",
        "[1, 2, 3][1] == 2",
        "2 in [1, 2]",
        "'a' in {'a': 1}",
        "!('z' in {'a': 1})",
        "size('héllo') == 5",
        "'abc'.size() == 3",
        "size([1, 2]) == 2",
        "size({'a': 1}) == 1",
        "true ? true : false",
        "(false ? 1 : 2) == 2",
        "int('42') == 42",
        "uint(42) == 42u",
        "double(1) == 1.0",
        "string(12) == '12'",
        "string(1.5) == '1.5'",
        "bool('true')",
        "dyn(1) == 1",
        "int(2.9) == 2",
        "[1, 'a'] == [1, 'a']",
        "{'a': [1]} == {'a': [1]}",
        "dyn('a') != 1",
    ] {
        is_true(t);
    }
    for t in [
        "1 == 2",
        "'a' > 'b'",
        "2 in [1]",
        "[1] == [2]",
        "false || false",
    ] {
        is_false(t);
    }
}

#[test]
fn runtime_errors() {
    for t in [
        "1 / 0 == 0",
        "1 % 0 == 0",
        "9223372036854775807 + 1 > 0",
        "-9223372036854775807 - 2 < 0",
        "{'a': 1}['b'] == 1",
        "[1][3] == 1",
        "int('x') == 1",
        "dyn('a') < 1",
        "dyn(1) + dyn(1.0) == 2.0",
        "http.path.matches(http.path + '(')",
        "dyn(1)",
        "{'a': 1, 'a': 2}.size() == 2",
    ] {
        is_error(t);
    }
}

#[test]
fn fact_fields() {
    is_true("http.method == 'get'");
    is_true("http.path.startsWith('/repos/')");
    is_true("http.path.endsWith('widgets') && http.path.contains('acme')");
    is_true("http.query['tag'] == ['a', 'b']");
    is_true("'page' in http.query");
    is_true("http.headers['Content-Type'][0] == 'application/json'");
    is_true("http.body.contains('name')");
    is_true("http.body_json.name == 'x'");
    is_true("http.body_json.n == 1");
    is_true("http.body_json.n == 1.0");
    is_true("http.body_json.n == 1u");
    is_true("http.body_json.tags[1] == 'b'");
    is_true("http.body_json.nested.ok");
    is_true("http.body_json.nul == null");
    is_true("has(http.body_json.name) && !has(http.body_json.missing)");
    is_true("has(http.method)");
    is_true("size(http.body_json) == 5");
    is_true("http.body_json['name'] == 'x'");
    assert_eq!(
        ev(
            "sql.verb == 'select' && 'users' in sql.tables",
            Family::Sql,
            &sql_action()
        ),
        Tri::True
    );
    assert_eq!(
        ev(
            "ssh.forward_port == 22 && ssh.user == 'deploy'",
            Family::Ssh,
            &ssh_action()
        ),
        Tri::True
    );
    assert_eq!(
        ev(
            "k8s.verb == 'get' && k8s.params.watch == 'true' && http.method == 'get'",
            Family::K8s,
            &k8s_action()
        ),
        Tri::True
    );
}

#[test]
fn missing_keys_are_errors() {
    is_error("http.headers['x'] == ['y']");
    is_error("http.headers['x-api-key'] == ['k1']");
    is_error("http.body_json.x == 1");
    is_error("http.body_json.name.x == 1");
    assert!(matches!(
        ev("k8s.params.stdin == 'x'", Family::K8s, &k8s_action()),
        Tri::Error(_)
    ));
    assert!(matches!(
        ev("http.body_json.tags", Family::Http, &http_action()),
        Tri::Error(_)
    ));
}

#[test]
fn absent_facet_is_an_error() {
    let a =
        Action::from_json(&json!({"k8s": {"shaped": false}, "http": {"method": "GET"}})).unwrap();
    match ev("k8s.verb == 'get'", Family::K8s, &a) {
        Tri::Error(m) => assert_eq!(m, "no such attribute: k8s.verb"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ev("http.method == 'get' || k8s.verb == 'get'", Family::K8s, &a),
        Tri::True
    );
}

#[test]
fn string_methods_and_regex() {
    is_true("http.path.matches('^/repos/[a-z]+')");
    is_true("matches(http.path, 'widgets$')");
    is_true("http.path.matches('ACME') == false");
    is_true("http.path.matches('(?i)ACME')");
    is_true("http.path.matches('/re' + 'pos')");
    is_true("'abc'.contains('') && 'abc'.startsWith('ab') && 'abc'.endsWith('bc')");
}

#[test]
fn macros() {
    is_true("[1, 2, 3].exists(x, x > 2)");
    is_true("[1, 2, 3].all(x, x > 0)");
    is_true("[1, 2, 3].exists_one(x, x == 2)");
    is_false("[1, 2, 2].exists_one(x, x == 2)");
    is_true("[1, 2, 3].map(x, x * 2) == [2, 4, 6]");
    is_true("[1, 2, 3].map(x, x > 1, x * 10) == [20, 30]");
    is_true("[1, 2, 3].filter(x, x != 2) == [1, 3]");
    is_true("http.query.exists(k, k == 'tag')");
    is_true("http.query.all(k, http.query[k].size() > 0)");
    is_true("http.headers.exists(k, k.startsWith('Content'))");
    is_true("http.body_json.tags.exists(t, t == 'a')");
    is_true("[[1, 2], [3]].exists(l, l.exists(x, x == 3))");
    is_true("[1, 2].exists(x, [3, 4].exists(y, x + y == 6))");
    is_true("[0, 1].exists(x, 1 / x == 1)");
    is_error("[0, 2].exists(x, 1 / x == 1)");
    is_false("[0, 2].all(x, 1 / x == 1)");
    is_error("[0, 1].all(x, 1 / x == 1)");
    assert_eq!(
        ev(
            "sql.tables.map(t, t + '!').exists(t, t == 'users!')",
            Family::Sql,
            &sql_action()
        ),
        Tri::True
    );
}

#[test]
fn sets_extension() {
    is_true("sets.contains([1, 2, 3], [3, 1])");
    is_false("sets.contains([1, 2], [4])");
    is_true("sets.contains([1], [])");
    is_true("sets.intersects([1, 2], [2, 5])");
    is_false("sets.intersects([1], [])");
    is_true("sets.equivalent([1, 2, 2], [2, 1])");
    is_false("sets.equivalent([1], [1, 3])");
    assert_eq!(
        ev(
            "sets.intersects(sql.tables, ['orders', 'x'])",
            Family::Sql,
            &sql_action()
        ),
        Tri::True
    );
}

#[test]
fn literal_lowercasing() {
    is_true("http.method == 'GET'");
    is_true("'GET' == http.method");
    is_false("http.method != 'Get'");
    is_true("http.method in ['POST', 'GET']");
    is_true(
        "http.method.startsWith('G') && http.method.endsWith('eT') && http.method.contains('E')",
    );
    // Not rewritten: matches(), expressions through other operators, non-lowercased fields.
    is_false("http.method.matches('GET')");
    is_false("http.method == 'G' + 'ET'");
    is_false("http.path == '/REPOS/acme/widgets'");
    is_false("dyn(http.method) == 'GET'");
    assert_eq!(
        ev("sql.verb == 'SELECT'", Family::Sql, &sql_action()),
        Tri::True
    );
    assert_eq!(
        ev("k8s.verb in ['GET']", Family::K8s, &k8s_action()),
        Tri::True
    );
    assert_eq!(
        ev("ssh.verb == 'EXEC'", Family::Ssh, &ssh_action()),
        Tri::True
    );
}

#[test]
fn compile_errors() {
    assert_eq!(
        kind("http.method ==", Family::Http),
        CompileErrorKind::Syntax
    );
    assert_eq!(
        kind("sql.verb == 'x'", Family::Http),
        CompileErrorKind::UnknownVariable
    );
    assert_eq!(kind("foo", Family::Http), CompileErrorKind::UnknownVariable);
    assert_eq!(
        kind("k8s.verb == 'get'", Family::Http),
        CompileErrorKind::UnknownVariable
    );
    assert_eq!(
        kind("http.foo == 'x'", Family::Http),
        CompileErrorKind::UnknownField
    );
    assert_eq!(
        kind("http.method", Family::Http),
        CompileErrorKind::NotBoolean
    );
    assert_eq!(kind("1 + 2", Family::Http), CompileErrorKind::NotBoolean);
    assert_eq!(
        kind("http.path.matches('(')", Family::Http),
        CompileErrorKind::InvalidRegex
    );
    assert_eq!(
        kind("http.method == 1", Family::Http),
        CompileErrorKind::Type
    );
    assert_eq!(kind("1 + 1.0 == 2.0", Family::Http), CompileErrorKind::Type);
    assert_eq!(
        kind("http.method.lowerAscii() == 'x'", Family::Http),
        CompileErrorKind::Unsupported
    );
    assert_eq!(
        kind("http == http", Family::Http),
        CompileErrorKind::Unsupported
    );

    let e = compile("sql.verb == 'x'", Family::Http).unwrap_err();
    assert_eq!(
        e.message,
        "undeclared reference to `sql` (rules on http endpoints can read: http)"
    );
    assert_eq!(e.span, Some(0..3));
    let e = compile("http.method == 'x' && k8s.verb == 'x'", Family::Http).unwrap_err();
    assert_eq!(e.span, Some(22..25));
    let e = compile("http.method", Family::Http).unwrap_err();
    assert_eq!(e.message, "condition must yield bool, got string");
    let e = compile("http.foo == 'x'", Family::Http).unwrap_err();
    assert!(
        e.message
            .contains("method, path, query, headers, body, body_json"),
        "{}",
        e.message
    );
    let e = compile("true &&", Family::Http).unwrap_err();
    assert!(e.span.is_some());
    assert!(compile("k8s.verb == 'get' && http.method == 'get'", Family::K8s).is_ok());
}

#[test]
fn fields_and_source() {
    let c = compile(
        "http.path == 'x' || http.method in ['get'] || http.path == 'y'",
        Family::Http,
    )
    .unwrap();
    assert_eq!(c.fields(), &[FieldId::HttpMethod, FieldId::HttpPath]);
    assert_eq!(
        c.source(),
        "http.path == 'x' || http.method in ['get'] || http.path == 'y'"
    );
    let c = compile("has(http.body_json.x)", Family::Http).unwrap();
    assert_eq!(c.fields(), &[FieldId::HttpBodyJson]);
}

/// An activation where chosen fields are unknown.
struct Partial {
    inner: Action,
    unknown: Vec<FieldId>,
}

impl Activation for Partial {
    fn field(&self, f: FieldId) -> FieldValue<'_> {
        if self.unknown.contains(&f) {
            FieldValue::Unknown(UnknownCause {
                truncated: f == FieldId::HttpBody,
                unparseable: f == FieldId::HttpBodyJson,
            })
        } else {
            self.inner.field(f)
        }
    }
}

fn unk(text: &str) -> Tri {
    let act = Partial {
        inner: http_action(),
        unknown: vec![FieldId::HttpBody, FieldId::HttpBodyJson],
    };
    compile(text, Family::Http).unwrap().eval(&act)
}

const TRUNC: Tri = Tri::Unknown(UnknownCause {
    truncated: true,
    unparseable: false,
});

#[test]
fn absorption_tables() {
    assert_eq!(unk("false && http.body == 'x'"), Tri::False);
    assert_eq!(unk("http.body == 'x' && false"), Tri::False);
    assert_eq!(unk("true || http.body == 'x'"), Tri::True);
    assert_eq!(unk("http.body == 'x' || true"), Tri::True);
    assert_eq!(unk("http.body == 'x' && true"), TRUNC);
    assert_eq!(unk("http.body == 'x' || false"), TRUNC);
    assert_eq!(unk("!(http.body == 'x')"), TRUNC);
    assert_eq!(unk("has(http.body)"), TRUNC);
    assert_eq!(
        unk("has(http.body_json.x)"),
        Tri::Unknown(UnknownCause {
            truncated: false,
            unparseable: true
        })
    );
    assert_eq!(
        unk("http.body == 'x' && http.body_json.a == 1"),
        Tri::Unknown(UnknownCause {
            truncated: true,
            unparseable: true
        })
    );
    // Errors: absorbed by false/true, beaten by unknown.
    assert_eq!(unk("{'a': 1}['b'] == 1 || true"), Tri::True);
    assert_eq!(unk("false && {'a': 1}['b'] == 1"), Tri::False);
    assert_eq!(unk("{'a': 1}['b'] == 1 && false"), Tri::False);
    assert_eq!(unk("{'a': 1}['b'] == 1 && http.body == 'x'"), TRUNC);
    assert_eq!(unk("http.body == 'x' || {'a': 1}['b'] == 1"), TRUNC);
    assert!(matches!(unk("{'a': 1}['b'] == 1 && true"), Tri::Error(_)));
    // Propagation through operators, conditionals and comprehensions.
    assert_eq!(unk("size(http.body) > 2"), TRUNC);
    assert_eq!(unk("(http.body == '' ? true : false)"), TRUNC);
    assert_eq!(unk("http.body.contains('a')"), TRUNC);
    assert_eq!(unk("http.body in ['a']"), TRUNC);
    assert_eq!(unk("[http.body].exists(x, x == 'a')"), TRUNC);
    assert_eq!(
        unk("['a', 'b'].exists(x, x == 'b' || http.body == x)"),
        Tri::True
    );
    assert_eq!(unk("['a', 'b'].exists(x, http.body == x)"), TRUNC);
    assert_eq!(unk("http.method == 'get'"), Tri::True);
}

#[test]
fn compiled_condition_is_send_sync() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<CompiledCondition>();
}

#[test]
fn typical_condition_is_fast() {
    for text in [
        "true",
        "http.method == 'get'",
        "http.method in ['get', 'head']",
        "http.path.startsWith('/repos/')",
        "http.method in ['get', 'head'] && http.path.startsWith('/repos/')",
    ] {
        let c = compile(text, Family::Http).unwrap();
        let a = http_action();
        let n = 200_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert_eq!(
                std::hint::black_box(&c).eval(std::hint::black_box(&a)),
                Tri::True
            );
        }
        let per = t.elapsed().as_nanos() / n;
        eprintln!("{text}: {per} ns/eval");
    }
}

#[test]
fn field_read_cost() {
    let a = http_action();
    let n = 1_000_000;
    let t = std::time::Instant::now();
    let mut k = 0usize;
    for _ in 0..n {
        if let FieldValue::Str(s) = std::hint::black_box(&a as &dyn Activation)
            .field(std::hint::black_box(FieldId::HttpMethod))
        {
            k += s.len();
        }
    }
    eprintln!("field read: {} ns ({k})", t.elapsed().as_nanos() / n);
}
