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

/**
 * Every way an "@" is written in text that reaches us: as is, percent-encoded once or more (`%40`,
 * `%2540`), JSON/JavaScript-escaped (`\u0040`, `\x40`, with any number of backslashes), as an
 * HTML entity (`&#64;`, `&#x40;`, `&commat;`) and full-width (`＠`). A server that echoes a
 * request path (`/customers/jane%40example.com/events`) sends the email percent-encoded.
 */
const AT = String.raw`(?:@|%(?:25)*40|\\+u0040|\\+x40|&#0*64;|&#x0*40;|&commat;|\uFF20)`;
// Loose on purpose: anything email-shaped in free text gets masked, whatever its "@" looks like.
// The local part stops at URL punctuation too (no email we accept has any), so an echoed path or
// query string keeps its shape: `/customers/j***@example.com/events`, `?email=j***@example.com`.
const EMAIL_PART = String.raw`[^\s"'<>()[\]{},;:@\uFF20]+`;
const LOCAL_PART = String.raw`[^\s"'<>()[\]{},;:@\uFF20/?=&]+`;
const EMAIL_SHAPED = new RegExp(`(${LOCAL_PART})${AT}(${EMAIL_PART})`, 'gi');
// Values this short identify nobody, and masking them would garble the text ("10", "USD").
const MIN_VALUE_LENGTH = 5;

/**
 * Free text that may echo what we sent (a server's error message, a DLQ failure message), fit
 * for a log line or an operator's screen: each secret (a token, an API key) replaced whole; each
 * of our values (codes, emails, and each email in every encoding it may come back in) masked
 * wherever it appears, case-insensitively because gift-card codes are, longest first so a value
 * containing another is masked whole; then anything email-shaped masked, in any encoding.
 */
export function redactText(text: string, values: (string | undefined)[] = [], secrets: (string | undefined)[] = []): string {
  let out = text;
  for (const secret of secrets) if (secret) out = replaceEvery(out, secret, '[redacted]');
  const masked = values
    .filter((value): value is string => typeof value === 'string' && value.length >= MIN_VALUE_LENGTH)
    .flatMap((value) => (value.includes('@') ? emailEncodings(value).map((form) => ({ form, mask: maskEmail(value) })) : [{ form: value, mask: maskCode(value) }]))
    .sort((a, b) => b.form.length - a.form.length);
  for (const { form, mask } of masked) out = replaceEvery(out, form, mask);
  return out.replace(EMAIL_SHAPED, (_match, local: string, domain: string) => maskEmail(`${local}@${domain}`));
}

/**
 * The forms one of our emails may come back in: as sent, percent-encoded (`encodeURIComponent`,
 * so `+` is `%2B`), with `+` read as a space (a server decoding a path as a form), and
 * JSON-escaped. The generic pattern above catches these too, but only from the "@" on: a
 * `me 2@outlook.com` would keep its `me `, so known values are replaced whole first.
 */
function emailEncodings(email: string): string[] {
  return [...new Set([email, encodeURIComponent(email), email.replace(/\+/g, ' '), email.replace(/@/g, '\\u0040')])];
}

function replaceEvery(text: string, value: string, replacement: string): string {
  return text.replace(new RegExp(value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'), () => replacement);
}
