import { execFileSync } from 'node:child_process'
import { closeSync, constants, fstatSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { LogWriter, nonBlockingPipe, sinkFor } from '../../lib/log/log-writer.js'
import { loadAddon } from '../../lib/native/addon.js'

const tempDir = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-log-writer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A FIFO with both ends open: the read end non-blocking, and nobody reading it until the test does. */
const fifo = (t: Test): { readEnd: number; writeEnd: number; closeReadEnd: () => void } => {
  const path = join(tempDir(t), 'fifo')
  execFileSync('mkfifo', [path])
  const open = new Set([openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), openSync(path, constants.O_WRONLY)])
  const [readEnd, writeEnd] = [...open] as [number, number]
  const close = (fd: number): void => {
    if (open.delete(fd)) closeSync(fd)
  }
  t.teardown(() => [readEnd, writeEnd].forEach(close))
  return { readEnd, writeEnd, closeReadEnd: () => close(readEnd) }
}

/** A descriptor's file status flags, from /proc (written there in octal). */
const statusFlags = (fd: number): number => Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '', 8)

const readAll = (fd: number): string => {
  const chunk = Buffer.alloc(1 << 16)
  let text = ''
  for (;;) {
    try {
      const n = readSync(fd, chunk)
      if (n === 0) return text
      text += chunk.toString('utf8', 0, n)
    } catch {
      return text // EAGAIN: all there is, for now
    }
  }
}

t.test('a pipe gets a non-blocking description of its own; the shared descriptor stays blocking', async (t) => {
  const { writeEnd } = fifo(t)
  const own = nonBlockingPipe(writeEnd)
  t.not(own, null)
  t.teardown(() => closeSync(own!))
  t.ok(statusFlags(own!) & constants.O_NONBLOCK, 'its own is non-blocking')
  t.notOk(statusFlags(writeEnd) & constants.O_NONBLOCK, 'the shared one is not')
  t.equal(fstatSync(own!).ino, fstatSync(writeEnd).ino, 'the same pipe')
})

t.test('a regular file is written directly, as before', async (t) => {
  const path = join(tempDir(t), 'log')
  const fd = openSync(path, 'w')
  t.teardown(() => closeSync(fd))
  t.equal(nonBlockingPipe(fd), null)
  const writer = new LogWriter(fd)
  writer.write('one\n')
  writer.write('two\n')
  t.equal(readFileSync(path, 'utf8'), 'one\ntwo\n')
  t.equal(writer.waiting, 0)
})

t.test('a full pipe never blocks: lines wait up to the bound, the rest are counted, and the count is told once it flows', async (t) => {
  const { readEnd, writeEnd } = fifo(t)
  const resumed: number[] = []
  const writer = new LogWriter(writeEnd, (n) => resumed.push(n), 1000)
  const line = (i: number): string => `line ${String(i).padStart(5, '0')} ${'x'.repeat(88)}\n` // 100 bytes
  let i = 0
  while (writer.waiting === 0) writer.write(line(i++)) // until the pipe is full
  const inPipe = i - 1
  for (let j = 0; j < 20; j++) writer.write(line(i++)) // 9 more fit the bound (1000 bytes); the other 11 are dropped
  t.equal(writer.waiting, 1000, 'the bound is kept')
  t.equal(writer.lost, 11, 'what did not fit is counted')
  t.same(resumed, [], 'nothing is said while the pipe is full')

  const first = readAll(readEnd)
  t.equal(first.split('\n').length - 1, inPipe, 'the pipe held whole lines')
  await writer.flush(Date.now() + 5000)
  t.equal(writer.waiting, 0)
  t.same(resumed, [11], 'the drop is told once, when the log flows again')
  const lines = (first + readAll(readEnd)).split('\n').filter((l) => l !== '')
  t.equal(lines.length, inPipe + 10)
  t.ok(lines.every((l) => l.length === 99), 'no line was split')
  t.same(lines.map((l) => Number(l.slice(5, 10))), Array.from({ length: inPipe + 10 }, (_, k) => k), 'in order, up to the ones dropped')
})

t.test('flush gives up at its deadline when nobody reads', async (t) => {
  const { writeEnd } = fifo(t)
  const writer = new LogWriter(writeEnd)
  while (writer.waiting === 0) writer.write(`${'y'.repeat(99)}\n`)
  const started = Date.now()
  await writer.flush(started + 200)
  t.ok(Date.now() - started < 1000, 'it returned')
  t.ok(writer.waiting > 0, 'with the line still waiting')
})

t.test('a line the reader is gone for is lost, not kept', async (t) => {
  const { writeEnd, closeReadEnd } = fifo(t)
  const writer = new LogWriter(writeEnd)
  closeReadEnd()
  writer.write('nobody\n') // EPIPE
  t.equal(writer.waiting, 0)
  t.equal(writer.lost, 0, 'nor counted as dropped: nobody is left to tell')
})

t.test('a line longer than PIPE_BUF may be split, but what is left of it is always kept and finished', async (t) => {
  const { readEnd, writeEnd } = fifo(t)
  const writer = new LogWriter(writeEnd, () => {}, 1000)
  while (writer.waiting === 0) writer.write(`${'z'.repeat(99)}\n`)
  const before = readAll(readEnd)
  await writer.flush(Date.now() + 5000) // the one kept line
  const long = `${'L'.repeat(200_000)}\n`
  writer.write(long) // more than the pipe holds: part of it is written, the rest waits, over the bound
  t.ok(writer.waiting > 1000 && writer.waiting < long.length, `${writer.waiting} bytes wait`)
  let text = before + readAll(readEnd)
  while (writer.waiting > 0) {
    await writer.flush(Date.now() + 50)
    text += readAll(readEnd)
  }
  t.ok(text.endsWith(long), 'the long line arrived whole, in order')
  t.equal(writer.lost, 0)
})

t.test('a socket is written by send(2) without waiting when the addon is built, else directly', async (t) => {
  const path = join(tempDir(t), 'sock')
  const received: string[] = []
  const server = createServer((peer) => peer.setEncoding('utf8').on('data', (chunk: string) => received.push(chunk)))
  await new Promise<void>((resolve) => server.listen(path, resolve))
  t.teardown(() => server.close())
  const client = connect(path)
  await new Promise((resolve) => client.once('connect', resolve))
  t.teardown(() => client.destroy())
  const fd = (client as unknown as { _handle: { fd: number } })._handle.fd
  let asked = 0
  const noAddon = (): ReturnType<typeof loadAddon> => {
    asked++
    return { addon: null, reason: 'not built' }
  }
  sinkFor(fd, noAddon)(Buffer.from('direct\n'))
  t.equal(asked, 1, 'a socket asks for the addon')
  const { addon } = loadAddon()
  if (addon !== null) t.equal(sinkFor(fd)(Buffer.from('sent\n')), 5)
  const expected = addon === null ? 'direct\n' : 'direct\nsent\n'
  while (received.join('') !== expected) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(received.join(''), expected)
})
