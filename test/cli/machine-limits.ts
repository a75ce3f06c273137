import t from 'tap'
import { childCeiling, MEMORY_PER_CHILD, queueCeiling, readMachine, THREADS_PER_CHILD, type Machine } from '../../lib/cli/machine-limits.js'

const GiB = 2 ** 30

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             4000                 8000                 processes
Max open files            1024                 524288               files
`

/** A reader over fixture files: any other path is absent, as a missing file is. */
const files = (texts: Record<string, string>) => (path: string): string => {
  const text = texts[path]
  if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
  return text
}

t.test('the process and open-file limits are read from /proc/self/limits, unlimited as none', async (t) => {
  const m = readMachine(files({ '/proc/self/limits': LIMITS, '/proc/sys/kernel/pid_max': '4194304\n' }), 8 * GiB)
  t.match(m, { processLimit: 4000, descriptorLimit: 1024, pidMax: 4194304, ram: 8 * GiB, pidsMax: null, cgroupMemory: null })
  const unlimited = LIMITS.replace(/(Max processes\s+)4000/, '$1unlimited').replace(/(Max open files\s+)1024/, '$1unlimited')
  t.match(readMachine(files({ '/proc/self/limits': unlimited }), GiB), { processLimit: null, descriptorLimit: null, pidMax: null })
})

t.test('cgroup v2: the lowest pids.max and memory.max from the cgroup up to the root, max as none', async (t) => {
  const m = readMachine(files({
    '/proc/self/cgroup': '0::/system.slice/app.service\n',
    '/sys/fs/cgroup/system.slice/app.service/pids.max': 'max\n',
    '/sys/fs/cgroup/system.slice/pids.max': '550\n',
    '/sys/fs/cgroup/system.slice/app.service/memory.max': '536870912\n',
    '/sys/fs/cgroup/system.slice/memory.max': 'max\n',
  }), 8 * GiB)
  t.equal(m.pidsMax, 550, "the slice's limit holds the service")
  t.equal(m.cgroupMemory, 512 * 2 ** 20)
  const root = readMachine(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/pids.max': '200\n' }), GiB)
  t.equal(root.pidsMax, 200, "a container's own cgroup, seen as the root")
})

t.test("cgroup v1: each controller's own hierarchy", async (t) => {
  const m = readMachine(files({
    '/proc/self/cgroup': '9:name=systemd:/docker/ab\n8:pids:/docker/ab\n4:memory:/docker/ab\n3:cpu,cpuacct:/docker/ab\n',
    '/sys/fs/cgroup/pids/docker/ab/pids.max': '300\n',
    '/sys/fs/cgroup/memory/docker/ab/memory.limit_in_bytes': '1073741824\n',
    '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
  }), 8 * GiB)
  t.equal(m.pidsMax, 300)
  t.equal(m.cgroupMemory, GiB, "v1's 'no limit', a huge number, is none")
  const without = readMachine(files({ '/proc/self/cgroup': '3:cpu,cpuacct:/docker/ab\n' }), GiB)
  t.match(without, { pidsMax: null, cgroupMemory: null }, 'no pids or memory hierarchy, no limit')
})

t.test('a machine where nothing can be read has no limits but its memory', async (t) => {
  t.match(readMachine(files({}), GiB), { processLimit: null, pidsMax: null, pidMax: null, cgroupMemory: null, descriptorLimit: null, ram: GiB })
})

const machine = (over: Partial<Machine>): Machine =>
  ({ processLimit: null, pidsMax: null, pidMax: null, cgroupMemory: null, ram: 64 * GiB, descriptorLimit: null, ...over })

t.test('children: the tightest limit wins, in threads a child, one share left for the parent', async (t) => {
  t.equal(THREADS_PER_CHILD, 11)
  t.same(childCeiling(machine({ processLimit: 4000, pidMax: 32768 })), { most: 362, why: 'ulimit -u 4000, at 11 threads a child' })
  t.same(childCeiling(machine({ processLimit: 4000, pidsMax: 550 })), { most: 49, why: "the cgroup's pids.max 550, at 11 threads a child" })
  t.same(childCeiling(machine({ pidMax: 32768 })), { most: 2977, why: 'kernel.pid_max 32768, at 11 threads a child' })
})

t.test('children: memory over what a child adds, the cgroup limit when it is below RAM', async (t) => {
  t.equal(MEMORY_PER_CHILD, 12 * 2 ** 20)
  t.same(childCeiling(machine({ ram: 2 * GiB })), { most: 169, why: 'memory 2.0 GiB, at 12 MiB a child' })
  t.same(childCeiling(machine({ cgroupMemory: 512 * 2 ** 20 })), { most: 41, why: "the cgroup's memory limit 0.5 GiB, at 12 MiB a child" })
  t.equal(childCeiling(machine({ pidsMax: 5 })).most, 1, 'never below one')
})

t.test('the queue: the open files limit less the reserve, or none', async (t) => {
  t.same(queueCeiling(machine({ descriptorLimit: 1024 })), { most: 1008, why: 'ulimit -n 1024, less 16 kept in reserve' })
  t.equal(queueCeiling(machine({})), null)
})

t.test('this machine has a ceiling of at least one child', async (t) => {
  t.ok(childCeiling(readMachine()).most >= 1)
})
