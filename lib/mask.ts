/** `redeemer@example.com` → `r***@example.com`: enough to tell people apart in a log, not to mail them. */
export function maskEmail(email: string | undefined | null): string {
  if (!email) return '';
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  return `${email[0]}***${email.slice(at)}`;
}

/** A gift-card code shown only by its last four characters, as Shopify's admin does. */
export function maskCode(code: string | undefined | null): string {
  if (!code) return '';
  return `…${code.slice(-4)}`;
}

// Loose on purpose: anything email-shaped in free text gets masked.
const EMAIL_SHAPED = /[^\s"'<>()[\]{},;:@]+@[^\s"'<>()[\]{},;:@]+/g;
// Values this short identify nobody, and masking them would garble the text ("10", "USD").
const MIN_VALUE_LENGTH = 5;

/**
 * Free text that may echo what we sent (a server's error message, a DLQ failure message), fit
 * for a log line or an operator's screen: each secret (a token, an API key) replaced whole; each
 * of our values (codes, emails) masked wherever it appears, case-insensitively because gift-card
 * codes are, longest first so a value containing another is masked whole; then anything
 * email-shaped masked.
 */
export function redactText(text: string, values: (string | undefined)[] = [], secrets: (string | undefined)[] = []): string {
  let out = text;
  for (const secret of secrets) if (secret) out = replaceEvery(out, secret, '[redacted]');
  const masked = values
    .filter((value): value is string => typeof value === 'string' && value.length >= MIN_VALUE_LENGTH)
    .sort((a, b) => b.length - a.length);
  for (const value of masked) out = replaceEvery(out, value, value.includes('@') ? maskEmail(value) : maskCode(value));
  return out.replace(EMAIL_SHAPED, (email) => maskEmail(email));
}

function replaceEvery(text: string, value: string, replacement: string): string {
  return text.replace(new RegExp(value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'), () => replacement);
}
