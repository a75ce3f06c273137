// The command line, as a user meets it: usage errors are one line and a
// non-zero exit, never a stack trace.
import { spawnSync } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import t from 'tap'
import { SERVER, childrenOf, runServer } from '../fixtures/server.js'

const run = (args: readonly string[]) => {
  const result = spawnSync(process.execPath, [SERVER, ...args], { encoding: 'utf8', timeout: 20_000 })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const BAD: [string[], RegExp][] = [
  [['--bogus'], /Unknown argument: bogus/],
  [['--port', 'abc'], /--port must be an integer from 0 to 65535, got "abc"/],
  [['--port', '65536'], /--port must be an integer from 0 to 65535/],
  [['--port', '-1'], /--port/],
  [['--port'], /Not enough arguments following: port/],
  [['--service', 'gopher'], /--service: unknown value "gopher" \(choose from echo, discard, daytime, chargen, time\)/],
  [['--handler', '/no/such/module.js'], /--handler: no such file: \/no\/such\/module\.js/],
  [['--handler', SERVER, '--service', 'echo'], /--handler and --service cannot be given together/],
  [['--max-children', '0'], /--max-children must be an integer >= 1, got "0"/],
  [['--queue-limit', '-3'], /--queue-limit must be an integer >= 1/],
  [['--max-per-ip', 'many'], /--max-per-ip must be an integer >= 0/],
  [['--idle-timeout', '1.5'], /--idle-timeout must be an integer from 0 to 2147483/],
  [['--grace', 'x'], /--grace must be an integer from 0 to 2147483/],
  [['--overflow', 'drop'], /--overflow: unknown value "drop" \(choose from queue, reject\)/],
  [['--allow', '10.0.0.0/33'], /--allow: prefix length out of range in 10\.0\.0\.0\/33/],
  [['--deny', 'not-an-ip'], /--deny: not an IPv4 or IPv6 address or CIDR: not-an-ip/],
  [['--deny', '::1/129'], /--deny: prefix length out of range/],
  [['--port', '1', '--port', '2'], /--port was given more than once/],
  [['stray'], /Unknown argument: stray/],
  [['--model', 'threads'], /--model: unknown value "threads" \(choose from fork, prefork\)/],
  [['--model', 'prefork', '--max-per-ip', '2'], /--max-per-ip is not available with --model prefork: prefork workers accept for themselves/],
  [['--model', 'prefork', '--overflow', 'reject'], /--overflow is not available with --model prefork/],
  [['--model', 'prefork', '--queue-limit', '5'], /--queue-limit is not available with --model prefork/],
  [['--model', 'prefork', '--max-children', '5'], /--max-children is not available with --model prefork/],
  [['--workers', '2'], /--workers is not available with --model fork: it applies to --model prefork only/],
  [['--max-conns-per-child', '2'], /--max-conns-per-child is not available with --model fork/],
  [['--model', 'prefork', '--workers', '0'], /--workers must be an integer >= 1/],
  [['--rate', '10'], /--rate: expected N\/SECONDS with both at least 1, such as 20\/10, got "10"/],
  [['--rate', '0/10'], /--rate: expected N\/SECONDS/],
  [['--model', 'prefork', '--rate', '5/1'], /--rate is not available with --model prefork/],
  [['--max-lifetime', '-5'], /--max-lifetime must be an integer from 0 to 2147483/],
  [['--max-lifetime', '2592000'], /--max-lifetime must be at most 2147483 s \(24\.8 days\), Node's longest timer, got 2592000/],
  [['--grace', '2147484'], /--grace must be at most 2147483 s \(24\.8 days\), Node's longest timer, got 2147484/],
  [['--idle-timeout', '9999999999'], /--idle-timeout must be at most 2147483 s/],
  [['--user', 'no-such-user-here'], /--user: no such user: no-such-user-here/],
  [['--group', 'no-such-group-here'], /--group: no such group: no-such-group-here/],
  [['--constructor'], /Unknown argument: constructor/],
  [['--max-children', '1000000000'], /--max-children 1000000000 is more than this machine can hold: at most \d+ \(/],
  [['--spares', '5', '--max-children', '4'], /--spares 5 is more than --max-children 4: spares count toward it/],
  [['--model', 'prefork', '--spares', '2'], /--spares is not available with --model prefork/],
  [['--', 'stray'], /unexpected argument: stray \(to run a program per connection: --exec -- CMD \[ARGS\.\.\.\]\)/],
  [['--exec'], /--exec needs a program after --, as in: --exec -- cat/],
  [['--exec', '--'], /--exec needs a program after --/],
  [['--exec=yes', '--', 'cat'], /--exec takes no value/],
  [['--exec', '--handler', SERVER, '--', 'cat'], /--exec and --handler cannot be given together/],
  [['--exec', '--idle-timeout', '5', '--', 'cat'], /--idle-timeout cannot be used with --exec/],
  [['--path', ''], /--path must not be empty/],
  [['--path', '/tmp/x.sock', '--port', '1'], /--path cannot be given with --host or --port: a Unix socket has neither/],
  [['--path', '/tmp/x.sock', '--rate', '5/1'], /--rate cannot be given with --path/],
  [['--fd', 'three'], /--fd must be an integer from 0 to 65535, got "three"/],
  [['--fd', '3', '--host', '::'], /--fd cannot be given with --host, --port or --path: the descriptor is already bound/],
  [['--log-format', 'yaml'], /--log-format: unknown value "yaml" \(choose from text, json\)/],
  [['--verbose=yes'], /--verbose takes no value, got "--verbose=yes"/],
  [['--help=1'], /--help takes no value/],
  [['--hots', '::'], /Unknown argument: hots \(did you mean --host\?\)/],
  [['127.0.0.1'], /Unknown argument: 127\.0\.0\.1; a HOST needs a PORT after it: forkserver \[options\] HOST PORT/],
  [['127.0.0.1', 'http', 'cat'], /PORT must be an integer from 0 to 65535, got "http"/],
  [['--port', '7000', '127.0.0.1', '7000'], /HOST PORT cannot be given with --port/],
  [['--service', 'echo', '127.0.0.1', '7000', 'cat'], /a PROGRAM after HOST PORT cannot be given with --service/],
  [['--exec', 'cat', '-n'], /--exec needs -- before its program, as in: forkserver --exec -- cat -n/],
]

for (const [args, message] of BAD) {
  t.test(`forkserver ${args.join(' ')} is a usage error`, async (t) => {
    const { code, stdout, stderr } = run(args)
    t.equal(code, 2, 'exit status 2')
    t.equal(stdout, '')
    t.equal(stderr.trimEnd().split('\n').length, 1, 'one line')
    t.match(stderr, message)
    t.match(stderr, /^forkserver: /)
    t.notMatch(stderr, /\n\s+at /, 'no stack trace')
  })
}

t.test('--model prefork --workers 100000 is refused within 5 s, in one line, with nothing forked', async (t) => {
  const startedAt = Date.now()
  const server = runServer(t, ['--model', 'prefork', '--workers', '100000', '--port', '0', '-v'])
  let most = 0
  const sampler = setInterval(() => (most = Math.max(most, childrenOf(server.pid).length)), 10)
  const exit = await server.exited
  clearInterval(sampler)
  t.same(exit, { code: 2, signal: null })
  t.ok(Date.now() - startedAt < 5000, `exited ${Date.now() - startedAt} ms after it started`)
  t.equal(most, 0, 'no child seen while it ran')
  t.equal(server.lines.filter((line) => line !== '').length, 1, 'one line, and no listening line: workers are forked once it listens')
  t.match(server.lines[0], /^forkserver: --workers 100000 is more than this machine can hold: at most \d+ \(.+\) \(see --help\)$/)
})

t.test('--help lists every option and exits 0', async (t) => {
  const { code, stdout } = run(['--help'])
  t.equal(code, 0)
  for (const option of ['--model', '--spares', '--workers', '--max-conns-per-child', '--host', '--port', '--service', '--handler', '--max-children', '--overflow', '--queue-limit',
    '--max-per-ip', '--rate', '--allow', '--deny', '--idle-timeout', '--grace', '--max-lifetime', '--user', '--group', '--verbose', '--help', '--version',
    '--exec', '--path', '--fd', '--log-format']) {
    t.match(stdout, option)
  }
})

const helpAt = (env: NodeJS.ProcessEnv): string[] => {
  const result = spawnSync(process.execPath, [SERVER, '--help'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } })
  return result.stdout.split('\n')
}

for (const [columns, width] of [['80', 80], ['50', 50], ['120', 120], ['300', 120]] as const) {
  t.test(`COLUMNS=${columns} --help fits in ${width} columns and covers exit status, signals, environment and examples`, async (t) => {
    const lines = helpAt({ COLUMNS: columns })
    t.same(lines.filter((line) => line.length > width), [], `no line over ${width} columns`)
    t.ok(lines.some((line) => line.length > width - 10), 'and it uses the width it has')
    const text = lines.join('\n')
    for (const word of [/^Exit status:$/m, /SIGHUP/, /DEBUG/, /LISTEN_FDS/, /^Examples:$/m, /^Usage: forkserver \[options\]$/m]) t.match(text, word)
  })
}

const script = spawnSync('script', ['--version'])

t.test('on a terminal, --help fits the terminal, whatever COLUMNS says', { skip: script.error ? 'script(1) is not installed (util-linux)' : false }, async (t) => {
  const run = spawnSync('script', ['-q', '-e', '-c', `stty cols 64 rows 40; exec "${process.execPath}" "${SERVER}" --help`, '/dev/null'], {
    encoding: 'utf8', timeout: 20_000, env: { ...process.env, COLUMNS: '100' },
  })
  t.equal(run.status, 0)
  const lines = run.stdout.split(/\r?\n/)
  t.match(lines[0], /^Usage: forkserver/)
  t.same(lines.filter((line) => line.length > 64), [], 'no line over 64 columns')
  t.ok(lines.some((line) => line.length > 54), 'and it uses the width it has')
})

t.test('--version prints the package version first (integration/version.ts has the rest)', async (t) => {
  const { code, stdout } = run(['--version'])
  t.equal(code, 0)
  t.match(stdout, /^forkserver \d+\.\d+\.\d+\n/)
})

t.test('a port in use is one fatal line and exit 1', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as AddressInfo).port
  const { code, stderr } = run(['--port', String(port)])
  t.equal(code, 1)
  t.equal(stderr, `fatal: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`)
})

const FATAL: [string[], string][] = [
  [['--path', '/no/such/dir/fs.sock'], 'fatal: /no/such/dir/fs.sock: its directory /no/such/dir does not exist (ENOENT)\n'],
  [['--path', `${SERVER}/fs.sock`], `fatal: ${SERVER}/fs.sock: ${SERVER} is not a directory (ENOTDIR)\n`],
  [['--path', `${SERVER}/more/fs.sock`], `fatal: ${SERVER}/more/fs.sock: a part of ${SERVER}/more is not a directory (ENOTDIR)\n`],
  [['--fd', '99'], 'fatal: descriptor 99: not an open descriptor (EBADF)\n'],
  // (stdin is /dev/null here)
  [['--fd', '0'], 'fatal: descriptor 0: not a socket (ENOTSOCK)\n'],
]

for (const [args, line] of FATAL) {
  t.test(`forkserver ${args.join(' ')} fails to start with one fatal line that names the cause`, async (t) => {
    const { status, stderr } = spawnSync(process.execPath, [SERVER, ...args], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] })
    t.equal(status, 1)
    t.equal(stderr, line)
  })
}
