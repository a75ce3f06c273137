import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { verdictTimer } from '../lib/verdict.js'

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
