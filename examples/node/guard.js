'use strict'
// A tool-call guard for an agent framework: check a SQL statement or an HTTP call against a
// clawpatrol policy before the agent's tool executes it, and explain a denial.
//
// Run:  node examples/node/guard.js [policy.hcl]
const path = require('node:path')
const clawpatrol = require('../../bindings/node')

const DEFAULT_POLICY = path.resolve(__dirname, '..', '..', 'fixtures', 'examples', 'platform', 'policy.hcl')

class ToolCallDenied extends Error {
  constructor (decision) {
    super(decision.reason)
    this.decision = decision
  }
}

class NeedsApproval extends Error {
  constructor (decision) {
    super(`approval required from ${decision.approvers.join(', ')}`)
    this.decision = decision
  }
}

/** Decides `action`; returns only when the call may run. */
function check (policy, action) {
  const decision = policy.decide(action)
  if (decision.verdict === 'approve') throw new NeedsApproval(decision)
  if (!decision.allowed) throw new ToolCallDenied(decision)
  return decision
}

/** Wraps a tool `run(statement)` that executes SQL: every statement is checked first. */
function guardedSql (policy, { endpoint, database }, run) {
  return (statement) => {
    check(policy, clawpatrol.sqlAction(statement, { endpoint, database }))
    return run(statement)
  }
}

/** Wraps a tool `call(method, url, body)` that calls an HTTP API. */
function guardedHttp (policy, call) {
  return (method, url, body) => {
    check(policy, clawpatrol.httpAction(method, url, body ? { body } : undefined))
    return call(method, url, body)
  }
}

function main () {
  const policy = clawpatrol.Policy.load(process.argv[2] || DEFAULT_POLICY)
  const runSql = guardedSql(policy, { endpoint: 'postgres.pg-main', database: 'prod' },
    (s) => `(pretend we ran: ${s})`)
  const callApi = guardedHttp(policy, (m, u) => `(pretend we called: ${m} ${u})`)
  const calls = [
    () => runSql('SELECT id, total FROM orders WHERE customer_id = 42'),
    () => runSql('DROP TABLE orders'),
    () => runSql('DELETE FROM orders WHERE id = 7'),
    () => callApi('GET', 'https://api.github.com/repos/acme/app/pulls'),
    () => callApi('DELETE', 'https://api.github.com/repos/acme/app')
  ]
  for (const call of calls) {
    try {
      console.log('ran:', call())
    } catch (e) {
      if (e instanceof ToolCallDenied) {
        console.log('denied:', e.message)
        console.log('  ' + e.decision.explain().replace(/\n/g, '\n  '))
      } else if (e instanceof NeedsApproval) {
        console.log('needs approval:', e.message)
      } else {
        throw e
      }
    }
  }
}

main()
