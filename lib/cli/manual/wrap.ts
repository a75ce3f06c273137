// Text folded to a width, for --help: at spaces, and inside a word only when
// the word alone is wider than the line, so no line is ever longer.

/** `word` cut into pieces of at most `width` characters: after a `|` where it can, else anywhere. */
const pieces = (word: string, width: number): string[] => {
  const out: string[] = []
  let rest = word
  while (rest.length > width) {
    const bar = rest.lastIndexOf('|', width - 1)
    const cut = bar > 0 ? bar + 1 : width
    out.push(rest.slice(0, cut))
    rest = rest.slice(cut)
  }
  return [...out, rest]
}

/** `text`'s words in lines of at most `width` characters (at least one line, maybe empty). */
export const wrap = (text: string, width: number): string[] => {
  const room = Math.max(1, width)
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length <= room) {
      line += ` ${word}`
      continue
    }
    // A word too long for any line is cut, and its pieces begin lines of their own.
    if (line !== '') lines.push(line)
    const cut = pieces(word, room)
    lines.push(...cut.slice(0, -1))
    line = cut[cut.length - 1] ?? ''
  }
  lines.push(line)
  return lines
}

/**
 * A command's words in lines of at most `width` characters, for a shell:
 * every line but the last ends in ` \`, and the ones after the first are
 * indented four more.
 */
export const wrapCommand = (words: readonly string[], width: number, indent: number): string[] => {
  const lines: string[] = []
  let line = ' '.repeat(indent)
  let started = false
  for (const word of words) {
    // Room is kept for the ` \` that ends a line that is not the last.
    if (started && line.length + 1 + word.length + 2 > width) {
      lines.push(`${line} \\`)
      line = ' '.repeat(indent + 4)
      started = false
    }
    line += started ? ` ${word}` : word
    started = true
  }
  lines.push(line)
  return lines
}
