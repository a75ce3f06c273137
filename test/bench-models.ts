import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { nodeForkModel, zygoteModels, zygoteSparesModel } from '../bench/models.js'

t.test('without the native addon, fork (zygote) and exec (zygote) are skipped, each with the reason', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-models-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const missing = join(dir, 'forkserver.node')
  const found = await zygoteModels(missing)
  t.same(
    found.map((a) => (a.ok ? a.model.name : a.name)),
    ['fork (zygote)', 'exec (zygote)'],
  )
  for (const a of found) {
    t.equal(a.ok, false, 'skipped')
    if (!a.ok) t.equal(a.reason, `the native addon is not built (no ${missing}; \`make build\` compiles it when cc and c++ are there)`)
  }
})

t.test('without the native addon, node-fork is skipped with the same reason', async (t) => {
  const missing = '/nonexistent/forkserver.node'
  t.same(nodeForkModel(missing), {
    ok: false,
    name: 'node-fork',
    reason: `the native addon is not built (no ${missing}; \`make build\` compiles it when cc and c++ are there)`,
  })
})

t.test('without the native addon, fork (zygote)+spares is skipped with the same reason', async (t) => {
  const missing = '/nonexistent/forkserver.node'
  t.same(await zygoteSparesModel(missing), {
    ok: false,
    name: 'fork (zygote)+spares',
    reason: `the native addon is not built (no ${missing}; \`make build\` compiles it when cc and c++ are there)`,
  })
})
