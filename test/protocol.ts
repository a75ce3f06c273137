import t from 'tap'
import { ExitStatus, isServeMessage, isTakenMessage, serveMessage, takenMessage } from '../lib/protocol.js'

const info = { id: 1, remoteAddress: '127.0.0.1', remotePort: 5555, localAddress: '127.0.0.1', localPort: 7000 }
const spec = { service: 'echo', handler: null, idleTimeout: 0 }

t.test('messages survive the JSON channel and are recognised by type', async (t) => {
  const serve = JSON.parse(JSON.stringify(serveMessage(info, spec))) as unknown
  t.ok(isServeMessage(serve))
  t.notOk(isTakenMessage(serve))
  const taken = JSON.parse(JSON.stringify(takenMessage())) as unknown
  t.ok(isTakenMessage(taken))
  t.notOk(isServeMessage(taken))
})

t.test('anything else is not a message of ours', async (t) => {
  for (const m of [null, undefined, 'serve', 42, {}, { type: 'serve' }, { type: 'serve', info: 1, spec }, { cmd: 'NODE_HANDLE' }]) {
    t.notOk(isServeMessage(m), JSON.stringify(m) ?? 'undefined')
    t.notOk(isTakenMessage(m), JSON.stringify(m) ?? 'undefined')
  }
})

t.test('exit statuses are distinct, and 0 only means success', async (t) => {
  const values = Object.values(ExitStatus)
  t.equal(new Set(values).size, values.length)
  t.equal(ExitStatus.OK, 0)
  t.ok(values.filter((v) => v !== ExitStatus.OK).every((v) => v > 0))
})
