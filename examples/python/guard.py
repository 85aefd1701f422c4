"""A tool-call guard for an agent framework: check a SQL statement or an HTTP call against a
clawpatrol policy before the agent's tool executes it, and explain a denial.

Run:  python examples/python/guard.py [policy.hcl]
"""

import functools
import pathlib
import sys

import clawpatrol

DEFAULT_POLICY = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "examples" / "platform" / "policy.hcl"


class ToolCallDenied(Exception):
    """Raised instead of running a tool call the policy refuses; the message goes back to the agent."""

    def __init__(self, decision):
        super().__init__(decision.reason)
        self.decision = decision


class NeedsApproval(Exception):
    """Raised when the policy routes the call to approvers; the framework can page them."""

    def __init__(self, decision):
        super().__init__(f"approval required from {', '.join(decision.approvers)}")
        self.decision = decision


def check(policy, action):
    """Decides `action`; returns normally only when the call may run."""
    decision = policy.decide(action)
    if decision.verdict == "approve":
        raise NeedsApproval(decision)
    if not decision.allowed:
        raise ToolCallDenied(decision)
    return decision


def guarded_sql(policy, *, endpoint, database):
    """Decorates a tool `f(statement)` that runs SQL: every statement is checked first."""

    def wrap(f):
        @functools.wraps(f)
        def tool(statement):
            check(policy, clawpatrol.sql_action(statement, database=database, endpoint=endpoint))
            return f(statement)

        return tool

    return wrap


def guarded_http(policy):
    """Decorates a tool `f(method, url, body=None)` that calls an HTTP API."""

    def wrap(f):
        @functools.wraps(f)
        def tool(method, url, body=None):
            check(policy, clawpatrol.http_action(method, url, body=body))
            return f(method, url, body)

        return tool

    return wrap


def main():
    policy = clawpatrol.Policy.load(sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT_POLICY))

    @guarded_sql(policy, endpoint="postgres.pg-main", database="prod")
    def run_sql(statement):
        return f"(pretend we ran: {statement})"

    @guarded_http(policy)
    def call_api(method, url, body=None):
        return f"(pretend we called: {method} {url})"

    calls = [
        lambda: run_sql("SELECT id, total FROM orders WHERE customer_id = 42"),
        lambda: run_sql("DROP TABLE orders"),
        lambda: run_sql("DELETE FROM orders WHERE id = 7"),
        lambda: call_api("GET", "https://api.github.com/repos/acme/app/pulls"),
        lambda: call_api("DELETE", "https://api.github.com/repos/acme/app"),
    ]
    for call in calls:
        try:
            print("ran:", call())
        except ToolCallDenied as e:
            print("denied:", e)
            print("  " + e.decision.explain().replace("\n", "\n  "))
        except NeedsApproval as e:
            print("needs approval:", e)


if __name__ == "__main__":
    main()
