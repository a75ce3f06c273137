// tcpserver's form, as a tcpserver user types it: HOST PORT PROGRAM [ARGS...].
// Where tcpserver (ucspi-tcp) is installed, the same words are run under both
// and must get the same reply.
import { spawn, spawnSync } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { exchange, type Reply } from '../fixtures/client.js'
import { runServer, stopServer, type Running } from '../fixtures/server.js'

/** Waits for the server's readiness line, and resolves with its port. */
const listening = async (server: Running): Promise<number> => Number((await server.waitFor(/^listening on (?:.+):(\d+), pid \d+$/))[1])

t.test('127.0.0.1 0 cat is an echo server', async (t) => {
  const server = runServer(t, ['127.0.0.1', '0', 'cat'])
  const port = await listening(server)
  t.equal((await exchange(port, 'hello\n')).data.toString(), 'hello\n')
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test("the words after PROGRAM are the program's, options included", async (t) => {
  const server = runServer(t, ['-v', '127.0.0.1', '0', 'sh', '-c', 'echo "$@"; exec cat -n', 'sh', '-v', '--port', '1'])
  const port = await listening(server)
  const reply = (await exchange(port, 'hello\n')).data.toString()
  t.equal(reply, '-v --port 1\n     1\thello\n', 'sh got -c and its script, the script got -v --port 1, and cat got -n')
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('HOST PORT with no program serves the service', async (t) => {
  const server = runServer(t, ['127.0.0.1', '0'])
  const port = await listening(server)
  t.equal((await exchange(port, 'echo me\n')).data.toString(), 'echo me\n')
  t.same(await stopServer(server), { code: 0, signal: null })
})

/** A port nothing listens on just now. */
const freePort = async (): Promise<number> => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** Connects as soon as something listens on `port` (tcpserver prints nothing when it is ready), then exchanges `payload`. */
const exchangeWhenListening = async (port: number, payload: string, limitMs = 20_000): Promise<Reply> => {
  for (const deadline = Date.now() + limitMs; ; await sleep(25)) {
    try {
      return await exchange(port, payload)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() > deadline) throw err
    }
  }
}

/** Runs tcpserver with `args` in a process group of its own, killed with every program it started when the test ends. */
const runTcpserver = (t: Test, args: readonly string[]): void => {
  const proc = spawn('tcpserver', args, { detached: true, stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  t.teardown(async () => {
    try {
      process.kill(-proc.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
    await exited
  })
}

const hasTcpserver = spawnSync('sh', ['-c', 'command -v tcpserver']).status === 0
const PROGRAM = ['sh', '-c', 'echo $PROTO $TCPLOCALIP:$TCPLOCALPORT $TCPREMOTEIP; exec cat']

t.test('the same words under tcpserver and under forkserver get the same reply', { skip: hasTcpserver ? false : 'tcpserver is not installed (apt-get install ucspi-tcp)' }, async (t) => {
  const replies: string[] = []
  for (const command of ['tcpserver', 'forkserver'] as const) {
    const port = await freePort()
    const words = ['127.0.0.1', String(port), ...PROGRAM]
    if (command === 'tcpserver') runTcpserver(t, words)
    else await listening(runServer(t, words))
    const reply = await exchangeWhenListening(port, 'hello\n')
    replies.push(reply.data.toString().replace(`:${port} `, ':PORT '))
  }
  t.equal(replies[0], 'TCP 127.0.0.1:PORT 127.0.0.1\nhello\n', 'tcpserver')
  t.equal(replies[1], replies[0], 'forkserver')
})
