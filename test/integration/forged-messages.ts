// A handler runs in the child and can call process.send: the parent believes
// a message only from the role that may send it (lib/parent/parent.ts heard()).
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { exchange } from '../fixtures/client.js'
import { childrenOf, startServer } from '../fixtures/server.js'

const FORGER = fileURLToPath(new URL('../fixtures/handlers/forger.js', import.meta.url))

for (const spares of [0, 1]) {
  t.test(`a handler that forges tally, listener, taken and ready moves no count and starts no worker${spares ? ' (from a spare)' : ''}`, async (t) => {
    const server = await startServer(t, ['--start', 'spawn', '--handler', FORGER, '--spares', String(spares), '-v']) // (a spawned child has the channel it forges on)
    t.equal((await exchange(server.port, 'hi')).data.toString(), 'forged\n')
    const end = await server.waitFor(/^end (\d+) status 0$/)
    const warnings = server.lines.filter((line) => line.includes('message it may not send'))
    t.same(warnings, [`warning: pid ${end[1]} (busy) sent a 'tally' message it may not send; ignoring it and any more it sends`], 'one warning for all six')
    t.equal(childrenOf(server.pid).length, spares, 'no worker was started')
    const from = server.lines.length
    server.signal('SIGUSR1')
    t.match((await server.waitFor(/^status: \d+\/\d+ children, /, from)).input, new RegExp(`^status: ${spares}/40 children, accepted 1, served 1, denied 0, dropped 0, failed 0, peak ${spares + 1}$`))
    server.signal('SIGTERM')
    t.same(await server.exited, { code: 0, signal: null })
    t.equal(server.lines.at(-1), `shutdown: served 1, peak ${spares + 1}, failed 0, denied 0, dropped 0`)
  })
}
