//! Differential test: our compiled CEL evaluator against the `cel` crate's interpreter on
//! seeded random (expression, facts) pairs.

use clawpatrol_core::cel::{compile, Tri};
use clawpatrol_core::facts::{Action, Family};
use serde_json::{json, Value as Json};

/// SplitMix64: a small deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
}

/// Fact values (mixed case) and literals (lower case only: literal lower-casing is ours alone).
const VALUES: &[&str] = &[
    "a", "b", "ab", "Ab", "get", "post", "/repos/x", "", "users", "x-y", "héllo",
];
const LITERALS: &[&str] = &[
    "a", "b", "ab", "get", "post", "/repos", "users", "x", "", "é",
];
const REGEXES: &[&str] = &[
    "^a", "b$", "a.*b", "[0-9]+", "^/repos/", "(?i)AB", "x|y", "",
];

/// Random facts for a family, as the `Action` fixture JSON and as the oracle's variables.
fn facts(r: &mut Rng, family: Family) -> (Json, Vec<(&'static str, Json)>) {
    let mut s = |r: &mut Rng| r.pick(VALUES).to_string();
    let list = |r: &mut Rng, s: &mut dyn FnMut(&mut Rng) -> String| -> Vec<String> {
        (0..r.below(4)).map(|_| s(r)).collect()
    };
    let mk_http = |r: &mut Rng, s: &mut dyn FnMut(&mut Rng) -> String| {
        let method = r.pick(&["get", "post", "head", "delete"]).to_string();
        let path = r
            .pick(&["/repos/x", "/repos/y/z", "/", "/Users"])
            .to_string();
        let q = list(r, s);
        let mut query = json!({"q": q});
        if r.chance(50) {
            query["page"] = json!([s(r)]);
        }
        let headers = json!({"X-A": list(r, s), "Content-Type": ["application/json"]});
        let n = r.below(5) as f64 - 1.0 + if r.chance(20) { 0.5 } else { 0.0 };
        let body_json = json!({"s": s(r), "n": n, "l": list(r, s), "b": r.chance(50)});
        let body = body_json.to_string();
        let fixture = json!({"method": method, "path": path, "query": query.clone(),
            "headers": headers.clone(), "body": body});
        let oracle = json!({"method": method, "path": path, "query": query, "headers": headers,
            "body": body, "body_json": body_json});
        (fixture, oracle)
    };
    match family {
        Family::Http => {
            let (f, o) = mk_http(r, &mut s);
            (json!({"http": f}), vec![("http", o)])
        }
        Family::K8s => {
            let (f, o) = mk_http(r, &mut s);
            let k = json!({"verb": r.pick(&["get", "list", "delete"]), "resource": s(r),
                "namespace": s(r), "name": s(r), "params": {"watch": s(r)}});
            (
                json!({"http": f, "k8s": k.clone()}),
                vec![("http", o), ("k8s", k)],
            )
        }
        Family::Sql => {
            let tables = list(r, &mut s);
            let functions: Vec<String> = list(r, &mut s).iter().map(|f| f.to_lowercase()).collect();
            let v = json!({"statement": s(r), "verb": r.pick(&["select", "insert", "drop"]),
                "tables": tables, "functions": functions, "database": s(r)});
            (json!({"sql": v.clone()}), vec![("sql", v)])
        }
        Family::Ssh => {
            let v = json!({"verb": r.pick(&["exec", "shell", "forward"]), "command": s(r),
                "subsystem": s(r), "forward_host": s(r), "forward_port": r.below(4) as i64 * 11,
                "user": s(r), "stdin": s(r)});
            (json!({"ssh": v.clone()}), vec![("ssh", v)])
        }
    }
}

/// A generator of well-typed expressions for one family.
struct Gen<'r> {
    r: &'r mut Rng,
    family: Family,
    /// String-typed comprehension variables in scope.
    vars: Vec<String>,
}

impl Gen<'_> {
    fn str_fields(&self) -> &'static [&'static str] {
        match self.family {
            Family::Http => &["http.method", "http.path", "http.body", "http.body_json.s"],
            Family::K8s => &[
                "k8s.verb",
                "k8s.resource",
                "k8s.namespace",
                "k8s.name",
                "k8s.params.watch",
                "k8s.params['watch']",
                "http.method",
                "http.path",
            ],
            Family::Sql => &["sql.verb", "sql.statement", "sql.database"],
            Family::Ssh => &[
                "ssh.verb",
                "ssh.command",
                "ssh.subsystem",
                "ssh.forward_host",
                "ssh.user",
                "ssh.stdin",
            ],
        }
    }
    fn list_fields(&self) -> &'static [&'static str] {
        match self.family {
            Family::Http | Family::K8s => &[
                "http.query['q']",
                "http.headers['X-A']",
                "http.body_json.l",
                "http.query.q",
            ],
            Family::Sql => &["sql.tables", "sql.functions"],
            Family::Ssh => &["['a', ssh.user]"],
        }
    }
    fn map_fields(&self) -> &'static [&'static str] {
        match self.family {
            Family::Http => &["http.query", "http.headers", "http.body_json"],
            Family::K8s => &["k8s.params", "http.query"],
            Family::Sql => &["{'a': sql.verb}"],
            Family::Ssh => &["{'a': 1, 'b': ssh.forward_port}"],
        }
    }
    fn lit(&mut self) -> String {
        format!("'{}'", self.r.pick(LITERALS))
    }

    fn string(&mut self, d: usize) -> String {
        let k = if d == 0 {
            self.r.below(3)
        } else {
            self.r.below(8)
        };
        match k {
            0 => self.lit(),
            1 => self.r.pick(self.str_fields()).to_string(),
            2 => match self.vars.last() {
                Some(v) => v.clone(),
                None => self.lit(),
            },
            3 => format!("({} + {})", self.string(d - 1), self.string(d - 1)),
            4 => format!(
                "({} ? {} : {})",
                self.boolean(d - 1),
                self.string(d - 1),
                self.string(d - 1)
            ),
            5 => format!("string({})", self.int(d - 1)),
            6 => format!("{}[0]", self.list(d - 1)),
            _ => self.r.pick(self.str_fields()).to_string(),
        }
    }

    fn int(&mut self, d: usize) -> String {
        let k = if d == 0 {
            self.r.below(2)
        } else {
            self.r.below(10)
        };
        match k {
            0 => format!("{}", self.r.below(12) as i64 - 3),
            1 if self.family == Family::Ssh => "ssh.forward_port".to_string(),
            1 => format!("{}", self.r.below(4)),
            2 => format!("size({})", self.string(d - 1)),
            3 => format!("{}.size()", self.list(d - 1)),
            4 => format!("size({})", self.r.pick(self.map_fields())),
            5 => {
                let op = self.r.pick(&["+", "-", "*", "/", "%"]);
                format!("({} {op} {})", self.int(d - 1), self.int(d - 1))
            }
            6 => format!("-{}", self.int(d - 1)),
            7 => format!(
                "({} ? {} : {})",
                self.boolean(d - 1),
                self.int(d - 1),
                self.int(d - 1)
            ),
            8 if matches!(self.family, Family::Http | Family::K8s) => {
                "int(http.body_json.n)".to_string()
            }
            _ => format!("{}", self.r.below(5)),
        }
    }

    fn list(&mut self, d: usize) -> String {
        let k = if d == 0 {
            self.r.below(2)
        } else {
            self.r.below(6)
        };
        match k {
            0 => {
                let n = self.r.below(4);
                let items: Vec<String> = (0..n).map(|_| self.lit()).collect();
                format!("[{}]", items.join(", "))
            }
            1 => self.r.pick(self.list_fields()).to_string(),
            2 => format!("({} + {})", self.list(d - 1), self.list(d - 1)),
            3 => {
                let range = self.list(d - 1);
                let v = format!("v{}", self.vars.len());
                self.vars.push(v.clone());
                let body = self.string(d - 1);
                let out = if self.r.chance(30) {
                    let f = self.boolean(d - 1);
                    format!("{range}.map({v}, {f}, {body})")
                } else {
                    format!("{range}.map({v}, {body})")
                };
                self.vars.pop();
                out
            }
            4 => {
                let range = self.list(d - 1);
                let v = format!("v{}", self.vars.len());
                self.vars.push(v.clone());
                let f = self.boolean(d - 1);
                self.vars.pop();
                format!("{range}.filter({v}, {f})")
            }
            _ => {
                let items: Vec<String> = (0..self.r.below(3)).map(|_| self.string(d - 1)).collect();
                format!("[{}]", items.join(", "))
            }
        }
    }

    fn boolean(&mut self, d: usize) -> String {
        let k = if d == 0 {
            self.r.below(3)
        } else {
            self.r.below(20)
        };
        match k {
            0 => self.r.pick(&["true", "false"]).to_string(),
            1 => format!("({} == {})", self.string(0), self.string(0)),
            2 => format!("{}.startsWith({})", self.string(0), self.lit()),
            3 => format!("!{}", self.boolean(d - 1)),
            4 => format!("({} && {})", self.boolean(d - 1), self.boolean(d - 1)),
            5 => format!("({} || {})", self.boolean(d - 1), self.boolean(d - 1)),
            6 => {
                let op = self.r.pick(&["==", "!=", "<", "<=", ">", ">="]);
                format!("({} {op} {})", self.string(d - 1), self.string(d - 1))
            }
            7 => {
                let op = self.r.pick(&["==", "!=", "<", "<=", ">", ">="]);
                let rhs = if self.r.chance(25) {
                    format!("{}.5", self.r.below(4))
                } else {
                    self.int(d - 1)
                };
                format!("({} {op} {rhs})", self.int(d - 1))
            }
            8 => format!("({} in {})", self.string(d - 1), self.list(d - 1)),
            9 => {
                let m = self.r.pick(&["contains", "startsWith", "endsWith"]);
                format!("{}.{m}({})", self.string(d - 1), self.string(d - 1))
            }
            10 => format!("{}.matches('{}')", self.string(d - 1), self.r.pick(REGEXES)),
            11 | 12 => {
                let range = self.list(d - 1);
                let v = format!("v{}", self.vars.len());
                self.vars.push(v.clone());
                let body = self.boolean(d - 1);
                self.vars.pop();
                let m = self.r.pick(&["exists", "all", "exists_one"]);
                format!("{range}.{m}({v}, {body})")
            }
            13 => format!(
                "({} ? {} : {})",
                self.boolean(d - 1),
                self.boolean(d - 1),
                self.boolean(d - 1)
            ),
            14 => format!("(size({}) > {})", self.list(d - 1), self.int(d - 1)),
            15 => {
                let m = self.r.pick(self.map_fields());
                match self.r.below(3) {
                    0 => format!("({} in {m})", self.lit()),
                    1 => {
                        let v = format!("v{}", self.vars.len());
                        self.vars.push(v.clone());
                        let body = self.boolean(d - 1);
                        self.vars.pop();
                        format!("{m}.exists({v}, {body})")
                    }
                    _ => format!("(size({m}) >= {})", self.int(d - 1)),
                }
            }
            16 => match self.family {
                Family::Http | Family::K8s => self
                    .r
                    .pick(&[
                        "has(http.body_json.s)",
                        "has(http.body_json.zz)",
                        "http.body_json.b",
                        "(http.body_json.n == 1)",
                        "(http.body_json.n < 1u)",
                        "has(http.query.page)",
                    ])
                    .to_string(),
                _ => format!("({} == {})", self.int(d - 1), self.int(d - 1)),
            },
            17 => format!("({} == {})", self.list(d - 1), self.list(d - 1)),
            18 => format!(
                "matches({}, '{}')",
                self.string(d - 1),
                self.r.pick(REGEXES)
            ),
            _ => format!("({} != {})", self.string(d - 1), self.lit()),
        }
    }
}

/// The `cel` crate's verdict, or `None` when it cannot run the expression at all.
fn oracle(program: &cel::Program, vars: &[(&'static str, Json)]) -> Option<Result<bool, String>> {
    let mut ctx = cel::Context::default();
    for (name, v) in vars {
        let value = cel::to_value(v).ok()?;
        ctx.add_variable_from_value(*name, value);
    }
    Some(match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("non-bool {other:?}")),
        Err(e) => Err(e.to_string()),
    })
}

#[test]
fn evaluator_agrees_with_the_cel_crate() {
    let mut r = Rng(0x5eed_c1a3);
    let families = [Family::Http, Family::K8s, Family::Sql, Family::Ssh];
    // Each expression is evaluated against several random fact sets (parsing dominates cost).
    let expressions = 2_500;
    let facts_per_expression = 4;
    let total = expressions * facts_per_expression;
    let mut defined = 0;
    let mut disagreements = Vec::new();
    for i in 0..expressions {
        let family = families[i % families.len()];
        let depth = 1 + r.below(3);
        let text = Gen {
            r: &mut r,
            family,
            vars: Vec::new(),
        }
        .boolean(depth);
        let ours = match compile(&text, family) {
            Ok(c) => c,
            Err(e) => panic!("{text} ({family}): {e:?}"),
        };
        let program = cel::Program::compile(&text).ok();
        for _ in 0..facts_per_expression {
            let (fixture, vars) = facts(&mut r, family);
            let action = Action::from_json(&fixture).expect("fixture");
            let got = ours.eval(&action);
            let theirs = program.as_ref().and_then(|p| oracle(p, &vars));
            match (&got, theirs) {
                (Tri::True | Tri::False, Some(Ok(b))) => {
                    defined += 1;
                    if (got == Tri::True) != b {
                        disagreements.push(format!(
                            "{text} ({family}): ours {got:?}, cel {b}\n  {fixture}"
                        ));
                    }
                }
                (Tri::Unknown(_), _) => panic!("{text}: unknown without unknown fields"),
                _ => {}
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        defined * 2 >= total,
        "only {defined} of {total} pairs were defined on both sides"
    );
    eprintln!("{defined} of {total} pairs defined on both sides");
}
