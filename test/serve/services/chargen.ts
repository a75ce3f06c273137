import t from 'tap'
import { chargenCycle } from '../../../lib/serve/services/chargen.js'

t.test('one rotation is 95 lines of 72 printable characters, each shifted by one', async (t) => {
  const lines = chargenCycle().toString('latin1').split('\r\n')
  t.equal(lines.pop(), '', 'every line ends in CR LF')
  t.equal(lines.length, 95)
  t.ok(lines.every((l) => l.length === 72 && /^[\x20-\x7e]+$/.test(l)))
  t.equal(lines[0], ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg', 'the first line, as BSD inetd sends it')
  t.equal(lines[1]!.slice(0, 71), lines[0]!.slice(1), 'the next line starts one character later')
  t.equal(lines[94]![0], '~', 'the last line starts with the last printable character')
  t.equal(lines[94]![1], ' ', 'and wraps around')
})
