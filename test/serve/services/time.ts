import t from 'tap'
import { EPOCH_1900, timeBytes } from '../../../lib/serve/services/time.js'

t.test('RFC 868: seconds since 1900, 4 bytes big-endian', async (t) => {
  t.same([...timeBytes(new Date(0))], [0x83, 0xaa, 0x7e, 0x80], '1970-01-01 is 2208988800')
  t.equal(timeBytes(new Date('2000-01-01T00:00:00Z')).readUInt32BE(0), 946684800 + EPOCH_1900)
  t.equal(timeBytes(new Date('2036-02-07T06:28:16Z')).readUInt32BE(0), 0, 'wraps in 2036')
})
