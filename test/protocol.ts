import t from 'tap'
import { ExitStatus, isMessage, message } from '../lib/protocol.js'

const info = { id: 1, protocol: 'TCP' as const, remoteAddress: '127.0.0.1', remotePort: 5555, localAddress: '127.0.0.1', localPort: 7000 }
const spec = { service: 'echo', handler: null, exec: null, idleTimeout: 0, logFormat: 'text' } as const

// What arrives at the other end of the JSON channel.
const wire = (m: unknown): unknown => JSON.parse(JSON.stringify(m))

t.test('messages survive the JSON channel and are recognised by their type', async (t) => {
  const serve = wire(message('serve', { info, spec }))
  t.ok(isMessage(serve, 'serve'))
  t.notOk(isMessage(serve, 'taken'))
  t.same(serve, { type: 'serve', info, spec })
  t.ok(isMessage(wire(message('taken', {})), 'taken'))
  const tally = wire(message('tally', { tally: { accepted: 4, served: 3, failed: 1, denied: 0, dropped: 0 } }))
  t.ok(isMessage(tally, 'tally') && tally.tally.served === 3)
  const work = wire(message('work', { spec: { ...spec, allow: [], deny: ['10.0.0.0/8'], verbose: true, maxConnsPerChild: 5, unixPath: null, proxy: null }, lend: true }))
  t.ok(isMessage(work, 'work') && work.lend && work.spec.deny[0] === '10.0.0.0/8')
})

t.test('anything else is not a message of ours', async (t) => {
  for (const m of [null, undefined, 'serve', 42, {}, { cmd: 'NODE_HANDLE' }, { type: 'other' }]) {
    t.notOk(isMessage(m, 'serve'), JSON.stringify(m) ?? 'undefined')
  }
})

t.test('exit statuses are distinct, and 0 only means success', async (t) => {
  const values = Object.values(ExitStatus)
  t.equal(new Set(values).size, values.length)
  t.equal(ExitStatus.OK, 0)
  t.ok(values.filter((v) => v !== ExitStatus.OK).every((v) => v > 0))
})
