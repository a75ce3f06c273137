import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { LAST_DIR, parseSettings, QUICK_DIR, quickLabel, RESULTS } from '../bench/settings.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

t.test('the committed figures are bench/results of this checkout, and the other folders lie inside it', async (t) => {
  t.equal(RESULTS, join(ROOT, 'bench', 'results'))
  t.equal(QUICK_DIR, join(RESULTS, 'quick'))
  t.equal(LAST_DIR, join(RESULTS, 'last'))
})

t.test('a quick run writes to bench/results/quick and is not saved', async (t) => {
  t.match(parseSettings(['--quick']), { quick: true, save: false, outDir: QUICK_DIR, startupSamples: 5 })
})

t.test('a full run writes to bench/results/last unless asked to save', async (t) => {
  t.match(parseSettings([]), { quick: false, save: false, outDir: LAST_DIR, startupSamples: 20 })
})

t.test('only --save writes the committed bench/results', async (t) => {
  t.match(parseSettings(['--save']), { quick: false, save: true, outDir: RESULTS })
})

t.test('--out names the folder, for a quick or a full run', async (t) => {
  t.equal(parseSettings(['--out', 'some/dir']).outDir, resolve('some/dir'))
  t.equal(parseSettings(['--out', '/tmp/x', '--quick']).outDir, '/tmp/x')
})

t.test('--save with --quick is refused in one line, in either order', async (t) => {
  for (const argv of [['--save', '--quick'], ['--quick', '--save']]) {
    t.throws(() => parseSettings(argv), { message: /^--save keeps a full run only: a quick run is never saved \(usage: [^\n]+\)$/ }, argv.join(' '))
  }
})

t.test('--save with --out is refused: the two name different folders', async (t) => {
  t.throws(() => parseSettings(['--save', '--out', '/tmp/x']), { message: /^--save writes bench\/results; --out names another folder[^\n]+$/ })
})

t.test('an unknown argument, or --out without a folder, is refused in one line', async (t) => {
  t.throws(() => parseSettings(['--fast']), { message: /^unknown argument "--fast" \(usage: [^\n]+\)$/ })
  t.throws(() => parseSettings(['--out']), { message: /^--out needs a folder \(usage: [^\n]+\)$/ })
  t.throws(() => parseSettings(['--out', '']), { message: /^--out needs a folder/ })
})

t.test('a quick run is labelled with its samples as not a result, a full run not at all', async (t) => {
  t.equal(quickLabel(parseSettings(['--quick'])), 'QUICK run (5 samples): not a result')
  t.equal(quickLabel(parseSettings([])), null)
})
