// The product code keeps the shape that lets a student read it: the parent's
// path in server.ts fits on one screen, and no function anywhere in the
// product is longer than a screen either.
import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import ts from 'typescript'

const ROOT = new URL('../', import.meta.url)
const SERVER_LINES = 200
const FUNCTION_LINES = 70

const libFiles = (dir: string): string[] =>
  readdirSync(new URL(dir, ROOT), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? libFiles(`${dir}${entry.name}/`) : entry.name.endsWith('.ts') ? [`${dir}${entry.name}`] : [])

const PRODUCT = ['server.ts', 'child.ts', ...libFiles('lib/')]

/** Every function, method, constructor and arrow function in `text`, with its first line and its length in lines. */
const functionsIn = (file: string, text: string): { name: string; line: number; lines: number }[] => {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: { name: string; line: number; lines: number }[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line
      const name = 'name' in node && node.name !== undefined ? node.name.getText(source) : '(anonymous)'
      found.push({ name, line: first + 1, lines: last - first + 1 })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

t.test(`server.ts has at most ${SERVER_LINES} lines`, async (t) => {
  const lines = readFileSync(new URL('server.ts', ROOT), 'utf8').trimEnd().split('\n').length
  t.ok(lines <= SERVER_LINES, `server.ts has ${lines} lines`)
})

t.test(`no function in server.ts, child.ts or lib/ is over ${FUNCTION_LINES} lines`, async (t) => {
  t.ok(PRODUCT.length > 30, `${PRODUCT.length} files read`)
  const long = PRODUCT.flatMap((file) => functionsIn(file, readFileSync(new URL(file, ROOT), 'utf8')).filter((f) => f.lines > FUNCTION_LINES).map((f) => `${file}:${f.line} ${f.name} (${f.lines} lines)`))
  t.same(long, [], 'none is longer')
})

t.test('the measure counts a function whole, from its first line to its last, and the ones inside it too', async (t) => {
  const body = Array.from({ length: FUNCTION_LINES }, (_, i) => `  const x${i} = ${i}`).join('\n')
  const found = functionsIn('x.ts', `// a comment\nfunction outer() {\n${body}\n  const inner = () => 1\n}\n`)
  t.same(found, [{ name: 'outer', line: 2, lines: FUNCTION_LINES + 3 }, { name: '(anonymous)', line: FUNCTION_LINES + 3, lines: 1 }])
})
