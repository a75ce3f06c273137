import t from 'tap'
import { createLog, endLine, errorMessage, sanitize, type LogEvent } from '../../lib/log/log.js'

const record = (format: 'text' | 'json', verbose: boolean) => {
  const written: string[] = []
  return { log: createLog(format, verbose, (s) => written.push(s)), written }
}

const counters = { accepted: 5, served: 3, denied: 1, dropped: 1, queueFull: 0, failed: 0, peak: 2 }

t.test('sanitize escapes control and non-ASCII characters and caps the length', async (t) => {
  t.equal(sanitize('plain text'), 'plain text')
  t.equal(sanitize('a\nb\rc\x1b[31md\u00e9\t\u{1f600}'), 'a\\nb\\rc\\x1b[31md\\xe9\\t\\u{1f600}')
  t.equal(sanitize('x'.repeat(300)), `${'x'.repeat(200)}...`)
  t.equal(sanitize('abcdef', 3), 'abc...')
})

t.test('text lines marked verbose are written only with -v; warnings and drops always', async (t) => {
  const events: LogEvent[] = [
    { event: 'status', trigger: 'change', live: 0, max: 40 },
    { event: 'warning', message: 'disk\nfull', pid: 1 },
    { event: 'drop', conn: 3, peer: '127.0.0.1:5555', reason: 'fork failed', pid: 1 },
    { event: 'listening', address: '127.0.0.1:7000', pid: 1 },
    { event: 'accept', conn: 3, peer: '127.0.0.1:5555', pid: 1 },
  ]
  const quiet = record('text', false)
  events.forEach(quiet.log)
  t.same(quiet.written, ['warning: disk\\nfull\n', 'warning: dropping connection, fork failed: 127.0.0.1:5555\n', 'listening on 127.0.0.1:7000, pid 1\n'])
  const loud = record('text', true)
  events.forEach(loud.log)
  t.equal(loud.written[0], 'status: 0/40\n')
  t.equal(loud.written.length, 4, 'accept has no text line')
})

t.test('the text lines keep their tcpserver shapes', async (t) => {
  const { log, written } = record('text', true)
  log({ event: 'from', pid: 42, peer: '[::1]:5000' })
  log({ event: 'end', conn: 1, pid: 42, peer: '[::1]:5000', handoffMs: 60, endMs: 70, code: 0, signal: null })
  log({ event: 'deny', conn: 2, peer: '10.0.0.1:9', pid: 1 })
  log({ event: 'drain', signal: 'SIGTERM', live: 2, graceS: 10 })
  log({ event: 'reload', signal: 'SIGHUP', spares: 1, workers: 0, zygote: null, pid: 1 })
  log({ event: 'reload', signal: 'SIGHUP', spares: 0, workers: 4, zygote: null, pid: 1 })
  log({ event: 'replace', pid: 7, reason: 'child 8 died by SIGSEGV' })
  log({ event: 'shutdown', counters, code: 0, logDropped: 0 })
  log({ event: 'shutdown', counters: { ...counters, dropped: 7, queueFull: 6 }, code: 0, logDropped: 0 })
  log({ event: 'warning', message: 'handler failed', pid: 42, child: true })
  log({ event: 'fatal', message: 'listen EADDRINUSE', pid: 1 })
  log({ event: 'shutdown', counters, code: 0, logDropped: 7 })
  t.same(written, [
    'pid 42 from [::1]:5000\n',
    'end 42 status 0\n',
    'deny 10.0.0.1:9\n',
    'SIGTERM: draining 2 children, 10s grace\n',
    'reload: SIGHUP, replacing 1 spare and 0 workers\n',
    'reload: SIGHUP, replacing 0 spares and 4 workers\n',
    'zygote 7 replaced: child 8 died by SIGSEGV; a fresh zygote gets a new address layout\n',
    'shutdown: served 3, peak 2, failed 0, denied 1, dropped 1\n',
    'shutdown: served 3, peak 2, failed 0, denied 1, dropped 7 (queue full 6)\n',
    'warning: pid 42: handler failed\n',
    'fatal: listen EADDRINUSE\n',
    'shutdown: served 3, peak 2, failed 0, denied 1, dropped 1, log lines dropped 7\n',
  ])
})

t.test('a zygote says each step of its life, and --start auto says why it spawns', async (t) => {
  const { log, written } = record('text', false)
  log({ event: 'zygote', state: 'starting', pid: null, generation: 1 })
  log({ event: 'zygote', state: 'ready', pid: 70, generation: 1, selfTestMs: 41 })
  log({ event: 'zygote', state: 'starting', pid: null, generation: 2 })
  log({ event: 'zygote', state: 'ready', pid: 71, generation: 2, selfTestMs: 38 })
  log({ event: 'zygote', state: 'retiring', pid: 70, generation: 1, by: 71 })
  log({ event: 'zygote', state: 'retiring', pid: 72, generation: 2, by: null })
  log({ event: 'zygote', state: 'exited', pid: 70, generation: 1, code: 0, signal: null })
  log({ event: 'zygote', state: 'exited', pid: 71, generation: 2, code: null, signal: 'SIGKILL' })
  log({ event: 'reload', signal: 'SIGHUP', spares: 4, workers: 0, zygote: 70, pid: 1 })
  log({ event: 'start', start: 'spawn', reason: 'the fork self-test failed: hung', pid: 1 })
  t.same(written, [
    'zygote starting: generation 2\n',
    'zygote 71 ready: generation 2, self-test 38 ms\n',
    'zygote 70 retiring: generation 1, zygote 71 serves in its place\n',
    'zygote 72 retiring: generation 2, forking no more\n',
    'zygote 70 exited (status 0)\n',
    'zygote 71 exited (SIGKILL)\n',
    'reload: SIGHUP, replacing zygote 70, 4 spares and 0 workers\n',
    'start: spawn, not the zygote: the fork self-test failed: hung\n',
  ], 'always, -v or not, but for the first zygote\'s start, which only -v shows')
})

t.test('every string of every text line is cleaned, once: text from outside cannot split a line', async (t) => {
  const { log, written } = record('text', true)
  log({ event: 'listening', address: 'unix:/tmp/a\nfatal: forged', pid: 1 })
  log({ event: 'drain', signal: 'SIG\rTERM', live: 0, graceS: 1 })
  log({ event: 'drop', conn: 1, peer: 'p\n', reason: 'r\n', pid: 1 })
  t.same(written, ['listening on unix:/tmp/a\\nfatal: forged, pid 1\n', 'SIG\\rTERM: draining 0 children, 1s grace\n', 'warning: dropping connection, r\\n: p\\n\n'])
  const json = record('json', true)
  json.log({ event: 'listening', address: 'unix:/tmp/a\nb', pid: 1 })
  t.match(JSON.parse(json.written[0]!), { address: 'unix:/tmp/a\nb' }, 'JSON keeps the text, escaped by JSON itself')
  t.equal(json.written[0]!.split('\n').length, 2, 'on one line')
})

t.test('the status table has a row per child, and is written without -v', async (t) => {
  const { log, written } = record('text', false)
  log({
    event: 'status', trigger: 'SIGUSR1', live: 2, max: 40, counters, children: [
      { pid: 101, state: 'busy', conn: 4, peer: '127.0.0.1:40000', ageMs: 2345 },
      { pid: 102, state: 'spare', conn: null, peer: null, ageMs: 50 },
    ],
  })
  t.same(written[0]!.split('\n'), [
    'status: 2/40 children, accepted 5, served 3, denied 1, dropped 1, failed 0, peak 2',
    '  PID  STATE  AGE   CONN  PEER',
    '  101  busy   2.3s  4     127.0.0.1:40000',
    '  102  spare  0.1s  -     -',
    '',
  ])
})

t.test('in JSON every event is one parseable line with its time, the verbose ones too', async (t) => {
  const { log, written } = record('json', false)
  log({ event: 'accept', conn: 1, peer: '127.0.0.1:5555', pid: 9 })
  log({ event: 'status', trigger: 'change', live: 1, max: 40 })
  log({ event: 'warning', message: 'a "quoted"\nline', pid: 9 })
  log({ event: 'from', pid: 10, peer: '127.0.0.1:5555' })
  t.equal(written.length, 3, 'from is a text line only')
  for (const line of written) t.match(line, /^\{.*\}\n$/, 'one line')
  const parsed = written.map((line) => JSON.parse(line) as Record<string, unknown>)
  t.match(parsed[0], { event: 'accept', conn: 1, peer: '127.0.0.1:5555', pid: 9, time: /^\d{4}-\d\d-\d\dT/ })
  t.same(Object.keys(parsed[0]!).slice(0, 2), ['time', 'event'])
  t.equal(parsed[2]!.message, 'a "quoted"\nline', 'the message survives intact (JSON escapes it)')
})

t.test('end lines give the status, or the signal', async (t) => {
  t.equal(endLine(12, 0, null), 'end 12 status 0')
  t.equal(endLine(12, null, 'SIGKILL'), 'end 12 signal SIGKILL')
  t.equal(endLine(undefined, null, null), 'end ? status ?')
})

t.test('errorMessage reads the message of anything thrown', async (t) => {
  t.equal(errorMessage(new Error('boom')), 'boom')
  t.equal(errorMessage('plain'), 'plain')
})
