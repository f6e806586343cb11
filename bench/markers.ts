/**
 * `text` with everything from `begin` to `end` (the markers included) replaced by
 * `begin + body + end`; undefined when either marker is missing or they are out of order.
 */
export function replaceBetweenMarkers(text: string, begin: string, end: string, body: string): string | undefined {
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from === -1 || to <= from) return undefined;
  return `${text.slice(0, from)}${begin}${body}${end}${text.slice(to + end.length)}`;
}
