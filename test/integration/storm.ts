// A connection storm: the parent's accept loop outranks its children. It
// accepts at once, boots at most BOOT_LIMIT children at a time, turns away
// what the queue cannot hold as "queue full", and its children run nicer.
import { connect, type Socket } from 'node:net'
import { getPriority } from 'node:os'
import { BOOT_LIMIT } from '../../lib/admission/admission.js'
import { childNiceness } from '../../lib/start/priority.js'
import { collect, open, readLine } from '../fixtures/client.js'
import { startServer, stopServer } from '../fixtures/server.js'
import { forEachStart, zygotesOf } from '../fixtures/starts.js'

const CLIENTS = 600
const STORM_MS = 1000
const BATCHES = 50
/** Every client is served or closed within this much of the storm's start. */
const SETTLED_MS = 15_000

type Outcome = 'served' | 'closed' | 'hung' | 'refused'

interface Client {
  readonly socket: Socket
  readonly outcome: Promise<Outcome>
}

// One client: connect, send a line, half-close, and see what comes back before the deadline.
const client = (port: number, n: number, deadline: number): Client => {
  const socket = connect({ port, host: '127.0.0.1' })
  const payload = `storm ${n}\n`
  let connected = false
  socket.once('connect', () => {
    connected = true
    socket.end(payload)
  })
  const outcome = collect(socket, Math.max(1, deadline - Date.now())).then(
    (reply): Outcome => (!connected ? 'refused' : reply.data.toString() === payload ? 'served' : reply.data.length === 0 ? 'closed' : 'hung'),
    (): Outcome => 'hung',
  )
  return { socket, outcome }
}

const tally = (outcomes: readonly Outcome[]): Record<Outcome, number> => {
  const counts = { served: 0, closed: 0, hung: 0, refused: 0 }
  for (const o of outcomes) counts[o]++
  return counts
}

/** The most children that were booting at once: forked (its `fork` event) and not yet holding the socket (`handoff`) or gone (`end`). */
const mostBooting = (events: readonly Record<string, unknown>[]): number => {
  const booting = new Set<unknown>()
  let most = 0
  for (const e of events) {
    if (e.event === 'fork' && e.state === 'busy') booting.add(e.pid)
    else if (e.event === 'handoff' || e.event === 'end') booting.delete(e.pid)
    most = Math.max(most, booting.size)
  }
  return most
}

forEachStart('600 connects in 1 s with --max-children 40 --queue-limit 64: every client is served or closed within 15 s, and the drops are counted as queue full', async (t, start) => {
  // Outside tap's hooks: under them every child loads tap's instrumentation too, and boots about 3 times slower (456 ms to 170 ms).
  const server = await startServer(t, [...start.args, '--max-children', '40', '--queue-limit', '64', '--log-format', 'json'], {}, { outsideTap: true })
  const clients: Client[] = []
  t.teardown(() => clients.forEach((c) => c.socket.destroy()))
  const began = Date.now()
  const deadline = began + SETTLED_MS
  // The storm, paced: CLIENTS / BATCHES at a time, spread over STORM_MS.
  for (let batch = 0; batch < BATCHES; batch++) {
    for (let i = 0; i < CLIENTS / BATCHES; i++) clients.push(client(server.port, clients.length, deadline))
    await new Promise((resolve) => setTimeout(resolve, began + ((batch + 1) * STORM_MS) / BATCHES - Date.now()))
  }
  const outcomes = await Promise.all(clients.map((c) => c.outcome))
  const settledMs = Date.now() - began
  const counts = tally(outcomes)
  t.comment(`${start.name}: ${JSON.stringify(counts)} in ${settledMs} ms`)
  t.equal(counts.hung, 0, 'no client hangs')
  t.equal(counts.refused, 0, 'none is refused by the kernel: the parent keeps accepting')
  t.equal(counts.served + counts.closed, CLIENTS, 'every client is served or closed')
  t.ok(settledMs < SETTLED_MS, `within ${SETTLED_MS} ms (${settledMs})`)
  t.ok(counts.served >= 64, `at least a full queue's worth is served (${counts.served})`)

  t.same(await stopServer(server), { code: 0, signal: null })
  const events = server.lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>]
    } catch {
      return []
    }
  })
  const full = events.filter((e) => e.event === 'drop' && /^queue full \(64 waiting\)$/.test(String(e.reason)))
  const drops = events.filter((e) => e.event === 'drop')
  t.equal(full.length, counts.closed, 'each client closed unserved was turned away by the full queue')
  t.equal(drops.length, full.length, 'and by nothing else')
  const summary = events.find((e) => e.event === 'shutdown') as { counters: Record<string, number> } | undefined
  t.match(summary?.counters, { accepted: CLIENTS, served: counts.served, dropped: counts.closed, queueFull: counts.closed },
    'the summary counts every drop as queue full')
  // How long a child took to boot (its fork to its handoff): what this host gives a child.
  const forkedAt = new Map(events.filter((e) => e.event === 'fork').map((e) => [e.pid, Date.parse(String(e.time))]))
  const boots = events.filter((e) => e.event === 'handoff' && forkedAt.has(e.pid))
    .map((e) => Date.parse(String(e.time)) - forkedAt.get(e.pid)!).sort((a, b) => a - b)
  t.comment(`a child's boot, fork to handoff: median ${boots[boots.length >> 1]} ms, longest ${boots.at(-1)} ms (${boots.length} children)`)
  t.ok(mostBooting(events) <= BOOT_LIMIT, `at most BOOT_LIMIT (${BOOT_LIMIT}) children booted at once (${mostBooting(events)})`)
})

forEachStart("a connection's child runs nicer than the parent", async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', new URL('../fixtures/handlers/whoami.js', import.meta.url).pathname, '-v'])
  const held = await open(server.port)
  t.teardown(() => held.destroy())
  const report = JSON.parse(await readLine(held)) as { pid: number }
  t.equal(getPriority(server.pid), getPriority(), 'the parent runs as it was started')
  t.equal(getPriority(report.pid), childNiceness(), 'its child, CHILD_NICENESS steps nicer')
  if (start.name === 'zygote') t.same(zygotesOf(server).map((pid) => getPriority(pid)), [childNiceness()], 'and so does the zygote')
  held.end()
  await collect(held)
  t.same(await stopServer(server), { code: 0, signal: null })
})
