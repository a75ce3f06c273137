import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { STALL_MS, verdictTimer } from '../../lib/parent/verdict.js'

// A connected pair on loopback: what `client` writes, `server` reads, by the loop.
const pair = async (t: Test): Promise<{ client: Socket; server: Socket }> => {
  const listener = createServer()
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  const client = connect((listener.address() as AddressInfo).port, '127.0.0.1')
  const [[server]] = (await Promise.all([once(listener, 'connection'), once(client, 'connect')])) as [[Socket], unknown]
  t.teardown(() => {
    client.destroy()
    server.destroy()
    listener.close()
  })
  return { client, server }
}

// Holds the whole loop, as SIGSTOP would, without a timer of its own.
const stall = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

t.test('a message that came while the loop was stalled is read before the verdict', async (t) => {
  const { client, server } = await pair(t)
  let heard = false
  server.on('data', () => (heard = true))
  let naive: boolean | null = null
  let judged = false
  setTimeout(() => (naive = !heard), 100)
  verdictTimer(100, () => !heard, () => (judged = true))
  // The answer arrives, and the loop stalls past both timers before it can read it.
  setImmediate(() => {
    client.write('taken')
    stall(300)
  })
  await once(server, 'data')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(naive, true, 'a plain timer runs first, and would have judged the child unheard')
  t.notOk(judged, 'the verdict timer saw the answer, and judged nothing')
})

t.test('with nothing to read, the verdict is given', async (t) => {
  const verdict = new Promise<string>((resolve) => verdictTimer(20, () => true, () => resolve('given')))
  t.equal(await verdict, 'given')
  let given = false
  verdictTimer(20, () => false, () => (given = true))
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.notOk(given, 'and not when it is no longer due')
})

t.test('a timer that fires late because the loop stalled judges nothing, and gives the child its time again', async (t) => {
  const judgedAt: number[] = []
  const armedAt = performance.now()
  verdictTimer(100, () => true, () => judgedAt.push(performance.now() - armedAt))
  // The loop stalls past the deadline by more than STALL_MS: the timer is late.
  setImmediate(() => stall(100 + STALL_MS + 200))
  while (judgedAt.length === 0) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(judgedAt[0]! >= 100 + STALL_MS + 200 + 100, `judged only a whole period after the stall (${Math.round(judgedAt[0]!)} ms)`)
})

t.test('a re-armed timer is still stopped by clearTimeout', async (t) => {
  let judged = false
  const timer = verdictTimer(50, () => true, () => (judged = true))
  setImmediate(() => stall(50 + STALL_MS + 100))
  // Once it has fired late and re-armed itself, clear it.
  await new Promise((resolve) => setTimeout(resolve, 10))
  clearTimeout(timer)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.notOk(judged, 'cleared after its late firing, it judges nothing')
})
