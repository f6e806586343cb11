/** `redeemer@example.com` → `r***@example.com`: enough to tell people apart in a log, not to mail them. */
export function maskEmail(email: string | undefined | null): string {
  if (!email) return '';
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  return `${email[0]}***${email.slice(at)}`;
}

/** A gift-card code shown only by its last four characters, as Shopify's admin does. */
export function maskCode(code: string | undefined | null): string {
  return code ? `…${code.slice(-4)}` : '';
}

/**
 * Every way an "@" is written in text that reaches us: as is, percent-encoded once or more (`%40`,
 * `%2540`), JSON/JavaScript-escaped (`\u0040`, `\x40`, with any number of backslashes), as an
 * HTML entity (`&#64;`, `&#x40;`, `&commat;`) and full-width (`＠`). A server that echoes a
 * request path (`/customers/jane%40example.com/events`) sends the email percent-encoded.
 */
// A run of backslashes is matched from its first one only (the lookbehind): tried from every
// backslash of a long run, `\\+` would rescan the rest of it each time.
const AT = String.raw`(?:@|%(?:25)*40|(?<!\\)\\+u0040|(?<!\\)\\+x40|&#0*64;|&#x0*40;|&commat;|\uFF20)`;
// Loose on purpose: anything email-shaped in free text gets masked, whatever its "@" looks like.
// The local part stops at URL punctuation too (no email we accept has any), so an echoed path or
// query string keeps its shape: `/customers/j***@example.com/events`, `?email=j***@example.com`.
const EMAIL_PART = String.raw`[^\s"'<>()[\]{},;:@\uFF20]+`;
const LOCAL_CHAR = String.raw`[^\s"'<>()[\]{},;:@\uFF20/?=&]`;
// A match starts only where a run of local-part characters starts (the lookbehind). The engine
// would otherwise retry from every character of a long run with no "@" in it, each retry
// scanning to the run's end: quadratic (160 KB of text took 22 s). Starting mid-run never finds
// an email the run's start would not: the same "@" forms are in reach, and the greedy local part
// takes the run from its start either way. So each run is scanned a bounded number of times.
const EMAIL_SHAPED = new RegExp(`(?<!${LOCAL_CHAR})(${LOCAL_CHAR}+)${AT}(${EMAIL_PART})`, 'gi');
// A credential in an HTTP Authorization form (`Basic base64(user:pass)`, `Bearer <token>`),
// echoed by a proxy or a debugging endpoint. The token must look like one (12+ characters with a
// digit or one of + / = _ -) so prose such as "Bearer token" or "Basic authentication" stays.
const AUTH_CREDENTIAL = /\b(basic|bearer)(\s+)([A-Za-z0-9._~+/=-]+)/gi;
const LOOKS_LIKE_TOKEN = /^(?=.{12})(?=.*[0-9+/=_-])/;
// Values this short identify nobody, and masking them would garble the text ("10", "USD").
const MIN_VALUE_LENGTH = 5;

/**
 * Free text that may echo what we sent (a server's error message, a DLQ failure message), fit for
 * a log line or an operator's screen: any `Basic`/`Bearer` credential replaced; each secret (a
 * token, an API key) replaced whole; each of our values (codes, emails, and each email in every
 * encoding it may come back in) masked wherever it appears, case-insensitively because gift-card
 * codes are, longest first so a value containing another is masked whole; then anything
 * email-shaped masked, in any encoding.
 */
export function redactText(text: string, values: (string | undefined)[] = [], secrets: (string | undefined)[] = []): string {
  let out = text.replace(AUTH_CREDENTIAL, (match, scheme: string, space: string, token: string) =>
    LOOKS_LIKE_TOKEN.test(token) ? `${scheme}${space}[redacted]` : match,
  );
  for (const secret of secrets) if (secret) out = replaceEvery(out, secret, '[redacted]');
  const masked = values
    .filter((value): value is string => typeof value === 'string' && value.length >= MIN_VALUE_LENGTH)
    .flatMap((value) =>
      value.includes('@')
        ? emailEncodings(value).map((form) => ({ form, mask: maskEmail(value) }))
        : [{ form: value, mask: maskCode(value) }],
    )
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
