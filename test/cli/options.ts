import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseOptions, USAGE_EXIT, type Options } from '../../lib/cli/options.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

const serve = async (argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Options> => {
  const parsed = await parseOptions(argv, env)
  if (parsed.kind !== 'serve') throw new Error(`expected options, got: ${parsed.output}`)
  return parsed.options
}

t.test('the defaults are those of the issue: echo on 127.0.0.1:7000, 40 children, queue 128', async (t) => {
  t.match(await serve([]), {
    endpoint: { kind: 'tcp', host: '127.0.0.1', port: 7000 }, service: 'echo', handler: null, exec: null, logFormat: 'text', maxChildren: 40, overflow: 'queue',
    queueLimit: 128, maxPerIp: 0, rate: null, access: { allow: [], deny: [] }, idleTimeout: 0, grace: 10, maxLifetime: 0,
    credentials: null, verbose: false, model: 'fork', maxConnsPerChild: 0,
  })
})

t.test('every option is parsed into the readonly object', async (t) => {
  const options = await serve(['--host', '::1', '--port', '0', '--service', 'chargen', '--max-children', '3',
    '--overflow', 'reject', '--queue-limit', '5', '--max-per-ip', '2', '--allow', '10.0.0.0/8', '--allow', '::1',
    '--deny', '10.9.0.0/16', '--idle-timeout', '30', '--grace', '0', '-v'])
  t.match(options, { endpoint: { kind: 'tcp', host: '::1', port: 0 }, service: 'chargen', maxChildren: 3, overflow: 'reject', queueLimit: 5,
    maxPerIp: 2, idleTimeout: 30, grace: 0, verbose: true })
  t.same(options.access.allow.map((c) => c.text), ['10.0.0.0/8', '::1'])
  t.same(options.access.deny.map((c) => c.text), ['10.9.0.0/16'])
})

t.test('--handler replaces the service and is resolved to an absolute path', async (t) => {
  const here = fileURLToPath(import.meta.url)
  const options = await serve(['--handler', here])
  t.equal(options.handler, here)
  t.equal(options.service, null)
})

t.test('a bad option is one usage line naming it, with exit status 2', async (t) => {
  const parsed = await parseOptions(['--max-children', 'lots'])
  t.match(parsed, { kind: 'exit', code: USAGE_EXIT })
  if (parsed.kind === 'exit') t.equal(parsed.output, 'forkserver: --max-children must be an integer >= 1, got "lots" (see --help)\n')
})

t.test('--help and --version are output with exit status 0', async (t) => {
  t.match(await parseOptions(['--help']), { kind: 'exit', code: 0, output: /Usage: forkserver \[options\]/ })
  t.match(await parseOptions(['--version']), { kind: 'exit', code: 0, output: /^forkserver \d+\.\d+\.\d+\nnode v\d+.*\naddon: .*\nfork self-test: .*\n$/ })
})

t.test('--rate, --max-lifetime and --user are parsed once, here', async (t) => {
  t.match(await serve(['--rate', '20/10', '--max-lifetime', '30']), { rate: { count: 20, seconds: 10 }, maxLifetime: 30 })
  t.match(await serve(['--model', 'prefork', '--workers', '3', '--max-conns-per-child', '100']), { model: 'prefork', workers: 3, maxConnsPerChild: 100 })
  if (process.getuid?.() === 0) t.same((await serve(['--user', 'root'])).credentials, { uid: 0, gid: 0 })
})

t.test('--exec takes the program and its arguments after --, untouched', async (t) => {
  const options = await serve(['--exec', '--port', '0', '--', 'sh', '-c', 'echo hello $TCPREMOTEIP', '--port', 'x'])
  t.same(options.exec, ['sh', '-c', 'echo hello $TCPREMOTEIP', '--port', 'x'])
  t.equal(options.service, null)
  t.equal(options.handler, null)
  t.match(await parseOptions(['--exec']), { kind: 'exit', code: USAGE_EXIT, output: /--exec needs a program after --/ })
  t.match(await parseOptions(['--', 'cat']), { kind: 'exit', code: USAGE_EXIT, output: /unexpected argument: cat \(to run a program per connection: --exec -- CMD/ })
  t.match(await parseOptions(['--exec', '--service', 'echo', '--', 'cat']), { kind: 'exit', output: /--exec and --service cannot be given together/ })
})

t.test('the endpoint is a TCP address, a Unix socket path, or an inherited descriptor', async (t) => {
  t.same((await serve(['--path', 'run/fs.sock'])).endpoint, { kind: 'path', path: `${process.cwd()}/run/fs.sock` })
  t.same((await serve(['--fd', '3'])).endpoint, { kind: 'fd', fd: 3, from: '--fd' })
  t.same((await serve(['--host', '::'])).endpoint, { kind: 'tcp', host: '::', port: 7000 })
  for (const [argv, message] of [
    [['--fd', '3', '--port', '1'], /--fd cannot be given with --host, --port or --path/],
    [['--path', '/tmp/x.sock', '--host', '::1'], /--path cannot be given with --host or --port/],
    [['--path', '/tmp/x.sock', '--allow', '10.0.0.0/8'], /--allow cannot be given with --path: a Unix socket's peers have no address/],
    [['--path', `/tmp/${'x'.repeat(120)}`], /--path is too long for a Unix socket/],
  ] as const) {
    t.match(await parseOptions(argv), { kind: 'exit', code: USAGE_EXIT, output: message }, argv.join(' '))
  }
})

t.test('systemd socket activation: LISTEN_FDS for this pid means descriptor 3, unless an endpoint is given', async (t) => {
  const ours = { LISTEN_FDS: '1', LISTEN_PID: String(process.pid) }
  t.same((await serve([], ours)).endpoint, { kind: 'fd', fd: 3, from: 'LISTEN_FDS' })
  t.same((await serve([], { LISTEN_FDS: '1', LISTEN_PID: '1' })).endpoint, { kind: 'tcp', host: '127.0.0.1', port: 7000 }, 'another process\'s variables')
  t.same((await serve([], { LISTEN_FDS: '0', LISTEN_PID: String(process.pid) })).endpoint.kind, 'tcp', 'no descriptors passed')
  t.same((await serve(['--port', '9'], ours)).endpoint, { kind: 'tcp', host: '127.0.0.1', port: 9 }, 'an explicit endpoint wins')
})

t.test('--log-format is text or json', async (t) => {
  t.equal((await serve(['--log-format', 'json'])).logFormat, 'json')
  t.match(await parseOptions(['--log-format', 'xml']), { kind: 'exit', output: /--log-format: unknown value "xml" \(choose from text, json\)/ })
})

t.test("a count over the machine's ceiling is one usage line naming the ceiling and why; the defaults are not held to it", async (t) => {
  // A small container: pids.max 550 (49 children at 11 threads each), 1024 descriptors.
  const small = () => ({ processLimit: null, pidsMax: 550, pidMax: null, cgroupMemory: null, ram: 2 ** 36, descriptorLimit: 1024 })
  const refused = async (argv: string[], message: RegExp): Promise<void> => {
    t.match(await parseOptions(argv, {}, small), { kind: 'exit', code: USAGE_EXIT, output: message })
  }
  await refused(['--model', 'prefork', '--workers', '100000'], /^forkserver: --workers 100000 is more than this machine can hold: at most 49 \(the cgroup's pids\.max 550, at 11 threads a child\) \(see --help\)\n$/)
  await refused(['--max-children', '50'], /--max-children 50 is more than this machine can hold: at most 49 /)
  await refused(['--spares', '60', '--max-children', '40'], /--spares 60 is more than this machine can hold: at most 49 /)
  await refused(['--queue-limit', '1009'], /--queue-limit 1009 is more than this machine can hold: at most 1008 \(ulimit -n 1024, less 16 kept in reserve\)/)
  const at = await parseOptions(['--max-children', '49', '--spares', '49', '--queue-limit', '1008'], {}, small)
  t.match(at, { kind: 'serve', options: { maxChildren: 49, spares: 49, queueLimit: 1008 } }, 'the ceilings themselves are taken')
  let read = 0
  t.match(await parseOptions([], {}, () => (read++, small())), { kind: 'serve', options: { maxChildren: 40, queueLimit: 128 } })
  t.equal(read, 0, 'the machine is not read when no count is given')
})

t.test('--proxy-protocol: its balancers and its time limit, parsed once; off by default', { skip: skipUnlessBuilt() }, async (t) => {
  t.equal((await serve([])).proxy, null)
  const { proxy } = await serve(['--proxy-protocol', '--proxy-from', '127.0.0.1/32', '--proxy-from', '::1', '--proxy-timeout', '5'])
  t.same(proxy?.from.map((c) => c.text), ['127.0.0.1/32', '::1'])
  t.equal(proxy?.timeoutS, 5)
  t.equal((await serve(['--proxy-protocol', '--proxy-from', '0.0.0.0/0'])).proxy?.timeoutS, 3, '3 s by default')
  t.match(await serve(['--path', '/tmp/forkserver-test.sock', '--proxy-protocol', '--proxy-from', '127.0.0.1/32', '--deny', '10.0.0.0/8']),
    { endpoint: { kind: 'path' } }, 'on a Unix socket too, with rules for the clients the headers name')
})

t.test('--proxy-protocol without its balancers, or its companions without it, is one usage line', async (t) => {
  const usage = async (argv: string[]): Promise<string> => {
    const parsed = await parseOptions(argv, {})
    return parsed.kind === 'exit' && parsed.code === USAGE_EXIT ? parsed.output : `not a usage error: ${parsed.kind}`
  }
  t.match(await usage(['--proxy-protocol']), /^forkserver: --proxy-protocol needs --proxy-from CIDR: the balancers trusted to name the client \(0\.0\.0\.0\/0 for any\) \(see --help\)\n$/)
  t.match(await usage(['--proxy-from', '127.0.0.1/32']), /^forkserver: --proxy-from needs --proxy-protocol /)
  t.match(await usage(['--proxy-timeout', '5']), /^forkserver: --proxy-timeout needs --proxy-protocol /)
  t.match(await usage(['--proxy-protocol', '--proxy-from', 'nonsense']), /^forkserver: --proxy-from: .*nonsense/)
  t.match(await usage(['--proxy-protocol', '--proxy-from', '127.0.0.1/32', '--proxy-timeout', '0']), /^forkserver: --proxy-timeout must be an integer/)
})

t.test('--zygote-max-forks: 10,000 by default, taken with --start zygote or auto, one usage line with --start spawn or --model prefork', { skip: skipUnlessBuilt() }, async (t) => {
  t.equal((await serve([])).zygoteMaxForks, 10_000)
  t.equal((await serve(['--start', 'zygote', '--zygote-max-forks', '0'])).zygoteMaxForks, 0)
  t.equal((await serve(['--start', 'zygote', '--zygote-max-forks', '500'])).zygoteMaxForks, 500)
  t.equal((await serve(['--zygote-max-forks', '500'])).zygoteMaxForks, 500, '--start auto: for the zygote it will most likely have')
  t.match(await parseOptions(['--start', 'spawn', '--zygote-max-forks', '500']), { kind: 'exit', code: USAGE_EXIT, output: 'forkserver: --zygote-max-forks needs --start zygote: a spawned child is a fresh exec, with an address layout of its own (see --help)\n' })
  t.match(await parseOptions(['--model', 'prefork', '--zygote-max-forks', '500']), { kind: 'exit', code: USAGE_EXIT, output: /^forkserver: --zygote-max-forks is not available with --model prefork/ })
  t.match(await parseOptions(['--start', 'zygote', '--zygote-max-forks', '-1']), { kind: 'exit', code: USAGE_EXIT, output: /--zygote-max-forks must be an integer >= 0/ })
})
