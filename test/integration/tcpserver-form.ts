// tcpserver's form, as a tcpserver user types it: HOST PORT PROGRAM [ARGS...].
// Where tcpserver (ucspi-tcp) is installed, the same words are run under both
// and must get the same reply.
import { spawn } from 'node:child_process'
import t, { type Test } from 'tap'
import { exchange, freePort } from '../fixtures/client.js'
import { missing } from '../fixtures/commands.js'
import { runServer, stopServer, watchLines, type Running } from '../fixtures/server.js'

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

/** Runs tcpserver with `words`, in a process group of its own, killed with every program it started when the test ends; resolves once it listens (-v says so). */
const runTcpserver = async (t: Test, words: readonly string[]): Promise<void> => {
  const proc = spawn('tcpserver', words, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  t.teardown(async () => {
    try {
      process.kill(-proc.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
    await exited
  })
  const { waitForMatches } = watchLines([proc.stderr])
  await waitForMatches((line) => /^tcpserver: status: 0\/\d+$/.exec(line), 'tcpserver: status: 0/N', 1, 0, 20_000)
}

const PROGRAM = ['sh', '-c', 'echo $PROTO $TCPLOCALIP:$TCPLOCALPORT $TCPREMOTEIP; exec cat']

t.test('the same words under tcpserver and under forkserver get the same reply', { skip: missing('tcpserver') }, async (t) => {
  const replies: string[] = []
  for (const command of ['tcpserver', 'forkserver'] as const) {
    const port = await freePort()
    const words = ['-v', '127.0.0.1', String(port), ...PROGRAM]
    if (command === 'tcpserver') await runTcpserver(t, words)
    else await listening(runServer(t, words))
    const reply = await exchange(port, 'hello\n')
    replies.push(reply.data.toString().replace(`:${port} `, ':PORT '))
  }
  t.equal(replies[0], 'TCP 127.0.0.1:PORT 127.0.0.1\nhello\n', 'tcpserver')
  t.equal(replies[1], replies[0], 'forkserver')
})
