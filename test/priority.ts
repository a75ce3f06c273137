import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { getPriority } from 'node:os'
import t from 'tap'
import { readFileSync } from 'node:fs'
import { autogroupOf, CHILD_NICENESS, childNiceness, lowerPriority } from '../lib/priority.js'

/** The nice value of a process's autogroup. */
const groupNice = (pid: number | 'self'): number => Number(/nice (-?\d+)/.exec(readFileSync(`/proc/${pid}/autogroup`, 'utf8'))?.[1])
const noAutogroup = autogroupOf('self') === null && 'the kernel has no autogroup'

t.test('a child runs CHILD_NICENESS steps nicer than the parent, up to the nicest value', async (t) => {
  t.equal(childNiceness(0), CHILD_NICENESS)
  t.equal(childNiceness(5), 5 + CHILD_NICENESS)
  t.equal(childNiceness(15), 19, 'never past 19')
  t.equal(childNiceness(), Math.min(19, getPriority() + CHILD_NICENESS), 'taken from this process by default')
})

t.test('lowerPriority makes a running process nicer, and leaves this one as it was', async (t) => {
  const before = getPriority()
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' })
  t.teardown(() => child.kill('SIGKILL'))
  await once(child, 'spawn')
  lowerPriority(child.pid)
  t.equal(getPriority(child.pid), childNiceness(), 'the child is nicer')
  t.equal(getPriority(), before, 'the caller is not')
})

t.test('a process that is gone, or none at all, is no error', async (t) => {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  t.doesNotThrow(() => lowerPriority(child.pid))
  t.doesNotThrow(() => lowerPriority(undefined))
})

t.test('a child in a session of its own has its autogroup made nicer too; one in the parent\'s group leaves that group alone', { skip: noAutogroup }, async (t) => {
  const before = groupNice('self')
  const own = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore', detached: true })
  const shared = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' })
  t.teardown(() => [own, shared].forEach((c) => c.kill('SIGKILL')))
  await Promise.all([once(own, 'spawn'), once(shared, 'spawn')])
  t.not(autogroupOf(own.pid!), autogroupOf('self'), 'a new session is a new autogroup')
  t.equal(autogroupOf(shared.pid!), autogroupOf('self'))
  lowerPriority(own.pid)
  lowerPriority(shared.pid)
  t.equal(groupNice(own.pid!), childNiceness(), "the detached child's group is nicer")
  t.equal(getPriority(shared.pid), childNiceness(), 'the other child is nicer')
  t.equal(groupNice('self'), before, "but the group it shares with this process is not")
})
