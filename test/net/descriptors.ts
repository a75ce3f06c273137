import t from 'tap'
import { Descriptors, descriptorLimit } from '../../lib/net/descriptors.js'

t.test('reads the soft limit of open files', async (t) => {
  t.equal(descriptorLimit(() => 'Limit  Soft Limit  Hard Limit  Units\nMax open files  64  1024  files\n'), 64)
  t.equal(descriptorLimit(() => 'Max open files  unlimited  unlimited  files\n'), null)
  t.equal(descriptorLimit(() => { throw new Error('no /proc') }), null)
})

t.test('says when fewer than the reserve are free, and how many are open', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const now = new Descriptors().open()
  t.type(now, 'number')
  t.equal(new Descriptors(now! + 100).short(16), null, 'plenty of room')
  t.match(new Descriptors(now! + 4).short(16), /^\d+ of \d+ descriptors open$/, 'not enough room')
  t.equal(new Descriptors(null).short(16), null, 'no limit known: no check')
})
