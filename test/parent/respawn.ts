import t from 'tap'
import { Backoff, Respawn } from '../../lib/parent/respawn.js'

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

t.test('a role waits out its delay before its next start; the delay stops growing at 10 s, and cancel ends the wait', async (t) => {
  const respawn = new Respawn()
  let due = 0
  t.notOk(respawn.waiting)
  const delays = Array.from({ length: 12 }, () => respawn.after(true, 10, () => due++))
  t.same(delays.slice(0, 4), [100, 200, 400, 800])
  t.equal(delays.at(-1), 10_000, 'at most 10 s')
  t.ok(respawn.waiting, 'while the wait is under way')
  respawn.cancel()
  t.notOk(respawn.waiting)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(due, 0, 'nothing is due after a cancel')
  await new Promise<void>((resolve) => respawn.after(false, 10, () => resolve()))
  t.notOk(respawn.waiting, 'after a clean exit the next is due at once')
})
