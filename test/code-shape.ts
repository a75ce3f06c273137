// The product code keeps the shape that lets a student read it: the parent's
// path in server.ts fits on one screen, no function anywhere in the product
// is longer than a screen either, lib/ is grouped by the process that runs
// the code with no folder importing a folder that imports it back, and each
// fact the parent and its children share is written down once.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const SERVER_LINES = 200
const FUNCTION_LINES = 50
/** Files in one lib/ folder, its README included; and loose in lib/ itself. */
const FOLDER_FILES = 10
const LOOSE_FILES = 6

const walk = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(`${dir}${entry.name}/`) : [`${dir}${entry.name}`])

const LIB = walk('lib/')
const PRODUCT = ['server.ts', 'child.ts', ...LIB.filter((file) => file.endsWith('.ts'))]
const text = (file: string): string => readFileSync(join(ROOT, file), 'utf8')

/** Every function, method, constructor and arrow function in `text`, with its first line and its length in lines. */
const functionsIn = (file: string, source: string): { name: string; line: number; lines: number }[] => {
  const parsed = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true)
  const found: { name: string; line: number; lines: number }[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const first = parsed.getLineAndCharacterOfPosition(node.getStart(parsed)).line
      const last = parsed.getLineAndCharacterOfPosition(node.getEnd()).line
      const name = 'name' in node && node.name !== undefined ? node.name.getText(parsed) : '(anonymous)'
      found.push({ name, line: first + 1, lines: last - first + 1 })
    }
    ts.forEachChild(node, visit)
  }
  visit(parsed)
  return found
}

/** The relative imports of each file (type-only and dynamic ones too), as files. */
const importsOf = (files: readonly string[]): Map<string, Set<string>> => {
  const spec = /(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g
  const known = new Set(files)
  return new Map(files.map((file) => [file, new Set([...text(file).matchAll(spec)]
    .map((m) => relative(ROOT, resolve(ROOT, dirname(file), (m[1] ?? m[2]!).replace(/\.js$/, '.ts'))))
    .filter((target) => known.has(target) && target !== file))]))
}

/** The groups of nodes that reach each other in a loop (Tarjan's strongly connected components of more than one). */
export const circles = (graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] => {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const out: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) visit(w)
      if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, low.get(w)!))
    }
    if (low.get(v) !== index.get(v)) return
    const group: string[] = []
    for (let w = ''; w !== v; ) group.push((w = stack.pop()!))
    if (group.length > 1) out.push(group.sort())
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return out
}

/** lib/FOLDER of a file in one, or null (server.ts, child.ts, a loose lib/ file). */
const folderOf = (file: string): string | null => (/^lib\/([^/]+)\//.exec(file)?.[0] ?? null)

t.test(`server.ts has at most ${SERVER_LINES} lines, and no branch for prefork`, async (t) => {
  const lines = text('server.ts').trimEnd().split('\n')
  t.ok(lines.length <= SERVER_LINES, `server.ts has ${lines.length} lines`)
  const code = lines.filter((line) => !/^\s*(\/\/|\*|\/\*)/.test(line))
  t.same(code.filter((line) => /prefork/i.test(line)), [], 'the word is in its comments only')
})

t.test(`no function in server.ts, child.ts or lib/ is over ${FUNCTION_LINES} lines`, async (t) => {
  t.ok(PRODUCT.length > 30, `${PRODUCT.length} files read`)
  const long = PRODUCT.flatMap((file) => functionsIn(file, text(file)).filter((f) => f.lines > FUNCTION_LINES).map((f) => `${file}:${f.line} ${f.name} (${f.lines} lines)`))
  t.same(long, [], 'none is longer')
})

t.test('the measure counts a function whole, from its first line to its last, and the ones inside it too', async (t) => {
  const body = Array.from({ length: FUNCTION_LINES }, (_, i) => `  const x${i} = ${i}`).join('\n')
  const found = functionsIn('x.ts', `// a comment\nfunction outer() {\n${body}\n  const inner = () => 1\n}\n`)
  t.same(found, [{ name: 'outer', line: 2, lines: FUNCTION_LINES + 3 }, { name: '(anonymous)', line: FUNCTION_LINES + 3, lines: 1 }])
})

t.test(`lib/ holds folders of at most ${FOLDER_FILES} files, each opening with a README that says which process runs it, and at most ${LOOSE_FILES} loose files`, async (t) => {
  const loose = LIB.filter((file) => folderOf(file) === null)
  t.ok(loose.length <= LOOSE_FILES, `loose in lib/: ${loose.join(', ')}`)
  const folders = [...new Set(LIB.map((file) => dirname(file)).filter((dir) => dir !== 'lib'))]
  t.ok(folders.length >= 10, `${folders.length} folders`)
  for (const dir of folders) {
    const files = LIB.filter((file) => dirname(file) === dir)
    t.ok(files.length <= FOLDER_FILES, `${dir}: ${files.length} files`)
  }
  for (const dir of folders.filter((d) => d.split('/').length === 2)) {
    t.ok(LIB.includes(`${dir}/README.md`), `${dir} has a README`)
    t.match(text(`${dir}/README.md`), /\b(Runs in|Used by|runs in)\b/, `${dir}'s README says which process runs it`)
  }
})

t.test('no import circles: no file imports a file that imports it back, nor a folder of lib/ a folder that imports it back', async (t) => {
  const files = importsOf(PRODUCT)
  t.same(circles(files), [], 'file to file')
  const folders = new Map<string, Set<string>>()
  for (const [file, targets] of files) {
    const from = folderOf(file)
    if (from === null) continue
    const into = folders.get(from) ?? new Set<string>()
    for (const target of targets) if (folderOf(target) !== null && folderOf(target) !== from) into.add(folderOf(target)!)
    folders.set(from, into)
  }
  t.same(circles(folders), [], 'folder to folder')
  t.same(circles(new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['a'])]])), [['a', 'b', 'c']], 'the check finds a circle')
})

/** The product files in which `pattern` is found outside comments. */
const where = (pattern: RegExp): string[] =>
  PRODUCT.filter((file) => text(file).split('\n').some((line) => !/^\s*(\/\/|\*|\/\*)/.test(line) && pattern.test(line)))

t.test('each fact the processes share is defined once, and used from there', async (t) => {
  t.same(where(/ORPHAN_DEADLINE_S \?|idleTimeout > 0 \?/), ['lib/serve/connection.ts'], 'the orphan deadline')
  t.same(where(/atOrphanDeadline\(/).sort(), ['child.ts', 'lib/serve/worker.ts', 'lib/zygote/zygote.ts'], 'used where a parent can be lost')
  t.same(where(/allowHalfOpen: (?!allowsHalfOpen\()|=> spec\.handler === null/), ['lib/serve/connection.ts'], "a connection's allowHalfOpen")
  t.same(where(/new Backoff\(|new Respawn\(/).sort(), ['lib/parent/respawn.ts', 'lib/parent/supervisor.ts'], 'respawn with backoff')
  t.same(where(/handler \?\? spec\.service|\?\? spec\.service\}/), ['lib/serve/connection.ts'], 'the `HANDLER failed: ...` warning')
  t.same(where(/judgedByAddress\b/).sort(), ['lib/admission/intake.ts', 'lib/net/address.ts'], 'whether a UNIX-family peer is judged')
})
