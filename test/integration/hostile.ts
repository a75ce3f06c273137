// Hostile peers, each against a real server: a peer can reset during the
// handoff, connect and vanish, dribble bytes, go silent, never read, send
// 50 MB to discard, or half-close at once. None of this crashes the parent,
// leaks a descriptor or leaves a child behind. Under --start spawn, where
// every child is the server's own to count (the zygote's children meet the
// same peers in zygote-faults.ts).
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { collect, exchange, open, readBytes } from '../fixtures/client.js'
import { alive, childrenOf, fdCount, settledFdCount, startServer, stopServer, type Running } from '../fixtures/server.js'

const END = /^end (\d+) (?:status|signal) \S+$/
const MiB = 1024 * 1024

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The `pid P from 127.0.0.1:PORT` line of the client whose local port is `port`, from index `from` on. */
const childOf = async (server: Running, port: number | undefined, from = 0): Promise<number> =>
  Number((await server.waitFor(new RegExp(`^pid (\\d+) from 127\\.0\\.0\\.1:${port}$`), from))[1])

/** How many children the server has forked so far: its `pid P from ...` lines. */
const forkedSoFar = (server: Running): number => server.lines.filter((l) => /^pid \d+ from /.test(l)).length

/**
 * Waits until every child forked so far has ended, then checks the parent is
 * back to idle: alive, no child in its table or in /proc, its descriptors at
 * the idle count, and a normal echo still served (whose child ends too).
 */
const backToIdle = async (t: Test, server: Running, idleFds: number, label: string): Promise<void> => {
  await server.waitForCount(END, forkedSoFar(server))
  t.ok(alive(server.pid), `${label}: the parent is alive`)
  t.same(childrenOf(server.pid), [], `${label}: no child left, defunct or alive`)
  t.equal(await settledFdCount(server.pid, idleFds), idleFds, `${label}: the parent is back to its idle descriptor count`)
  const text = `${label}: still serving`
  const reply = await exchange(server.port, text)
  t.equal(reply.data.toString(), text, `${label}: a normal echo still works`)
  await server.waitForCount(END, forkedSoFar(server))
}

/** Resolves once `socket` has closed, for whatever reason. */
const closed = (socket: Socket): Promise<void> =>
  new Promise((resolve) => {
    if (socket.destroyed) return resolve()
    socket.once('close', () => resolve())
  })

t.test('peers that reset during the handoff, or connect and vanish before their child starts', async (t) => {
  // The parent's trace (DEBUG) shows every accept, even of a peer already gone.
  const server = await startServer(t, ['--start', 'spawn', '-v'], { DEBUG: 'forkserver:parent' })
  await server.waitFor(/^status: 0\/40$/)
  const idleFds = fdCount(server.pid)

  // A reset (RST) as soon as the parent has forked this client's child, while
  // the socket is on its way to it: one client at a time, 10 times.
  for (let i = 0; i < 10; i++) {
    const socket = await open(server.port)
    socket.on('error', () => {})
    await childOf(server, socket.localPort)
    socket.resetAndDestroy()
    await closed(socket)
  }
  await backToIdle(t, server, idleFds, '10 resets during the handoff')
  t.comment(`how their children ended: ${server.lines.filter((l) => END.test(l)).slice(0, 10).map((l) => l.replace(/^end \d+ /, '')).join(', ')}`)

  // Connect and close at once, all 10 together, before any child can start.
  // The parent accepts each one after its peer has gone: it forks a child if
  // it can still see who the peer was, or closes it at once. The parent's
  // trace says when it has accepted all 10.
  const from = server.lines.length
  const ports = await Promise.all(Array.from({ length: 10 }, () => new Promise<number>((resolve, reject) => {
    const socket = connect({ port: server.port, host: '127.0.0.1' }, () => {
      const port = socket.localPort ?? 0
      socket.destroy()
      resolve(port)
    })
    socket.once('error', reject)
  })))
  const accepts = await server.waitForCount(/forkserver:parent accept(?: 127\.0\.0\.1:(\d+))?/, 10, from)
  // An accepted peer whose address the parent could still read gets a child,
  // or, queued while others boot, is found gone there and dropped.
  const seen = accepts.flatMap((m) => (m[1] === undefined ? [] : [Number(m[1])]))
  const fates = await Promise.all(seen.map((port) =>
    server.waitFor(new RegExp(`^(?:pid \\d+ from|warning: dropping connection, left while it waited:) 127\\.0\\.0\\.1:${port}$`), from)))
  t.ok(seen.every((port) => ports.includes(port)), 'every child was forked, or drop made, for one of these clients')
  t.comment(`of 10 vanished clients, ${fates.filter((m) => m[0].startsWith('pid ')).length} got a child, ${fates.filter((m) => m[0].startsWith('warning')).length} were dropped from the queue`)
  await backToIdle(t, server, idleFds, '10 connect-and-close clients')
  t.same(await stopServer(server), { code: 0, signal: null }, 'the server drains and exits 0')
})

t.test('slowloris under --idle-timeout 1', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--idle-timeout', '1', '-v'])
  await server.waitFor(/^status: 0\/40$/)
  const idleFds = fdCount(server.pid)

  await t.test('one byte every 600 ms is not idle: the connection stays up', async (t) => {
    // 5 bytes over 3 s: three times the idle timeout, but never 1 s of
    // silence. If this process itself is starved so long that a gap reaches
    // 950 ms, the attempt proves nothing and is made again (3 at most).
    for (let attempt = 1; attempt <= 3; attempt++) {
      const socket = await open(server.port)
      const pid = await childOf(server, socket.localPort)
      const bytes = 'slow!'
      const echoed: Buffer[] = []
      socket.on('data', (chunk: Buffer) => echoed.push(chunk))
      const done = collect(socket)
      let widest = 0
      let last = Date.now()
      for (const byte of bytes) {
        if (socket.destroyed) break
        socket.write(byte)
        const now = Date.now()
        widest = Math.max(widest, now - last)
        last = now
        await sleep(600)
      }
      widest = Math.max(widest, Date.now() - last)
      const early = server.lines.some((l) => l.startsWith(`end ${pid} `)) || socket.destroyed
      if (early && widest >= 950 && attempt < 3) {
        t.comment(`attempt ${attempt}: this process paused ${widest} ms between bytes; trying again`)
        socket.destroy()
        await done
        continue
      }
      t.notOk(early, `the child is still serving after 3 s (widest gap between bytes ${widest} ms)`)
      t.notOk(socket.destroyed, 'the client is still connected')
      socket.end()
      const reply = await done
      t.equal(Buffer.concat(echoed).toString(), bytes, 'every byte came back')
      t.equal(reply.ended, 'end', 'the server closes after the half-close')
      await server.waitFor(new RegExp(`^end ${pid} status 0$`))
      break
    }
  })

  await t.test('a partial line and then silence is closed after about 1 s with status 2', async (t) => {
    const socket = await open(server.port)
    const pid = await childOf(server, socket.localPort)
    const partial = 'GET / HTTP/1.1\r\nHost: slow'
    const done = collect(socket)
    socket.write(partial)
    // The echo proves the child is serving; from here it hears nothing more.
    await readBytes(socket, partial.length)
    const quietSince = Date.now()
    const reply = await done
    const after = Date.now() - quietSince
    t.equal(reply.ended, 'end', 'the server closes the connection')
    t.ok(after >= 900, `not before the timeout (closed after ${after} ms)`)
    t.ok(after < 3000, `within about 1 s (closed after ${after} ms)`)
    await server.waitFor(new RegExp(`^end ${pid} status 2$`))
  })

  await t.test('20 silent connections at once are all closed by the timeout and the table empties', async (t) => {
    const from = server.lines.length
    const sockets = await Promise.all(Array.from({ length: 20 }, () => open(server.port)))
    const replies = await Promise.all(sockets.map((s) => collect(s)))
    t.ok(replies.every((r) => r.ended === 'end' && r.data.length === 0), 'each silent client is closed, unanswered')
    const ends = await server.waitForCount(/^end (\d+) status (\d+)$/, 20, from)
    t.same(ends.map((m) => m[2]), Array(20).fill('2'), 'all 20 children ended with status 2 (idle)')
    // Each `end` line is followed by a `status` line: the one after the last end says 0.
    const lastEnd = server.lines.reduce((last, l, i) => (/^end \d+ /.test(l) ? i : last), from)
    await server.waitFor(/^status: 0\/40$/, lastEnd)
    // (Not all 20 at once: at most BOOT_LIMIT children boot together, and the first may be done before the last starts.)
    const peak = Math.max(...server.lines.slice(from).map((l) => Number(/^status: (\d+)\/40$/.exec(l)?.[1] ?? 0)))
    t.ok(peak >= 2, `they were served side by side (${peak} at most at once)`)
    t.same(childrenOf(server.pid), [], 'no child left')
    t.equal(await settledFdCount(server.pid, idleFds), idleFds, 'the parent is back to its idle descriptor count')
  })

  t.same(await stopServer(server), { code: 0, signal: null })
})

const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])

const hexPort = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0')

/** Bytes queued in the kernel for a loopback connection: both ends' send and receive queues. */
const queued = (a: number, b: number): number => {
  let total = 0
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    const local = f[1]?.split(':')[1]
    const remote = f[2]?.split(':')[1]
    if (!((local === hexPort(a) && remote === hexPort(b)) || (local === hexPort(b) && remote === hexPort(a)))) continue
    const [tx = '0', rx = '0'] = (f[4] ?? '').split(':')
    total += parseInt(tx, 16) + parseInt(rx, 16)
  }
  return total
}

t.test('chargen to a client that never reads: the child stays bounded, then ends when the client leaves', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--service', 'chargen', '-v'])
  const socket = await open(server.port)
  const pid = await childOf(server, socket.localPort)
  // Read the first bytes (the child is serving), then never again.
  await readBytes(socket, 1)
  socket.pause()
  const start = rssKiB(pid)
  // Wait until the kernel's buffers are full: nothing more moves for 5 samples.
  let last = -1
  let still = 0
  for (let i = 0; i < 100 && still < 5; i++) {
    await sleep(100)
    const now = queued(socket.localPort ?? 0, server.port)
    still = now === last && now > 0 ? still + 1 : 0
    last = now
  }
  t.ok(still >= 5, `the kernel's buffers filled (${last} bytes queued between the two ends)`)
  const samples: number[] = []
  for (let i = 0; i < 12; i++) {
    samples.push(rssKiB(pid))
    await sleep(200)
  }
  const peak = Math.max(...samples)
  t.ok(peak < start + 16 * 1024, `VmRSS stays below start + 16 MiB (start ${start} KiB, samples ${samples.join(' ')})`)
  t.ok(alive(pid), 'the child is still serving')
  const gone = collect(socket)
  socket.destroy()
  await gone
  await server.waitFor(new RegExp(`^end ${pid} (status|signal) \\S+$`))
  t.notOk(alive(pid), 'the child ended')
  t.same(childrenOf(server.pid), [], 'and was reaped')
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('50 MB of random bytes to discard: all read, closed cleanly, status 0', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--service', 'discard', '-v'])
  const socket = await open(server.port)
  const pid = await childOf(server, socket.localPort)
  const done = collect(socket, 60_000)
  const total = 50 * MiB
  // 1 MiB of fresh random bytes at a time, with backpressure.
  for (let sent = 0; sent < total; sent += MiB) {
    if (!socket.write(randomBytes(MiB))) await new Promise((resolve) => socket.once('drain', resolve))
  }
  await new Promise<void>((resolve) => socket.end(resolve))
  t.pass('the client\'s end completed: every byte was handed to the kernel')
  t.equal(socket.bytesWritten, total, '50 MiB written')
  const reply = await done
  t.equal(reply.ended, 'end', 'the server closed the connection cleanly (FIN, no reset)')
  t.equal(reply.data.length, 0, 'and answered nothing')
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('8 MB of random bytes to echo, written and read at once, come back byte for byte', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v'])
  const payload = randomBytes(8 * MiB)
  const socket = await open(server.port)
  const pid = await childOf(server, socket.localPort)
  const done = collect(socket, 60_000)
  const CHUNK = 64 * 1024
  for (let at = 0; at < payload.length; at += CHUNK) {
    if (!socket.write(payload.subarray(at, at + CHUNK))) await new Promise((resolve) => socket.once('drain', resolve))
  }
  socket.end()
  const reply = await done
  t.equal(reply.ended, 'end')
  t.equal(reply.data.length, payload.length, 'as many bytes back as were sent')
  t.ok(reply.data.equals(payload), 'the same bytes, in order')
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('a client that half-closes at once still gets its daytime line', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--service', 'daytime', '-v'])
  const socket = await open(server.port)
  const done = collect(socket)
  socket.end()
  const pid = await childOf(server, socket.localPort)
  const reply = await done
  t.match(reply.data.toString(), /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n$/, 'one date line')
  t.equal(reply.ended, 'end')
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  t.same(await stopServer(server), { code: 0, signal: null })
})
