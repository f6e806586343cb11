/**
 * The person behind an email, for the program rules: `Jane.Doe+promo@googlemail.com` and
 * `janedoe@gmail.com` are one inbox, so one person. Only Gmail is folded this way because only
 * Gmail documents that dots and +tags reach the same mailbox; elsewhere they may be different people.
 */
export function canonicalEmail(email: string): string {
  const normalised = email.trim().toLowerCase();
  const at = normalised.lastIndexOf('@');
  if (at < 1) return normalised;
  let local = normalised.slice(0, at);
  let domain = normalised.slice(at + 1);
  if (domain === 'gmail.com' || domain === 'googlemail.com') {
    local = local.split('+')[0].replace(/\./g, '');
    domain = 'gmail.com';
  }
  return `${local}@${domain}`;
}

export function emailDomain(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1).trim().toLowerCase();
}
