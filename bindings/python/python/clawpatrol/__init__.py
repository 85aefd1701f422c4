"""clawpatrol: check what an AI agent is about to do against a Claw Patrol policy, in-process.

    import clawpatrol
    policy = clawpatrol.Policy.load("policy.hcl")
    decision = policy.decide(clawpatrol.http_action("DELETE", "https://api.github.com/repos/acme/app"))
    if not decision.allowed:
        print(decision.reason)
        print(decision.explain())

The engine is the same Rust code the clawpatrol gateway and `clawpatrol test` run, so the
verdicts are identical.
"""

from ._clawpatrol import (
    Action,
    Decision,
    FixtureResult,
    Policy,
    PolicyError,
    __version__,
    action_from_dict,
    http_action,
    k8s_action,
    sql_action,
    ssh_action,
)

__all__ = [
    "Action",
    "Decision",
    "FixtureResult",
    "Policy",
    "PolicyError",
    "__version__",
    "action_from_dict",
    "http_action",
    "k8s_action",
    "sql_action",
    "ssh_action",
]
