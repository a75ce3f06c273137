import t from 'tap'
import { newProcessPss, treePss, type TreeMemory } from '../bench/memory.js'

const tree = (entries: readonly (readonly [number, number])[]): TreeMemory => {
  const byPid = new Map(entries)
  return { pssKB: [...byPid.values()].reduce((sum, kb) => sum + kb, 0), processes: byPid.size, byPid }
}

t.test("a process tree's PSS is the sum over the processes it could read, each kept by pid", async (t) => {
  const own = treePss(process.pid)
  t.ok(own.byPid.has(process.pid), 'this process is counted')
  t.ok((own.byPid.get(process.pid) ?? 0) > 0, 'with its PSS')
  t.equal(own.processes, own.byPid.size)
  t.equal(own.pssKB, [...own.byPid.values()].reduce((sum, kb) => sum + kb, 0))
  // A pid that is no process: nothing read, nothing counted.
  t.same(treePss(2 ** 22 + 1), { pssKB: 0, processes: 0, byPid: new Map() })
})

t.test("the held connections' children: the processes that were not there idle, and their mean PSS", async (t) => {
  const idle = tree([[100, 30_000], [101, 20_000]])
  // The parent and the zygote grew or shrank: not counted. Three children appeared.
  const held = tree([[100, 31_000], [101, 12_000], [200, 2000], [201, 3000], [202, 4000]])
  t.same(newProcessPss(idle, held), { count: 3, meanKB: 3000 })
  t.same(newProcessPss(idle, idle), { count: 0, meanKB: null }, 'none appeared (prefork, node-single): no mean, not 0')
  // A spare of fork+spares used up and replaced is a new process too.
  t.same(newProcessPss(idle, tree([[100, 30_000], [300, 5000]])), { count: 1, meanKB: 5000 })
})
