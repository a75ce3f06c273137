import t from 'tap'
import { daytimeLine } from '../../../lib/serve/services/daytime.js'

t.test('RFC 867: one human-readable line', async (t) => {
  t.equal(daytimeLine(new Date('2026-11-26T14:23:10Z')), 'Thu, 26 Nov 2026 14:23:10 GMT\r\n')
})
