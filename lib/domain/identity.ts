/**
 * The person behind an email, for the program rules (never for sending: emails are sent as given).
 *
 * - `+tags` are dropped on every domain: plus addressing (RFC 5233 sub-addressing) delivers
 *   `me+anything@` to `me@`'s inbox at Gmail, Outlook.com/Hotmail (since 2013) and Microsoft 365
 *   (since 2020), among others (Microsoft Learn, "Plus addressing in Exchange Online";
 *   zdnet.com, "Microsoft adds support for custom '+' email addresses in Office 365"). Where a provider does not support it the tagged address does not
 *   exist, so folding it can only merge an impostor into the real person, never split one.
 * - Dots in the local part are dropped only at Gmail, the one provider that documents them as
 *   ignored; elsewhere `j.doe@` and `jdoe@` may be two people.
 * - `googlemail.com` is the same mailbox as `gmail.com` (Google's name for Gmail in Germany and the
 *   UK; both domains deliver to the one account), so it is folded into `gmail.com`.
 *
 * Changing these rules changes the claim keys in the ledger (`redeemer#…`, `referrer#…`): claims
 * written before the change are not found under the new key, so a person rewarded under the old
 * key could be rewarded once more: docs/RELIABILITY.md ("Claim keys change with canonicalisation")
 * says how to carry the old claims over.
 */
export function canonicalEmail(email: string): string {
  const normalised = normalise(email);
  const at = normalised.lastIndexOf('@');
  if (at < 1) return normalised;
  const domain = canonicalDomain(normalised.slice(at + 1));
  // "+tag@" alone (nothing before the plus) is kept whole: there is no base address to fold into.
  let local = normalised.slice(0, at).replace(/^([^+]+)\+.*$/, '$1');
  if (domain === 'gmail.com') local = local.replace(/\./g, '');
  return `${local}@${domain}`;
}

/** Trimmed and lowercased: how emails, domains and signed fields are compared. */
export const normalise = (text: string): string => text.trim().toLowerCase();

/** Domains that are another name for the same mail system. */
const DOMAIN_ALIASES: Record<string, string> = { 'googlemail.com': 'gmail.com' };

/** Lowercased, without a trailing dot, aliases folded (`googlemail.com` → `gmail.com`). */
export function canonicalDomain(domain: string): string {
  const clean = normalise(domain).replace(/\.+$/, '');
  return DOMAIN_ALIASES[clean] ?? clean;
}

export function emailDomain(email: string): string {
  return normalise(email.slice(email.lastIndexOf('@') + 1));
}

// The configured list, canonicalised once per list (the config, and so the array, lives as long as
// the container's settings): isBlockedDomain runs twice per referral on the worker's path.
const canonicalLists = new WeakMap<readonly string[], ReadonlySet<string>>();

/**
 * Whether the email's domain is on the list, or under a domain on the list (`mail.example.com` is
 * under `example.com`), aliases folded on both sides: blocking `gmail.com` blocks `googlemail.com`.
 */
export function isBlockedDomain(email: string, blockedDomains: readonly string[]): boolean {
  if (blockedDomains.length === 0) return false;
  const blocked = canonicalLists.get(blockedDomains) ?? new Set(blockedDomains.map(canonicalDomain));
  canonicalLists.set(blockedDomains, blocked);
  const labels = emailDomain(email).replace(/\.+$/, '').split('.');
  // Every suffix of the domain: a.b.example.com, b.example.com, example.com, com.
  return labels.some((_, i) => blocked.has(canonicalDomain(labels.slice(i).join('.'))));
}
