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
