import { redactText } from '../lib/infra/mask';

/**
 * Free text (an error message, a DLQ failureMessage) shown to an operator: any email address
 * masked, and any of the given gift-card codes shown by its last characters only, whatever its case.
 */
export function redact(text: string | undefined, codes: (string | undefined)[] = []): string | undefined {
  return text === undefined ? undefined : redactText(text, codes);
}
