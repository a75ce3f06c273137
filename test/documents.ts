// The README and docs/*.md hold together: every relative link and anchor
// leads somewhere, the README's Layout draws the tree as it is, and the
// picture at the README's top is what its script draws now (make pictures).
// docs.ts holds docs/accept-fork.md's line links and figures to the code.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { processes } from '../docs/pictures/processes.js'
import { layoutBlock, layoutProblems, named, type Tree } from './fixtures/layout.js'
import { brokenLinks, links } from './fixtures/markdown.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PICTURE = 'docs/pictures/processes.svg'

/** A path's text, '' for a folder, null when there is nothing there. */
const read = (path: string): string | null => {
  const full = join(ROOT, path)
  if (!existsSync(full)) return null
  return statSync(full).isDirectory() ? '' : readFileSync(full, 'utf8')
}

const readme = read('README.md') ?? ''
const documents = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

/** A tree made of the listed paths, folders with a trailing slash. */
const madeUp = (paths: readonly string[]): Tree => ({
  has: (path) => paths.includes(path),
  list: (folder) => paths.filter((path) => path.startsWith(folder) && /^[^/]+\/?$/.test(path.slice(folder.length))).map((path) => path.slice(folder.length)),
})

/** The repository's own tree. */
const repository: Tree = {
  has: (path) => existsSync(join(ROOT, path)) && statSync(join(ROOT, path)).isDirectory() === path.endsWith('/'),
  list: (folder) => readdirSync(join(ROOT, folder), { withFileTypes: true }).map((entry) => entry.name + (entry.isDirectory() ? '/' : '')),
}

t.test('every relative link and anchor of the README and docs/*.md leads somewhere', async (t) => {
  t.ok(documents.length >= 8, `the documents: ${documents.join(', ')}`)
  for (const doc of documents) t.same(brokenLinks(doc, read), [], `${doc}: no link leads nowhere`)
})

t.test('the link check catches a missing file, a missing heading and a line past the end', async (t) => {
  const files: Record<string, string> = {
    'README.md': '# Top\n\n[a](docs/a.md#two) [b](docs/b.md) [c](docs/a.md#one) [d](#top) [e](#nowhere) [f](x.ts#L3) [g](x.ts#L2)\n\n```\n[h](not-a-link.md)\n```\n',
    'docs/a.md': '# One\n',
    'x.ts': 'one\ntwo\n',
  }
  t.same(brokenLinks('README.md', (path) => files[path] ?? null), [
    'README.md:3: docs/a.md#two leads to a heading docs/a.md lacks',
    'README.md:3: docs/b.md leads to docs/b.md, which is not there',
    'README.md:3: #nowhere leads to a heading README.md lacks',
    'README.md:3: x.ts#L3 leads to past the end of x.ts',
  ])
})

t.test('the Layout check catches a path that is not there and one that is not named', async (t) => {
  const block = [
    'server.ts              the loop',
    'child.ts               a child',
    'lib/a.ts               one loose file',
    'lib/b/                 a folder,',
    '                       on two lines',
    'docs/x.md, docs/y.md   two documents',
    'bench/                 the bench',
    'test/                  the tests',
  ].join('\n')
  t.same(named(block), ['server.ts', 'child.ts', 'lib/a.ts', 'lib/b/', 'docs/x.md', 'docs/y.md', 'bench/', 'test/'])
  const tree = ['server.ts', 'child.ts', 'lib/', 'lib/a.ts', 'lib/b/', 'lib/b/inner.ts', 'docs/', 'docs/x.md', 'docs/y.md', 'docs/z.cfg', 'bench/', 'test/']
  t.same(layoutProblems(block, madeUp(tree)), { missing: [], unnamed: [] }, 'the tree as drawn: nothing to say')
  const moved = [...tree.filter((path) => !path.startsWith('lib/b/')), 'lib/c/', 'lib/c/inner.ts', 'docs/w.md']
  t.same(layoutProblems(block, madeUp(moved)), { missing: ['lib/b/'], unnamed: ['lib/c/', 'docs/w.md'] },
    'a folder gone, one new, and a new document')
})

t.test("the README's Layout names every path that is there, and only those", async (t) => {
  const block = layoutBlock(readme)
  t.ok(named(block).length >= 20, 'the README has a Layout')
  const { missing, unnamed } = layoutProblems(block, repository)
  t.same(missing, [], 'every path the Layout names is there')
  t.same(unnamed, [], 'every product file, lib/ entry, document, bench/ and test/ is named')
})

t.test('the picture is what its script draws now, and the README shows it', async (t) => {
  t.equal(read(PICTURE), processes(), `${PICTURE} is up to date (make pictures writes it)`)
  t.ok(links(readme).some(({ target }) => target === PICTURE), `the README embeds ${PICTURE}`)
  const picture = processes()
  t.match(picture, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+"/, 'an SVG of a fixed size')
  t.match(picture, /<rect width="\d+" height="\d+" fill="#fff"\/>/, 'on a white ground, which reads on dark pages too')
  for (const how of ['--start spawn', '--start zygote', '--model prefork']) t.match(picture, how, `it draws ${how}`)
})
