import t from 'tap'
import { resolveCredentials } from '../../lib/cli/credentials.js'

t.test('no --user and no --group: children keep the parent ids', async (t) => {
  t.equal(resolveCredentials(undefined, undefined), null)
})

t.test('a user by name or number, with its own group unless --group says otherwise', async (t) => {
  t.same(resolveCredentials('root', undefined), { uid: 0, gid: 0 })
  t.same(resolveCredentials('0', undefined), { uid: 0, gid: 0 })
  const nobody = resolveCredentials('nobody', undefined)
  t.ok(nobody !== null && nobody.uid > 0)
  t.same(resolveCredentials('root', 'root'), { uid: 0, gid: 0 })
})

t.test('unknown names are one-line errors naming the option', async (t) => {
  t.throws(() => resolveCredentials('no-such-user-here', undefined), /^--user: no such user: no-such-user-here$/)
  t.throws(() => resolveCredentials(undefined, 'no-such-group-here'), /^--group: no such group: no-such-group-here$/)
})
