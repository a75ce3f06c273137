import t from 'tap'
import { closestOption, editDistance, shellLine, shellWord, withSuggestion } from '../../lib/cli/hints.js'

t.test('the edit distance counts a swap of two neighbours as one edit', async (t) => {
  t.equal(editDistance('hots', 'host'), 1)
  t.equal(editDistance('port', 'port'), 0)
  t.equal(editDistance('', 'abc'), 3)
  t.equal(editDistance('grace', 'gracee'), 1)
  t.equal(editDistance('kitten', 'sitting'), 3)
})

t.test('a typo finds the option it was meant to be, and a word far from every option finds none', async (t) => {
  t.equal(closestOption('hots'), '--host')
  t.equal(closestOption('prot'), '--port')
  t.equal(closestOption('Port'), '--port')
  t.equal(closestOption('vrebose'), '--verbose')
  t.equal(closestOption('max-child'), '--max-children', 'the start of one option')
  t.equal(closestOption('max'), null, 'the start of several')
  t.equal(closestOption('Z'), null, 'one letter is too short to guess from')
  t.equal(closestOption('bogus'), null)
})

t.test('yargs\' unknown-argument message gets a "did you mean" only when one is close', async (t) => {
  t.equal(withSuggestion('Unknown argument: hots'), 'Unknown argument: hots (did you mean --host?)')
  t.equal(withSuggestion('Unknown arguments: max-child, maxChild'), 'Unknown arguments: max-child, maxChild (did you mean --max-children?)')
  t.equal(withSuggestion('Unknown argument: bogus'), 'Unknown argument: bogus')
  t.equal(withSuggestion('Not enough arguments following: port'), 'Not enough arguments following: port')
})

t.test('a command line is written back so that a shell reads the same words', async (t) => {
  t.equal(shellWord('cat'), 'cat')
  t.equal(shellWord('--port=0'), '--port=0')
  t.equal(shellWord('echo $HOME'), "'echo $HOME'")
  t.equal(shellWord("it's"), "'it'\\''s'")
  t.equal(shellWord(''), "''")
  t.equal(shellLine(['sh', '-c', 'echo hi']), "sh -c 'echo hi'")
})
