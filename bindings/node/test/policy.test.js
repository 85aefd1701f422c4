'use strict'
// The Node binding of the clawpatrol engine.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const clawpatrol = require('..')

const ROOT = path.resolve(__dirname, '..', '..', '..')
const PLATFORM = path.join(ROOT, 'fixtures', 'examples', 'platform', 'policy.hcl')

const SMALL = fs.readFileSync(path.join(ROOT, 'bindings', 'testdata', 'small.hcl'), 'utf8')

const small = clawpatrol.Policy.fromString(SMALL, 'small.hcl')
const http = (method, body) => ({ host: 'api.github.com', http: { method, path: '/', ...(body ? { body } : {}) } })

test('load a policy file and decide an object', () => {
  const policy = clawpatrol.Policy.load(PLATFORM)
  const d = policy.decide({ host: 'api.github.com', http: { method: 'DELETE', path: '/repos/acme/app' } })
  assert.equal(d.verdict, 'deny')
  assert.equal(d.rule, 'gh-no-repo-delete')
  assert.equal(d.endpoint, 'https.github')
  assert.equal(d.reason, 'repositories are never deleted by agents')
  assert.equal(d.allowed, false)
  assert.match(d.explain(), /gh-no-repo-delete/)
  assert.ok(policy.endpoints.includes('https.github'))
})

test('verdicts, approvers and the default reason', () => {
  let d = small.decide(http('GET'))
  assert.deepEqual([d.verdict, d.rule, d.allowed], ['allow', 'reads', true])
  d = small.decide(http('POST', '{"archived": false}'))
  assert.equal(d.verdict, 'approve')
  assert.deepEqual(d.approvers, ['human_approver.ops', 'builtin.dashboard'])
  d = small.decide(http('PUT'))
  assert.deepEqual([d.verdict, d.rule, d.reason], ['deny', 'default', 'denied by policy'])
  d = small.decide({ host: 'elsewhere.org', http: { method: 'GET', path: '/' } })
  assert.equal(d.verdict, 'passthrough')
  assert.equal(d.endpoint, null)
})

test('fail closed on evaluation errors and truncation', () => {
  let d = small.decide(http('POST', '{}'))
  assert.equal(d.rule, 'body')
  assert.equal(d.reason, 'rule "body" could not be evaluated against this request (evaluation error); failing closed')
  d = small.decide({ ...http('POST', '{"archived": false}'), truncated: true })
  assert.match(d.reason, /truncated at the inspection buffer/)
})

test('sshAction helper', () => {
  let d = small.decide(clawpatrol.sshAction('PTY', { host: 'box.example.com' }))
  assert.deepEqual([d.verdict, d.rule, d.reason], ['deny', 'no-pty', 'no terminals'])
  d = small.decide(clawpatrol.sshAction('exec', { command: 'ls', host: 'box.example.com' }))
  assert.equal(d.verdict, 'allow')
  assert.equal(d.rule, null)
})

test('toJSON and explain', () => {
  const d = small.decide(http('PUT'))
  const j = d.toJSON()
  assert.equal(j.verdict, 'deny')
  assert.deepEqual(j.trace.map((s) => s.rule), ['body', 'reads', 'writes', 'default'])
  assert.equal(d.explain().split('\n')[0], 'deny by rule `default` on https.gh')
  assert.equal(JSON.parse(JSON.stringify(d)).rule, 'default')
})

test('PolicyError carries file, line and column', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpatrol-node-'))
  const bad = path.join(dir, 'bad.hcl')
  fs.writeFileSync(bad, 'endpoint "https" "gh" { hosts = ["api.github.com"] }\n' +
    'rule "r" {\n  endpoint  = https.gh\n  condition = "sql.verb == \'x\'"\n  verdict   = "allow"\n}\n' +
    'rule "s" {\n  endpoint = https.nope\n  verdict  = "deny"\n}\n')
  assert.throws(() => clawpatrol.Policy.load(bad), (e) => {
    assert.ok(e instanceof clawpatrol.PolicyError)
    assert.ok(e instanceof Error)
    assert.equal(e.file, bad)
    assert.equal(e.line, 4)
    assert.equal(e.column, 16)
    assert.equal(e.errors.length, 2)
    assert.match(e.message, /bad\.hcl:8:14/)
    return true
  })
  assert.throws(() => clawpatrol.Policy.fromString('nonsense {', 'inline.hcl'),
    (e) => e instanceof clawpatrol.PolicyError && e.file === 'inline.hcl' && e.line === 1)
  fs.rmSync(dir, { recursive: true })
})

test('bad actions throw', () => {
  assert.throws(() => small.decide({ host: 'x' }), /exactly one of http\/k8s\/sql\/ssh/)
  assert.throws(() => small.decide({ http: { nope: 1 } }), /http: json: unknown field "nope"/)
  assert.throws(() => small.decide(42))
})

test('replays fixtures', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpatrol-node-fx-'))
  fs.writeFileSync(path.join(dir, 'a.json'), JSON.stringify({ action: http('GET'), match: { verdict: 'allow', rule: 'reads' } }))
  fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ action: http('GET'), match: { verdict: 'deny', rule: 'reads' } }))
  fs.writeFileSync(path.join(dir, 'c.json'), JSON.stringify({ action: { http: {} } }))
  const r = small.test(dir)
  assert.deepEqual(r.map((x) => x.status), ['ok', 'fail', 'error'])
  assert.deepEqual(r[1].want, ['deny', 'reads', ''])
  assert.deepEqual(r[1].got, ['allow', 'reads', 'https.gh'])
  assert.equal(r[2].error, 'fixture: match is required')
  fs.rmSync(dir, { recursive: true })
})

test('request and SQL helpers', () => {
  const policy = clawpatrol.Policy.load(PLATFORM)
  let d = policy.decide(clawpatrol.httpAction('DELETE', 'https://api.github.com/repos/acme/app'))
  assert.deepEqual([d.verdict, d.rule], ['deny', 'gh-no-repo-delete'])
  d = policy.decide(clawpatrol.httpAction('POST', 'https://api.github.com/repos/acme/app/issues/7/comments',
    { headers: { 'Content-Type': 'application/json' }, body: Buffer.from('{"body": "thanks"}') }))
  assert.deepEqual([d.verdict, d.rule], ['allow', 'gh-issue-comments'])
  d = policy.decide(clawpatrol.k8sAction('GET', 'https://k8s-prod.example.com:6443/api/v1/namespaces/dev/secrets/db'))
  assert.deepEqual([d.verdict, d.rule], ['deny', 'k8s-no-secrets'])
  d = policy.decide(clawpatrol.sqlAction('SELECT id FROM orders; DROP TABLE orders', { database: 'prod', host: 'pg-main.internal:5432' }))
  assert.deepEqual([d.verdict, d.rule], ['deny', 'pg-no-ddl'])
  d = policy.decide(clawpatrol.sqlAction('SELEC nonsense', { database: 'prod', endpoint: 'postgres.pg-main' }))
  assert.equal(d.verdict, 'deny')
  assert.match(d.reason, /unparseable/)
})

test('the guard example runs', () => {
  const { execFileSync } = require('node:child_process')
  const out = execFileSync(process.execPath, [path.join(ROOT, 'examples', 'node', 'guard.js')], { encoding: 'utf8' })
  assert.match(out, /ran: \(pretend we ran: SELECT id, total FROM orders WHERE customer_id = 42\)/)
  assert.match(out, /denied: schema and privilege changes land via migrations/)
  assert.match(out, /needs approval: approval required from human_approver\.ops/)
  assert.match(out, /denied: repositories are never deleted by agents/)
})
