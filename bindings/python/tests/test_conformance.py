"""Every bundled fixture, decided through the binding's `decide()`, agrees with the Rust runner."""

import json
import pathlib

import pytest

import clawpatrol

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures"


def suites():
    for policy in sorted(FIXTURES.glob("*/policy.hcl")):
        for d in sorted(policy.parent.glob("fixtures*")):
            if d.is_dir():
                yield policy, d


@pytest.mark.parametrize("policy_path,fixture_dir", list(suites()), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_binding_agrees_with_the_runner(policy_path, fixture_dir):
    policy = clawpatrol.Policy.load(str(policy_path))
    runner = {r.path: r for r in policy.test(str(fixture_dir))}
    assert runner, fixture_dir
    checked = 0
    for path in sorted(fixture_dir.glob("*.json")):
        fixture = json.loads(path.read_text())
        action = dict(fixture["action"])
        endpoint = fixture["match"].get("endpoint")
        if endpoint:
            action["endpoint"] = endpoint
        decision = policy.decide(action)
        r = runner[str(path)]
        assert r.got is not None, (path, r.error)
        verdict, rule, _ = r.got
        assert (decision.verdict, decision.rule or "") == (verdict, rule), path
        # The runner checked these against the fixture's expectation.
        assert r.ok, (path, r.want, r.got, r.error)
        checked += 1
    assert checked == len(runner)


def test_enough_fixtures_are_bundled():
    total = sum(len(list(d.glob("*.json"))) for _, d in suites())
    assert total >= 150
