// Which start-up flags make a forkserver child ready sooner? For each set of
// flags, fork dist/child.js as the server does, hand it a real loopback
// connection, and time fork → its `taken` reply; p50 over a few samples.
//   node dist/bench/startup-flags.js [samples]
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { isMessage, message } from '../lib/protocol.js'
import { rawHandle, sendable } from '../lib/net/raw-handle.js'

const CHILD = fileURLToPath(new URL('../child.js', import.meta.url))
const SAMPLES = Number(process.argv[2] ?? 15)

const VARIANTS: readonly (readonly string[])[] = [
  [],
  ['--max-semi-space-size=1'],
  ['--max-lazy'],
  ['--no-opt'],
  ['--jitless'],
  ['--single-threaded'],
  ['--v8-pool-size=0'],
  ['--stack-size=512'],
]

const server = createServer({ pauseOnConnect: true })
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const port = (server.address() as AddressInfo).port

const once1 = async (execArgv: readonly string[]): Promise<number> => {
  const client = connect(port, '127.0.0.1')
  const [socket] = (await once(server, 'connection')) as [Socket]
  const started = process.hrtime.bigint()
  const child = fork(CHILD, [], { execArgv: [...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const info = { id: 1, protocol: 'TCP' as const, remoteAddress: '127.0.0.1', remotePort: client.localPort ?? 0, localAddress: '127.0.0.1', localPort: port }
  child.send(message('serve', { info, spec: { service: 'echo', handler: null, exec: null, idleTimeout: 0, logFormat: 'text' } }), sendable(rawHandle(socket)), { keepOpen: true })
  await new Promise<void>((resolve) => child.on('message', (m) => isMessage(m, 'taken') && resolve()))
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  socket.destroy()
  client.end()
  await once(child, 'exit')
  client.destroy()
  return ms
}

const p50 = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN

process.stdout.write('| execArgv | fork → taken, p50 ms |\n| --- | --- |\n')
for (const variant of VARIANTS) {
  const times: number[] = []
  for (let i = 0; i < SAMPLES; i++) times.push(await once1(variant))
  process.stdout.write(`| ${variant.join(' ') || '(none)'} | ${p50(times).toFixed(1)} |\n`)
}
server.close()
