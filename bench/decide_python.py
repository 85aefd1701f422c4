"""Per-call cost of `Policy.decide()` from Python on a prebuilt http action (budget ≤ 5 µs)."""

import pathlib
import statistics
import time

import clawpatrol

POLICY = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "examples" / "platform" / "policy.hcl"

policy = clawpatrol.Policy.load(str(POLICY))
action = clawpatrol.http_action("GET", "https://api.github.com/repos/acme/app/pulls?state=open",
                                headers={"Accept": "application/vnd.github+json"})
assert policy.decide(action).rule == "gh-reads"

N = 20_000
for _ in range(N):  # warm-up
    policy.decide(action)
samples = []
for _ in range(15):
    t = time.perf_counter_ns()
    for _ in range(N):
        policy.decide(action)
    samples.append((time.perf_counter_ns() - t) / N)
print(f"python decide(): median {statistics.median(samples) / 1000:.2f} µs per call "
      f"(min {min(samples) / 1000:.2f}, max {max(samples) / 1000:.2f}; 15 batches of {N})")
