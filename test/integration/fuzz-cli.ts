// The command line under fuzz: 200 random argv vectors from a fixed seed each
// give exit 0 (help or version) or a one-line usage error, never a stack
// trace. Every vector carries at least one element that is invalid whatever
// surrounds it, placed among the options: before any `--`, and before the
// first word that is not an option (where tcpserver's HOST PORT PROGRAM would
// begin, after which every word is the program's). So no vector can start a
// server; if one ever does anyway, it is killed at its `listening on` line
// and fails.
//
// To reproduce or widen a run: FORKSERVER_FUZZ_SEED=123 FORKSERVER_FUZZ_RUNS=1000.
import { spawn } from 'node:child_process'
import t from 'tap'
import { outsideTap, SERVER } from '../fixtures/server.js'

const SEED = Number(process.env.FORKSERVER_FUZZ_SEED ?? 0x5eed_f022) >>> 0
const RUNS = Number(process.env.FORKSERVER_FUZZ_RUNS ?? 200)
const PARALLEL = 4
const LIMIT_MS = 10_000
/** Why a run was killed when it listened: a fault, never retried. */
const STARTED = 'it started a server'

/** mulberry32: a small, fast, seeded PRNG; the same seed gives the same vectors. */
const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), a | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const OPTIONS = ['--host', '--port', '--service', '--handler', '--max-children', '--overflow', '--queue-limit', '--max-per-ip', '--allow',
  '--deny', '--idle-timeout', '--grace', '-v', '--verbose', '--model', '--workers', '--max-conns-per-child', '--help', '--version', '-h',
  '--rate', '--max-lifetime', '--user', '--group', '--exec', '--path', '--fd', '--log-format', '--spares']

const VALUES = [
  // numbers, valid and not
  '0', '1', '2', '40', '7000', '65535', '65536', '-1', '-40', '99999999999999999999', '9007199254740993', '1.5', '0.0', '1e3', '0x10',
  'NaN', 'Infinity', '',
  // names, valid and not
  'echo', 'discard', 'daytime', 'chargen', 'time', 'gopher', 'queue', 'reject', 'drop', 'fork', 'prefork', 'threads', 'true', 'false',
  'json', 'text', 'cat', 'sh',
  // addresses and CIDRs, valid and not
  '127.0.0.1', '0.0.0.0', '::', '::1', '10.0.0.0/8', '0.0.0.0/0', 'fe80::/10', '::ffff:10.0.0.0/104', '10.0.0.0/33', '1.2.3.4/-1',
  '300.1.1.1', '::1/129', '1.2.3.4/8/9', '10.0.0.0/', 'localhost', 'not-an-ip',
  // paths
  '/etc/passwd', '.', '/dev/null', '/no/such/handler.js', '/tmp/forkserver-fuzz.sock',
  // unicode
  'ü', '١٢٣', '🦄', '\u202e', '０', 'ｅｃｈｏ',
  // shell metacharacters
  '$(id)', '`id`', '; rm -rf /', '|', '&&', '>', '*', '"', "'", '\\', '\n', 'a\nb', '\t', '\r',
  // very long
  'x'.repeat(5000), '9'.repeat(400), '1.'.repeat(3000),
  '--',
]

/** Tokens a fuzzer's dictionary would hold for a JavaScript argument parser. */
const JUNK = [
  '-', '---', '--=', '-=', '--no-verbose', '--no-port', '--port.x', '--allow.0', '-vh', '-hv', '-vvv', '--help=1', '-h=1', '--version=false',
  '--port=0', '--port=', '--host=', '--verbose=yes', '--__proto__', '--constructor', '--toString', '--hasOwnProperty', '--valueOf',
  '--prototype', '--_', '--$0', '-_', '-x', '--VERBOSE', '--Port',
]

/** Each of these is a usage error whatever else is on the line, so long as it comes before any `--`. */
const ALWAYS_BAD: readonly (readonly string[])[] = [
  ['--port', '70000'], ['--port', 'abc'], ['--port', '0x10'], ['--max-children', '0'], ['--queue-limit', '0'], ['--service', 'gopher'],
  ['--overflow', 'drop'], ['--allow', '10.0.0.0/33'], ['--deny', 'not-an-ip'], ['--idle-timeout', '1.5'], ['--grace', '-1'],
  ['--model', 'threads'], ['--handler', '/no/such/handler.js'],
  // unknown options, which yargs checks later than it checks values
  ['--bogus'], ['-Z'], ['--no-such-option'], ['--bogus=1'],
]

const randomJunk = (random: () => number): string => {
  const length = 1 + Math.floor(random() * 20)
  let text = ''
  for (let i = 0; i < length; i++) text += String.fromCharCode(0x21 + Math.floor(random() * 94))
  const prefix = ['', '-', '--'][Math.floor(random() * 3)]!
  return prefix + text
}

const pick = <T>(random: () => number, from: readonly T[]): T => from[Math.floor(random() * from.length)]!

/** Where the options end, as forkserver reads them: at `--`, or at a word that is not an option. */
const optionsEnd = (tokens: readonly string[]): number => {
  const end = tokens.findIndex((token) => token === '--' || !(token.length > 1 && token.startsWith('-')))
  return end < 0 ? tokens.length : end
}

/** One vector: 1 to 5 random tokens, then one always-bad element spliced in among the options. */
const vector = (random: () => number): string[] => {
  const tokens: string[] = []
  const count = 1 + Math.floor(random() * 5)
  for (let i = 0; i < count; i++) {
    const roll = random()
    if (roll < 0.4) tokens.push(pick(random, OPTIONS))
    else if (roll < 0.75) tokens.push(pick(random, VALUES))
    else if (roll < 0.85) tokens.push(`${pick(random, OPTIONS)}=${pick(random, VALUES)}`)
    else if (roll < 0.93) tokens.push(pick(random, JUNK))
    else tokens.push(randomJunk(random))
  }
  const at = Math.floor(random() * (optionsEnd(tokens) + 1))
  tokens.splice(at, 0, ...pick(random, ALWAYS_BAD))
  return tokens
}

interface Outcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** Why we killed it, if we did. */
  readonly killed: string | null
}

/** Runs the server with `args`; kills it at once if it ever starts listening, or after `limitMs`. */
const runOnce = (args: readonly string[], limitMs: number): Promise<Outcome> =>
  new Promise((resolve) => {
    // Outside tap's hooks: 200 Node starts under its loaders and coverage took
    // close to the file's time limit on 2 busy cores; the usage paths they
    // take are measured by test/options.ts and test/integration/cli.ts.
    const proc = spawn('env', [...outsideTap(process.env), process.execPath, SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let killed: string | null = null
    const kill = (why: string): void => {
      killed ??= why
      proc.kill('SIGKILL')
    }
    const timer = setTimeout(() => kill(`still running after ${limitMs} ms`), limitMs)
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      if (/^listening on /m.test(stderr)) kill(STARTED)
    })
    proc.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, killed })
    })
  })

let retries = 0

/**
 * Runs the server with `args` within LIMIT_MS. On a machine so busy that Node
 * has not finished by then (it was killed for time, not for listening: under
 * tap, a Node process also writes its coverage as it exits), it is run once
 * more, alone in its lane, with three times as long. A real hang fails both.
 */
const run = async (args: readonly string[]): Promise<Outcome> => {
  const first = await runOnce(args, LIMIT_MS)
  if (first.killed === null || first.killed === STARTED) return first
  retries++
  return runOnce(args, 3 * LIMIT_MS)
}

/** Runs every vector, PARALLEL at a time, and resolves with the outcomes in order. */
const runAll = async (vectors: readonly string[][]): Promise<Outcome[]> => {
  const outcomes: Outcome[] = new Array(vectors.length)
  let nextIndex = 0
  const lane = async (): Promise<void> => {
    for (let i; (i = nextIndex++) < vectors.length; ) outcomes[i] = await run(vectors[i]!)
  }
  await Promise.all(Array.from({ length: PARALLEL }, lane))
  return outcomes
}

const STACK = /^\s+at |^\w*Error:/m

/** Why an outcome breaks the rule, or null if it keeps it. */
const fault = (o: Outcome): string | null => {
  if (o.killed !== null) return o.killed
  if (STACK.test(o.stdout) || STACK.test(o.stderr)) return 'a stack trace'
  if (o.code === 0) {
    if (o.stdout.trim() === '') return 'exit 0 without help or version on stdout'
    if (o.stderr !== '') return 'exit 0 with something on stderr'
    return null
  }
  if (o.code === 2) {
    if (o.stdout !== '') return 'a usage error with something on stdout'
    if (!/^forkserver: [^\n]+\n$/.test(o.stderr)) return 'a usage error that is not exactly one `forkserver: ` line'
    return null
  }
  return `exit ${o.code ?? o.signal}`
}

/** A short, readable form of a vector for a test name. */
const show = (args: readonly string[]): string =>
  JSON.stringify(args.map((a) => (a.length > 40 ? `${a.slice(0, 12)}…(${a.length} chars)` : a)))

t.test(`${RUNS} random argv vectors (mulberry32, seed 0x${SEED.toString(16)}) give help, version or a one-line usage error`, async (t) => {
  const random = mulberry32(SEED)
  const vectors = Array.from({ length: RUNS }, () => vector(random))
  const started = Date.now()
  const outcomes = await runAll(vectors)
  const tally = { help: 0, usage: 0, bad: 0 }
  outcomes.forEach((o, i) => {
    const why = fault(o)
    if (why === null) tally[o.code === 0 ? 'help' : 'usage']++
    else tally.bad++
    t.ok(why === null, `#${i} ${show(vectors[i]!)}${why === null ? '' : `: ${why}`}`, why === null ? {} : {
      code: o.code,
      signal: o.signal,
      stdout: o.stdout.slice(0, 400),
      stderr: o.stderr.slice(0, 1200),
    })
  })
  t.comment(`${tally.help} help/version, ${tally.usage} usage errors, ${tally.bad} faults, in ${Date.now() - started} ms (${retries} rerun after a timeout)`)
  t.ok(tally.help > 0 && tally.usage > 0, 'the vectors reach both outcomes')
})

// Found while building the fuzz's dictionary, and pinned here by name.

t.test('an option named after an Object.prototype property (--constructor, --toString, ...) is a usage error, not a stack trace', async (t) => {
  for (const args of [['--constructor'], ['--toString'], ['--hasOwnProperty', 'x'], ['--no-valueOf'], ['--port', '0', '--bogus', '--constructor']]) {
    const o = await run(args)
    t.equal(o.code, 2, `${show(args)}: exit status 2`)
    t.match(o.stderr, /^forkserver: [^\n]+\n$/, `${show(args)}: one forkserver: line`)
    t.notMatch(o.stderr, STACK, `${show(args)}: no stack trace`)
  }
})

t.test('a stray argument after -- is refused, as it is without --, instead of ignored', async (t) => {
  t.match((await run(['--port', '0', 'stray'])).stderr, /^forkserver: Unknown argument: stray/, 'without --: a usage error')
  for (const args of [['--port', '0', '--', 'stray'], ['--port', '0', '--', '--port', 'abc']]) {
    const o = await run(args)
    t.equal(o.killed, null, `${show(args)}: does not start a server`)
    t.equal(o.code, 2, `${show(args)}: exit status 2`)
    t.match(o.stderr, /^forkserver: [^\n]+\n$/, `${show(args)}: one forkserver: line`)
  }
})
