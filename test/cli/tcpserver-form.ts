import t from 'tap'
import { parseOptions, USAGE_EXIT } from '../../lib/cli/options.js'
import { splitArgv } from '../../lib/cli/tcpserver-form.js'

t.test('the options end at the first word that is neither an option nor its value', async (t) => {
  t.same(splitArgv(['-v', '--port', '0', 'cat']), { options: ['-v', '--port', '0'], positionals: ['cat'], command: [] })
  t.same(splitArgv(['0', '7000', 'cat', '-n', '--port', 'x']), { options: [], positionals: ['0', '7000', 'cat', '-n', '--port', 'x'], command: [] })
  t.same(splitArgv(['--port=0', 'host']), { options: ['--port=0'], positionals: ['host'], command: [] }, '--opt=value takes no next word')
  t.same(splitArgv(['--verbose', '0', '7000']), { options: ['--verbose'], positionals: ['0', '7000'], command: [] }, 'a flag takes no next word')
  t.same(splitArgv(['--host', '--port', '0']), { options: ['--host', '--port', '0'], positionals: [], command: [] }, 'a word like an option is not a value')
  t.same(splitArgv(['--exec', '--', 'cat', '-n']), { options: ['--exec'], positionals: [], command: ['cat', '-n'] })
  t.same(splitArgv(['-', 'x']), { options: [], positionals: ['-', 'x'], command: [] }, 'a lone - is a word, not an option')
})

const serve = async (argv: string[]) => {
  const parsed = await parseOptions(argv, {})
  if (parsed.kind !== 'serve') throw new Error(`expected options, got: ${parsed.output}`)
  return parsed.options
}

t.test('HOST PORT PROGRAM ARGS... is --host HOST --port PORT --exec -- PROGRAM ARGS...', async (t) => {
  const short = await serve(['-v', '0', '7001', 'cat', '-n', '--port', 'x'])
  t.same(short, await serve(['-v', '--host', '0', '--port', '7001', '--exec', '--', 'cat', '-n', '--port', 'x']))
  t.same(short.exec, ['cat', '-n', '--port', 'x'], "every word after PROGRAM is the program's")
  t.same(short.endpoint, { kind: 'tcp', host: '0', port: 7001 })
})

t.test('HOST PORT with no program serves --service or --handler', async (t) => {
  t.match(await serve(['::1', '0']), { endpoint: { kind: 'tcp', host: '::1', port: 0 }, service: 'echo', exec: null })
  t.match(await serve(['--service', 'daytime', '127.0.0.1', '7001']), { service: 'daytime', endpoint: { port: 7001 } })
  t.match(await serve(['--handler', import.meta.filename, '127.0.0.1', '7001']), { handler: import.meta.filename, service: null, exec: null })
})

const MISTAKES: [string[], string][] = [
  [['stray'], 'Unknown argument: stray; a HOST needs a PORT after it: forkserver [options] HOST PORT [PROGRAM [ARGS...]]'],
  [['0', 'http'], 'PORT must be an integer from 0 to 65535, got "http"'],
  [['0', '65536', 'cat'], 'PORT must be an integer from 0 to 65535, got "65536"'],
  [['0', '-v'], 'PORT must be an integer from 0 to 65535, got "-v" (options go before HOST PORT)'],
  [['', '7000'], 'HOST must not be empty'],
  [['--port', '1', '0', '7000'], 'HOST PORT cannot be given with --port: say where to listen one way'],
  [['--host', '::', '0', '7000'], 'HOST PORT cannot be given with --host: say where to listen one way'],
  [['--path', '/tmp/x.sock', '0', '7000'], 'HOST PORT cannot be given with --path: say where to listen one way'],
  [['--fd', '3', '0', '7000', 'cat'], 'HOST PORT cannot be given with --fd: say where to listen one way'],
  [['--service', 'echo', '0', '7000', 'cat'], 'a PROGRAM after HOST PORT cannot be given with --service: the program serves each connection'],
  [['--handler', import.meta.filename, '0', '7000', 'cat'], 'a PROGRAM after HOST PORT cannot be given with --handler'],
  [['--exec', '0', '7000', 'cat'], '--exec cannot be given with HOST PORT: the PROGRAM after them is run already'],
  [['0', '7000', '-v', 'cat'], 'PROGRAM -v looks like an option: options go before HOST PORT'],
  [['0', '7000', ''], 'PROGRAM must not be empty'],
  [['--exec', 'cat'], '--exec needs -- before its program, as in: forkserver --exec -- cat'],
  [['--port', '0', '--exec', 'sh', '-c', 'echo $TCPREMOTEIP'], "--exec needs -- before its program, as in: forkserver --port 0 --exec -- sh -c 'echo $TCPREMOTEIP'"],
]

t.test('each mistake with tcpserver\'s form is one usage line that names it', async (t) => {
  for (const [argv, message] of MISTAKES) {
    const parsed = await parseOptions(argv, {})
    t.match(parsed, { kind: 'exit', code: USAGE_EXIT }, JSON.stringify(argv))
    if (parsed.kind === 'exit') t.ok(parsed.output.startsWith(`forkserver: ${message}`), `${JSON.stringify(argv)}: ${parsed.output.trim()}`)
  }
})

t.test('--help wins over a mistake in the words after the options, as it does over other mistakes', async (t) => {
  t.match(await parseOptions(['--help', 'stray'], {}), { kind: 'exit', code: 0, output: /^Usage: / })
})
