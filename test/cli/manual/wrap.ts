import t from 'tap'
import { wrap, wrapCommand } from '../../../lib/cli/manual/wrap.js'

t.test('words fill each line up to the width and no further', async (t) => {
  t.same(wrap('one two three four', 9), ['one two', 'three', 'four'])
  t.same(wrap('  spaced   out  ', 20), ['spaced out'])
  t.same(wrap('', 10), [''])
})

t.test('a word wider than the line is cut, after a | where it can be', async (t) => {
  t.same(wrap('abcdefghij', 4), ['abcd', 'efgh', 'ij'])
  t.same(wrap('x [echo|discard|daytime] y', 14), ['x', '[echo|discard|', 'daytime] y'])
  for (const line of wrap('a'.repeat(100), 7)) t.ok(line.length <= 7)
})

t.test('a command too long for a line continues on the next, after a backslash', async (t) => {
  t.same(wrapCommand(['forkserver', '--port', '7000', '--service', 'chargen'], 30, 2), [
    '  forkserver --port 7000 \\',
    '      --service chargen',
  ])
  t.same(wrapCommand(['forkserver'], 30, 2), ['  forkserver'])
})
