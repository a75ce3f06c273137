import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const TRACE = fileURLToPath(new URL('../../dist/lib/log/trace.js', import.meta.url))
const script = `const { openTrace } = await import(${JSON.stringify(TRACE)}); (await openTrace('child'))('hello %d', 42)`

const run = (env: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } })

t.test('traces under forkserver:NAME when DEBUG asks for it', async (t) => {
  t.match(run({ DEBUG: 'forkserver:*' }).stderr, /forkserver:child hello 42/)
})

t.test('is silent, and does not load debug, without DEBUG', async (t) => {
  const { DEBUG: _, ...env } = process.env
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', `${script}; process.stdout.write(String(Object.keys(await import('node:module')).length))`], { encoding: 'utf8', env })
  t.equal(result.stderr, '')
  const loaded = spawnSync(process.execPath, ['--input-type=module', '-e',
    `const { openTrace } = await import(${JSON.stringify(TRACE)}); await openTrace('child'); const { createRequire } = await import('node:module'); const r = createRequire(import.meta.url); console.log(Object.keys(r.cache).some((k) => k.includes('/debug/')))`],
  { encoding: 'utf8', env })
  t.equal(loaded.stdout.trim(), 'false', 'the debug module was never loaded')
})
