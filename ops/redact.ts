import { maskCode, maskEmail } from '../lib/mask';

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;

/**
 * Free text (an error message, a DLQ failureMessage) shown to an operator: any email address
 * masked, and any of the given gift-card codes shown by its last characters only.
 */
export function redact(text: string | undefined, codes: (string | undefined)[] = []): string | undefined {
  if (text === undefined) return undefined;
  let out = text.replace(EMAIL, (email) => maskEmail(email));
  for (const code of codes) {
    if (code && code.length > 4) out = out.split(code).join(maskCode(code));
  }
  return out;
}
