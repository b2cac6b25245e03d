/** Upstream error bodies quoted in messages: one line, whatever answered. */

/**
 * An HTTP body as a short single line: a web server's HTML error page loses its tags, whitespace is
 * folded (rejection reasons, `status` and error lines are one line each), and the text is cut at `max`.
 */
export function bodySummary(text: string, max = 200): string {
  return text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, max)
}
