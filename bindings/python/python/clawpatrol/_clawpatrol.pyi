"""Type stubs of the native module `clawpatrol._clawpatrol`."""

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

__version__: str

class PolicyError(Exception):
    """A policy that does not load; locates the first error and lists every error."""

    summary: Optional[str]
    file: Optional[str]
    line: Optional[int]
    column: Optional[int]
    errors: List[str]

class Action:
    """One action to decide (a SQL text may hold several statements, decided in order)."""

class Decision:
    """The decision for one action."""

    @property
    def verdict(self) -> str: ...
    @property
    def rule(self) -> Optional[str]: ...
    @property
    def endpoint(self) -> Optional[str]: ...
    @property
    def reason(self) -> str: ...
    @property
    def approvers(self) -> List[str]: ...
    @property
    def allowed(self) -> bool: ...
    def explain(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

class FixtureResult:
    """The result of replaying one fixture file."""

    path: str
    status: str
    error: Optional[str]
    want: Optional[Tuple[str, str, str]]
    got: Optional[Tuple[str, str, str]]
    @property
    def ok(self) -> bool: ...

class Policy:
    """A compiled policy; thread-safe, share one instance."""

    @staticmethod
    def load(path: Union[str, "os.PathLike[str]"]) -> "Policy": ...
    @staticmethod
    def from_string(text: str, name: str = "policy.hcl") -> "Policy": ...
    def decide(self, action: Union[Action, Mapping[str, Any]]) -> Decision: ...
    def test(
        self, path: Union[str, "os.PathLike[str]"], recursive: bool = False
    ) -> List[FixtureResult]: ...
    @property
    def endpoints(self) -> List[str]: ...
    @property
    def warnings(self) -> List[str]: ...

def action_from_dict(action: Mapping[str, Any]) -> Action: ...
def http_action(
    method: str,
    url: str,
    *,
    headers: Optional[Mapping[str, str]] = None,
    body: Union[str, bytes, None] = None,
    credential: str = "",
    endpoint: Optional[str] = None,
) -> Action: ...
def k8s_action(
    method: str,
    url: str,
    *,
    headers: Optional[Mapping[str, str]] = None,
    body: Union[str, bytes, None] = None,
    credential: str = "",
    endpoint: Optional[str] = None,
) -> Action: ...
def sql_action(
    statement: str,
    *,
    database: str = "",
    host: str = "",
    credential: str = "",
    endpoint: Optional[str] = None,
    truncated: bool = False,
) -> Action: ...
def ssh_action(
    verb: str,
    *,
    command: str = "",
    subsystem: str = "",
    forward_host: str = "",
    forward_port: int = 0,
    user: str = "",
    stdin: str = "",
    host: str = "",
    credential: str = "",
    endpoint: Optional[str] = None,
    truncated: bool = False,
) -> Action: ...
