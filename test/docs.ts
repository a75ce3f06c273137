// docs/accept-fork.md quotes forkserver's code by file and line, and cites
// figures from bench/results/latest.json. When code moves or new figures are
// saved (make bench SAVE=1), these tests name every link and figure that went stale.
//
// The rules, which docs/accept-fork.md repeats for its editors:
// - A line link reads [`FILE:N`](../FILE#LN), or [`FILE:N-M`](../FILE#LN-LM)
//   for a range, and is followed on the same line (the same table row) by a
//   code span: the quote. Whitespace is normalised on both sides, and a
//   leading comment marker (//, /**, *) is dropped from each source line.
// - The quote must lie on line N. For a range it must begin on line N and
//   end on line M. An ellipsis (…) in the quote skips source text, so a long
//   line or a range can be quoted by its distinctive parts.
// - A figure from latest.json is followed by its unit, if any, and a mark
//   that says where it comes from: `65.9 ms<!-- latest.json: forkserver-child
//   startup startMs -->`. A number matches when it rounds to what is written.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DOC_PATH = 'docs/accept-fork.md'
const LATEST_PATH = 'bench/results/latest.json'

interface Link {
  /** 1-based line of the document. */
  readonly docLine: number
  readonly text: string
  readonly target: string
  /** The code span after the link on the same line, or null. */
  readonly quote: string | null
}

interface LineLink extends Link {
  /** The file, relative to the repository root. */
  readonly file: string
  readonly from: number
  readonly to: number
}

/** The document's lines, with fenced code blocks blanked out (their text is C, not links). */
const proseLines = (markdown: string): string[] => {
  let fenced = false
  return markdown.split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced
      return ''
    }
    return fenced ? '' : line
  })
}

interface CodeSpan {
  readonly start: number
  readonly end: number
  /** The span's content, as CommonMark reads it; in a table row a pipe is written \\|, and read as |. */
  readonly content: string
}

/** The code spans of one line, left to right. */
const codeSpansOf = (line: string): CodeSpan[] => {
  const spans: CodeSpan[] = []
  const open = /`+/g
  for (let m = open.exec(line); m !== null; m = open.exec(line)) {
    const fence = m[0]
    const close = new RegExp(`(?<!\`)${fence}(?!\`)`, 'g')
    close.lastIndex = m.index + fence.length
    const end = close.exec(line)
    if (end === null) continue // a lone run of backticks is text
    let content = line.slice(m.index + fence.length, end.index)
    if (/^ .*[^ ].* $/.test(content)) content = content.slice(1, -1)
    spans.push({ start: m.index, end: end.index + fence.length, content: content.replace(/\\\|/g, '|') })
    open.lastIndex = end.index + fence.length
  }
  return spans
}

const insideCode = (spans: readonly CodeSpan[], at: number): boolean => spans.some((span) => span.start <= at && at < span.end)

/** Every markdown link in the prose (not in code), with the code span that follows it on its line. */
const linksOf = (markdown: string): Link[] => {
  const links: Link[] = []
  proseLines(markdown).forEach((line, index) => {
    const spans = codeSpansOf(line)
    const found = [...line.matchAll(/\[((?:[^\]`]|`[^`]*`)*)\]\(([^)\s]+)\)/g)].filter((m) => !insideCode(spans, m.index))
    found.forEach((m, i) => {
      const after = m.index + m[0].length
      const until = found[i + 1]?.index ?? line.length
      const quote = spans.find((span) => span.start >= after && span.start < until)
      links.push({ docLine: index + 1, text: m[1] ?? '', target: m[2] ?? '', quote: quote?.content ?? null })
    })
  })
  return links
}

const isExternal = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')

/** The repository path a relative link from `docPath` points at, without its fragment. */
const repoPath = (docPath: string, target: string): string =>
  relative(ROOT, join(ROOT, dirname(docPath), decodeURIComponent(target.split('#')[0] ?? '')))

const lineLinksOf = (docPath: string, links: readonly Link[]): LineLink[] =>
  links.flatMap((link) => {
    const lines = /#L(\d+)(?:-L(\d+))?$/.exec(link.target)
    if (isExternal(link.target) || lines === null) return []
    const from = Number(lines[1])
    return [{ ...link, file: repoPath(docPath, link.target), from, to: lines[2] === undefined ? from : Number(lines[2]) }]
  })

const normalise = (text: string): string => text.replace(/\s+/g, ' ').trim()
/** A source line as quotes match it: whitespace normalised, a leading comment marker dropped. */
const sourceText = (line: string): string => normalise(line).replace(/^(?:\/\/+|\/\*+|\*\/|\*)\s?/, '')

/**
 * Why `quote` is not on lines from..to of `source` (an array of lines), or
 * null when it is: it must begin on line `from` and end on line `to`, its
 * ellipsis-separated parts in order.
 */
const quoteProblem = (source: readonly string[], from: number, to: number, quote: string): string | null => {
  if (from < 1 || to < from || to > source.length) return `lines ${from}-${to} do not exist (the file has ${source.length})`
  const parts = quote.split('…').map(sourceText).filter((part) => part !== '')
  if (parts.length === 0) return 'the quote is empty'
  const starts: number[] = []
  let joined = ''
  for (let n = from; n <= to; n++) {
    starts.push(joined.length)
    joined += `${sourceText(source[n - 1] ?? '')} `
  }
  const firstLineEnd = starts[1] ?? joined.length
  const lastLineStart = starts[starts.length - 1] ?? 0
  const [first, ...rest] = parts as [string, ...string[]]
  let at = joined.indexOf(first)
  if (at < 0 || at >= firstLineEnd) return `"${first}" does not begin on line ${from}`
  let end = at + first.length
  rest.forEach((part, i) => {
    if (at < 0) return
    at = i === rest.length - 1 ? joined.lastIndexOf(part) : joined.indexOf(part, end)
    if (at >= end) end = at + part.length
    else at = -1
  })
  if (at < 0) return `the parts of the quote are not all on lines ${from}-${to}, in order`
  if (end <= lastLineStart) return `the quote does not reach line ${to}`
  return null
}

/** Where in `source` the quote's first part is found, to say where the code went. */
const foundAt = (source: readonly string[], quote: string): number[] => {
  const first = sourceText(quote.split('…')[0] ?? '')
  return first === '' ? [] : source.flatMap((line, i) => (sourceText(line).includes(first) ? [i + 1] : []))
}

const sources = new Map<string, string[]>()
const sourceOf = (file: string): string[] => {
  let lines = sources.get(file)
  if (lines === undefined) {
    lines = readFileSync(join(ROOT, file), 'utf8').split('\n')
    sources.set(file, lines)
  }
  return lines
}

/** What is wrong with one line link, or null. */
const linkProblem = (link: LineLink): string | null => {
  const name = `${DOC_PATH}:${link.docLine} [${link.text}]`
  if (!existsSync(join(ROOT, link.file))) return `${name}: ${link.file} does not exist`
  const range = link.from === link.to ? `${link.from}` : `${link.from}-${link.to}`
  if (link.text !== `\`${link.file}:${range}\``) return `${name}: the link text should be \`${link.file}:${range}\`, as its target says`
  if (link.quote === null) return `${name}: no code quoted after the link on its line`
  const source = sourceOf(link.file)
  const problem = quoteProblem(source, link.from, link.to, link.quote)
  if (problem === null) return null
  const where = foundAt(source, link.quote)
  return `${name}: ${problem}${where.length > 0 ? ` (${link.file} has it on line ${where.join(', ')})` : ''}`
}

interface Mark {
  readonly docLine: number
  /** What the document says: a number as written (commas and all), or a code span's text. */
  readonly written: string
  readonly isCode: boolean
  readonly selector: string
}

const MARK = /<!--\s*latest\.json:\s*(.*?)\s*-->/g
/** A figure's unit, as the document writes it after the number. */
const UNIT = String.raw`(?:ms|MiB|KiB|MB/s|MB|kB|conn/s|%)`

const marksOf = (markdown: string): Mark[] =>
  proseLines(markdown).flatMap((line, index) => {
    const spans = codeSpansOf(line)
    return [...line.matchAll(MARK)].filter((m) => !insideCode(spans, m.index)).map((m) => {
      const before = line.slice(0, m.index)
      const value = new RegExp(String.raw`(?:\`([^\`]+)\`|(\d[\d,]*(?:\.\d+)?))\s*${UNIT}?\s*$`).exec(before)
      return {
        docLine: index + 1,
        written: value?.[1] ?? value?.[2] ?? '',
        isCode: value?.[1] !== undefined,
        selector: m[1] ?? '',
      }
    })
  })

type Row = Record<string, unknown>
interface Latest {
  readonly machine: Row
  readonly settings: Row
  readonly results: readonly Row[]
}

/**
 * The value a selector names: `machine.KEY`, `settings.KEY`, or `MODEL SCENARIO [c=N] [n=N]
 * FIELD [/1024]`, where c is the concurrency and n the connections.
 */
const lookUp = (latest: Latest, selector: string): { value: unknown } | string => {
  const top = /^(machine|settings)\.(\w+)$/.exec(selector)
  if (top) {
    const section = latest[top[1] as 'machine' | 'settings']
    return top[2]! in section ? { value: section[top[2]!] } : `${LATEST_PATH} has no ${selector}`
  }
  const words = selector.split(/\s+/)
  const divisor = words[words.length - 1] === '/1024' ? (words.pop(), 1024) : 1
  const [model, scenario, ...rest] = words
  const field = rest.pop()
  if (model === undefined || scenario === undefined || field === undefined) return `cannot read the selector "${selector}"`
  const where: Row = { model, scenario }
  for (const word of rest) {
    const pair = /^([cn])=(\d+)$/.exec(word)
    if (pair === null) return `cannot read "${word}" in "${selector}"`
    where[pair[1] === 'c' ? 'concurrency' : 'connections'] = Number(pair[2])
  }
  const rows = latest.results.filter((row) => Object.entries(where).every(([key, value]) => row[key] === value))
  if (rows.length !== 1) return `"${selector}" matches ${rows.length} rows, not one`
  const value = rows[0]![field]
  if (typeof value !== 'number') return `"${selector}": ${field} is not a number in the row`
  return { value: value / divisor }
}

/** What is wrong with one figure, or null. */
const markProblem = (latest: Latest, mark: Mark): string | null => {
  const name = `${DOC_PATH}:${mark.docLine} "${mark.written}" (${mark.selector})`
  if (mark.written === '') return `${name}: no number or code span right before the mark`
  const found = lookUp(latest, mark.selector)
  if (typeof found === 'string') return `${name}: ${found}`
  if (mark.isCode || typeof found.value !== 'number') {
    return String(found.value) === mark.written ? null : `${name}: ${LATEST_PATH} says ${String(found.value)}`
  }
  const written = mark.written.replace(/,/g, '')
  const decimals = written.split('.')[1]?.length ?? 0
  // What is written must be the value rounded to as many decimals as are written.
  if (Math.abs(Number(written) - found.value) <= 0.5 * 10 ** -decimals + 1e-9) return null
  return `${name}: ${LATEST_PATH} says ${found.value}, which is ${found.value.toFixed(decimals)} to ${decimals} decimals`
}

const doc = readFileSync(join(ROOT, DOC_PATH), 'utf8')
const links = linksOf(doc)
const lineLinks = lineLinksOf(DOC_PATH, links)

t.test('every relative link points at a file that exists', async (t) => {
  const relativeLinks = links.filter((link) => !isExternal(link.target))
  t.ok(relativeLinks.length > 0, 'the document has relative links')
  const missing = relativeLinks
    .filter((link) => !existsSync(join(ROOT, repoPath(DOC_PATH, link.target))))
    .map((link) => `${DOC_PATH}:${link.docLine}: ${link.target}`)
  t.strictSame(missing, [], 'no link to a missing file')
})

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string): string =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')

t.test('every link to a heading of the document finds the heading', async (t) => {
  const headings = new Set(proseLines(doc).flatMap((line) => /^#{1,6}\s+(.*?)\s*$/.exec(line)?.slice(1).map(slug) ?? []))
  const broken = links
    .filter((link) => link.target.startsWith('#') && !headings.has(link.target.slice(1)))
    .map((link) => `${DOC_PATH}:${link.docLine}: ${link.target}`)
  t.strictSame(broken, [], 'no link to a missing heading')
})

t.test('every line link names its file and lines, and quotes code that is on those lines', async (t) => {
  t.ok(lineLinks.length >= 20, `the document has line links (${lineLinks.length})`)
  const stale = lineLinks.map(linkProblem).filter((problem) => problem !== null)
  t.strictSame(stale, [], 'no stale line link')
})

t.test('a line link one line off, either way, is caught', async (t) => {
  // Each quote must be distinctive enough that its neighbours do not match.
  // (A link that is stale already is named by the test above.)
  const missed = lineLinks.filter((link) => linkProblem(link) === null).flatMap((link) =>
    [-1, 1].flatMap((shift) => {
      const moved = { ...link, from: link.from + shift, to: link.to + shift }
      const range = moved.from === moved.to ? `${moved.from}` : `${moved.from}-${moved.to}`
      const problem = linkProblem({ ...moved, text: `\`${moved.file}:${range}\`` })
      return problem === null ? [`${DOC_PATH}:${link.docLine} [${link.text}] still matches moved by ${shift}`] : []
    }),
  )
  t.strictSame(missed, [], 'every quote fails one line up and one line down')
})

t.test('the link rules catch a stale link and say where the code went', async (t) => {
  const source = ['function reap() {', '  table.remove(entry)', '}', '  // Died before taking the socket:', '  entry.socket?.destroy()']
  t.equal(quoteProblem(source, 2, 2, 'table.remove(entry)'), null)
  t.equal(quoteProblem(source, 4, 5, 'Died before taking … entry.socket?.destroy()'), null, 'a range, with a comment and an ellipsis')
  t.match(quoteProblem(source, 1, 1, 'table.remove(entry)'), /does not begin on line 1/)
  t.match(quoteProblem(source, 4, 4, 'Died before … destroy()'), /not all on lines/)
  t.match(quoteProblem(source, 1, 3, 'function reap() { … table.remove(entry)'), /does not reach line 3/)
  t.match(quoteProblem(source, 5, 6, 'entry.socket'), /do not exist/)
  t.same(foundAt(source, 'table.remove(entry)'), [2])
})

t.test('every figure taken from latest.json is still what latest.json says', async (t) => {
  const latest = JSON.parse(readFileSync(join(ROOT, LATEST_PATH), 'utf8')) as Latest
  const marks = marksOf(doc)
  t.ok(marks.length >= 10, `the document marks its figures (${marks.length})`)
  t.ok(
    marks.some((mark) => mark.selector === 'machine.date'),
    'the document says which run the figures come from',
  )
  const stale = marks.map((mark) => markProblem(latest, mark)).filter((problem) => problem !== null)
  t.strictSame(stale, [], 'no stale figure')
})

t.test('every measured figure in the prose carries its latest.json mark', async (t) => {
  const unmarked = proseLines(doc).flatMap((line, index) =>
    [...line.matchAll(new RegExp(String.raw`\b\d[\d,]*(?:\.\d+)?\s*${UNIT}(?![\w/])(?!\s*<!--\s*latest\.json:)`, 'g'))].map(
      (m) => `${DOC_PATH}:${index + 1}: "${m[0]}"`,
    ),
  )
  t.strictSame(unmarked, [], 'a number with a unit is either marked or not a measurement')
})

t.test('the document covers SCM_RIGHTS, waitpid and zombies, and links to server.ts and child.ts', async (t) => {
  for (const word of ['SCM_RIGHTS', 'waitpid', 'zombie']) t.match(doc, word, `mentions ${word}`)
  for (const file of ['server.ts', 'child.ts']) {
    t.ok(
      lineLinks.some((link) => link.file === file),
      `links to lines of ${file}`,
    )
  }
})
