// lib/serve/process-group.ts: finding a group's members. endGroup() and the rest run
// in the server's children: test/integration/process-group.ts.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { othersInGroup } from '../../lib/serve/process-group.js'

t.test('othersInGroup lists the live processes of a group, and none of another', async (t) => {
  // A group of its own: sh leads it, with two sleeps in it.
  const leader = spawn('sh', ['-c', 'sleep 30 & sleep 30 & echo started; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => {
    try {
      process.kill(-leader.pid!, 'SIGKILL')
    } catch {
      // gone
    }
  })
  await once(leader.stdout!, 'data')
  const members = othersInGroup(leader.pid!)
  t.equal(members.length, 3, 'sh and its two sleeps')
  t.ok(members.includes(leader.pid!))
  t.same(othersInGroup(-1), [], 'no process is in a group that cannot exist')
})
