'use strict'
// Per-call cost of `policy.decide()` from Node on a prebuilt http action (budget ≤ 5 µs).
const path = require('node:path')
const clawpatrol = require('../bindings/node')

const policy = clawpatrol.Policy.load(path.resolve(__dirname, '..', 'fixtures', 'examples', 'platform', 'policy.hcl'))
const action = clawpatrol.httpAction('GET', 'https://api.github.com/repos/acme/app/pulls?state=open',
  { headers: { Accept: 'application/vnd.github+json' } })
if (policy.decide(action).rule !== 'gh-reads') throw new Error('unexpected decision')

const N = 20000
for (let i = 0; i < N; i++) policy.decide(action)
const samples = []
for (let b = 0; b < 15; b++) {
  const t = process.hrtime.bigint()
  for (let i = 0; i < N; i++) policy.decide(action)
  samples.push(Number(process.hrtime.bigint() - t) / N)
}
samples.sort((a, b) => a - b)
const us = (ns) => (ns / 1000).toFixed(2)
console.log(`node decide(): median ${us(samples[7])} µs per call (min ${us(samples[0])}, max ${us(samples[14])}; 15 batches of ${N})`)
