'use strict'
// Every bundled fixture, decided through the binding's decide(), agrees with the Rust runner.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const clawpatrol = require('..')

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'fixtures')

function suites () {
  const out = []
  for (const dir of fs.readdirSync(FIXTURES).sort()) {
    const policy = path.join(FIXTURES, dir, 'policy.hcl')
    if (!fs.existsSync(policy)) continue
    for (const sub of fs.readdirSync(path.join(FIXTURES, dir)).sort()) {
      const full = path.join(FIXTURES, dir, sub)
      if (sub.startsWith('fixtures') && fs.statSync(full).isDirectory()) out.push([policy, full])
    }
  }
  return out
}

let total = 0
for (const [policyPath, dir] of suites()) {
  test(`binding agrees with the runner: ${path.relative(FIXTURES, dir)}`, () => {
    const policy = clawpatrol.Policy.load(policyPath)
    const runner = new Map(policy.test(dir).map((r) => [r.path, r]))
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
    assert.ok(files.length > 0)
    for (const f of files) {
      const file = path.join(dir, f)
      const fixture = JSON.parse(fs.readFileSync(file, 'utf8'))
      const action = { ...fixture.action }
      if (fixture.match.endpoint) action.endpoint = fixture.match.endpoint
      const d = policy.decide(action)
      const r = runner.get(file)
      assert.ok(r && r.got, `${file}: ${r && r.error}`)
      assert.deepEqual([d.verdict, d.rule ?? ''], [r.got[0], r.got[1]], file)
      assert.equal(r.status, 'ok', `${file}: want ${r.want} got ${r.got}`)
      total += 1
    }
  })
}

test('enough fixtures are bundled', () => {
  assert.ok(total >= 150, `only ${total}`)
})
