import type { ChildProcess } from 'node:child_process'
import t from 'tap'
import { ChildTable, type ChildEntry } from '../lib/child-table.js'

const entry = (id: number, remoteAddress: string): ChildEntry => ({
  info: { id, remoteAddress, remotePort: 1000 + id, localAddress: '127.0.0.1', localPort: 7000 },
  child: { pid: 100 + id } as ChildProcess,
  socket: null,
  handoffTimer: null,
})

t.test('counts live children, per source address, and remembers the peak', async (t) => {
  const table = new ChildTable()
  t.equal(table.size, 0)
  table.add(entry(1, '10.0.0.1'))
  table.add(entry(2, '10.0.0.1'))
  table.add(entry(3, '10.0.0.2'))
  t.equal(table.size, 3)
  t.equal(table.countFrom('10.0.0.1'), 2)
  t.equal(table.countFrom('10.0.0.9'), 0)
  t.equal(table.remove(1)?.info.id, 1)
  t.equal(table.remove(1), undefined, 'removing twice is harmless')
  t.equal(table.size, 2)
  t.equal(table.countFrom('10.0.0.1'), 1)
  t.equal(table.peak, 3, 'the peak stays')
  t.same([...table].map((e) => e.info.id), [2, 3], 'iterates over the live children')
})
