import { availableParallelism } from 'node:os'
import t from 'tap'
import { OPTION_TABLE, onlyFor, optionLabel, optionNamed, takesValue, typeNote, typeText } from '../../lib/cli/option-table.js'
import { parseOptions, USAGE_EXIT, type Options } from '../../lib/cli/options.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

const serve = async (argv: string[]): Promise<Options> => {
  const parsed = await parseOptions(argv, {})
  if (parsed.kind !== 'serve') throw new Error(`expected options, got: ${parsed.output}`)
  return parsed.options
}

t.test('every default in the table is the one the parser applies when the option is absent', async (t) => {
  const withDefaults = OPTION_TABLE.filter((o) => o.default !== undefined)
  t.ok(withDefaults.length >= 12, `${withDefaults.length} options have a default`)
  for (const o of withDefaults) {
    // (--zygote-max-forks is given only with --start zygote, which needs the addon.)
    if (o.name === 'zygote-max-forks' && skipUnlessBuilt() !== false) continue
    const model = o.model === 'prefork' ? ['--model', 'prefork'] : o.name === 'zygote-max-forks' ? ['--start', 'zygote'] : []
    // (--proxy-timeout means something only with --proxy-protocol, which needs --proxy-from.)
    const context = o.name === 'proxy-timeout' ? [...model, '--proxy-protocol', '--proxy-from', '127.0.0.1/32'] : model
    t.same(await serve([...context, `--${o.name}`, o.default!]), await serve(context), `--${o.name} ${o.default} changes nothing`)
  }
})

t.test('what happens without a defaultless option is what the table says', async (t) => {
  t.equal((await serve(['--model', 'prefork'])).workers, availableParallelism(), '--workers: the CPU count')
  t.equal((await serve([])).rate, null, '--rate: off')
  t.equal((await serve([])).verbose, false, '-v: off')
  t.equal(optionNamed('workers')?.otherwise, 'the CPU count')
})

t.test('an option that belongs to one model is refused with the other', async (t) => {
  t.same(onlyFor('fork'), ['start', 'max-children', 'spares', 'overflow', 'queue-limit', 'max-per-ip', 'rate', 'zygote-max-forks'])
  t.same(onlyFor('prefork'), ['workers', 'max-conns-per-child'])
  for (const o of OPTION_TABLE.filter((o) => o.model !== undefined)) {
    const other = o.model === 'fork' ? 'prefork' : 'fork'
    const value = o.name === 'rate' ? '5/1' : o.takes.kind === 'choice' ? o.takes.choices[0]! : '1'
    t.match(await parseOptions(['--model', other, `--${o.name}`, value], {}), { kind: 'exit', code: USAGE_EXIT, output: `--${o.name} is not available with --model ${other}` })
  }
})

t.test('each option is written with what it takes, and noted with its type and default', async (t) => {
  const named = (name: string) => optionNamed(name)!
  t.equal(optionLabel(named('port')), '--port PORT')
  t.equal(optionLabel(named('verbose')), '-v, --verbose')
  t.equal(optionLabel(named('exec')), '--exec -- PROGRAM [ARGS...]')
  t.equal(typeNote(named('port')), 'integer 0-65535; default: 7000')
  t.equal(typeNote(named('max-children')), 'integer >= 1; default: 40')
  t.equal(typeNote(named('model')), 'fork|prefork; default: fork')
  t.equal(typeNote(named('allow')), 'CIDR, repeatable')
  t.equal(typeNote(named('rate')), 'N/SECONDS; default: off')
  t.equal(typeNote(named('help')), 'flag')
  t.equal(typeText(named('host')), 'address')
  t.equal(typeText(named('path')), 'path')
})

t.test('an option takes the next word as its value unless it is a flag', async (t) => {
  t.ok(takesValue('port'))
  t.ok(takesValue('maxChildren'), 'yargs reads camelCase names too')
  t.notOk(takesValue('verbose'))
  t.notOk(takesValue('exec'), '--exec takes the words after --, not the next word')
  t.notOk(takesValue('bogus'), 'an unknown option takes nothing')
})

t.test('the names are unique, and every option has a description and a group', async (t) => {
  const names = OPTION_TABLE.flatMap((o) => [o.name, ...(o.alias === undefined ? [] : [o.alias])])
  t.equal(new Set(names).size, names.length)
  for (const o of OPTION_TABLE) t.ok(o.describe !== '' && o.group !== '', o.name)
})
