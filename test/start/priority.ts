import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { getPriority } from 'node:os'
import t from 'tap'
import { CHILD_NICENESS, childNiceness, lowerPriority } from '../../lib/start/priority.js'

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

