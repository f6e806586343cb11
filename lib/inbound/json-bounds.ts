/**
 * Bounds on the work a webhook body can cause, checked before JSON.parse.
 *
 * The body's size is bounded (6 MB, lib/infra/config.ts), but the size says little about what
 * parsing it costs: JSON.parse of 6 MB of nested arrays (`[[[[…]]]]`, 3 million levels) holds
 * a few hundred MB of heap for more than a second, and a million empty objects in 6 MB cost
 * ~280 MB, against ingest's 256 MB Lambda. One linear pass over the characters, aware of
 * strings and their escapes, counts nesting depth and elements and stops at the first bound
 * passed, so a refused body never allocates more than its own text.
 *
 * The bounds are far above any real PostHog payload. PostHog's default body nests
 * `{event:{properties:{$set:{…}}}}`: four or five levels, and a property holding JSON a few more;
 * 64 levels is more than ten times that. Its elements are the event's and the person's
 * properties: hundreds for a busy person. 200,000 is still roughly one per 30 bytes of a 6 MB
 * body, so a person padded with tens of thousands of properties is queued (tests/unit/
 * ingest-bounds.test.ts: 50,000 properties in 6 MB), while 200,000 of the smallest elements
 * (`{}`, `0`) cost a few tens of MB to parse (docs/PERFORMANCE.md, "Ingest").
 */

export const JSON_BOUNDS = {
  /** Deepest nesting of arrays and objects. */
  maxDepth: 64,
  /** Most elements: every array and object counts one, and every comma between values or members one more. */
  maxElements: 200_000,
};

export const BODY_TOO_COMPLEX = 'body_too_complex';

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const COMMA = 0x2c; // ,
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }

/**
 * The first bound `text` passes, or undefined. Malformed JSON is not judged here (the parser
 * that runs next says what is wrong with it); only what parsing it could cost.
 */
export function jsonComplexityProblem(text: string): { code: string; message: string } | undefined {
  const { maxDepth, maxElements } = JSON_BOUNDS;
  let depth = 0;
  let elements = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      // An escape is two characters at least (\" \\ \uXXXX): skipping the next one is enough
      // to never read an escaped quote as the string's end.
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) return { code: BODY_TOO_COMPLEX, message: `body is nested more than ${maxDepth} levels deep` };
      elements++;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    } else if (c === COMMA) {
      elements++;
    }
    if (elements > maxElements) {
      const message = `body has more than ${maxElements} elements (arrays, objects and the values or members in them)`;
      return { code: BODY_TOO_COMPLEX, message };
    }
  }
  return undefined;
}
