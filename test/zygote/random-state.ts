// The random state a forked child must not share: Math.random, and Node's
// caches of random bytes behind crypto.randomUUID (and its web and
// version-7 forms) and crypto.randomInt. Each test runs a helper started
// with the zygote's flags (fixtures/warm-fork.ts) that forks children and
// compares what they draw with what the parent draws.
import t, { type Test } from 'tap'
import { DIST_LIB, runHelper, skipUnlessBuilt, type HelperRun } from '../fixtures/warm-fork.js'

const skip = skipUnlessBuilt()

/**
 * Helper code: readies the random state (`lookUp`: find Node's caches, or
 * drain them in each child), uses the caches a little, forks 20 children
 * that each print one draw of every kind, reaps them, then prints the
 * parent's own next 128 draws of every kind (a whole UUID cache's worth).
 */
const drawsOfChildrenAndParent = (lookUp: boolean) => `
  const { randomUUID, randomInt } = await import('node:crypto')
  const randomState = await import(${JSON.stringify(`${DIST_LIB}zygote/random-state.js`)})
  console.log(JSON.stringify({ prepared: randomState.prepareRandomState(addon, { lookUp: ${lookUp} }) }))
  const draw = () => ({ random: Math.random(), uuid: randomUUID(), web: globalThis.crypto.randomUUID(), int: randomInt(2 ** 48 - 1) })
  for (let i = 0; i < 5; i++) draw() // the caches part-used, as a zygote's may be
  const forkAll = () => {
    const pids = []
    for (let i = 0; i < 20; i++) {
      const pid = warmFork.forkChild(addon)
      if (pid === 0) { console.log(JSON.stringify({ child: draw() })); process.exit(0) }
      pids.push(pid)
    }
    return pids
  }
  const pids = forkAll()
  if (pids !== null) {
    const ends = []
    for (let i = 0; i < 6000 && ends.length < pids.length; i++) {
      ends.push(...pids.flatMap((pid) => warmFork.reap(addon, pid)))
      await new Promise((r) => setTimeout(r, 5))
    }
    console.log(JSON.stringify({ ends: ends.map((end) => end.code), parent: Array.from({ length: 128 }, draw) }))
  }
`

type Draw = { random: number; uuid: string; web: string; int: number }

const checkDraws = (t: Test, run: HelperRun): void => {
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const children = run.records.flatMap((r) => ('child' in r ? [r.child as Draw] : []))
  const report = run.records.find((r) => 'parent' in r) as { ends: number[]; parent: Draw[] } | undefined
  t.equal(children.length, 20, '20 children drew')
  t.same(report?.ends, Array(20).fill(0), 'and exited 0')
  for (const key of ['random', 'uuid', 'web', 'int'] as const) {
    const parents = new Set(report?.parent.map((d) => d[key]))
    t.equal(new Set(children.map((d) => d[key])).size, 20, `${key}: no two children alike`)
    t.notOk(children.some((d) => parents.has(d[key])), `${key}: no child drew what the parent drew next`)
  }
  t.ok(children.every((d) => d.random >= 0 && d.random < 1), 'Math.random() stays in [0, 1)')
}

t.test("the parent finds Node's caches; each child refills them, and draws what neither its siblings nor its parent draw", { skip }, async (t) => {
  const run = await runHelper(t, drawsOfChildrenAndParent(true))
  t.same(run.records[0], { prepared: null }, 'both caches found, through the inspector')
  checkDraws(t, run)
})

t.test('where the caches are not had, each child draws past their refill points instead, with the same result', { skip }, async (t) => {
  const run = await runHelper(t, drawsOfChildrenAndParent(false))
  t.same(run.records[0], { prepared: 'not looked for' })
  checkDraws(t, run)
})

t.test('Math.random is replaced once, in the parent as well, and its draws spread evenly', { skip }, async (t) => {
  const run = await runHelper(t, `
    const randomState = await import(${JSON.stringify(`${DIST_LIB}zygote/random-state.js`)})
    const before = Math.random
    const first = randomState.prepareRandomState(addon)
    const left = Object.keys(globalThis).filter((key) => key.startsWith('__forkserver'))
    console.log(JSON.stringify({ first, again: randomState.prepareRandomState(addon), replaced: Math.random !== before, left }))
    const draws = Array.from({ length: 10000 }, () => Math.random())
    const tenths = Array(10).fill(0)
    for (const x of draws) tenths[Math.floor(x * 10)]++
    console.log(JSON.stringify({ tenths, distinct: new Set(draws).size }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  t.same(run.records[0], { first: null, again: null, replaced: true, left: [] }, 'readied once, leaving nothing on globalThis; a second call does nothing')
  const { tenths, distinct } = run.records[1] as { tenths: number[]; distinct: number }
  t.equal(distinct, 10000, '10,000 draws, all different')
  t.ok(tenths.every((n) => n > 850 && n < 1150), `spread evenly over [0, 1): ${tenths.join(' ')}`)
})
