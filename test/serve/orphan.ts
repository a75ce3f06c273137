import t from 'tap'
import { atOrphanDeadline, ORPHAN_DEADLINE_S, orphanSeconds } from '../../lib/serve/orphan.js'

t.test('an orphan has --idle-timeout to finish, or the deadline when that is off', async (t) => {
  t.equal(orphanSeconds({ idleTimeout: 0 }), ORPHAN_DEADLINE_S)
  t.equal(ORPHAN_DEADLINE_S, 60)
  t.equal(orphanSeconds({ idleTimeout: 7 }), 7)
})

t.test('what ends an orphan runs at its deadline, counted from when its parent went', async (t) => {
  const began = Date.now()
  const ended = new Promise<number>((resolve) => t.equal(atOrphanDeadline({ idleTimeout: 1 }, () => resolve(Date.now() - began)), 1, 'its seconds, for the trace'))
  t.ok((await ended) >= 950, 'a second later')
})
