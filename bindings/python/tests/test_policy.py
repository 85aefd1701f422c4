"""The Python binding of the clawpatrol engine."""

import os
import pathlib
import threading

import pytest

import clawpatrol

ROOT = pathlib.Path(__file__).resolve().parents[3]
PLATFORM = ROOT / "fixtures" / "examples" / "platform" / "policy.hcl"

SMALL = (ROOT / "bindings" / "testdata" / "small.hcl").read_text()


@pytest.fixture(scope="module")
def small():
    return clawpatrol.Policy.from_string(SMALL, name="small.hcl")


def test_load_and_decide_a_dict():
    policy = clawpatrol.Policy.load(str(PLATFORM))
    d = policy.decide({"host": "api.github.com", "http": {"method": "DELETE", "path": "/repos/acme/app"}})
    assert d.verdict == "deny"
    assert d.rule == "gh-no-repo-delete"
    assert d.endpoint == "https.github"
    assert d.reason == "repositories are never deleted by agents"
    assert not d.allowed
    assert "gh-no-repo-delete" in d.explain()
    assert "https.github" in policy.endpoints


def test_verdicts_approvers_and_default_reason(small):
    d = small.decide({"host": "api.github.com", "http": {"method": "GET", "path": "/"}})
    assert (d.verdict, d.rule, d.allowed) == ("allow", "reads", True)
    d = small.decide({"host": "api.github.com", "http": {"method": "POST", "path": "/", "body": "{\"archived\": false}"}})
    assert d.verdict == "approve"
    assert d.approvers == ["human_approver.ops", "builtin.dashboard"]
    d = small.decide({"host": "api.github.com", "http": {"method": "PUT", "path": "/"}})
    assert (d.verdict, d.rule, d.reason) == ("deny", "default", "denied by policy")
    d = small.decide({"host": "elsewhere.org", "http": {"method": "GET", "path": "/"}})
    assert d.verdict == "passthrough" and d.endpoint is None and d.allowed


def test_fail_closed_on_evaluation_errors_and_truncation(small):
    d = small.decide({"host": "api.github.com", "http": {"method": "POST", "path": "/", "body": "{\"archived\": true}"}})
    assert (d.verdict, d.rule, d.reason) == ("deny", "body", "archiving needs a human")
    d = small.decide({"host": "api.github.com", "http": {"method": "POST", "path": "/", "body": "{}"}})
    assert d.rule == "body" and d.verdict == "deny"
    assert d.reason == 'rule "body" could not be evaluated against this request (evaluation error); failing closed'
    d = small.decide({"host": "api.github.com", "truncated": True,
                      "http": {"method": "POST", "path": "/", "body": "{\"archived\": false}"}})
    assert "truncated at the inspection buffer" in d.reason


def test_ssh_helper(small):
    d = small.decide(clawpatrol.ssh_action("PTY", host="box.example.com"))
    assert (d.verdict, d.rule, d.reason) == ("deny", "no-pty", "no terminals")
    d = small.decide(clawpatrol.ssh_action("exec", command="ls", host="box.example.com"))
    assert d.verdict == "allow" and d.rule is None


def test_decision_dict_and_explain(small):
    d = small.decide({"host": "api.github.com", "http": {"method": "PUT", "path": "/"}})
    j = d.to_dict()
    assert j["verdict"] == "deny" and j["rule"] == "default" and j["endpoint"] == "https.gh"
    steps = [s["rule"] for s in j["trace"]]
    assert steps == ["body", "reads", "writes", "default"]
    text = d.explain()
    assert text.splitlines()[0] == "deny by rule `default` on https.gh"
    assert "rule `reads` (priority 0): no match" in text


def test_policy_error_carries_the_position(tmp_path):
    bad = tmp_path / "bad.hcl"
    bad.write_text('endpoint "https" "gh" { hosts = ["api.github.com"] }\n'
                   'rule "r" {\n  endpoint  = https.gh\n  condition = "sql.verb == \'x\'"\n  verdict   = "allow"\n}\n'
                   'rule "s" {\n  endpoint = https.nope\n  verdict  = "deny"\n}\n')
    with pytest.raises(clawpatrol.PolicyError) as info:
        clawpatrol.Policy.load(str(bad))
    e = info.value
    assert e.file == str(bad)
    assert (e.line, e.column) == (4, 16)
    assert len(e.errors) == 2
    assert "bad.hcl:8:14" in str(e)
    with pytest.raises(clawpatrol.PolicyError) as info:
        clawpatrol.Policy.from_string("nonsense {", name="inline.hcl")
    assert info.value.file == "inline.hcl" and info.value.line == 1


def test_bad_actions_raise():
    policy = clawpatrol.Policy.from_string(SMALL)
    with pytest.raises(ValueError, match="exactly one of http/k8s/sql/ssh"):
        policy.decide({"host": "x"})
    with pytest.raises(ValueError, match='http: json: unknown field "nope"'):
        policy.decide({"http": {"nope": 1}})
    with pytest.raises(TypeError):
        policy.decide(42)


def test_threads_share_one_policy(small):
    results = []

    def work(method):
        for _ in range(2000):
            results.append(small.decide({"host": "api.github.com", "http": {"method": method, "path": "/"}}).verdict)

    threads = [threading.Thread(target=work, args=(m,)) for m in ("GET", "PUT", "GET", "PUT")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("allow") == 4000 and results.count("deny") == 4000


def test_replays_fixtures(tmp_path):
    (tmp_path / "a.json").write_text('{"action":{"host":"api.github.com","http":{"method":"GET","path":"/"}},'
                                     '"match":{"verdict":"allow","rule":"reads"}}')
    (tmp_path / "b.json").write_text('{"action":{"host":"api.github.com","http":{"method":"GET","path":"/"}},'
                                     '"match":{"verdict":"deny","rule":"reads"}}')
    (tmp_path / "c.json").write_text('{"action":{"http":{}}}')
    policy = clawpatrol.Policy.from_string(SMALL)
    r = policy.test(str(tmp_path))
    assert [x.status for x in r] == ["ok", "fail", "error"]
    assert r[0].ok and not r[1].ok
    assert r[1].want == ("deny", "reads", "") and r[1].got == ("allow", "reads", "https.gh")
    assert r[2].error == "fixture: match is required"


def test_request_and_sql_helpers():
    policy = clawpatrol.Policy.load(str(PLATFORM))
    d = policy.decide(clawpatrol.http_action("DELETE", "https://api.github.com/repos/acme/app"))
    assert (d.verdict, d.rule) == ("deny", "gh-no-repo-delete")
    d = policy.decide(clawpatrol.http_action(
        "POST", "https://api.github.com/repos/acme/app/issues/7/comments",
        headers={"Content-Type": "application/json"}, body=b'{"body": "thanks"}'))
    assert (d.verdict, d.rule) == ("allow", "gh-issue-comments")
    d = policy.decide(clawpatrol.http_action("POST", "https://api.github.com/graphql", body="mutation { x }"))
    assert d.verdict == "deny" and d.rule == "gh-default"
    d = policy.decide(clawpatrol.k8s_action("GET", "https://k8s-prod.example.com:6443/api/v1/namespaces/dev/secrets/db"))
    assert (d.verdict, d.rule) == ("deny", "k8s-no-secrets")
    d = policy.decide(clawpatrol.k8s_action("GET", "https://k8s-prod.example.com:6443/healthz/etcd"))
    assert d.verdict == "deny" and "could not be evaluated" in d.reason
    d = policy.decide(clawpatrol.sql_action("SELECT id FROM orders; DROP TABLE orders",
                                            database="prod", host="pg-main.internal:5432"))
    assert (d.verdict, d.rule) == ("deny", "pg-no-ddl")
    d = policy.decide(clawpatrol.sql_action("SELECT id FROM orders WHERE id = 1", database="prod",
                                            endpoint="postgres.pg-main"))
    assert (d.verdict, d.rule) == ("allow", "pg-reads")
    d = policy.decide(clawpatrol.sql_action("SELEC nonsense", database="prod", endpoint="postgres.pg-main"))
    assert d.verdict == "deny" and "unparseable" in d.reason


def test_the_guard_example_runs():
    import subprocess
    import sys

    example = ROOT / "examples" / "python" / "guard.py"
    out = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, check=True).stdout
    assert "ran: (pretend we ran: SELECT id, total FROM orders WHERE customer_id = 42)" in out
    assert "denied: schema and privilege changes land via migrations" in out
    assert "needs approval: approval required from human_approver.ops" in out
    assert "denied: repositories are never deleted by agents" in out
