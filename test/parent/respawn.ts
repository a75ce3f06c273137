import t from 'tap'
import { Backoff } from '../../lib/parent/respawn.js'

t.test('nothing after a clean exit; doubling delays while children keep crashing; capped at 10 s', async (t) => {
  const backoff = new Backoff()
  t.equal(backoff.next(false, 10), 0)
  t.same([1, 2, 3, 4].map(() => backoff.next(true, 10)), [100, 200, 400, 800])
  t.equal(backoff.next(false, 10), 0, 'a clean exit resets')
  t.equal(backoff.next(true, 10), 100)
  t.equal(backoff.next(true, 60_000), 0, 'a crash after a long life is not a loop')
  for (let i = 0; i < 20; i++) backoff.next(true, 10)
  t.equal(backoff.next(true, 10), 10_000)
})
