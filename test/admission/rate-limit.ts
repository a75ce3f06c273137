import t from 'tap'
import { parseRate, RateLimiter } from '../../lib/admission/rate-limit.js'

t.test('parses N/SECONDS', async (t) => {
  t.same(parseRate('20/10'), { count: 20, seconds: 10 })
  for (const bad of ['20', '0/10', '5/0', '-1/10', '1.5/10', 'x/y', '20/10/1', '']) {
    t.throws(() => parseRate(bad), /expected N\/SECONDS/, bad)
  }
})

t.test('admits N per window per address, then refuses until the oldest falls out', async (t) => {
  const limiter = new RateLimiter({ count: 2, seconds: 10 })
  t.ok(limiter.admit('10.0.0.1', 0))
  t.ok(limiter.admit('10.0.0.1', 1000))
  t.notOk(limiter.admit('10.0.0.1', 2000), 'third in the window')
  t.ok(limiter.admit('10.0.0.2', 2000), 'another address has its own count')
  t.notOk(limiter.admit('10.0.0.1', 9999), 'still within 10 s of the first')
  t.ok(limiter.admit('10.0.0.1', 10_001), 'the first has left the window')
  t.notOk(limiter.admit('10.0.0.1', 10_500), 'refused attempts do not count, admitted ones do')
})

t.test('addresses whose window emptied are forgotten once many are remembered', async (t) => {
  const limiter = new RateLimiter({ count: 1, seconds: 1 })
  for (let i = 0; i < 1500; i++) limiter.admit(`10.0.${i >> 8}.${i & 255}`, 0)
  t.equal(limiter.size, 1500)
  limiter.admit('192.0.2.1', 5000)
  t.equal(limiter.size, 1, 'only the new address is left')
})
